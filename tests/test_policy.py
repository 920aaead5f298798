"""Forced daily entry (seed 002) and the natural-vs-forced report, on hand-made days."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fleet.errors import DataError
from fleet.evaluation.policy import apply_forced_daily_entry, apply_policy, forced_entry_report


def frame() -> pd.DataFrame:
    t = pd.Timestamp("2024-01-01", tz="UTC")
    h = pd.Timedelta("1h")
    rows = [
        # day 1, A: one natural signal (0.6) -> nothing forced
        ("A", t + 1 * h, 0.60, 0.010), ("A", t + 2 * h, 0.40, -0.020),
        # day 2, A: no bar above 0.55 -> the 0.50 bar (highest; earliest of the tie) is forced
        ("A", t + 24 * h, 0.30, 0.005), ("A", t + 25 * h, 0.50, -0.030), ("A", t + 26 * h, 0.50, 0.040),
        # day 1, B: quiet -> 0.45 forced; 23:00 and 00:00 are different UTC days
        ("B", t + 23 * h, 0.45, 0.020), ("B", t + 24 * h, 0.20, -0.010), ("B", t + 1 * h, 0.10, 0.030),
    ]
    return pd.DataFrame(rows, columns=["symbol", "timestamp", "p_up", "forward_return"])


def test_forced_entry_rule():
    out = apply_forced_daily_entry(frame(), threshold=0.55)
    assert out["forced_entry"].tolist() == [False, False, False, True, False, True, True, False]
    assert out["signal"].tolist() == [1, 0, 0, 1, 0, 1, 1, 0]
    assert out["signal"].dtype == np.int8
    # without the policy: only the natural signal, nothing marked forced
    plain = apply_policy(frame(), threshold=0.55, forced_entry=False)
    assert plain["signal"].tolist() == [1, 0, 0, 0, 0, 0, 0, 0] and not plain["forced_entry"].any()
    # the index of the input is kept
    shuffled = frame().sample(frac=1.0, random_state=1)
    again = apply_forced_daily_entry(shuffled, threshold=0.55)
    assert (again.index == shuffled.index).all()
    assert again.sort_index()["forced_entry"].tolist() == out["forced_entry"].tolist()


def test_forced_entry_report_and_advice():
    report = forced_entry_report(apply_forced_daily_entry(frame(), threshold=0.55)).set_index("asset")
    a, b = report.loc["A"], report.loc["B"]
    # A: natural trade 0.010 (win), forced trade -0.030 (loss): delta -0.04 < -0.005 -> advise disabling
    assert (a["days"], a["natural_trades"], a["forced_trades"]) == (2, 1, 1)
    assert a["natural_mean_return"] == pytest.approx(0.010) and a["forced_mean_return"] == pytest.approx(-0.030)
    assert a["natural_win_rate"] == 1.0 and a["forced_win_rate"] == 0.0
    assert a["delta"] == pytest.approx(-0.040) and a["advice"] == "disable forced entry"
    # B: only forced trades, 0.020 on day 1 (0.45 beats 0.10) and -0.010 on day 2
    assert (b["days"], b["natural_trades"], b["forced_trades"]) == (2, 0, 2)
    assert b["forced_mean_return"] == pytest.approx(0.005) and b["forced_win_rate"] == 0.5
    assert math.isnan(b["natural_mean_return"]) and math.isnan(b["delta"]) and b["advice"] == ""


def test_advice_boundary_is_strict():
    t = pd.Timestamp("2024-01-01", tz="UTC")
    rows = pd.DataFrame({"symbol": "A", "timestamp": [t, t + pd.Timedelta(days=1)], "p_up": [0.9, 0.1],
                         "forward_return": [0.010, 0.006]})
    r = forced_entry_report(apply_forced_daily_entry(rows, threshold=0.55)).iloc[0]
    assert r["delta"] == pytest.approx(-0.004) and r["advice"] == ""  # worse, but by less than 0.005


def test_missing_columns():
    with pytest.raises(DataError, match="missing column.*'timestamp'"):
        apply_forced_daily_entry(frame().drop(columns="timestamp"), threshold=0.55)
    with pytest.raises(DataError, match="missing column.*'forced_entry'"):
        forced_entry_report(frame().assign(signal=1))
