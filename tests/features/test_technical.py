"""Tests of fleet.features.technical: hand-computed values, Wilder's RSI, causality, warm-up."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fleet.errors import ConfigError, DataError
from fleet.features import FEATURE_REQUIREMENTS, technical_features, warmup_bars

LN2 = math.log(2.0)
NAN = np.nan


def hourly(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2023-01-01", periods=n, freq="h", tz="UTC", name="timestamp")


def tiny_frame() -> pd.DataFrame:
    # closes move by powers of two so log returns are multiples of ln 2
    close = [1.0, 2.0, 4.0, 2.0, 2.0, 8.0]
    return pd.DataFrame(
        {
            "open": [1.0, 1.0, 2.0, 4.0, 2.0, 2.0],
            "high": [1.0, 2.0, 4.0, 4.0, 2.0, 8.0],
            "low": [0.5, 1.0, 2.0, 2.0, 1.0, 2.0],
            "close": close,
            # log1p(volume) = 0, 1, 2, 4, 4, 4
            "volume": np.expm1([0.0, 1.0, 2.0, 4.0, 4.0, 4.0]),
        },
        index=hourly(6),
    )


def random_frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.003, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.003, n)))
    volume = rng.lognormal(3.0, 0.5, n)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=hourly(n)
    )


SMALL = dict(return_horizons=(1, 2), vol_window=3, rsi_window=2, volume_window=3)


def test_hand_computed_values():
    features, left_out = technical_features(tiny_frame(), **SMALL)
    assert left_out == ()
    assert list(features.columns) == ["ret_1", "ret_2", "vol_3", "rsi_2", "hl_range", "volume_z"]
    assert features.index.equals(tiny_frame().index)
    assert (features.dtypes == np.float64).all()

    expected = pd.DataFrame(
        {
            "ret_1": [NAN, LN2, LN2, -LN2, 0.0, 2 * LN2],
            "ret_2": [NAN, NAN, 2 * LN2, 0.0, -LN2, 2 * LN2],
            # sample std of (ln2, ln2, -ln2), (ln2, -ln2, 0), (-ln2, 0, 2 ln2)
            "vol_3": [NAN, NAN, NAN, 2 * LN2 / math.sqrt(3), LN2, LN2 * math.sqrt(7 / 3)],
            # changes +1, +2, -2, 0, +6; Wilder n=2: seed avg gain 1.5 / loss 0, then
            # gain .75 / loss 1, gain .375 / loss .5, gain 51/16 / loss 1/4
            "rsi_2": [NAN, NAN, 100.0, 300 / 7, 300 / 7, 5100 / 55],
            "hl_range": [LN2, LN2, LN2, LN2, LN2, 2 * LN2],
            # log1p(volume) windows (0,1,2), (1,2,4), (2,4,4), (4,4,4)
            "volume_z": [NAN, NAN, 1.0, (5 / 3) / math.sqrt(7 / 3), (2 / 3) / math.sqrt(4 / 3), 0.0],
        },
        index=features.index,
    )
    pd.testing.assert_frame_equal(features, expected, rtol=1e-12, atol=1e-12)


def test_rsi_of_monotone_and_flat_series():
    n = 60
    up = pd.DataFrame({"close": np.linspace(10.0, 20.0, n)}, index=hourly(n))
    down = pd.DataFrame({"close": np.linspace(20.0, 10.0, n)}, index=hourly(n))
    flat = pd.DataFrame({"close": np.full(n, 7.0)}, index=hourly(n))
    rsi_up = technical_features(up)[0]["rsi_14"]
    assert rsi_up.iloc[:14].isna().all()
    np.testing.assert_array_equal(rsi_up.iloc[14:], 100.0)
    np.testing.assert_array_equal(technical_features(down)[0]["rsi_14"].iloc[14:], 0.0)
    np.testing.assert_array_equal(technical_features(flat)[0]["rsi_14"].iloc[14:], 50.0)


def wilder_rsi_loop(close: np.ndarray, n: int) -> np.ndarray:
    """Wilder (1978) as printed: average of the first n gains / losses, then
    avg = (prev * (n - 1) + current) / n."""
    out = np.full(len(close), np.nan)
    gains = [max(close[i] - close[i - 1], 0.0) for i in range(1, len(close))]
    losses = [max(close[i - 1] - close[i], 0.0) for i in range(1, len(close))]
    avg_gain = sum(gains[:n]) / n
    avg_loss = sum(losses[:n]) / n
    out[n] = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    for t in range(n + 1, len(close)):
        avg_gain = (avg_gain * (n - 1) + gains[t - 1]) / n
        avg_loss = (avg_loss * (n - 1) + losses[t - 1]) / n
        out[t] = 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    return out


@pytest.mark.parametrize("n", [2, 14, 30])
def test_rsi_matches_wilder_loop(n):
    frame = random_frame(400, seed=n)
    rsi = technical_features(frame, rsi_window=n)[0][f"rsi_{n}"]
    np.testing.assert_allclose(rsi.to_numpy(), wilder_rsi_loop(frame["close"].to_numpy(), n),
                               rtol=1e-10, atol=1e-10, equal_nan=True)
    assert rsi.dropna().between(0.0, 100.0).all()


def test_features_are_causal():
    frame = random_frame(600, seed=1)
    before, _ = technical_features(frame)
    cut = 400
    rng = np.random.default_rng(99)
    future = frame.copy()
    scale = np.exp(rng.normal(0.0, 0.2, len(frame) - cut))
    for column in ("open", "high", "low", "close"):
        future.iloc[cut:, future.columns.get_loc(column)] *= scale
    future.iloc[cut:, future.columns.get_loc("volume")] *= 50.0
    after, _ = technical_features(future)
    # the future did change ...
    assert not np.allclose(before.iloc[cut:].to_numpy(), after.iloc[cut:].to_numpy(), equal_nan=True)
    # ... and not one bit of the past
    np.testing.assert_array_equal(before.iloc[:cut].to_numpy(), after.iloc[:cut].to_numpy())


@pytest.mark.parametrize("close_only", [False, True])
@pytest.mark.parametrize("params", [{}, SMALL, dict(return_horizons=(48,), vol_window=5, volume_window=10)])
def test_warmup_bars_counts_leading_nan_rows(close_only, params):
    frame = random_frame(400, seed=3)
    if close_only:
        frame = frame[["close"]]
    features, _ = technical_features(frame, **params)
    warm = warmup_bars(columns=frame.columns, **params)
    row_has_nan = features.isna().any(axis=1).to_numpy()
    assert row_has_nan[:warm].all()
    assert not row_has_nan[warm:].any()


def test_warmup_bars_known_values():
    assert warmup_bars() == 167  # volume_z: 168-bar window
    assert warmup_bars(columns=["close"]) == 24  # ret_24 / vol_24
    assert warmup_bars(**SMALL) == 3
    assert warmup_bars(return_horizons=(1,), vol_window=2, rsi_window=30, columns=["close"]) == 30


def test_close_only_frame_reports_left_out_features():
    frame = random_frame(200, seed=4)[["close"]]
    features, left_out = technical_features(frame)
    assert left_out == ("hl_range", "volume_z")
    assert list(features.columns) == ["ret_1", "ret_4", "ret_12", "ret_24", "vol_24", "rsi_14"]
    high_only = random_frame(200, seed=4)[["close", "high", "volume"]]
    assert technical_features(high_only)[1] == ("hl_range",)


def test_feature_requirements():
    assert FEATURE_REQUIREMENTS["hl_range"] == ("high", "low")
    assert FEATURE_REQUIREMENTS["volume_z"] == ("volume",)
    assert all(FEATURE_REQUIREMENTS[f] == ("close",) for f in ("ret", "vol", "rsi"))


def test_input_frame_is_not_modified():
    frame = random_frame(300, seed=5)
    before = frame.copy()
    technical_features(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_bad_data_errors():
    frame = random_frame(50, seed=6)
    with pytest.raises(DataError, match=r"missing required column 'close' \(found: high, low, open, volume\)"):
        technical_features(frame.drop(columns="close"))
    bad = frame.copy()
    bad.iloc[[4, 7], bad.columns.get_loc("close")] = [0.0, np.nan]
    with pytest.raises(DataError, match=r"column 'close' has invalid values at 2 rows \(e.g. 4, 7\)"):
        technical_features(bad)
    bad = frame.copy()
    bad.iloc[3, bad.columns.get_loc("volume")] = -1.0
    with pytest.raises(DataError, match=r"column 'volume' has invalid values at 1 row \(e.g. 3\)"):
        technical_features(bad)
    zero_volume = frame.copy()
    zero_volume["volume"] = 0.0
    assert technical_features(zero_volume, volume_window=3)[0]["volume_z"].iloc[2:].eq(0.0).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(return_horizons=()), "return_horizons=()"),
        (dict(return_horizons=(1, 0)), "return_horizons=0"),
        (dict(return_horizons=(4, 4)), "repeats"),
        (dict(vol_window=1), "vol_window=1"),
        (dict(rsi_window=0), "rsi_window=0"),
        (dict(volume_window=2.5), "volume_window=2.5"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ConfigError, match=match.replace("(", r"\(").replace(")", r"\)")):
        technical_features(random_frame(50, seed=7), **kwargs)
    with pytest.raises(ConfigError):
        warmup_bars(**kwargs)
