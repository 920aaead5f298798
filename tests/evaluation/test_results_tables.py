"""Per-cluster tables group each fold's rows by that fold's own clustering."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fleet.config import FleetConfig
from fleet.evaluation.tables import results_tables


def test_each_fold_is_grouped_by_its_own_clusters():
    rng = np.random.default_rng(0)
    rows = []
    for fold, t0 in ((0, "2024-01-01"), (1, "2024-01-05")):
        ts = pd.date_range(t0, periods=48, freq="h", tz="UTC")
        # B sits with A in fold 0 and alone in fold 1 (the last fold, whose map is cluster_of below)
        for symbol, cluster in (("A", 0), ("B", 0 if fold == 0 else 1)):
            r = rng.normal(0, 0.01, 48)
            rows.append(pd.DataFrame({"timestamp": ts, "symbol": symbol, "fold": fold, "p_up": rng.random(48),
                                      "y": (r > 0).astype(int), "forward_return": r, "return_1": r / 2,
                                      "cluster": cluster}))
    preds = pd.concat(rows, ignore_index=True)
    per_asset, per_cluster = results_tables(preds, {"A": 0, "B": 1}, 0, FleetConfig(), bars_per_year=8760)
    c = per_cluster.set_index("cluster")
    assert c.loc[0, "n"] == 48 * 3 and c.loc[1, "n"] == 48       # A twice and B's fold 0 | B's fold 1
    assert c.loc[0, "assets"] == "A B(1/2)" and c.loc[1, "assets"] == "B"
    assert bool(c.loc[0, "dominant"]) and not bool(c.loc[1, "dominant"])
    assert per_asset.set_index("symbol")["cluster"].to_dict() == {"A": 0, "B": 1}   # the deployed grouping
    # without a cluster column: the last fold's map for every row (the old behaviour)
    _, old = results_tables(preds.drop(columns="cluster"), {"A": 0, "B": 1}, 0, FleetConfig(), bars_per_year=8760)
    assert old.set_index("cluster")["n"].to_dict() == {0: 96, 1: 96}


def test_expert_weights_carry_the_select_gates_base_rate_share():
    """Under the select gate the experts' weights sum to 1 minus the constant base rate's share; the weights table
    gives that share its own row, so every group still sums to 1. Gates whose weights sum to 1 get no such row."""
    from fleet.evaluation.tables import expert_tables

    rng = np.random.default_rng(1)
    n = 40
    base = pd.DataFrame({"symbol": np.repeat(["A", "B"], n // 2), "y": rng.integers(0, 2, n), "p_up": rng.random(n),
                         "p_a": rng.random(n), "p_b": rng.random(n)})
    # unit of A: 0.3 / 0.2 and a base-rate share of 0.5; unit of B: 0.6 / 0.4, no share
    select = base.assign(w_a=np.where(base.symbol == "A", 0.3, 0.6), w_b=np.where(base.symbol == "A", 0.2, 0.4))
    _, w = expert_tables(select, {"A": 0, "B": 0}, ["a", "b"])
    share = w[w.expert == "base_rate"].set_index(["level", "name"])["mean_weight"]
    assert share[("asset", "A")] == 0.5 and share[("asset", "B")] == 0.0 and share[("fleet", "all")] == 0.25
    np.testing.assert_allclose(w.groupby(["level", "name"])["mean_weight"].sum(), 1.0)
    convex = base.assign(w_a=0.7, w_b=0.3)
    _, w = expert_tables(convex, {"A": 0, "B": 0}, ["a", "b"])
    assert set(w.expert) == {"a", "b"}


def _holdout_rows(days: int) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    ts = pd.date_range("2024-01-01", periods=days * 24, freq="h", tz="UTC")
    r = rng.normal(0, 0.01, len(ts))
    return pd.DataFrame({"symbol": "A", "timestamp": ts, "fold": 0, "p_up": rng.random(len(ts)),
                         "y": (r > 0).astype(int), "forward_return": r, "return_1": r})


def test_a_hold_out_under_90_days_is_not_annualised():
    from fleet.evaluation.tables import MIN_ANNUALISED_DAYS, holdout_table

    config = FleetConfig.model_validate({"evaluation": {"bootstrap_reps": 0}})
    short = holdout_table(_holdout_rows(MIN_ANNUALISED_DAYS - 30), config, bars_per_year=8760)
    long = holdout_table(_holdout_rows(MIN_ANNUALISED_DAYS + 30), config, bars_per_year=8760)
    assert short[["sharpe_net", "ann_return_net"]].isna().all().all()
    assert short["max_dd_net"].notna().all()          # a drawdown needs no annualising
    assert long[["sharpe_net", "ann_return_net"]].notna().all().all()
