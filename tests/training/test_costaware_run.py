"""A tuned-policy run end to end: results tables gain turnover, the comparison table sits beside them, the
policy is stored in each final model and stated by the predictor (what the HTTP response carries)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import candles_of
from fleet.config import FleetConfig
from fleet.evaluation.costaware import TradingPolicy
from fleet.serving.predictor import FleetPredictor
from fleet.serving.schema import PredictRequest, PredictResponse
from fleet.training.driver import load_inputs, run_fleet


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    config = FleetConfig.model_validate({"strategy": "global", "out": str(tmp_path_factory.mktemp("tuned") / "run"),
                                         "data": {"days": 90}, "validation": {"folds": 2},
                                         "policy": {"kind": "tuned", "sides": "both", "min_t": 0.0, "spa_alpha": 1.0}})
    summary = run_fleet(config, echo=lambda s: None)
    panel, _ = load_inputs(config, echo=lambda s: None)
    return summary, panel.frames


def test_tables_and_comparison(tuned_run):
    summary, _ = tuned_run
    per_asset = pd.read_csv(summary.out / "results_per_asset.csv")
    assert {"turnover", "sharpe_net"} <= set(per_asset.columns)
    comp = pd.read_csv(summary.out / "policy_comparison.csv")
    assert set(comp["policy"]) == {"fixed", "tuned"}
    assert comp.iloc[0]["symbol"] == "ALL"
    assert {"turnover", "expectancy", "round_trips", "sharpe_net", "sharpe_net_se"} <= set(comp.columns)
    # the tuned rows are the run's own table
    tuned = comp[comp["policy"] == "tuned"].set_index("symbol")
    pa = per_asset.set_index("symbol")
    for s in pa.index:
        assert tuned.loc[s, "turnover"] == pytest.approx(pa.loc[s, "turnover"])
        assert tuned.loc[s, "sharpe_net"] == pytest.approx(pa.loc[s, "sharpe_net"], nan_ok=True)
    preds = pd.read_parquet(next((summary.out / "predictions").glob("*.parquet")))
    assert "position" in preds and preds["position"].abs().max() <= 1
    manifest = json.loads((summary.out / "manifest.json").read_text())
    assert all(u["policy"]["kind"] in ("hysteresis", "expected_return", "flat") for u in manifest["units"])
    # each unit's policy test was told the run's number of units (its level is spa_alpha / that)
    assert {u["policy"]["fit"]["n_units"] for u in manifest["units"]} == {len(manifest["units"])}


def test_served_response_states_the_policy(tuned_run):
    summary, frames = tuned_run
    predictor = FleetPredictor(summary.out)
    assert "policy" in PredictResponse.model_json_schema()["properties"]
    symbol = sorted(frames)[0]
    model = predictor.units[predictor.asset(symbol).unit]
    stored = TradingPolicy.from_dict(model.policy)
    got = predictor.predict(PredictRequest(symbol=symbol, candles=candles_of(frames[symbol])))
    assert got.policy.kind == stored.kind and got.policy.sides == "both"
    assert got.policy.theta_in == stored.theta_in and got.policy.min_hold == stored.min_hold
    assert got.signal == int(stored.entry_signal(np.array([got.p_up]))[0])


def test_triple_barrier_and_meta_label_run_end_to_end(tmp_path):
    config = FleetConfig.model_validate({"strategy": "global", "out": str(tmp_path / "run"), "data": {"days": 90},
                                         "validation": {"folds": 2}, "labels": {"method": "triple_barrier"},
                                         "policy": {"meta_label": True}})
    summary = run_fleet(config, echo=lambda s: None)
    preds = pd.concat([pd.read_parquet(p) for p in (summary.out / "predictions").glob("*.parquet")])
    assert {"meta_keep", "position"} <= set(preds.columns)
    fixed_bets = preds["p_up"] > config.policy.threshold
    assert (preds["signal"] <= fixed_bets).all()  # the secondary model only ever drops bets
    assert (preds["signal"] == (fixed_bets & preds["meta_keep"])).all()
    panel, _ = load_inputs(config, echo=lambda s: None)
    predictor = FleetPredictor(summary.out)
    symbol = sorted(panel.frames)[0]
    model = predictor.units[predictor.asset(symbol).unit]
    assert model.meta is not None and model.meta.n_bets_ > 0
    got = predictor.predict(PredictRequest(symbol=symbol, candles=candles_of(panel.frames[symbol])))
    assert got.signal in (0, 1) and got.policy.kind == "fixed"
