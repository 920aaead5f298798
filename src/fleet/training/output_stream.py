"""The run's output tasks as a stream: each batch of assets as soon as every unit holding them is done.

The output tasks of :mod:`fleet.training.outputs` need a unit's saved rows, not the whole run: an asset's batch
(its prediction file and every one-asset table row) can start once every unit that holds the asset has finished,
while other units still train. :class:`OutputStream` keeps that bookkeeping, with no Ray in it:

* :meth:`OutputStream.unit_done` takes a finished unit's result and returns the :class:`FollowTask` batches it
  completed; the Ray backend runs them on its warm step actors whenever no unit step is waiting
  (:class:`fleet.training.backends.ray_graph.GraphRun`), so on a cluster they overlap the training;
* :meth:`OutputStream.flush`, once every unit is done, returns what is left: the asset batches not run yet, then,
  once every batch is in, the pooled groups (clusters, folds, the fleet, the books), which read ``predictions/``
  back; :func:`fleet.training.artifacts.evaluate` runs them with ``Backend.map`` (all of them with the local
  backend, which trains one unit at a time anyway).

The tables do not depend on how the assets were batched: every batch's rows are concatenated and sorted by the
same keys (:func:`fleet.training.artifacts.evaluate`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

from fleet.store.layout import is_refit_unit
from fleet.training.graph import Timed
from fleet.training.outputs import MAX_ASSET_BATCHES, OutputPlan, asset_outputs, pooled_items, pooled_outputs

ASSETS, POOLED = "assets", "pooled"


@dataclass(frozen=True)
class FollowTask:
    """One output task: ``fn(**kwargs)`` (a :class:`~fleet.training.graph.Timed`, so it returns (value, record)),
    of stage ``stage`` (:data:`ASSETS` or :data:`POOLED`), numbered ``seq`` in its stream."""

    seq: int
    stage: str
    fn: Callable
    kwargs: dict

    def __call__(self) -> tuple[Any, dict]:
        return self.fn(**self.kwargs)


def run_follow(task: FollowTask) -> tuple[Any, dict]:
    """``Backend.map``'s function for a :class:`FollowTask` (module level: pickled by reference)."""
    return task()


class OutputStream:
    """Which output tasks can run, as units finish (see the module docstring).

    Args:
        plan: the run's :class:`~fleet.training.outputs.OutputPlan`; its ``fallback`` is filled in from the results
            before the pooled stage (an asset batch reads each row's own ``gate_fallback``).
        units: the run's fold units (:class:`~fleet.training.records.TrainingUnit`, refit units are skipped): an
            asset is complete when every unit listing it in ``assets`` has reported.

    Attributes:
        asset_values, pooled_values: the values of the finished tasks of each stage, in the order they finished.
        records: the finished tasks' records (``manifest.json["run_tasks"]``).
        overlapped: tasks collected before the last unit reported (they ran while units trained).
        units_done_at: ``time.perf_counter()`` when the last unit reported; None before.
    """

    def __init__(self, plan: OutputPlan, units: list):
        self.plan = plan
        self.missing: dict[str, set[str]] = {}
        self._units_left = {u.unit_id for u in units if not is_refit_unit(u.unit_id)}
        for u in units:
            if not is_refit_unit(u.unit_id):
                for symbol in u.assets:
                    self.missing.setdefault(symbol, set()).add(u.unit_id)
        self.batch = max(1, math.ceil(len(self.missing) / MAX_ASSET_BATCHES))
        self.results: dict[str, Any] = {}
        self.parts: dict[str, list[tuple[int, str]]] = {}
        self.queue: list[str] = []  # complete assets not yet in a task
        self.emitted: set[str] = set()
        self.open: dict[int, FollowTask] = {}  # emitted, not yet collected
        self.asset_values: list = []
        self.pooled_values: list = []
        self.records: list[dict] = []
        self.pooled_emitted = False
        self.overlapped = 0
        self.units_done_at: float | None = None
        self._seq = 0

    def unit_done(self, result) -> list[FollowTask]:
        """Take a finished unit's result (a saved :class:`~fleet.training.records.UnitResult`; a refit unit's or
        one already seen is ignored); returns the full asset batches it completed."""
        uid = result.unit_id
        if is_refit_unit(uid) or uid in self.results:
            return []
        self.results[uid] = result
        self._units_left.discard(uid)
        if self.units_done_at is None and not self._units_left:
            self.units_done_at = time.perf_counter()
        for symbol, f in (result.parts or {}).items():
            self.parts.setdefault(symbol, []).append((int(result.fold), f))
        for symbol in result.assets:
            left = self.missing.get(symbol)
            if left is None or uid not in left:
                continue
            left.discard(uid)
            if not left and symbol in self.parts:
                self.queue.append(symbol)
        return self._batches(full_only=True)

    def flush(self) -> list[FollowTask]:
        """What can run now that every unit is done: the asset batches not yet emitted and those emitted but not
        collected (a task lost with its actor runs again; the same files are written); once every asset task is
        collected, the pooled tasks (once); then nothing."""
        queued = set(self.queue)
        self.queue += [s for s in sorted(self.parts) if s not in self.emitted and s not in queued]
        if self.queue or any(t.stage == ASSETS for t in self.open.values()):
            return [*(t for t in self.open.values() if t.stage == ASSETS), *self._batches(full_only=False)]
        if not self.pooled_emitted:
            self.pooled_emitted = True
            return self._pooled()
        return [t for t in self.open.values() if t.stage == POOLED]

    def collect(self, task: FollowTask, out: tuple[Any, dict]) -> None:
        """Keep a finished task's value and record (a task collected twice is kept once)."""
        if self.open.pop(task.seq, None) is None:
            return
        value, record = out
        self.overlapped += self.units_done_at is None
        (self.asset_values if task.stage == ASSETS else self.pooled_values).append(value)
        self.records.append(record)

    def symbols(self) -> list[str]:
        """The assets with rows in some finished unit, sorted."""
        return sorted(self.parts)

    def _task(self, stage: str, fn: Callable, kwargs: dict) -> FollowTask:
        task = FollowTask(self._seq, stage, fn, kwargs)
        self._seq += 1
        self.open[task.seq] = task
        return task

    def _batches(self, *, full_only: bool) -> list[FollowTask]:
        out = []
        while len(self.queue) >= self.batch or (self.queue and not full_only):
            chunk = sorted(self.queue[:self.batch])
            del self.queue[:self.batch]
            self.emitted.update(chunk)
            parts = {s: [f for _, f in sorted(self.parts[s], key=lambda p: p[0])] for s in chunk}
            out.append(self._task(ASSETS, Timed(asset_outputs, "outputs", ("symbols",)),
                                  {"plan": self.plan, "symbols": chunk, "parts": parts}))
        return out

    def _pooled(self) -> list[FollowTask]:
        cluster_rows: dict[int, int] = {}
        fold_rows: dict[int, int] = {}
        for a in self.asset_values:
            for c, k in a["clusters"].items():
                cluster_rows[c] = cluster_rows.get(c, 0) + k
            for f, k in a["folds"].items():
                fold_rows[f] = fold_rows.get(f, 0) + k
        fallback = {(r.fold, s): 1 for r in self.results.values() if r.gate and r.gate.get("fallback")
                    for s in (r.parts or {})}
        plan = replace(self.plan, fallback=fallback)
        symbols = self.symbols()
        return [self._task(POOLED, Timed(pooled_outputs, "pooled", ("kind", "key")),
                           {"plan": plan, "symbols": symbols, **item})
                for item in pooled_items(cluster_rows, fold_rows)]
