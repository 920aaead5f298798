"""The serving fast path (``last=``): features of the newest bars only must equal the full computation.

Checked on synthetic bars and on real hourly crypto bars (skipped when the shared data is absent),
for the technical features, FFD, the whole ``asset_features`` (with the market factor and the
mixture's extra families) and a trained unit's ``design_matrix``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fleet.errors import ConfigError
from fleet.features.fracdiff import frac_diff_ffd
from fleet.features.technical import technical_features
from fleet.features.pipeline import asset_feature_arrays, asset_features, factor_at
from fleet.features.spec import FeatureSpec

RTOL, ATOL = 1e-10, 1e-12


def synthetic(n=1500, seed=3, columns=("open", "high", "low", "close", "volume")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    data = {"open": close * np.exp(rng.normal(0, 0.002, n)), "high": close * 1.01, "low": close * 0.99,
            "close": close, "volume": rng.lognormal(3, 1, n)}
    data["volume"][::97] = 0.0  # zero volume bars
    index = pd.date_range("2023-01-01", periods=n, freq="1h", tz="UTC")
    return pd.DataFrame({c: data[c] for c in columns}, index=index)


@pytest.fixture(scope="module")
def real(shared_data) -> pd.DataFrame:
    path = shared_data / "crypto_1h" / "BTCUSDT.parquet"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    raw = pd.read_parquet(path).iloc[-3000:]
    return raw.set_index("timestamp")[["open", "high", "low", "close", "volume"]].astype(np.float64)


def assert_tail_equal(fast: pd.DataFrame, full: pd.DataFrame, k: int):
    want = full.iloc[-k:]
    assert list(fast.columns) == list(want.columns)
    assert fast.index.equals(want.index)
    np.testing.assert_allclose(fast.to_numpy(), want.to_numpy(), rtol=RTOL, atol=ATOL, equal_nan=True)


@pytest.mark.parametrize("columns", [("open", "high", "low", "close", "volume"), ("close",)])
@pytest.mark.parametrize("k", [1, 2, 25, 400, 5000])
def test_technical_last_equals_full_tail(columns, k):
    frame = synthetic(columns=columns)
    full, left_full = technical_features(frame)
    fast, left_fast = technical_features(frame, last=k)
    assert left_fast == left_full
    assert_tail_equal(fast, full, min(k, len(frame)))


def test_technical_last_keeps_rsi_memory_and_warmup():
    frame = synthetic(n=300)
    full, _ = technical_features(frame)
    # RSI is recursive: the last value depends on the first bars, so the fast path must still see them
    changed = frame.copy()
    changed.iloc[:5, changed.columns.get_loc("close")] *= 1.5
    assert technical_features(changed, last=1)[0]["rsi_14"].iloc[-1] != full["rsi_14"].iloc[-1]
    # warm-up rows stay NaN in the fast path too
    short = frame.iloc[:30]
    assert_tail_equal(technical_features(short, last=10)[0], technical_features(short)[0], 10)
    with pytest.raises(ConfigError, match="last"):
        technical_features(frame, last=0)


@pytest.mark.parametrize("d", [0.0, 0.15, 0.4, 1.0])
@pytest.mark.parametrize("k", [1, 3, 700, 10_000])
def test_ffd_last_equals_full_tail(d, k):
    x = np.log(synthetic()["close"])
    full = frac_diff_ffd(x, d)
    fast = frac_diff_ffd(x, d, last=k)
    want = full.iloc[-min(k, len(x)):]
    assert fast.index.equals(want.index)
    np.testing.assert_allclose(fast.to_numpy(), want.to_numpy(), rtol=RTOL, atol=ATOL, equal_nan=True)
    with pytest.raises(ConfigError, match="last"):
        frac_diff_ffd(x, d, last=0)


def _factor(index: pd.DatetimeIndex) -> pd.Series:
    """A factor on part of the grid (every third bar missing, one NaN), as the stored factor can be."""
    rng = np.random.default_rng(1)
    grid = index[::3].append(index[1::3]).sort_values()
    values = rng.normal(size=len(grid))
    values[7] = np.nan
    return pd.Series(values, index=grid.as_unit("us"))


def test_factor_at_is_reindex_fillna():
    index = synthetic(n=200).index
    factor = _factor(index)
    later = index.append(pd.date_range(index[-1] + pd.Timedelta(hours=1), periods=5, freq="1h", tz="UTC"))
    np.testing.assert_array_equal(factor_at(factor, later), factor.reindex(later).fillna(0.0).to_numpy())


@pytest.mark.parametrize("groups", [(), ("stress", "sde", "fingerprint")])
@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_asset_features_last_equals_full(groups, source, request):
    frame = synthetic(n=2500) if source == "synthetic" else request.getfixturevalue("real")
    spec = FeatureSpec(groups=groups, horizon=4)
    factor = _factor(frame.index)
    full, skipped = asset_features(frame, d=0.35, factor=factor, features=spec)
    for k in (1, 5, 200):
        fast, skipped_fast = asset_features(frame, d=0.35, factor=factor, features=spec, last=k)
        assert skipped_fast == skipped
        assert_tail_equal(fast, full, k)
        arrays, _ = asset_feature_arrays({c: frame[c].to_numpy() for c in frame.columns}, frame.index, d=0.35,
                                         factor=factor, features=spec, last=k)
        assert list(arrays) == list(fast.columns)
        np.testing.assert_array_equal(np.column_stack(list(arrays.values())), fast.to_numpy())
    assert np.isfinite(full.iloc[-1].to_numpy()).all()


def test_real_rows_every_bar_of_a_slice(real):
    """On real bars, the fast path at every one of 50 consecutive end bars equals the full computation."""
    spec = FeatureSpec()
    full, _ = asset_features(real, d=0.4, factor=None, features=spec)
    for end in range(len(real) - 50, len(real)):
        fast, _ = asset_features(real.iloc[:end + 1], d=0.4, factor=None, features=spec, last=1)
        np.testing.assert_allclose(fast.to_numpy()[0], full.iloc[end].to_numpy(), rtol=RTOL, atol=ATOL)


def test_design_matrix_last_equals_full(served_runs):
    from fleet.serving.predictor import FleetPredictor

    run_dir, frames = served_runs["hierarchical"]
    predictor = FleetPredictor(run_dir)
    for symbol in sorted(frames)[:3]:
        model = predictor.units[predictor.asset(symbol).unit]
        frame = frames[symbol]
        full = model.design_matrix(symbol, frame, predictor.factor)
        fast = model.design_matrix(symbol, frame, predictor.factor, last=3)
        assert list(fast.columns) == model.feature_names
        assert (fast.dtypes == full.dtypes).all()
        assert_tail_equal(fast.astype(np.float64), full.astype(np.float64), 3)
        assert fast["bar_time"].to_numpy().tolist() == full["bar_time"].iloc[-3:].to_numpy().tolist()
