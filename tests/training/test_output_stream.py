"""The output stream hands out an asset's batch once every unit holding it is done, and the pooled groups last."""

from types import SimpleNamespace

import pandas as pd

from fleet.training.output_stream import ASSETS, POOLED, OutputStream
from fleet.training.outputs import MAX_ASSET_BATCHES, OutputPlan, asset_outputs, pooled_outputs


def _plan():
    return OutputPlan(storage=None, config=None, bars_per_year=8760.0, bar=pd.Timedelta(hours=1), cluster_of={},
                      dominant=0, fallback={})


def _unit(uid, assets):
    return SimpleNamespace(unit_id=uid, assets={s: i for i, s in enumerate(assets)})


def _result(uid, fold, parts, assets=None, fallback=False):
    return SimpleNamespace(unit_id=uid, fold=fold, assets=list(assets if assets is not None else parts),
                           parts=parts, gate={"fallback": fallback} if fallback else None)


def _value(clusters, folds):
    return {"clusters": clusters, "folds": folds}


def _stream():
    # hierarchical-like: fold 0 clusters {A, B} and {C}; fold 1 clusters {A} and {B, C}; plus a refit unit
    units = [_unit("fold0/c0", "AB"), _unit("fold0/c1", "C"), _unit("fold1/c0", "A"), _unit("fold1/c1", "BC"),
             _unit("refit/c0", "ABC")]
    return OutputStream(_plan(), units)


def test_an_asset_is_handed_out_once_every_unit_holding_it_is_done_with_its_files_in_fold_order():
    s = _stream()
    assert s.batch == 1  # 3 assets over at most MAX_ASSET_BATCHES batches
    assert s.unit_done(_result("fold1/c0", 1, {"A": "u/f1c0/A"})) == []  # A still waits for fold 0
    assert s.unit_done(_result("refit/c0", 2, {"A": "r/A", "B": "r/B", "C": "r/C"})) == []  # in no table
    [task] = s.unit_done(_result("fold0/c0", 0, {"A": "u/f0c0/A", "B": "u/f0c0/B"}))
    assert task.stage == ASSETS and task.fn.fn is asset_outputs
    assert task.kwargs["symbols"] == ["A"] and task.kwargs["parts"] == {"A": ["u/f0c0/A", "u/f1c0/A"]}
    assert s.unit_done(_result("fold0/c0", 0, {"A": "again"})) == []  # a result seen already is ignored
    assert s.units_done_at is None
    # C has no rows in fold 1: it is complete once both of its units reported, with its one file
    done = s.unit_done(_result("fold1/c1", 1, {"B": "u/f1c1/B"}, assets="BC"))
    assert [t.kwargs["symbols"] for t in done] == [["B"]]
    assert s.units_done_at is None
    [task_c] = s.unit_done(_result("fold0/c1", 0, {"C": "u/f0c1/C"}, fallback=True))
    assert task_c.kwargs["parts"] == {"C": ["u/f0c1/C"]} and s.units_done_at is not None


def test_flush_runs_what_is_left_then_the_pooled_groups_once_every_batch_is_in():
    s = _stream()
    a = s.unit_done(_result("fold0/c0", 0, {"A": "a0", "B": "b0"}))
    s.unit_done(_result("fold0/c1", 0, {"C": "c0"}, fallback=True))
    s.unit_done(_result("fold1/c0", 1, {"A": "a1"}))
    rest = s.unit_done(_result("fold1/c1", 1, {"B": "b1", "C": "c1"}))
    first = s.unit_done(_result("fold0/c0", 0, {"A": "a0", "B": "b0"}))  # ignored
    assert a == [] and first == [] and len(rest) == 2
    emitted = s.open.copy()
    assert len(emitted) == 3  # A, B, C: one batch each
    s.collect(emitted[0], (_value({0: 10}, {0: 5, 1: 5}), {"phase": "outputs"}))
    # a batch emitted but never collected (lost with its actor) is handed out again; no pooled group yet
    again = s.flush()
    assert sorted(t.seq for t in again) == [1, 2] and all(t.stage == ASSETS for t in again)
    s.collect(again[0], (_value({0: 10}, {0: 5, 1: 5}), {"phase": "outputs"}))
    s.collect(again[0], (_value({0: 99}, {0: 99}), {"phase": "outputs"}))  # collected twice: kept once
    s.collect(again[1], (_value({1: 7}, {0: 3, 1: 4}), {"phase": "outputs"}))
    pooled = s.flush()
    assert pooled and all(t.stage == POOLED and t.fn.fn is pooled_outputs for t in pooled)
    kinds = [(t.kwargs["kind"], t.kwargs["key"]) for t in pooled]
    assert kinds[0] == ("book", None) and kinds[-1] == ("fleet", None)
    assert kinds[1:-1] == [("cluster", 0), ("fold", 1), ("fold", 0), ("cluster", 1)]  # rows 20, 14, 13, 7
    plan = pooled[0].kwargs["plan"]
    assert plan.fallback == {(0, "C"): 1} and pooled[0].kwargs["symbols"] == ["A", "B", "C"]
    assert s.flush() == pooled  # still open: handed out again, not a second set
    for t in pooled:
        s.collect(t, ({"kind": t.kwargs["kind"]}, {"phase": "pooled"}))
    assert s.flush() == [] and len(s.asset_values) == 3 and len(s.pooled_values) == len(pooled)
    assert len(s.records) == 3 + len(pooled)


def test_batches_cover_a_large_fleet_in_at_most_max_batches_with_each_asset_once():
    assets = [f"S{i:04d}" for i in range(1000)]
    s = OutputStream(_plan(), [_unit("fold0/all", assets)])
    early = s.unit_done(_result("fold0/all", 0, {a: f"f/{a}" for a in assets}))
    tasks = s.flush()  # the open batches again, and the last, partial one
    assert {t.seq for t in early} < {t.seq for t in tasks} and len(tasks) == len(early) + 1
    got = [a for t in tasks for a in t.kwargs["symbols"]]
    assert sorted(got) == assets and len(got) == len(set(got))
    assert len(tasks) <= MAX_ASSET_BATCHES
