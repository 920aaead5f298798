"""Tests of fleet.features.fracdiff (AFML ch. 5): weights, FFD transform, choice of d."""

from __future__ import annotations

import inspect
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import binom
from statsmodels.tsa.stattools import adfuller

from fleet.errors import ConfigError, DataError
from fleet.features import FFDChoice, choose_d, ffd_weights, frac_diff_ffd

DATA_DIR = Path(os.environ.get("FLEET_DATA_DIR", Path(__file__).resolve().parents[2].parent / "shared" / "data"))


def closed_form_weights(d: float, threshold: float, max_width: int = 10_000) -> np.ndarray:
    """w_k = (-1)^k binom(d, k), kept while |w_k| >= threshold (independent of the code under test)."""
    out = []
    for k in range(max_width):
        w = (-1) ** k * binom(d, k)
        if abs(w) < threshold:
            break
        out.append(w)
    return np.array(out)


def reference_ffd(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for t in range(len(w) - 1, len(x)):
        total = 0.0
        for k in range(len(w)):
            total += w[k] * x[t - k]
        out[t] = total
    return out


def random_walk(n: int, seed: int) -> pd.Series:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2022-01-01", periods=n, freq="h", tz="UTC")
    return pd.Series(np.log(100.0) + np.cumsum(rng.normal(0.0, 0.01, n)), index=index, name="RW")


# ---------------------------------------------------------------- weights


def test_weights_known_values():
    np.testing.assert_array_equal(ffd_weights(1.0), [1.0, -1.0])
    np.testing.assert_array_equal(ffd_weights(0.0), [1.0])
    np.testing.assert_array_equal(ffd_weights(2.0), [1.0, -2.0, 1.0])
    np.testing.assert_allclose(ffd_weights(0.5)[:4], [1.0, -0.5, -0.125, -0.0625], rtol=0, atol=1e-15)


@pytest.mark.parametrize("d", [0.05, 0.3, 0.5, 0.77, 1.3, 1.9])
@pytest.mark.parametrize("threshold", [1e-2, 1e-4])
def test_weights_match_closed_form_and_stop_at_threshold(d, threshold):
    w = ffd_weights(d, threshold=threshold)
    expected = closed_form_weights(d, threshold)
    assert w.shape == expected.shape
    np.testing.assert_allclose(w, expected, rtol=1e-10, atol=1e-14)
    assert np.all(np.abs(w) >= threshold)
    # the first dropped weight is below the threshold
    assert abs((-1) ** len(w) * binom(d, len(w))) < threshold


def test_weights_capped_by_max_width():
    w = ffd_weights(0.05, threshold=1e-8, max_width=100)
    assert w.shape == (100,)
    np.testing.assert_allclose(w, closed_form_weights(0.05, 0.0, max_width=100), rtol=1e-10)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(d=-0.1), "d=-0.1"),
        (dict(d=2.5), "d=2.5"),
        (dict(d=0.4, threshold=0.0), "threshold=0.0"),
        (dict(d=0.4, threshold=1.5), "threshold=1.5"),
        (dict(d=0.4, max_width=0), "max_width=0"),
        (dict(d=0.4, max_width=2.5), "max_width=2.5"),
    ],
)
def test_weights_bad_parameters(kwargs, match):
    d = kwargs.pop("d")
    with pytest.raises(ConfigError, match=match):
        ffd_weights(d, **kwargs)


# ---------------------------------------------------------------- transform


@pytest.mark.parametrize("d", [0.1, 0.35, 0.5, 0.9, 1.0, 1.4])
def test_ffd_matches_double_loop_reference(d):
    rng = np.random.default_rng(7)
    x = pd.Series(rng.normal(size=400).cumsum() + 5.0, index=pd.RangeIndex(10, 410), name="px")
    threshold = 1e-3
    got = frac_diff_ffd(x, d, threshold=threshold)
    w = closed_form_weights(d, threshold)
    expected = reference_ffd(x.to_numpy(), w)
    assert got.index.equals(x.index)
    assert got.name == "px"
    assert got.dtype == np.float64
    assert got.iloc[: len(w) - 1].isna().all()
    assert got.iloc[len(w) - 1 :].notna().all()
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-10, atol=1e-10, equal_nan=True)


def test_ffd_d0_is_identity_and_d1_is_first_difference():
    x = random_walk(200, seed=1)
    pd.testing.assert_series_equal(frac_diff_ffd(x, 0.0), x)
    pd.testing.assert_series_equal(frac_diff_ffd(x, 1.0), x.diff())


def test_ffd_shorter_than_window_is_all_nan():
    x = random_walk(50, seed=2)
    out = frac_diff_ffd(x, 0.3, threshold=1e-4)  # window of several hundred bars
    assert len(out) == 50 and out.isna().all()


def test_ffd_nan_spoils_only_windows_containing_it():
    x = random_walk(100, seed=3)
    x.iloc[50] = np.nan
    out = frac_diff_ffd(x, 0.6, threshold=1e-2)
    width = len(closed_form_weights(0.6, 1e-2))
    nan_rows = np.flatnonzero(out.isna().to_numpy())
    expected = np.r_[np.arange(width - 1), np.arange(50, 50 + width)]
    np.testing.assert_array_equal(nan_rows, expected)


def test_ffd_does_not_modify_input():
    x = random_walk(300, seed=4)
    before = x.copy()
    frac_diff_ffd(x, 0.4)
    pd.testing.assert_series_equal(x, before)


# ---------------------------------------------------------------- choose_d


