"""benchmarks/gates.py: the routing check per unit, against weights and inner AUCs written by hand; the table
ranked on the per-asset AUC, on a synthetic cache where a level-only expert wins the pooled AUC."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


def test_routing_can_name_the_best_inner_expert_by_its_per_asset_auc():
    hit = _load().routing_hit
    names = ["level", "timing"]
    scores = {"level": {"auc": 0.56, "asset_auc": 0.50}, "timing": {"auc": 0.53, "asset_auc": 0.54}}
    W = np.tile([0.0, 1.0], (3, 1))
    assert hit(scores, names, W, key="asset_auc") == (True, False)
    assert hit(scores, names, W) == (False, False)  # the pooled AUC names the level expert


def _level_timing_unit(fold: int, seed: int, n: int = 900):
    """One cached unit of five assets: ``level`` knows only each asset's up-rate (constant within an asset),
    ``timing`` a weak signal inside each asset; inner out-of-fold rows in three blocks, then test rows."""
    from _moe_data import panel_rows

    rng = np.random.default_rng(seed)
    assets = (1, 2, 3, 4, 5)

    def rows():
        rate = np.repeat(np.linspace(0.38, 0.62, len(assets)), n)
        s = rng.normal(size=len(rate))
        y = (rng.random(len(rate)) < rate + 0.05 * s).astype(int)
        level = pd.Series(y).groupby(np.repeat(np.arange(len(assets)), n)).transform("mean").to_numpy()
        timing = 1.0 / (1.0 + np.exp(-0.3 * (s + rng.normal(size=len(s)))))
        return panel_rows(n, assets=assets), np.column_stack([level, timing]), y

    X_oof, P_oof, y_oof = rows()
    X_test, P_test, y_test = rows()
    block = np.tile(1 + np.arange(n) * 3 // n, len(assets))
    starts = {b: int(X_oof["bar_time"][block == b].min()) for b in (1, 2, 3)}
    return {"fold": fold, "names": ["level", "timing"], "X_oof": X_oof, "P_oof": P_oof, "y_oof": y_oof,
            "block": block, "starts": starts, "X_test": X_test, "P_test": P_test, "y_test": y_test,
            "symbol": np.repeat([f"S{a}" for a in assets], n)}


def test_evaluate_ranks_gates_on_the_per_asset_auc_and_shows_the_pooled_one_beside_it():
    mod = _load()
    cache = {"units": {f"u{f}": _level_timing_unit(f, seed=f) for f in (0, 1)}, "seconds": 0.0}
    base, table = mod.evaluate(cache, ["best pooled", "best"], horizon=1, embargo=0, inner_folds=3, seed=0)
    assert list(table["gate"]) == ["best", "best pooled"]  # ranked on asset_auc, not in the order asked
    best, pooled = table.set_index("gate").loc["best"], table.set_index("gate").loc["best pooled"]
    assert best["w_timing"] == 1.0 and pooled["w_level"] == 1.0
    assert pooled["auc"] > best["auc"] and best["asset_auc"] > pooled["asset_auc"]
    assert best["vs_best_asset"] == pytest.approx(0.0) and pooled["vs_best"] == pytest.approx(0.0)
    assert pooled["asset_auc"] == pytest.approx(0.5) and 0.0 < pooled["se_asset"] < 0.05 and best["se_asset"] == 0.0
    assert base["level"]["auc"] > base["timing"]["auc"] and base["timing"]["asset_auc"] > 0.52
