"""Serving parity with a mixture-of-experts run (trend + stress + sde, MLP gate): the predictor reproduces
the stored out-of-sample P(up) and returns the per-row gate weights."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # trains a 9-asset mixture run (~40 s on 2 cores)

from conftest import candles_of, last_fold_predictions
from fleet.config import FleetConfig
from fleet.errors import InsufficientHistoryError
from fleet.serving.predictor import FleetPredictor
from fleet.serving.schema import PredictRequest


@pytest.fixture(scope="module")
def moe_run(tmp_path_factory):
    from fleet.training.driver import load_inputs, run_fleet

    config = FleetConfig.model_validate({"out": str(tmp_path_factory.mktemp("moe") / "run"), "data": {"days": 90},
                                         "validation": {"folds": 2},
                                         "model": {"experts": ["trend", "stress", "sde"], "moe": {"gate": "mlp"}}})
    summary = run_fleet(config, echo=lambda s: None)
    panel, _ = load_inputs(config, echo=lambda s: None)
    return FleetPredictor(summary.out), panel.frames, summary


def test_moe_run_writes_expert_telemetry(moe_run):
    _, frames, summary = moe_run
    auc, w = summary.expert_auc, summary.expert_weights
    assert set(auc["expert"]) == {"ensemble", "trend", "stress", "sde"}
    assert (summary.out / "expert_weights.csv").is_file() and (summary.out / "expert_auc.csv").is_file()
    sums = w.groupby(["level", "name"])["mean_weight"].sum()
    assert sums.between(1 - 1e-9, 1 + 1e-9).all()
    import pandas as pd

    preds = pd.read_parquet(summary.out / "predictions" / f"{sorted(frames)[0]}.parquet")
    assert {"w_trend", "w_stress", "w_sde", "p_trend", "p_stress", "p_sde"} <= set(preds.columns)
    W = preds[["w_trend", "w_stress", "w_sde"]]
    assert W.sum(axis=1).between(1 - 1e-9, 1 + 1e-9).all()
    # the MLP gate is dense by default (all 3 experts); a unit whose guard fell back answers with one expert
    assert (W > 0).sum(axis=1).isin([1, 3]).all()
    manifest = __import__("json").loads((summary.out / "manifest.json").read_text())
    assert all(u["gate"]["gate"] == "MLPGate" and "guard" in u["gate"] for u in manifest["units"])


def test_moe_serving_parity_and_gate_weights(moe_run):
    predictor, frames, _ = moe_run
    for symbol in sorted(frames)[::4]:
        info = predictor.asset(symbol)
        for _, row in last_fold_predictions(predictor.run_dir, symbol).iterrows():
            got = predictor.predict(PredictRequest(symbol=symbol, candles=candles_of(frames[symbol], row["timestamp"])))
            assert got.p_up == pytest.approx(row["p_up"], abs=1e-6)
            assert set(got.gate_weights) == {"trend", "stress", "sde"}
            assert sum(got.gate_weights.values()) == pytest.approx(1.0)
            assert len(got.active_experts) == int((row[["w_trend", "w_stress", "w_sde"]] > 0).sum())
            assert got.gate_weights["stress"] == pytest.approx(row["w_stress"], abs=1e-6)
        row = last_fold_predictions(predictor.run_dir, symbol, k=1).iloc[0]
        got = predictor.predict(PredictRequest(symbol=symbol, candles=candles_of(frames[symbol], row["timestamp"],
                                                                                 info.recommended_bars)))
        assert got.p_up == pytest.approx(row["p_up"], abs=1e-6)


def test_moe_required_bars_cover_the_extra_feature_warmup(moe_run):
    predictor, frames, _ = moe_run
    symbol = sorted(frames)[0]
    info = predictor.asset(symbol)
    assert info.required_bars > 169  # the rolling OU window alone needs 169 bars
    candles = candles_of(frames[symbol])
    predictor.predict(PredictRequest(symbol=symbol, candles=candles[-info.required_bars:]))
    with pytest.raises(InsufficientHistoryError):
        predictor.predict(PredictRequest(symbol=symbol, candles=candles[-(info.required_bars - 1):]))


def test_cnn_mixture_serving_reads_the_window_and_matches_training(tmp_path):
    """With a CNN expert the predictor passes each request's trailing window; past the first window of the test
    block (where training-time windows span the purge/embargo gap) served P(up) equals the stored one."""
    import pandas as pd

    from fleet.training.driver import load_inputs, run_fleet

    cfg = FleetConfig.model_validate({
        "out": str(tmp_path / "cnn"), "data": {"days": 100}, "validation": {"folds": 2}, "strategy": "global",
        "synthetic": {"n_clusters": 1, "assets_per_cluster": 2},
        "model": {"experts": ["trend", "pattern"],
                  "pattern": {"epochs": 1, "max_train_windows": 512, "hidden": 4, "levels": 1}}})
    summary = run_fleet(cfg, echo=lambda s: None)
    frames = load_inputs(cfg, echo=lambda s: None)[0].frames
    predictor = FleetPredictor(summary.out)
    symbol = sorted(frames)[0]
    preds = pd.read_parquet(summary.out / "predictions" / f"{symbol}.parquet")
    last = preds[preds["fold"] == preds["fold"].max()].reset_index(drop=True)
    for i in (100, len(last) - 1):
        row = last.iloc[i]
        got = predictor.predict(PredictRequest(symbol=symbol, candles=candles_of(frames[symbol], row["timestamp"])))
        assert got.p_up == pytest.approx(row["p_up"], abs=1e-6)
        assert sum(got.gate_weights.values()) == pytest.approx(1.0)


def test_momentum_select_mixture_serves_what_it_trained(tmp_path):
    """The momentum expert reads the run's market factor summed over the return horizons (factor_ret_*), which
    serving takes from the stored factor, not from the request: the served P(up) of the last fold's test rows
    equals the stored one, with the select gate's constant weights."""
    from fleet.training.driver import load_inputs, run_fleet

    cfg = FleetConfig.model_validate({"out": str(tmp_path / "mom"), "data": {"days": 90}, "validation": {"folds": 2},
                                      "model": {"experts": ["trend", "momentum"], "moe": {"gate": "select"}}})
    summary = run_fleet(cfg, echo=lambda s: None)
    frames = load_inputs(cfg, echo=lambda s: None)[0].frames
    predictor = FleetPredictor(summary.out)
    manifest = __import__("json").loads((summary.out / "manifest.json").read_text())
    assert all(u["gate"]["gate"] == "SelectGate" for u in manifest["units"])
    assert all(any(c.startswith("factor_ret_") for c in m.feature_names) for m in predictor.units.values())
    for symbol in sorted(frames)[::4]:
        for _, row in last_fold_predictions(predictor.run_dir, symbol, k=3).iterrows():
            got = predictor.predict(PredictRequest(symbol=symbol, candles=candles_of(frames[symbol], row["timestamp"])))
            assert got.p_up == pytest.approx(row["p_up"], abs=1e-6)
            assert got.gate_weights["momentum"] == pytest.approx(row["w_momentum"], abs=1e-6)
