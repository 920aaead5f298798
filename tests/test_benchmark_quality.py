"""benchmarks/quality.py: every cell is a valid fleet configuration of the model it names, and a
small cell runs end to end and prints its table row."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from conftest import REPO, load_benchmark


def _load():
    return load_benchmark("quality")


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
                                              "MoE best": "best", "MoE select": "select",
                                              "MoE select level": "select"}[model]
                assert cfg.model.moe.recalibrate == ("asset" if model.endswith("level") else "off")
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


def test_mixture_cell_reports_its_distance_from_the_best_expert(shared_data, monkeypatch, tmp_path):
    q = _load()
    monkeypatch.chdir(REPO)
    csv = tmp_path / "rows.csv"
    rc = q.main(["--data-dir", str(shared_data), "--datasets", "crypto_1h", "--strategies", "global",
                 "--models", "MoE select", "--moe-experts", "trend,momentum", "--crypto-symbols", "BTCUSDT,ETHUSDT",
                 "--crypto-days", "120", "--folds", "2", "--seeds", "1", "--csv", str(csv)])
    assert rc == 0
    row = pd.read_csv(csv).iloc[0]
    # against the expert columns of the same row: the best of the two, chosen after the fact
    assert row["vs_best"] == pytest.approx(row["auc_fold"] - max(row["auc_trend"], row["auc_momentum"]), abs=1e-12)
    assert 0.0 < row["se_vs_best"] < 0.05
    # and on the per-asset figure, the best expert by that figure
    assert row["vs_best_asset"] == pytest.approx(
        row["asset_auc"] - max(row["asset_auc_trend"], row["asset_auc_momentum"]), abs=1e-12)
    assert 0.0 < row["se_vs_best_asset"] < 0.05


def test_unknown_policy_or_strategy_variant_is_refused():
    q = _load()
    for flag, value in (("--policies", "magic"), ("--strategies", "hierarchical bogus")):
        with pytest.raises(SystemExit):
            q.main(["--datasets", "crypto_1h", flag, value])
    assert set(q.STRATEGIES) <= set(q.STRATEGY_VARIANTS) and q.POLICIES == ["fixed", "tuned"]
