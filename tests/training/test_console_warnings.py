"""Silent gaps said on the console: assets whose data end early, and units whose gate had no inner out-of-fold
row to be fitted on (one line each, the details in the manifest)."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
from click.testing import CliRunner

from fleet.cli import main
from fleet.data.panel import Panel
from fleet.training.driver import ends_early


def _frame(end: str, n: int = 200) -> pd.DataFrame:
    idx = pd.date_range(end=pd.Timestamp(end, tz="UTC"), periods=n, freq="1h")
    close = np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, n))) * 100
    return pd.DataFrame({"close": close}, index=idx)


def test_an_asset_ending_more_than_a_week_early_is_named_with_its_gap():
    panel = Panel(frames={"A": _frame("2024-06-30"), "B": _frame("2024-06-27"), "C": _frame("2024-05-31"),
                          "D": _frame("2024-04-30")}, sources={s: "test" for s in "ABCD"}, columns=("close",),
                  bar=pd.Timedelta(hours=1))
    end = pd.Timestamp("2024-06-30", tz="UTC")
    assert ends_early(panel, end) == [("D", 61), ("C", 30)]  # B, 3 days short, is not reported


def test_units_whose_gate_had_no_inner_row_are_counted_on_the_console(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", "--days", "120", "--folds", "2", "--experts", "trend,momentum",
                                    "--symbols", "C0S0,C1S0,C2S0", "--strategy", "islands", "--out", str(out)])
    assert res.exit_code == 0, res.output
    units = json.loads((out / "manifest.json").read_text())["units"]
    empty = [u for u in units if u.get("gate") and not u["gate"].get("oof_rows")]
    line = [ln for ln in res.output.splitlines() if "no inner out-of-fold row" in ln]
    if empty:
        assert len(line) == 1 and re.search(rf"warning: {len(empty)} of {len(units)} units", line[0]), res.output
    else:
        assert not line
    assert empty, "the 120-day window was meant to leave some unit without an inner out-of-fold row"
