"""benchmarks/quality.py: every cell is a valid fleet configuration of the model it names, and a
small cell runs end to end and prints its table row."""

from __future__ import annotations

import argparse
import importlib.util
import sys

import pytest

from conftest import REPO


def _load():
    spec = importlib.util.spec_from_file_location("bench_quality", REPO / "benchmarks" / "quality.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_quality"] = mod
    spec.loader.exec_module(mod)
    return mod


def _args(**kw):
    base = dict(crypto_days=365, equities_days=5480, folds=3, cnn_epochs=2, cnn_windows=2048,
                crypto_symbols="BTCUSDT,ETHUSDT")
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.mark.parametrize("dataset", ["crypto_1h", "equities_1d"])
def test_every_cell_config_names_its_model(dataset, tmp_path, monkeypatch):
    q = _load()
    monkeypatch.chdir(REPO)  # the specs are read relative to the repository root, like the script
    for strategy in q.STRATEGIES:
        for model in q.MODELS:
            cfg = q.cell_config(dataset, "/nonexistent", strategy, model, 7, tmp_path / "o", _args())
            assert cfg.strategy == strategy and cfg.seed == 7
            assert cfg.policy.forced_entry is False and cfg.resources.backend == "local"
            assert cfg.validation.folds == 3
            experts = cfg.model.active_experts()
            assert cfg.model.asset_aware is ("no asset" not in model)  # the ablation rows switch it off
            if model.startswith("CNN"):
                assert experts == ["pattern"]
            elif model.startswith("GBM"):
                assert experts == ["trend"]
            elif model == "Momentum":
                assert experts == ["momentum"]
            else:
                assert experts == q.MOE_EXPERTS
                assert cfg.model.moe.gate == {"MoE rule": "rule", "MoE MLP": "mlp", "MoE stack": "stack",
                                              "MoE best": "best", "MoE select": "select"}[model]
            # the dataset's own spec survives the overrides (horizon differs: 4 h vs 5 days)
            assert cfg.labels.horizon == (4 if dataset == "crypto_1h" else 5)


def test_small_cell_runs_and_prints_table(shared_data, monkeypatch, capsys):
    q = _load()
    monkeypatch.chdir(REPO)
    rc = q.main(["--data-dir", str(shared_data), "--datasets", "crypto_1h", "--strategies", "global",
                 "--models", "GBM", "--crypto-symbols", "BTCUSDT,ETHUSDT", "--crypto-days", "120",
                 "--folds", "2", "--seeds", "1"])
    assert rc == 0
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.strip().startswith("crypto_1h")]
    assert len(row) == 1 and "global" in row[0] and "GBM" in row[0] and row[0].split()[3] == "fixed"
    auc = float(row[0].split()[5])  # dataset strategy model policy units auc_fold
    assert 0.3 < auc < 0.7  # a real AUC was computed (hourly crypto direction is near coin-flip)


def test_unknown_policy_or_strategy_variant_is_refused():
    q = _load()
    for flag, value in (("--policies", "magic"), ("--strategies", "hierarchical bogus")):
        with pytest.raises(SystemExit):
            q.main(["--datasets", "crypto_1h", flag, value])
    assert set(q.STRATEGIES) <= set(q.STRATEGY_VARIANTS) and q.POLICIES == ["fixed", "tuned"]
