"""benchmarks/gates.py: issue 12's routing check per unit, against weights and inner AUCs written by hand."""

from __future__ import annotations

import numpy as np

from conftest import load_benchmark


def _load():
    return load_benchmark("gates")


def test_routing_counts_only_units_with_inner_rows_and_reads_the_best_inner_expert():
    hit = _load().routing_hit
    names = ["trend", "sde", "momentum"]
    scores = {"trend": {"auc": 0.52}, "sde": {"auc": 0.51}, "momentum": {"auc": 0.55}}
    W = np.tile([0.3, 0.2, 0.5], (4, 1))
    assert hit(scores, names, W) == (True, False)  # momentum: best inner AUC and the largest weight
    # the narrow expert holding the most weight is a miss, whatever the mixture's AUC
    assert hit(scores, names, np.tile([0.2, 0.5, 0.3], (4, 1))) == (False, False)
    # the mean over rows decides, not the first row
    W2 = np.array([[0.6, 0.1, 0.3], [0.0, 0.1, 0.9]])
    assert hit(scores, names, W2) == (True, False)
    # a shared top weight: a hit when the best inner expert shares it, and flagged as a tie
    assert hit(scores, names, np.tile([0.4, 0.2, 0.4], (3, 1))) == (True, True)
    assert hit(scores, names, np.tile([0.4, 0.4, 0.2], (3, 1))) == (False, True)
    # no inner out-of-fold row: equal weights answer and names[0] has the "largest" weight; not counted at all
    assert hit({}, names, np.full((5, 3), 1 / 3)) is None
