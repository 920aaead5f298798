"""benchmarks/gates.py: issue 12's routing check per unit, against weights and inner AUCs written by hand."""

from __future__ import annotations

import numpy as np
import pytest

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


def _cache(names, n=6):
    rng = np.random.default_rng(0)
    unit = {"names": list(names), "P_oof": rng.uniform(size=(n, len(names))),
            "P_test": rng.uniform(size=(n, len(names))), "y_oof": rng.integers(0, 2, n)}
    return {"units": {"u0": unit, "u1": {**unit, "P_oof": unit["P_oof"][::-1].copy()}}, "seconds": 1.0}


def test_restrict_cuts_the_named_columns_in_the_order_asked_and_refuses_unknown_experts():
    mod = _load()
    cache = _cache(["trend", "sde", "momentum"])
    cut = mod.restrict(cache, ["momentum", "trend"])
    for k, u in cut["units"].items():
        full = cache["units"][k]
        assert u["names"] == ["momentum", "trend"]
        np.testing.assert_array_equal(u["P_oof"], full["P_oof"][:, [2, 0]])
        np.testing.assert_array_equal(u["P_test"], full["P_test"][:, [2, 0]])
        assert u["y_oof"] is full["y_oof"]
    assert cache["units"]["u0"]["names"] == ["trend", "sde", "momentum"]  # the cache itself is untouched
    with pytest.raises(ValueError, match="pattern not in the cache; it holds trend,sde,momentum"):
        mod.restrict(cache, ["trend", "pattern"])
    with pytest.raises(ValueError, match="no expert"):
        mod.restrict(cache, [])
