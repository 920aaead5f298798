"""Tests of fleet.data.synthetic: the planted answers are really there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kurtosis

from fleet.data import SyntheticMarket, load_panel, synthetic_market
from fleet.errors import ConfigError


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return synthetic_market()  # defaults: 3 clusters x 3 assets, 730 days, s = 0.08


@pytest.fixture(scope="module")
def noise_market() -> SyntheticMarket:
    return synthetic_market(signal_strength=0.0, seed=1)


def log_returns(m: SyntheticMarket) -> pd.DataFrame:
    return pd.DataFrame(
        {s: np.diff(np.log(f["close"].to_numpy())) for s, f in m.panel.frames.items()}
    )


def lag1_autocorr(x: np.ndarray) -> float:
    return float(np.corrcoef(x[1:], x[:-1])[0, 1])


def test_shape_symbols_and_metadata(market):
    panel = market.panel
    assert panel.symbols == ["C0S0", "C0S1", "C0S2", "C1S0", "C1S1", "C1S2", "C2S0", "C2S1", "C2S2"]
    assert market.clusters == {f"C{c}S{k}": c for c in range(3) for k in range(3)}
    assert panel.columns == ("open", "high", "low", "close", "volume")
    assert set(panel.sources.values()) == {"synthetic"}
    assert panel.bar == pd.Timedelta(hours=1)
    assert panel.bars_per_year() == 8760.0
    frame = panel.frames["C1S2"]
    assert len(frame) == 730 * 24
    assert frame.index[0] == pd.Timestamp("2022-01-01", tz="UTC")
    assert (frame.index.to_series().diff().dropna() == pd.Timedelta(hours=1)).all()
    assert frame.index.name == "timestamp" and str(frame.index.tz) == "UTC"
    assert market.factor.index.equals(frame.index)
    assert market.signal_strength == 0.08
    assert "0.08" in market.description and "seed 0" in market.description


def test_deterministic_per_seed():
    a = synthetic_market(days=20, seed=7)
    b = synthetic_market(days=20, seed=7)
    c = synthetic_market(days=20, seed=8)
    for symbol in a.panel.symbols:
        pd.testing.assert_frame_equal(a.panel.frames[symbol], b.panel.frames[symbol])
    pd.testing.assert_series_equal(a.factor, b.factor)
    assert not np.allclose(a.panel.frames["C0S0"]["close"], c.panel.frames["C0S0"]["close"])


def test_bars_obey_the_loader_rules(market):
    for frame in market.panel.frames.values():
        values = frame.to_numpy()
        assert np.isfinite(values).all()
        o, h, l, c, v = (frame[col].to_numpy() for col in ("open", "high", "low", "close", "volume"))
        assert (l > 0).all() and (v >= 0).all()
        assert (h >= np.maximum(o, c)).all() and (l <= np.minimum(o, c)).all() and (h >= l).all()
        assert o[0] == 100.0
        np.testing.assert_array_equal(o[1:], c[:-1])  # open = previous close
        assert frame.index.is_unique and frame.index.is_monotonic_increasing


def test_round_trips_through_load_panel(tmp_path):
    small = synthetic_market(days=10, n_clusters=2, assets_per_cluster=2, seed=3)
    for symbol, frame in small.panel.frames.items():
        frame.reset_index().to_parquet(tmp_path / f"{symbol}.parquet", index=False)
    loaded = load_panel(tmp_path)  # raises DataError if any validation rule is broken
    assert loaded.symbols == small.panel.symbols
    for symbol in loaded.symbols:
        pd.testing.assert_frame_equal(loaded.frames[symbol], small.panel.frames[symbol])


def test_fat_tails_and_volatility_clustering(market):
    f = market.factor.to_numpy()
    assert kurtosis(f, fisher=False) > 3  # Gaussian: 3
    # GARCH(1,1) alone gives ~4 with these parameters; the Student-t(4) shocks add the rest.
    assert kurtosis(f, fisher=False) > 6
    sq = f**2
    assert lag1_autocorr(sq) > 0.05  # GARCH: squared returns are autocorrelated
    r = log_returns(market)
    assert (r.apply(lambda x: kurtosis(x, fisher=False)) > 3).all()
    assert all(lag1_autocorr(r[s].to_numpy() ** 2) > 0.05 for s in r)


def test_planted_signal_is_weak_but_present(market):
    r = log_returns(market).to_numpy()
    mean_ac = np.mean([lag1_autocorr(r[:, j]) for j in range(r.shape[1])])
    assert mean_ac == pytest.approx(0.08, abs=0.04)
    # the sign of the last return predicts the next one ~ 1/2 + arcsin(0.08)/pi = 52.5 % of the time
    hit = np.mean(np.sign(r[1:]) == np.sign(r[:-1]))
    assert 0.515 < hit < 0.54


def test_no_signal_means_no_predictability(noise_market):
    r = log_returns(noise_market).to_numpy()
    mean_ac = np.mean([lag1_autocorr(r[:, j]) for j in range(r.shape[1])])
    assert abs(mean_ac) < 0.03
    hit = np.mean(np.sign(r[1:]) == np.sign(r[:-1]))
    assert abs(hit - 0.5) < 0.01


def test_stronger_signal_gives_larger_autocorrelation():
    r = log_returns(synthetic_market(signal_strength=0.3, days=365, seed=2)).to_numpy()
    mean_ac = np.mean([lag1_autocorr(r[:, j]) for j in range(r.shape[1])])
    assert mean_ac == pytest.approx(0.3, abs=0.05)


@pytest.mark.parametrize("seed", [0, 1])
def test_within_cluster_correlation_exceeds_across(seed):
    m = synthetic_market(seed=seed, days=365)
    corr = log_returns(m).corr().to_numpy()
    labels = np.array([m.clusters[s] for s in m.panel.symbols])
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(len(labels), dtype=bool)
    within = corr[same & off_diagonal]
    across = corr[~same]
    assert within.min() > across.max()
    assert within.mean() - across.mean() > 0.3


def test_dominant_cluster_tracks_factor_and_has_highest_dollar_volume(market):
    r = log_returns(market)
    factor = market.factor.to_numpy()[1:]  # returns of bar t, from close t-1 to close t
    for symbol in ("C0S0", "C0S1", "C0S2"):
        assert np.corrcoef(r[symbol], factor)[0, 1] > 0.9
    dv = market.panel.dollar_volume()
    dominant = [s for s, c in market.clusters.items() if c == 0]
    others = [s for s, c in market.clusters.items() if c != 0]
    assert dv[dominant].min() > dv[others].max()


def test_custom_shape_and_start():
    m = synthetic_market(n_clusters=1, assets_per_cluster=2, days=3, start="2023-06-01 12:00")
    assert m.panel.symbols == ["C0S0", "C0S1"]
    assert m.panel.frames["C0S1"].index[0] == pd.Timestamp("2023-06-01 12:00", tz="UTC")
    assert len(m.panel.frames["C0S1"]) == 72


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"n_clusters": 0}, r"n_clusters=0 must be an integer >= 1"),
        ({"assets_per_cluster": 1.5}, r"assets_per_cluster=1\.5"),
        ({"days": 0}, r"days=0"),
        ({"seed": -1}, r"seed=-1"),
        ({"signal_strength": 1.0}, r"signal_strength=1\.0 must be in \(-1, 1\)"),
        ({"signal_strength": "x"}, r"signal_strength='x'"),
        ({"start": "not a date"}, r"start='not a date'"),
    ],
)
def test_bad_parameters(kwargs, pattern):
    with pytest.raises(ConfigError, match=pattern):
        synthetic_market(**kwargs)


def test_sign_hit_rate_matches_a_simulated_gaussian_ar1():
    """Sheppard's formula against a direct simulation: the share of bars whose return has the previous sign."""
    from fleet.data.synthetic import sign_hit_rate

    rng = np.random.default_rng(7)
    for s in (0.0, 0.08, 0.3):
        e = rng.standard_normal(400_000)
        r = np.empty_like(e)
        r[0] = e[0]
        for t in range(1, len(e)):  # the plain loop is the reference
            r[t] = s * r[t - 1] + e[t]
        hit = float(np.mean(np.sign(r[1:]) == np.sign(r[:-1])))
        assert abs(hit - sign_hit_rate(s)) < 0.004, (s, hit, sign_hit_rate(s))
