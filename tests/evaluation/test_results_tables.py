"""Per-cluster tables group each fold's rows by that fold's own clustering (issue 14)."""

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
    assert per_asset.set_index("asset")["cluster"].to_dict() == {"A": 0, "B": 1}   # the deployed grouping
    # without a cluster column: the last fold's map for every row (the old behaviour)
    _, old = results_tables(preds.drop(columns="cluster"), {"A": 0, "B": 1}, 0, FleetConfig(), bars_per_year=8760)
    assert old.set_index("cluster")["n"].to_dict() == {0: 96, 1: 96}
