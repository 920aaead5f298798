"""benchmarks/paired.py, run_table.py and exact_pnl.py on one small mixture run with a tuned policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import load_benchmark


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import fleet

    out = tmp_path_factory.mktemp("paired") / "run"
    return fleet.train(days=90, folds=2, symbols=["C0S0", "C1S0", "C2S0"], clusters=1, experts="trend,momentum",
                       policy="tuned", bootstrap_reps=50, out=str(out), echo=None)


def test_paired_comparisons_of_one_run(run):
    tables = load_benchmark("paired").comparisons(run, reps=50)
    assert set(tables) == {"ensemble (a) vs trend alone (b), fixed rule",
                           "ensemble (a) vs momentum alone (b), fixed rule",
                           "tuned policy (a) vs fixed rule (b), same P(up)"}
    tuned = tables["tuned policy (a) vs fixed rule (b), same P(up)"].set_index("figure")
    # the same P(up) on both sides: every ranking figure is identical, a tie with zero spread
    assert (tuned.loc[["auc", "auc_per_asset", "rank_ic"], "diff"] == 0).all()
    assert (tuned.loc[["auc", "auc_per_asset", "rank_ic"], "verdict"] == "tie").all()
    trend = tables["ensemble (a) vs trend alone (b), fixed rule"].set_index("figure")
    from sklearn.metrics import roc_auc_score

    preds = run.predictions
    assert trend.loc["auc", "b"] == pytest.approx(roc_auc_score(preds["y"], preds["p_trend"]), abs=1e-12)
    assert np.isfinite(trend.loc["auc", "se"]) and trend.loc["auc", "se"] > 0
    # two runs: a run against itself ties on every figure
    same = load_benchmark("paired").comparisons(run, run, reps=50)
    (table,) = same.values()
    assert (table["diff"].fillna(0) == 0).all() and (table["verdict"] == "tie").all()


def test_run_table_and_exact_book(run, capsys):
    assert load_benchmark("run_table").main([str(run.path), "--reps", "50", "--by", "cluster"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| run | strategy |") and len(lines) >= 4 and " ± " in lines[2]
    exact = load_benchmark("exact_pnl").compare(run).set_index("symbol")
    per_asset = run.results["asset"].set_index("symbol")
    # the script recomputes the exact book from predictions/; the table's figure came through summarise
    np.testing.assert_allclose(exact["ann_return_net_exact"], per_asset.loc[exact.index, "ann_return_net"],
                               rtol=1e-9, atol=1e-12)
    assert isinstance(exact, pd.DataFrame) and (exact["gap"].abs() < 1).all()
