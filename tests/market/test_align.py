"""align_log_returns: gap policy, asset ends, window, overlap rule, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fleet.errors import ConfigError, DataError
from fleet.market.align import align_log_returns

H = pd.Timedelta(hours=1)
T0 = pd.Timestamp("2024-01-01 00:00", tz="UTC")


def hourly(hours, growth: float) -> pd.Series:
    """close_t = 100 * exp(growth * t), t in hours, so every 1-bar log return is `growth`."""
    hours = np.asarray(list(hours))
    return pd.Series(100.0 * np.exp(growth * hours), index=T0 + pd.to_timedelta(hours, unit="h"))


def test_short_gaps_filled_long_gaps_left_nan():
    a = hourly(range(20), 0.01)
    # b misses hours 5-7 (3 bars: filled) and 12-15 (4 bars: longer than max_ffill=3, left NaN)
    b = hourly([h for h in range(20) if h not in (5, 6, 7, 12, 13, 14, 15)], 0.02)
    out = align_log_returns({"B": b, "A": a}, bar=H, max_ffill=3)

    assert list(out.columns) == ["A", "B"]
    assert out.index.name == "timestamp" and str(out.index.tz) == "UTC"
    assert len(out) == 20
    np.testing.assert_allclose(out["A"].iloc[1:], 0.01)
    rb = out["B"].to_numpy()
    assert np.isnan(rb[0])
    np.testing.assert_allclose(rb[1:5], 0.02)
    np.testing.assert_allclose(rb[5:8], 0.0)        # filled with the close of hour 4
    assert rb[8] == pytest.approx(0.08)              # whole move 4 -> 8 lands on the next real bar
    np.testing.assert_allclose(rb[9:12], 0.02)
    assert np.isnan(rb[12:17]).all()                 # the long gap, and the return that spans it
    np.testing.assert_allclose(rb[17:], 0.02)


def test_nothing_filled_before_first_or_after_last_bar():
    a = hourly(range(20), 0.01)
    b = hourly(range(2, 15), 0.02)                  # starts at hour 2, ends at hour 14
    out = align_log_returns({"A": a, "B": b}, bar=H, max_ffill=3)
    rb = out["B"].to_numpy()
    assert np.isnan(rb[:3]).all()                   # hours 0, 1 absent; hour 2 has no previous close
    np.testing.assert_allclose(rb[3:15], 0.02)
    assert np.isnan(rb[15:]).all()                  # a gap of <= 3 bars at the end is still not filled


def test_max_ffill_zero_fills_nothing():
    a = hourly(range(10), 0.01)
    b = hourly([h for h in range(10) if h != 4], 0.02)
    rb = align_log_returns({"A": a, "B": b}, bar=H, max_ffill=0)["B"].to_numpy()
    assert np.isnan(rb[4]) and np.isnan(rb[5])
    np.testing.assert_allclose(rb[6:], 0.02)


def test_gap_missing_from_every_asset_measured_in_time():
    # Both assets miss hours 10-11 (2 bars, short) and 20-24 (5 bars, long): the grid has no
    # rows there, so only the bar length tells how long the gap is.
    keep = [h for h in range(30) if h not in (10, 11, 20, 21, 22, 23, 24)]
    out = align_log_returns({"A": hourly(keep, 0.01), "B": hourly(keep, 0.02)}, bar=H, max_ffill=3)
    at = {ts: i for i, ts in enumerate(out.index)}
    i12, i25 = at[T0 + 12 * H], at[T0 + 25 * H]
    assert out["B"].iloc[i12] == pytest.approx(0.06)    # 9 -> 12 over a short gap
    assert out[["A", "B"]].iloc[i25].isna().all()        # 19 -> 25 spans a long gap: not a 1-bar return
    assert out["B"].iloc[i25 + 1] == pytest.approx(0.02)


def test_window_end_is_exclusive_and_start_inclusive():
    a = hourly(range(20), 0.01)
    out = align_log_returns({"A": a}, bar=H, start="2024-01-01 05:00", end=T0 + 10 * H)
    assert out.index[0] == pd.Timestamp("2024-01-01 05:00", tz="UTC")
    assert out.index[-1] == pd.Timestamp("2024-01-01 09:00", tz="UTC")
    assert np.isnan(out["A"].iloc[0])


def test_other_timezones_converted_to_utc():
    a = hourly(range(6), 0.01)
    b = a.copy()
    b.index = b.index.tz_convert("America/New_York")
    out = align_log_returns({"A": a, "B": b}, bar=H)
    assert len(out) == 6 and str(out.index.tz) == "UTC"
    np.testing.assert_allclose(out["B"].iloc[1:], out["A"].iloc[1:])


def test_overlap_error_names_asset_and_overlap():
    a = hourly(range(20), 0.01)
    b = hourly(range(4), 0.02)                      # values on 4 of 20 rows
    with pytest.raises(DataError, match=r"B \(20\.0% of 20 rows\).*min_overlap=50%"):
        align_log_returns({"A": a, "B": b}, bar=H)
    out = align_log_returns({"A": a, "B": b}, bar=H, min_overlap=0.2)
    assert out["B"].notna().sum() == 3


@pytest.mark.parametrize("kwargs, match", [
    ({"bar": pd.Timedelta(0)}, "bar="),
    ({"bar": H, "max_ffill": -1}, "max_ffill=-1"),
    ({"bar": H, "min_overlap": 1.5}, "min_overlap=1.5"),
    ({"bar": H, "start": "2024-01-02", "end": "2024-01-01"}, "end must be after start"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        align_log_returns({"A": hourly(range(5), 0.01)}, **kwargs)


def test_data_errors():
    good = hourly(range(5), 0.01)
    with pytest.raises(DataError, match="no assets"):
        align_log_returns({}, bar=H)
    naive = good.copy()
    naive.index = naive.index.tz_localize(None)
    with pytest.raises(DataError, match="'N'.*timezone-naive"):
        align_log_returns({"A": good, "N": naive}, bar=H)
    bad = good.copy()
    bad.iloc[2] = -1.0
    with pytest.raises(DataError, match=r"'X'.*close must be finite and > 0, not so at 1 row \(e\.g\. 2\)"):
        align_log_returns({"X": bad}, bar=H)
    with pytest.raises(DataError, match="no bars inside the window"):
        align_log_returns({"A": good}, bar=H, start="2030-01-01")


def test_a_given_grid_gives_each_asset_the_column_it_gets_beside_the_others():
    # a's grid alone skips hours 5-7 (b has them); on the union grid a's return 4 -> 8 is spread as 0, 0, 0, 0.04
    a = hourly([h for h in range(20) if h not in (5, 6, 7)], 0.01)
    b = hourly(range(20), 0.02)
    both = align_log_returns({"A": a, "B": b}, bar=H, max_ffill=3)
    alone = align_log_returns({"A": a}, bar=H, max_ffill=3, grid=both.index)
    pd.testing.assert_series_equal(alone["A"], both["A"])
    np.testing.assert_allclose(alone["A"].iloc[5:8], 0.0)
    assert alone["A"].iloc[8] == pytest.approx(0.04)
    assert len(align_log_returns({"A": a}, bar=H, max_ffill=3)) == 17  # without the grid: a's own timestamps


def test_a_grid_missing_a_bar_is_refused():
    a = hourly(range(10), 0.01)
    with pytest.raises(DataError, match=r"asset 'A' has 1 timestamp\(s\) not on the given grid"):
        align_log_returns({"A": a}, bar=H, grid=a.index.delete(4))
