"""--registry on the command line and registry: in a fleet spec; the option <-> override mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REPO
from fleet.cli import main, train
from fleet.config import OVERRIDES, dotted_overrides, load_config
from fleet.errors import ConfigError

SMALL = ["--days", "90", "--folds", "2", "--strategy", "global"]


def test_every_train_option_has_one_override_and_back():
    options = {p.name for p in train.params} - {"config_path", "resume"}
    assert options == set(OVERRIDES)
    fields = load_config().to_dict()
    for dotted in OVERRIDES.values():  # every target is a real config field
        node = fields
        for part in dotted.split("."):
            assert part in node, dotted
            node = node[part]


def test_list_overrides_take_strings_or_lists():
    assert dotted_overrides({"symbols": "A, B,", "experts": ["trend"]}) == {"data.symbols": ["A", "B"],
                                                                              "model.experts": ["trend"]}
    with pytest.raises(ConfigError, match="unknown override dyas=3; did you mean 'days'"):
        dotted_overrides({"dyas": 3})


def test_spec_registry_is_relative_to_the_spec_and_option_to_the_cwd(tmp_path, monkeypatch):
    spec = tmp_path / "specs" / "mine.yaml"
    spec.parent.mkdir()
    spec.write_text("name: mine\nregistry: ids/mine.json\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(spec).registry == str(spec.parent.resolve() / "ids" / "mine.json")
    assert load_config(spec, {"registry": "other.json"}).registry == "other.json"
    for shipped in sorted((REPO / "fleet").glob("*.yaml")):  # the shipped specs keep their registry beside them
        assert Path(load_config(shipped).registry) == (REPO / "fleet" / "registries" / f"{shipped.stem}.json").resolve()


def test_cli_registry_created_then_extended(tmp_path):
    reg = tmp_path / "ids.json"
    res = CliRunner().invoke(main, ["train", *SMALL, "--symbols", "C1S0,C1S1,C2S0", "--registry", str(reg),
                                    "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert f"Asset registry: {reg} version 1 (3 symbols, created)" in res.output
    res = CliRunner().invoke(main, ["train", *SMALL, "--symbols", "C0S0,C1S0,C1S1,C2S0", "--registry", str(reg),
                                    "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "version 2 (4 symbols, extended from version 1)" in res.output
    saved = json.loads(reg.read_text())["symbol_to_id"]
    assert saved == {"C1S0": 0, "C1S1": 1, "C2S0": 2, "C0S0": 3}  # C0S0 sorts first but is appended
    for run, version in (("a", 1), ("b", 2)):
        manifest = json.loads((tmp_path / run / "manifest.json").read_text())
        assert manifest["registry"] == {"path": str(reg), "version": version, "symbols": version + 2}
    assert "not stable across runs" not in res.output


def test_cli_without_registry_says_ids_are_per_run(tmp_path):
    res = CliRunner().invoke(main, ["train", *SMALL, "--symbols", "C1S0,C2S0", "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert res.output.count("not stable across runs") == 1
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["registry"]["path"] is None


def test_cli_refuses_a_corrupted_registry_and_writes_nothing(tmp_path):
    reg = tmp_path / "ids.json"
    reg.write_text("{oops")
    res = CliRunner().invoke(main, ["train", *SMALL, "--registry", str(reg), "--out", str(tmp_path / "a")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert f"error: {reg}: asset registry is not valid JSON" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.json", "ids.json.lock"]  # no run, no staging
