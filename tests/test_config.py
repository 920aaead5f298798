"""Configuration: defaults in one place, YAML + overrides, clear errors."""

from pathlib import Path

import pytest

from fleet.config import FleetConfig, Strategy, build_config, load_config
from fleet.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_defaults_match_the_issue():
    c = FleetConfig()
    assert c.data.days is None and c.validation.folds == 5 and c.labels.horizon == 4
    assert c.features.max_d == 0.65 and c.market.clusters == 3 and c.policy.threshold == 0.55
    assert c.policy.cost_bps == 10 and c.strategy is Strategy.hierarchical


def test_overrides_win_and_none_keeps_value(tmp_path):
    spec = tmp_path / "f.yaml"
    spec.write_text("strategy: islands\nvalidation:\n  folds: 4\n")
    c = load_config(spec, {"validation.folds": None, "labels.horizon": 8})
    assert c.strategy is Strategy.islands and c.validation.folds == 4 and c.labels.horizon == 8


def test_unknown_field_and_bad_value_are_named(tmp_path):
    spec = tmp_path / "f.yaml"
    spec.write_text("validation:\n  fold: 3\n")
    with pytest.raises(ConfigError, match=r"f\.yaml.*validation\.fold.*unknown key .fold. \(did you mean .folds.\?\)"):
        load_config(spec)
    with pytest.raises(ConfigError, match=r"validation\.folds=0"):
        build_config({}, {"validation.folds": 0})
    with pytest.raises(ConfigError, match=r"strategy='nope'"):
        build_config({}, {"strategy": "nope"})


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="fleet spec not found"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listy)


def test_distance_threshold_replaces_cluster_count():
    c = build_config({}, {"market.distance_threshold": 0.5})
    assert c.market.clusters is None and c.market.distance_threshold == 0.5


@pytest.mark.parametrize("spec", sorted((REPO / "fleet").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_fleet_specs_validate(spec):
    assert load_config(spec).name == spec.stem


def test_an_unknown_spec_key_is_refused_with_the_closest_key_of_its_section(tmp_path):
    from fleet.config import load_config
    from fleet.errors import ConfigError

    spec = tmp_path / "spec.yaml"
    spec.write_text("strateg: islands\nvalidation:\n  fold: 3\nmodel:\n  moe:\n    gaet: best\n")
    with pytest.raises(ConfigError) as err:
        load_config(spec)
    msg = str(err.value)
    assert str(spec) in msg
    for key, close in (("strateg", "strategy"), ("fold", "folds"), ("gaet", "gate")):
        assert f"unknown key '{key}' (did you mean '{close}'?)" in msg, msg
