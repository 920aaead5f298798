"""Settings declared once: a config field made with `setting` is a `fleet train` option (in its panel), an
override keyword and a `fleet.train` keyword, with nothing else to edit."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from pydantic import BaseModel, Field

import fleet
import fleet.config as config_module
from fleet.cli import main, train
from fleet.config import OVERRIDES, FleetConfig, ValidationConfig, build_config, dotted_overrides
from fleet.errors import ConfigError
from fleet.settings import GROUPS, setting, settings


class _Validation(ValidationConfig):
    min_train_rows: int = setting(100, ge=1, group="Validation", unit="rows",
                                  help="Fewest training rows a fold may have.")


class _Config(FleetConfig):
    validation: _Validation = Field(default_factory=_Validation)


@pytest.fixture
def added_field(monkeypatch):
    """FleetConfig with one more field, `validation.min_train_rows`, and no other edit."""
    monkeypatch.setattr(config_module, "FleetConfig", _Config)
    return _Config


class _Captured(Exception):
    def __init__(self, config):
        self.config = config


@pytest.fixture
def captured_config(monkeypatch):
    """The driver, replaced: it raises with the config it was given (training is not what is tested here)."""
    import fleet.training.driver as driver

    def run_fleet(config, **kwargs):
        raise _Captured(config)

    monkeypatch.setattr(driver, "run_fleet", run_fleet)


def _help() -> str:
    """`fleet train --help`, without the padding at the ends of its lines."""
    res = CliRunner().invoke(main, ["train", "--help"])
    assert res.exit_code == 0, res.output
    return "\n".join(line.rstrip() for line in res.output.splitlines())


def _panel(help_text: str, title: str) -> str:
    """The lines of one panel of `--help`: from its title to the next blank line."""
    return help_text.split(f"\n{title}:\n", 1)[1].split("\n\n", 1)[0]


def test_a_new_field_is_an_option_an_override_and_a_keyword(added_field, captured_config):
    assert "min_train_rows" not in {s.name for s in settings(FleetConfig)}  # the class as shipped lacks it
    help_text = _help()
    panel = _panel(help_text, "Validation")
    assert "--min-train-rows <ROWS>" in panel and "Fewest training rows a fold may have." in " ".join(panel.split())
    assert "[default: 100]" in " ".join(panel.split())
    assert OVERRIDES["min_train_rows"] == "validation.min_train_rows"
    assert dotted_overrides({"min_train_rows": 7}) == {"validation.min_train_rows": 7}

    with pytest.raises(_Captured) as got:  # the Python API
        fleet.train(min_train_rows=7, days=90, echo=None)
    assert isinstance(got.value.config, _Config) and got.value.config.validation.min_train_rows == 7

    res = CliRunner().invoke(main, ["train", "--min-train-rows", "8", "--days", "90"])  # the command line
    assert isinstance(res.exception, _Captured), res.output
    assert res.exception.config.validation.min_train_rows == 8
    res = CliRunner().invoke(main, ["train", "--min-train-rows", "0"])  # its constraint, from the field
    assert res.exit_code == 2 and "validation.min_train_rows=0" in res.output


def test_the_added_field_is_gone_with_the_fixture():
    assert "min_train_rows" not in OVERRIDES and "--min-train-rows" not in {o for p in train.params for o in p.opts}
    with pytest.raises(ConfigError, match="unknown override min_train_rows"):
        dotted_overrides({"min_train_rows": 3})


def test_train_help_shows_the_panels_in_order():
    help_text = _help()
    titles = re.findall(r"^(\S[^\n]*):\n  ", help_text, flags=re.M)
    assert [t for t in titles if t in ("Run", *GROUPS)] == ["Run", *GROUPS]
    for item in settings(FleetConfig):
        assert item.flags[-1] in _panel(help_text, item.group), item.name
    assert "--config" in _panel(help_text, "Run") and "--json" in _panel(help_text, "Output")


def test_help_texts_are_one_sentence_without_figures():
    for item in settings(FleetConfig):
        text = item.help
        assert text.endswith(".") and len(re.split(r"(?<=[.;:!?])\s+(?=[A-Z])", text)) == 1, (item.name, text)
        assert not re.search(r"\b(AUC|Sharpe|IC|ICIR)\b|\d\s*(s|ms|%)\b|benchmarks\.md|seed 00\d|issue \d",
                             text), (item.name, text)
        assert len(text) <= 200, (item.name, len(text))


def test_every_choice_is_what_the_config_accepts():
    """The choices shown (parsed from the field's Enum / Literal / pattern) are exactly the values pydantic
    validates: each is accepted, and a value outside them is refused by the config itself."""
    checked = 0
    for item in settings(FleetConfig):
        if item.kind != "choice":
            continue
        for value in item.choices:
            build_config({}, {item.key: value})
        with pytest.raises(ConfigError, match=re.escape(item.key)):
            build_config({}, {item.key: "not_a_choice"})
        checked += 1
    assert checked >= 10


def test_generated_options_keep_their_types():
    params = {p.name: p for p in train.params}
    assert params["folds"].type.name == "integer" and params["cost_bps"].type.name == "float"
    assert params["meta_label"].secondary_opts == ["--no-meta-label"] and params["moe_enabled"].opts == ["--moe"]
    assert params["embargo_bars"].opts == ["--embargo"] and params["out"].opts == ["-o", "--out"]
    ctx = train.make_context("train", ["--folds", "3"])  # unset options are None: they keep the spec's values
    assert {k: v for k, v in ctx.params.items() if k in OVERRIDES and v is not None} == {"folds": 3}


def test_a_setting_needs_a_known_group_and_unique_names():
    with pytest.raises(ValueError, match="group='Misc'"):
        setting(1, group="Misc", help="x.")

    class _Twice(BaseModel):
        a: int = setting(1, group="Data", help="A.", name="same")
        b: int = setting(2, group="Data", help="B.", name="same")

    with pytest.raises(ValueError, match="keyword.*same"):
        settings(_Twice)
