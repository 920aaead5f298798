"""`fleet data inspect` on a small directory with holes, bad rows and an unreadable file."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner

from fleet.cli import main
from fleet.data.inspect import INSPECT_COLUMNS, inspect_data


def write(tmp_path):
    ts = pd.date_range("2024-01-01", periods=10, freq="h", tz="UTC")
    # AAA: hours 0..9 without 3, 4 (one hole of 2 bars) and without 8 (one hole of 1 bar) -> 7 bars
    keep = [0, 1, 2, 5, 6, 7, 9]
    pd.DataFrame({"timestamp": ts[keep], "close": 1.0 + pd.Series(range(7))}).to_parquet(tmp_path / "AAA.parquet")
    # BBB: 10 hours; row 2 has high < low, row 5 a negative close, rows 7 and 8 share a timestamp
    b = pd.DataFrame({"timestamp": ts, "high": 2.0, "low": 1.0, "close": 1.5})
    b.loc[2, ["high", "low"]] = [1.0, 2.0]
    b.loc[5, "close"] = -1.0
    b.loc[8, "timestamp"] = ts[7]
    b.to_csv(tmp_path / "BBB.csv", index=False)
    pd.DataFrame({"timestamp": ts, "price": 1.0}).to_csv(tmp_path / "CCC.csv", index=False)


def test_inspect_counts(tmp_path):
    write(tmp_path)
    table = inspect_data(tmp_path)
    assert list(table.columns) == list(INSPECT_COLUMNS)
    bad_file, a, b = table.iloc[0], table.set_index("symbol").loc["AAA"], table.set_index("symbol").loc["BBB"]
    assert bad_file["file"] == "CCC.csv" and "missing required column 'close'" in bad_file["problem"]
    assert (a["bars"], a["gaps"], a["longest_gap"], a["bad_rows"], a["problem"]) == (7, 2, 2, 0, "")
    assert a["first"] == pd.Timestamp("2024-01-01 00:00", tz="UTC")
    assert a["last"] == pd.Timestamp("2024-01-01 09:00", tz="UTC")
    assert a["coverage"] == 0.7                                   # 7 of the 10 hours
    # BBB: rows 2, 5, 7, 8 are bad; the good ones are hours 0, 1, 3, 4, 6, 9
    assert (b["bars"], b["bad_rows"], b["gaps"], b["longest_gap"]) == (6, 4, 3, 2)
    assert "'high' is below column 'low' (1 rows)" in b["problem"] and "duplicate timestamps (2 rows)" in b["problem"]
    assert "'close' is missing, not finite or <= 0" in b["problem"]


def test_inspect_cli(tmp_path):
    write(tmp_path)
    res = CliRunner().invoke(main, ["data", "inspect", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "AAA" in res.output and "70.0%" in res.output and "2 with problems" in res.output
    res = CliRunner().invoke(main, ["data", "inspect", str(tmp_path / "none")])
    assert res.exit_code == 2 and res.output.startswith("error:") and "not found" in res.output
