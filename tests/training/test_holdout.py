"""--holdout-days: the final days stay out of every fold, and the last fold's models predict them."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

import fleet.training.graph as unit_mod  # where the prepare step builds the design matrices
from fleet.config import FleetConfig
from fleet.data.synthetic import synthetic_market
from fleet.features.labels import forward_log_return
from fleet.training.driver import run_fleet

SYMBOLS = ["C0S0", "C1S0"]
HORIZON = 4


@pytest.fixture(scope="module")
def holdout_run(tmp_path_factory):
    """A tiny synthetic run with a 10-day hold-out; records every unit's training rows."""
    seen = []
    real = unit_mod.build_unit_dataset

    def recording(**kw):
        ds = real(**kw)
        seen.append((kw["fold"], ds.train_meta["timestamp"], ds.test_meta["timestamp"]))
        return ds

    mp = pytest.MonkeyPatch()
    mp.setattr(unit_mod, "build_unit_dataset", recording)
    try:
        out = tmp_path_factory.mktemp("holdout") / "run"
        config = FleetConfig.model_validate({
            "out": str(out), "data": {"days": 90, "symbols": SYMBOLS}, "validation": {"folds": 2, "holdout_days": 10},
            "market": {"clusters": 2}, "labels": {"horizon": HORIZON}})
        summary = run_fleet(config, echo=lambda s: None)
    finally:
        mp.undo()
    return summary, seen


def test_holdout_rows_never_reach_training_or_walk_forward(holdout_run):
    summary, seen = holdout_run
    out = summary.out
    manifest = json.loads((out / "manifest.json").read_text())
    after = pd.Timestamp(manifest["holdout"]["after"])
    bar = pd.Timedelta(hours=1)
    data_end = max(pd.Timestamp(t) for t in manifest["data"]["last"].values())
    assert after == data_end - pd.Timedelta(days=10)
    assert seen, "no unit was trained"
    for fold, train_ts, test_ts in seen:
        # a training row's label window (t, t + h bars] ends before the fold's training end, which
        # lies before the hold-out; test labels end at the hold-out start at the latest
        assert train_ts.max() + HORIZON * bar < fold.train_end < after
        assert test_ts.max() + HORIZON * bar <= after
    holdout_rows = []
    for s in SYMBOLS:
        wf = pd.read_parquet(out / "predictions" / f"{s}.parquet")
        ho = pd.read_parquet(out / "holdout_predictions" / f"{s}.parquet")
        assert (wf["timestamp"] + HORIZON * bar <= after).all()
        assert (ho["timestamp"] > after).all() and len(ho) > 0
        assert list(ho.columns) == list(wf.columns)
        assert (ho["fold"] == manifest["folds"][-1]["index"]).all()
        holdout_rows.append(ho.assign(symbol=s))
    assert manifest["holdout"]["rows"] == sum(len(h) for h in holdout_rows)


def test_holdout_is_predicted_by_the_saved_last_fold_models(holdout_run):
    summary, _ = holdout_run
    out = summary.out
    market = synthetic_market(days=90, seed=0).panel
    factor = pd.read_parquet(out / "market_factor.parquet").set_index("timestamp")["market_factor"]
    index = json.loads((out / "models" / "index.json").read_text())
    checked = 0
    for entry in index.values():
        model = pickle.loads((out / entry["file"]).read_bytes())
        for symbol in entry["assets"]:
            ho = pd.read_parquet(out / "holdout_predictions" / f"{symbol}.parquet").set_index("timestamp")
            frame = market.frames[symbol]
            p = model.predict_proba_bars(symbol, frame, factor).reindex(ho.index)
            np.testing.assert_allclose(p.to_numpy(), ho["p_up"].to_numpy(), atol=1e-12)
            # labels and 1-bar returns straight from the bars
            fwd = forward_log_return(frame["close"], HORIZON).reindex(ho.index)
            np.testing.assert_allclose(ho["forward_return"].to_numpy(), fwd.to_numpy(), atol=1e-15)
            r1 = forward_log_return(frame["close"], 1).reindex(ho.index)
            np.testing.assert_allclose(ho["return_1"].to_numpy(), r1.to_numpy(), atol=1e-15)
            checked += 1
    assert checked == len(SYMBOLS)


def test_holdout_table(holdout_run):
    summary, _ = holdout_run
    table = pd.read_csv(summary.out / "results_holdout.csv")
    assert table["symbol"].tolist() == ["ALL", *SYMBOLS]
    assert {"auc", "sharpe_net", "ann_return_net", "max_dd_net", "signals", "round_trips", "n"} <= set(table.columns)
    n = {s: len(pd.read_parquet(summary.out / "holdout_predictions" / f"{s}.parquet")) for s in SYMBOLS}
    assert table.set_index("symbol").loc["ALL", "n"] == sum(n.values())
    assert summary.holdout is not None and len(summary.holdout) == 3


def test_no_holdout_no_files(tmp_path):
    config = FleetConfig.model_validate({"out": str(tmp_path / "r"), "data": {"days": 90, "symbols": ["C0S0"]},
                                         "validation": {"folds": 2}, "market": {"clusters": 1}})
    summary = run_fleet(config, echo=lambda s: None)
    assert not (summary.out / "results_holdout.csv").exists() and not (summary.out / "holdout_predictions").exists()
    assert summary.holdout is None