def adf_p(values: pd.Series) -> float:
    # statsmodels >= 0.15 warns unless the tuple return is asked for explicitly
    quiet = {"result_object": False} if "result_object" in inspect.signature(adfuller).parameters else {}
    return adfuller(values.dropna().to_numpy(), maxlag=1, regression="c", autolag=None, **quiet)[1]


def test_choose_d_random_walk_picks_smallest_passing_d():
    x = random_walk(4000, seed=11)
    choice = choose_d(x, full_table=True)
    assert isinstance(choice, FFDChoice)
    assert 0.0 < choice.d <= 0.65
    assert not choice.capped
    assert choice.p_value < 0.05
    grid = [round(0.05 * k, 10) for k in range(14)]
    assert [d for d, _ in choice.table] == pytest.approx(grid)
    # smallest: every smaller d fails, the chosen one passes
    for d, p in choice.table:
        if d < choice.d - 1e-12:
            assert p >= 0.05
    # p-values are those of an ADF(maxlag=1, constant) test of the FFD series
    for d, p in choice.table[:: 4]:
        assert p == pytest.approx(adf_p(frac_diff_ffd(x, d)), rel=1e-9, abs=1e-300)
    assert choice.width == len(closed_form_weights(choice.d, 1e-4))


def test_choose_d_stops_at_first_pass_with_same_choice():
    x = random_walk(4000, seed=11)
    fast, full = choose_d(x), choose_d(x, full_table=True)
    assert (fast.d, fast.p_value, fast.width, fast.capped) == (full.d, full.p_value, full.width, full.capped)
    assert fast.table == full.table[: len(fast.table)]
    assert fast.table[-1][0] == fast.d


def test_choose_d_white_noise_is_zero():
    rng = np.random.default_rng(5)
    x = pd.Series(rng.normal(size=1500))
    choice = choose_d(x)
    assert choice.d == 0.0
    assert choice.width == 1
    assert not choice.capped
    assert choice.p_value < 0.05
    assert len(choice.table) == 1


def test_choose_d_capped_when_never_stationary():
    rng = np.random.default_rng(6)
    # an I(2) series (integrated random walk) stays non-stationary for every d <= 0.65
    x = pd.Series(np.cumsum(np.cumsum(rng.normal(size=3000))))
    choice = choose_d(x)
    assert choice.capped
    assert choice.d == 0.65
    assert choice.p_value >= 0.05
    assert len(choice.table) == 14
    assert all(p >= 0.05 for _, p in choice.table)
    assert choice.table[-1] == (0.65, choice.p_value)


def test_choose_d_cap_off_grid_is_tested_too():
    rng = np.random.default_rng(6)
    x = pd.Series(np.cumsum(np.cumsum(rng.normal(size=3000))))
    choice = choose_d(x, max_d=0.12, step=0.05)
    assert [d for d, _ in choice.table] == pytest.approx([0.0, 0.05, 0.10, 0.12])
    assert choice.capped and choice.d == 0.12


def test_choose_d_uses_only_the_data_passed():
    """The caller passes the training window; what follows it cannot change the choice."""
    calm = random_walk(3000, seed=12)
    train = calm.iloc[:2000]
    shocked = calm.copy()
    shocked.iloc[2000:] += np.linspace(0.0, 5.0, 1000)  # a future crash/rally
    assert choose_d(train) == choose_d(shocked.iloc[:2000])
    assert choose_d(train) != choose_d(shocked)  # the future would have mattered if passed


def test_choose_d_drops_nan_bars():
    x = random_walk(2000, seed=13)
    padded = pd.concat([pd.Series([np.nan] * 300), x.reset_index(drop=True)], ignore_index=True)
    assert choose_d(padded) == choose_d(x)


def test_choose_d_too_short_names_bars_needed():
    x = random_walk(400, seed=14)
    with pytest.raises(DataError, match=r"'RW' has 400 non-NaN bars; at least 557 are needed"):
        choose_d(x)
    # a coarser threshold shortens the windows and makes it feasible
    assert choose_d(x, threshold=1e-2).d >= 0.0


def test_choose_d_bad_input():
    with pytest.raises(DataError, match="constant"):
        choose_d(pd.Series(np.full(1000, 4.6)))
    x = random_walk(1000, seed=15)
    x.iloc[[3, 9]] = np.inf
    with pytest.raises(DataError, match=r"infinite values at 2 rows \(e.g. 3, 9\)"):
        choose_d(x)
    with pytest.raises(ConfigError, match="max_d=3"):
        choose_d(random_walk(1000, seed=15), max_d=3)
    with pytest.raises(ConfigError, match="step=0"):
        choose_d(random_walk(1000, seed=15), step=0)
    with pytest.raises(ConfigError, match="p_value=1.5"):
        choose_d(random_walk(1000, seed=15), p_value=1.5)


def test_choose_d_is_fast_on_two_years_of_hours():
    x = random_walk(17_520, seed=16)
    start = time.perf_counter()
    choose_d(x, full_table=True)  # every grid value, the worst case
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"choose_d took {elapsed:.2f} s on 17,520 bars"


def test_choose_d_on_real_btc_log_close():
    path = DATA_DIR / "crypto_1h" / "BTCUSDT.parquet"
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set FLEET_DATA_DIR)")
    frame = pd.read_parquet(path, columns=["timestamp", "close"]).set_index("timestamp")
    close = frame["close"]
    close = close[close.index > close.index[-1] - pd.Timedelta(days=730)]
    choice = choose_d(np.log(close))
    # a price level is not stationary, its returns are: d is strictly between 0 and the cap
    assert choice.table[0][1] > 0.05
    assert 0.0 < choice.d < 0.65 and not choice.capped and choice.p_value < 0.05
