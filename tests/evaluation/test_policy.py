"""Forced daily entry and the natural-vs-forced report, on hand-made days."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fleet.errors import ConfigError, DataError
from fleet.evaluation.policy import apply_forced_daily_entry, apply_policy, forced_entry_report


def frame() -> pd.DataFrame:
    t = pd.Timestamp("2024-01-01", tz="UTC")
    h = pd.Timedelta("1h")
    rows = [  # cut-off 02:00 UTC in these tests
        # day 1, A: a natural signal at 01:00, before the cut-off -> nothing forced
        ("A", t + 1 * h, 0.60, 0.010), ("A", t + 2 * h, 0.40, -0.020),
        # day 2, A: quiet up to the cut-off -> its 02:00 bar is forced (not the higher 01:00 bar);
        # the natural signal at 03:00 comes after the decision and is traded as well
        ("A", t + 24 * h, 0.30, 0.005), ("A", t + 25 * h, 0.50, 0.040), ("A", t + 26 * h, 0.45, -0.030),
        ("A", t + 27 * h, 0.70, 0.001),
        # day 1, B: quiet at 02:00 -> forced; 23:00 natural (after the cut-off, does not undo it)
        ("B", t + 23 * h, 0.90, 0.020), ("B", t + 2 * h, 0.45, 0.030),
        # day 2, B: no bar at the cut-off time (a gap) -> no forced trade that day
        ("B", t + 24 * h, 0.20, -0.010), ("B", t + 25 * h, 0.10, 0.002),
        # day 1, C: the cut-off bar itself passes the threshold -> natural, not forced
        ("C", t + 2 * h, 0.80, 0.003),
    ]
    return pd.DataFrame(rows, columns=["symbol", "timestamp", "p_up", "forward_return"])


def test_forced_entry_rule():
    out = apply_forced_daily_entry(frame(), threshold=0.55, cutoff="02:00")
    assert out["forced_entry"].tolist() == [False, False, False, False, True, False, False, True, False, False, False]
    assert out["signal"].tolist() == [1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1]
    assert out["signal"].dtype == np.int8
    # without the policy: only the natural signals, nothing marked forced
    plain = apply_policy(frame(), threshold=0.55, forced_entry=False)
    assert plain["signal"].tolist() == [1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1] and not plain["forced_entry"].any()
    # the index of the input is kept
    shuffled = frame().sample(frac=1.0, random_state=1)
    again = apply_forced_daily_entry(shuffled, threshold=0.55, cutoff="02:00")
    assert (again.index == shuffled.index).all()
    assert again.sort_index()["forced_entry"].tolist() == out["forced_entry"].tolist()
    with pytest.raises(ConfigError, match="forced_entry_cutoff='25:00'"):
        apply_forced_daily_entry(frame(), threshold=0.55, cutoff="25:00")


def test_default_cutoff_is_the_days_last_bar():
    hours = pd.date_range("2024-01-01", periods=48, freq="h", tz="UTC")
    rows = pd.DataFrame({"symbol": "A", "timestamp": hours, "p_up": 0.3, "forward_return": 0.0})
    rows.loc[30, "p_up"] = 0.9                                   # day 2, 06:00: natural
    out = apply_forced_daily_entry(rows, threshold=0.55)          # bar inferred: 1 h -> 23:00
    assert out.loc[out["forced_entry"], "timestamp"].tolist() == [hours[23]]
    # daily bars: the day's only bar is the cut-off, so every quiet day is forced
    days = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC")
    daily = pd.DataFrame({"symbol": "A", "timestamp": days, "p_up": [0.3, 0.9, 0.3, 0.3, 0.3], "forward_return": 0.0})
    out = apply_forced_daily_entry(daily, threshold=0.55, bar=pd.Timedelta(days=1))
    assert out["forced_entry"].tolist() == [True, False, True, True, True]


def _t_stat(x: np.ndarray) -> float:
    return float(x.mean() / (x.std(ddof=1) / np.sqrt(x.size)))


def test_forced_trades_on_noise_show_no_edge():
    """A pure random walk with a p_up that looks mean-reverting (high after a fall) but stays below
    the threshold: no forced trade can have an edge. The causal rule's forced trades show |t| < 3;
    the old look-ahead rule (the day's highest p_up, chosen after the day is over) finds a large
    positive edge on the same data, which is what this test exists to catch."""
    rng = np.random.default_rng(7)
    h, n_days, parts = 4, 400, []
    for symbol in ("A", "B", "C"):
        n = n_days * 24 + h
        log_p = np.cumsum(rng.normal(0.0, 0.01, n))
        trailing = np.full(n, 0.0)
        trailing[h:] = log_p[h:] - log_p[:-h]
        p_up = np.clip(0.5 - 1.0 * trailing, 0.01, 0.549)
        fwd = np.full(n, np.nan)
        fwd[:-h] = log_p[h:] - log_p[:-h]
        ts = pd.date_range("2023-01-01", periods=n, freq="h", tz="UTC")
        parts.append(pd.DataFrame({"symbol": symbol, "timestamp": ts, "p_up": p_up, "forward_return": fwd})[:-h])
    noise = pd.concat(parts, ignore_index=True)
    out = apply_forced_daily_entry(noise, threshold=0.55)
    forced = out.loc[out["forced_entry"], "forward_return"].to_numpy()
    assert forced.size == 3 * n_days                       # every day quiet -> one forced trade each
    assert abs(_t_stat(forced)) < 3
    # the old rule on the same rows: argmax of the whole day's p_up (needs the day's later bars)
    day = noise["timestamp"].dt.floor("D")
    best = noise.groupby([noise["symbol"], day])["p_up"].idxmax()
    assert _t_stat(noise.loc[best, "forward_return"].to_numpy()) > 5


def test_forced_entry_report_and_advice():
    report = forced_entry_report(apply_forced_daily_entry(frame(), threshold=0.55, cutoff="02:00")).set_index("symbol")
    a, b, c = report.loc["A"], report.loc["B"], report.loc["C"]
    # A: natural trades 0.010 and 0.001 (wins), forced trade -0.030 (loss): delta -0.0355 < -0.005
    assert (a["days"], a["natural_trades"], a["forced_trades"], a["forced_days"]) == (2, 2, 1, 1)
    assert a["natural_mean_return"] == pytest.approx(0.0055) and a["forced_mean_return"] == pytest.approx(-0.030)
    assert a["natural_win_rate"] == 1.0 and a["forced_win_rate"] == 0.0
    # one forced trade: no t for the difference, so no advice however large the gap
    assert a["delta"] == pytest.approx(-0.0355) and math.isnan(a["delta_t"]) and a["advice"] == ""
    # B: natural 0.020 (23:00), forced 0.030 (02:00 of day 1; day 2 has no cut-off bar)
    assert (b["days"], b["natural_trades"], b["forced_trades"]) == (2, 1, 1)
    assert b["delta"] == pytest.approx(0.010) and b["advice"] == ""
    # C: no forced trade -> no delta, no advice
    assert c["forced_trades"] == 0 and math.isnan(c["forced_mean_return"]) and math.isnan(c["delta"])
    assert c["advice"] == ""


def test_advice_boundary_is_strict():
    t = pd.Timestamp("2024-01-01", tz="UTC")
    rows = pd.DataFrame({"symbol": "A", "timestamp": [t, t + pd.Timedelta(days=1)], "p_up": [0.9, 0.1],
                         "forward_return": [0.010, 0.006]})
    r = forced_entry_report(apply_forced_daily_entry(rows, threshold=0.55)).iloc[0]
    assert r["delta"] == pytest.approx(-0.004) and r["advice"] == ""  # worse, but by less than 0.005


def _days_of_trades(natural: np.ndarray, forced: np.ndarray) -> pd.DataFrame:
    """One asset, one day per trade: a natural trade at 05:00 or a forced one at the 23:00 cut-off."""
    rows, t0 = [], pd.Timestamp("2024-01-01", tz="UTC")
    for k, r in enumerate(natural):
        rows += [(t0 + pd.Timedelta(days=k, hours=5), 0.9, r), (t0 + pd.Timedelta(days=k, hours=23), 0.1, 0.0)]
    for k, r in enumerate(forced, start=len(natural)):
        rows += [(t0 + pd.Timedelta(days=k, hours=5), 0.1, 0.0), (t0 + pd.Timedelta(days=k, hours=23), 0.1, r)]
    return pd.DataFrame(rows, columns=["timestamp", "p_up", "forward_return"]).assign(symbol="A")


def _report_row(natural: np.ndarray, forced: np.ndarray) -> pd.Series:
    rows = _days_of_trades(natural, forced)
    return forced_entry_report(apply_forced_daily_entry(rows, threshold=0.55, cutoff="23:00")).iloc[0]


def _welch_by_hand(a: np.ndarray, b: np.ndarray) -> float:
    return (a.mean() - b.mean()) / math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)


def test_advice_needs_a_significant_delta():
    rng = np.random.default_rng(4)
    natural = rng.normal(0.002, 0.03, 60)
    # forced trades 0.008 worse on average but as noisy as the natural ones: |t| < 2, no advice
    forced = rng.normal(0.0, 0.03, 40)
    forced += (natural.mean() - 0.008) - forced.mean()
    r = _report_row(natural, forced)
    assert (r["natural_trades"], r["forced_trades"]) == (60, 40)
    assert r["delta"] == pytest.approx(-0.008) and r["delta"] < -0.005
    assert r["delta_t"] == pytest.approx(_welch_by_hand(forced, natural), rel=1e-9) and abs(r["delta_t"]) < 2
    assert r["advice"] == ""
    # the same gap with ten times less noise: |t| > 2, advice
    quiet = natural.mean() + (forced - forced.mean()) / 10 - 0.008
    r = _report_row(natural, quiet)
    assert r["delta_t"] == pytest.approx(_welch_by_hand(quiet, natural), rel=1e-9) and r["delta_t"] < -2
    assert r["advice"] == "disable forced entry"


def test_missing_columns():
    with pytest.raises(DataError, match="missing column.*'timestamp'"):
        apply_forced_daily_entry(frame().drop(columns="timestamp"), threshold=0.55)
    with pytest.raises(DataError, match="missing column.*'forced_entry'"):
        forced_entry_report(frame().assign(signal=1))
