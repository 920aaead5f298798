"""The table of expert specs is the one place that knows an expert: config, factory, rule gate and CLI read it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from fleet.config import CNN_EXPERTS, KNOWN_EXPERTS, ModelConfig, build_config
from fleet.errors import ConfigError
from fleet.features.families import FAMILY_NAMES
from fleet.models import specs
from fleet.models.factory import build_expert, build_model, needs_torch
from fleet.models.gate import REGIMES, RuleGate


def test_every_row_is_complete():
    fields = set(ModelConfig.model_fields)
    for s in specs.EXPERTS:
        assert s.config_section in fields, s.name
        assert set(s.feature_groups) <= set(FAMILY_NAMES), s.name
        assert set(s.rule_hints) <= set(REGIMES), s.name
        assert s.resource in (specs.CPU, specs.GPU) and s.summary, s.name
    assert set(specs.GATE_FEATURE_GROUPS) <= set(FAMILY_NAMES)
    assert KNOWN_EXPERTS == tuple(s.name for s in specs.EXPERTS)
    assert CNN_EXPERTS == ("pattern", "crypto_hft", "equity_intraday", "equity_daily", "futures_trend", "low_vol_etf")


@pytest.mark.parametrize("name", specs.EXPERT_NAMES)
def test_each_row_builds_its_expert(name):
    est = build_expert(name, ModelConfig(), seed=3, horizon=4, num_threads=1)
    expected = {"trend": "TrendExpert", "stress": "StressExpert", "sde": "SDEExpert", "pattern": "PatternExpert",
                "momentum": "MomentumExpert"}
    assert type(est).__name__ == expected.get(name, "ArchetypeExpert")
    assert hasattr(est, "fit") and hasattr(est, "predict_proba")
    if name in CNN_EXPERTS[1:]:
        assert est.archetype == name


@pytest.mark.parametrize("spec", specs.EXPERTS, ids=lambda s: s.name)
def test_each_section_is_its_estimators_parameter_list(spec):
    section = getattr(ModelConfig(), spec.config_section)
    params = set(spec.estimator_class()._get_param_names())
    assert set(type(section).model_fields) - set(spec.feature_fields) <= params
    assert set(spec.context) <= params and set(spec.extra()) <= params


def _cnn(**kw):
    base = dict(window=32, hidden=8, levels=2, kernel_size=3, emb_dim=4, dropout=0.1, archetype=None, epochs=2,
                batch_size=64, lr=1e-3, weight_decay=1e-4, patience=3, max_train_windows=None, val_fraction=0.1,
                purge_bars=3, unknown_asset="error", asset_aware=False, device="auto", num_threads=2, random_state=5,
                num_assets=None)
    return {**base, **kw}


def test_experts_are_built_from_their_sections():
    from fleet.features.families import extra_prefixes

    # every parameter of every estimator, written out by hand (not read from the table or the sections)
    expected = {
        "trend": dict(learner="hgb", max_iter=50, learning_rate=0.1, max_leaf_nodes=4, min_samples_leaf=200,
                      l2_regularization=0.5, early_stopping=True, validation_fraction=0.3, n_iter_no_change=5,
                      purge_bars=3, asset_aware=False, num_threads=None, random_state=5,
                      exclude_prefixes=extra_prefixes()),
        "stress": dict(C=0.3, class_weight="balanced", asset_aware=False),
        "sde": dict(C=0.7, class_weight=None, asset_aware=False),
        "momentum": dict(C=0.4, class_weight=None, asset_aware=False),
        "pattern": _cnn(),
        "futures_trend": _cnn(archetype="futures_trend"),
    }
    cfg = ModelConfig(experts=list(expected), asset_aware=False,
                      trend=dict(max_iter=50, learning_rate=0.1, max_leaf_nodes=4, min_samples_leaf=200,
                                 l2_regularization=0.5, early_stopping=True, validation_fraction=0.3,
                                 n_iter_no_change=5),
                      pattern=dict(window=32, hidden=8, levels=2, emb_dim=4, epochs=2, batch_size=64, lr=1e-3,
                                   patience=3, max_train_windows=None, val_fraction=0.1, unknown_asset="error"),
                      stress={"C": 0.3}, sde={"C": 0.7, "window": 99}, momentum={"C": 0.4})
    for name, params in expected.items():
        est = build_expert(name, cfg, seed=5, horizon=3, num_threads=2)
        assert est.get_params() == params, name
        assert clone(est).get_params() == params, name


def test_feature_groups_and_torch_use_come_from_the_table():
    assert ModelConfig().feature_groups() == ()
    assert set(ModelConfig(experts=["trend", "stress", "sde"]).feature_groups()) == {"stress", "sde", "fingerprint"}
    assert ModelConfig(experts=["sde"]).feature_groups() == ("sde",)
    assert not needs_torch(ModelConfig(experts=["trend", "stress"]))
    assert needs_torch(ModelConfig(experts=["trend", "stress"], moe={"gate": "mlp"}))
    assert not needs_torch(ModelConfig(experts=["trend"], moe={"gate": "mlp"}))  # one expert: no gate
    assert needs_torch(ModelConfig(experts=["trend", "futures_trend"])) and ModelConfig(experts=["low_vol_etf"]).uses_cnn()


def test_adding_an_expert_is_one_row(monkeypatch):
    row = specs.ExpertSpec("stress2", "fleet.models.stress:StressExpert", "stress", feature_groups=("stress",),
                           rule_hints={"high_vol": 5}, summary="a second stress expert")
    monkeypatch.setattr(specs, "EXPERTS", (*specs.EXPERTS, row))
    cfg = build_config({"model": {"experts": ["trend", "stress2"], "stress": {"C": 0.2}, "moe": {"gate": "rule"}}})
    assert set(cfg.model.feature_groups()) == {"stress", "fingerprint"}
    model = build_model(cfg.model, seed=0, horizon=4)
    assert [n for n, _ in model.experts] == ["trend", "stress2"] and model.experts[1][1].C == 0.2
    X = pd.DataFrame({"fp_vol30": [0.1, 0.01], "fp_trend_r2": [0.0, 0.0], "fp_hurst": [0.5, 0.5]})
    assert RuleGate(top_k=2).fit(X, expert_names=["trend", "stress2"]).scores(X).tolist() == [[1, 6], [1, 1]]


def test_unknown_and_impossible_experts_are_refused_naming_the_closest():
    with pytest.raises(ConfigError, match=r"model.experts=\['trend', 'momentun'\]: unknown expert 'momentun' "
                       r"\(did you mean 'momentum'\?\)$"):
        build_config({"model": {"experts": ["trend", "momentun"]}})
    with pytest.raises(ConfigError, match=r"unknown expert 'zzz' \(expected one of trend, stress, sde, pattern, "):
        build_config({"model": {"experts": ["trend", "zzz"]}})
    with pytest.raises(ConfigError, match=r"experts=\['trend', 'trend'\]: .*expected a non-empty list of distinct"):
        build_config({"model": {"experts": ["trend", "trend"]}})
    with pytest.raises(ConfigError, match="options_skew.*implied"):
        build_config({"model": {"experts": ["options_skew"]}})
    with pytest.raises(ValueError, match=r"^unknown expert 'patern' \(did you mean 'pattern'\?\)$"):
        specs.expert_spec("patern")


def _seed003_scores(X: pd.DataFrame, names: list[str]) -> np.ndarray:
    # The rule gate's rules written out by hand, the independent reference.
    vol, r2, h = (X[c].to_numpy(float) for c in ("fp_vol30", "fp_trend_r2", "fp_hurst"))
    s = np.ones((len(X), len(names)))
    rules = [(vol > 0.06, {"crypto_hft": 3, "stress": 2, "pattern": 1}), (vol < 0.005, {"low_vol_etf": 3, "sde": 2}),
             ((r2 >= 0.8) & (h > 0.55), {"futures_trend": 3, "trend": 2}),
             ((vol >= 0.01) & (vol < 0.03) & (r2 >= 0.6), {"equity_intraday": 3, "trend": 1}),
             ((vol >= 0.005) & (vol < 0.02), {"equity_daily": 2, "sde": 1}), (h < 0.45, {"sde": 2})]
    for mask, bonus in rules:
        for name, b in bonus.items():
            if name in names:
                s[mask, names.index(name)] += b
    return s


def test_rule_gate_scores_equal_seed_003_rules():
    rng = np.random.default_rng(0)
    n = 5000
    X = pd.DataFrame({"fp_vol30": rng.uniform(0, 0.08, n), "fp_trend_r2": rng.uniform(0, 1, n),
                      "fp_hurst": rng.uniform(0.3, 0.7, n)})
    for names in (list(specs.EXPERT_NAMES), ["trend", "stress", "sde"], ["sde", "low_vol_etf"]):
        gate = RuleGate(top_k=2).fit(X, expert_names=names)
        np.testing.assert_array_equal(gate.scores(X), _seed003_scores(X, names))


def test_cli_expert_help_lists_the_table():
    out = subprocess.run([sys.executable, "-m", "fleet.cli", "train", "--help"], capture_output=True, text=True,
                         check=True).stdout
    flat = " ".join(out.split())
    assert f"Comma-separated experts: {', '.join(specs.EXPERT_NAMES)}" in flat


def test_spec_rows_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        specs.EXPERTS[0].name = "x"
