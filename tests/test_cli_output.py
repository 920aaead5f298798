"""CLI conventions: --help defaults come from FleetConfig, -o/--out everywhere, --json, Ctrl-C -> 130."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from fleet.cli import main, report_cmd, serve_build, train
from fleet.config import OVERRIDES, FleetConfig


def _attr(config, dotted: str):
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


def test_help_defaults_are_the_config_defaults():
    """Every `[default: X]` in `fleet train --help` equals the default FleetConfig's value of that field."""
    config = FleetConfig()
    checked = 0
    for param in train.params:
        match = re.search(r"\[default: ([^\]]+)\]$", param.help or "")
        if param.name not in OVERRIDES or not match:
            continue
        value = _attr(config, OVERRIDES[param.name])
        if value is None:
            continue  # the help says in words what happens (e.g. "inferred from the data")
        value = getattr(value, "value", value)
        shown = match.group(1)
        if isinstance(value, bool):
            assert shown in (f"--{param.opts[0].lstrip('-')}", f"--{param.secondary_opts[0].lstrip('-')}")
            assert shown.startswith("--no-") != value, param.name
        elif isinstance(value, list):
            assert shown.split(",") == [str(v) for v in value], param.name
        else:
            assert float(shown) == float(value) if isinstance(value, (int, float)) else shown == str(value), param.name
        checked += 1
    assert checked >= 25


def test_every_writing_command_spells_out_the_same():
    for command in (train, report_cmd, serve_build, main.commands["data"].commands["fetch"]):
        out = [p for p in command.params if "--out" in p.opts]
        assert len(out) == 1 and "-o" in out[0].opts, command.name


def test_no_seed_wording_in_help():
    runner = CliRunner()
    texts = [runner.invoke(main, [*cmd, "--help"]).output for cmd in
             (["train"], ["report"], ["data", "fetch"], ["data", "inspect"], ["serve", "run"], ["serve", "build"])]
    assert not [t for t in texts if re.search(r"seed[ -]?00\d", t, re.I)]


def test_json_error_is_one_document_and_exit_code_2(tmp_path):
    res = CliRunner().invoke(main, ["report", str(tmp_path / "nowhere"), "--json"])
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 2 and "not found" in doc["error"]
    assert "error:" in res.stderr


def test_ctrl_c_exits_130_and_quiet_hides_progress(monkeypatch):
    import fleet.training.driver as driver

    def interrupted(config, *, echo, argv):
        echo("a progress line")
        raise KeyboardInterrupt

    monkeypatch.setattr(driver, "run_fleet", interrupted)
    res = CliRunner().invoke(main, ["train", "--days", "90"])
    assert res.exit_code == 130 and "a progress line" in res.stdout and "interrupted" in res.stderr
    res = CliRunner().invoke(main, ["train", "--days", "90", "-q"])
    assert res.exit_code == 130 and "a progress line" not in res.output


def test_train_json_summary(tmp_path):
    res = CliRunner().invoke(main, ["train", "--days", "90", "--folds", "2", "--strategy", "global",
                                    "-o", str(tmp_path / "run"), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)  # stdout is the JSON document alone; progress went to stderr
    assert doc["out"] == str(tmp_path / "run") and doc["units"] == 2 and doc["trained"] == 2
    assert {r["symbol"] for r in doc["per_asset"]} == {f"C{c}S{k}" for c in range(3) for k in range(3)}
    assert "Walk-forward" in res.stderr
    per_asset = __import__("pandas").read_csv(tmp_path / "run" / "results_per_asset.csv")
    assert [r["auc"] for r in doc["per_asset"]] == pytest.approx(per_asset["auc"].tolist(), abs=1e-12)


def test_console_tables_of_a_large_fleet_are_summarised():
    """A 300-asset cluster prints its size and first members, and only the 20 best and 20 worst assets by AUC
    are printed; the frames behind the CSVs keep every asset."""
    import pandas as pd

    from fleet.cli_output import SHOWN_ASSETS, SHOWN_MEMBERS, short_members, shown_assets

    symbols = [f"S{i:03d}" for i in range(300)]
    line = short_members(" ".join(symbols))
    assert line.startswith("300: S000 S001") and line.endswith(f"(+{300 - SHOWN_MEMBERS})")
    assert "S299" not in line
    assert short_members("A B(2/5) C") == "A B(2/5) C"
    per_asset = pd.DataFrame({"symbol": symbols, "auc": [0.5 + (i % 37) / 1000 for i in range(300)]})
    rows, title = shown_assets(per_asset)
    assert len(rows) == SHOWN_ASSETS and "300" in title and len(per_asset) == 300
    top = per_asset["auc"].nlargest(SHOWN_ASSETS // 2).min()
    bottom = per_asset["auc"].nsmallest(SHOWN_ASSETS // 2).max()
    assert rows["auc"].iloc[: SHOWN_ASSETS // 2].min() >= top
    assert rows["auc"].iloc[SHOWN_ASSETS // 2:].max() <= bottom
    small = per_asset.head(10)
    assert shown_assets(small)[0].equals(small)
