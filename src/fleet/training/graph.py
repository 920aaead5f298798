"""One unit's training as a task graph: pure steps that a backend runs in-process or as Ray tasks.

A unit's mixture fit (:mod:`fleet.models.moe`) is cut into steps, each a pure function of its inputs:

* ``prepare``  — the unit's design matrices (:func:`~fleet.training.dataset.build_unit_dataset`) and the plan of
  its inner folds; on Ray its output is stored once in the object store and every later step of the unit
  reads it by reference;
* ``inner``    — one expert fitted on one inner fold, its out-of-fold P(up) (one task per expert and fold);
* ``full``     — one expert fitted on the whole training window, with its P(up) on the test rows;
* ``gate``     — the gate and its guard, fitted once every ``inner`` task of the unit is done (in parallel with
  the ``full`` tasks, which it does not need);
* ``assemble`` — the fitted mixture, the test predictions and the :class:`~fleet.training.unit.UnitResult`.

A unit with one expert has ``prepare -> full -> assemble``. Each step has a resource *kind*: ``gpu`` for the
convolutional experts' ``inner`` / ``full`` steps, ``cpu`` for the others; a Ray backend turns the kind into a
request (:mod:`fleet.training.backends.ray_graph`). :func:`run_unit` runs the same graph in this process, which
is what :func:`fleet.training.unit.train_unit` does, so the local backend and the Ray graph compute the same
numbers by the same functions.

Every run step leaves a record (``manifest.json["tasks"]``): unit, expert, phase, inner block, node, the
resources Ray assigned, start / end (seconds since the epoch), process CPU seconds and pid.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from fleet.evaluation.costaware import apply_positions
from fleet.models.artifact import UnitModel
from fleet.models.factory import build_model
from fleet.models.inner import collect_oof, fit_full, fit_inner
from fleet.models.moe import MixtureOfExpertsEnsemble
from fleet.models.specs import expert_spec
from fleet.training.bars import bar_columns
from fleet.training.dataset import UnitDataset, build_unit_dataset
from fleet.training.policy_unit import unit_meta, unit_policy
from fleet.training.records import UnitResult

PHASES = ("prepare", "inner", "full", "gate", "assemble", "unit")


def expert_kind(name: str) -> str:
    """The resource kind of an expert's fits, from the table of expert specs: 'gpu' (a convolutional network)
    or 'cpu' (:attr:`fleet.models.specs.ExpertSpec.resource`)."""
    return expert_spec(name).resource


@dataclass(frozen=True)
class Task:
    """One node of a unit's graph.

    Attributes:
        key: unique within the run: (unit_id, phase, expert or "", inner block or 0).
        unit: the :class:`~fleet.training.unit.TrainingUnit`.
        phase: one of :data:`PHASES` ("unit": a whole unit trained by a stand-in ``train_fn``, tests only).
        expert: the expert fitted (inner / full), else None; block: the inner block k (inner), else None.
        kind: 'cpu' or 'gpu' (see :func:`expert_kind`); 'unit' tasks ask for the unit's own ``num_gpus``.
        fn: the step, called ``fn(unit, frames, *args, *deps' values)``.
        args: fixed arguments after ``frames``; deps: keys of the tasks whose values come next, in order.
        last: the unit's final task (its value is the unit's result).
    """

    key: tuple
    unit: Any
    phase: str
    fn: Callable
    kind: str = "cpu"
    expert: str | None = None
    block: int | None = None
    args: tuple = ()
    deps: tuple = ()
    last: bool = False


@dataclass
class UnitData:
    """What ``prepare`` hands every later step of a unit: its dataset and its inner-fold plan (None: one expert)."""

    ds: UnitDataset
    plan: list[dict] | None = None


def unit_model(unit):
    """The unit's unfitted estimator (a mixture, or one expert), as :func:`build_model` makes it."""
    cfg = unit.config
    return build_model(cfg.model, seed=unit.seed, horizon=cfg.labels.horizon, embargo=cfg.validation.embargo_bars,
                       num_threads=max(1, int(cfg.resources.num_cpus)))


def _expert(unit, name: str):
    model = unit_model(unit)
    return dict(model.experts)[name] if isinstance(model, MixtureOfExpertsEnsemble) else model


def step_prepare(unit, frames) -> UnitData:
    """The unit's design matrices and (for a mixture) inner-fold plan.

    Raises:
        DataError: none of the unit's assets has enough training data in this fold.
    """
    cfg = unit.config
    ds = build_unit_dataset(assets=unit.assets, frames=frames, fold=unit.fold, timeline_end=unit.timeline_end,
                            factor=unit.factor, features=unit.features, labels=cfg.labels)
    model = unit_model(unit)
    plan = model.inner_plan(ds.X_train, ds.y_train) if isinstance(model, MixtureOfExpertsEnsemble) else None
    return UnitData(ds=ds, plan=plan)


def step_inner(unit, frames, name: str, k: int, data: UnitData) -> np.ndarray | None:
    """Expert ``name``'s out-of-fold P(up) on inner block ``k`` (None when that fold is skipped)."""
    return fit_inner(_expert(unit, name), data.ds.X_train, data.ds.y_train, None, data.plan[k - 1])


def step_full(unit, frames, name: str, data: UnitData) -> tuple[Any, np.ndarray]:
    """Expert ``name`` fitted on the whole window, and its P(up) on the test rows (n_test,)."""
    ds = data.ds
    est = fit_full(_expert(unit, name), ds.X_train, ds.y_train)
    p = est.predict_proba(ds.X_test)[:, 1] if len(ds.X_test) else np.empty(0)
    return est, np.asarray(p, dtype=np.float64)


def step_gate(unit, frames, data: UnitData, *columns) -> MixtureOfExpertsEnsemble:
    """The mixture with its gate fitted (no full-window experts yet); ``columns``: the ``inner`` outputs in
    the order of :func:`unit_graph` (expert by expert, block 1..K)."""
    model = unit_model(unit)
    names = [n for n, _ in model.experts]
    K = len(data.plan)
    cols = {(n, k): columns[i * K + (k - 1)] for i, n in enumerate(names) for k in range(1, K + 1)}
    ds = data.ds
    return model.fit_gate_stage(ds.X_train, ds.y_train, collect_oof(data.plan, names, cols))


def step_assemble(unit, frames, data: UnitData, *parts):
    """The unit's :class:`~fleet.training.unit.UnitResult`; ``parts``: the gate-stage mixture (mixtures only),
    then every expert's ``full`` output in :meth:`ModelConfig.active_experts` order."""
    names = unit.config.model.active_experts()
    fulls = parts[-len(names):]
    P = np.column_stack([p for _, p in fulls]) if fulls else np.empty((0, 0))
    if len(names) > 1:
        model = parts[0].set_experts({n: est for n, (est, _) in zip(names, fulls)})
        details = model.predict_details(data.ds.X_test, P) if len(data.ds.X_test) else None
    else:
        model = fulls[0][0]
        details = (np.clip(P[:, 0], 0.0, 1.0), P, np.ones_like(P)) if len(data.ds.X_test) else None
    return assemble_result(unit, frames, data.ds, model, details)


def assemble_result(unit: TrainingUnit, frames: dict[str, pd.DataFrame], ds, model, details) -> UnitResult:
    """The :class:`UnitResult` of a fitted unit (the graph's last step): predictions with each expert's P(up)
    and gate weight, the policy and meta-labeller chosen on the training window, and the served model.

    Args:
        ds: the unit's :class:`~fleet.training.dataset.UnitDataset`; model: the fitted estimator;
        details: (p_up (n_test,), expert P(up) (n_test, E), gate weights (n_test, E)), or None with no test row.
    """
    cfg = unit.config
    names = cfg.model.active_experts()
    if details is None:
        details = np.empty(0), np.empty((0, len(names))), np.empty((0, len(names)))
    p_up, expert_p, weights = details
    preds = ds.test_meta.copy()
    preds.insert(2, "fold", unit.fold.index)
    preds.insert(3, "p_up", p_up)
    preds.insert(4, "signal", (p_up > cfg.policy.threshold).astype(np.int8))
    preds["return_1"], preds["bar_number"] = bar_columns(preds, frames)
    preds["cluster"] = preds["symbol"].map(unit.cluster_of).astype(np.int64)
    # Telemetry: each expert's own P(up) (refitted on the full window) and its gate weight, per row.
    for j, name in enumerate(names):
        preds[f"p_{name}"] = expert_p[:, j]
        preds[f"w_{name}"] = weights[:, j]
    policy = unit_policy(cfg, model, ds.X_train, ds.y_train, ds.train_meta, frames,  # training window only
                         n_units=unit.run_units)
    meta = unit_meta(cfg, model, ds.X_train, ds.y_train, ds.train_meta, frames)
    if meta is not None:
        preds["meta_keep"] = meta.allow(ds.X_test, p_up) if len(ds.X_test) else np.zeros(0, dtype=bool)
    preds = apply_positions(preds, policy)
    policy = None if policy is None else policy.to_dict()
    gate = model.gate_summary() if hasattr(model, "gate_summary") else None
    # 1 when the unit's guard replaced the gate by its best single expert (see fleet.models.moe).
    preds["gate_fallback"] = np.int8(bool(gate and gate.get("fallback")))
    kept = None
    if unit.is_final:
        from fleet.training.refit_window import trained_until

        kept = UnitModel(group=unit.group, assets={s: unit.assets[s] for s in ds.preprocessors}, estimator=model,
                         preprocessors=ds.preprocessors, feature_names=ds.feature_names,
                         trained_until=trained_until(unit, frames, ds.preprocessors), config=cfg.to_dict(),
                         policy=policy, meta=meta, features=unit.features)
    return UnitResult(
        unit_id=unit.unit_id, group=unit.group, fold=unit.fold.index, assets=sorted(unit.assets), predictions=preds,
        d_by_asset={s: p.d for s, p in ds.preprocessors.items()}, n_train=len(ds.X_train), n_test=len(ds.X_test),
        wall_seconds=0.0, cpu_seconds=0.0, host=socket.gethostname(),
        pid=os.getpid(), model=kept, skipped_assets=ds.skipped_assets, skipped_features=ds.skipped_features,
        gate=gate, policy=policy)


def step_unit(unit, frames, train_fn):
    """A whole unit by ``train_fn`` (a stand-in for :func:`train_unit` in tests): the one-task graph."""
    return train_fn(unit, frames)


def unit_graph(unit, train_fn: Callable | None = None) -> list[Task]:
    """The tasks of one unit, dependencies before dependants.

    Args:
        unit: a :class:`~fleet.training.unit.TrainingUnit`.
        train_fn: None for the step graph; a function makes a one-task graph ('unit' phase) that calls it (tests
            inject failures this way; callers pass None for :func:`~fleet.training.unit.train_unit` itself).
    """
    uid = unit.unit_id
    if train_fn is not None:
        return [Task((uid, "unit", "", 0), unit, "unit", step_unit, kind="unit", args=(train_fn,), last=True)]
    names = unit.config.model.active_experts()
    prep = Task((uid, "prepare", "", 0), unit, "prepare", step_prepare)
    tasks = [prep]
    gate: list[Task] = []
    if len(names) > 1:
        K = int(unit.config.model.moe.inner_folds)
        inner = [Task((uid, "inner", n, k), unit, "inner", step_inner, kind=expert_kind(n), expert=n, block=k,
                      args=(n, k), deps=(prep.key,)) for n in names for k in range(1, K + 1)]
        gate = [Task((uid, "gate", "", 0), unit, "gate", step_gate, deps=(prep.key, *[t.key for t in inner]))]
        tasks += inner + gate
    full = [Task((uid, "full", n, 0), unit, "full", step_full, kind=expert_kind(n), expert=n, args=(n,),
                 deps=(prep.key,)) for n in names]
    tasks += full
    tasks.append(Task((uid, "assemble", "", 0), unit, "assemble", step_assemble,
                      deps=(prep.key, *[t.key for t in gate], *[t.key for t in full]), last=True))
    return tasks


def check_config(config) -> None:
    """Refuse, before any fit or unit preparation, a run whose experts cannot train.

    Builds the configuration's model once and runs every expert's data-free parameter check (``check_params()``,
    where the expert has one: e.g. a TrendExpert's learner must be importable). Without it a bad learner surfaces
    in every unit's fit, after its design matrices were built (minutes per unit at 300 assets).

    Raises:
        ConfigError: naming the expert and what is wrong.
    """
    from fleet.errors import ConfigError

    cfg = config
    model = build_model(cfg.model, seed=cfg.seed, horizon=cfg.labels.horizon, embargo=cfg.validation.embargo_bars,
                        num_threads=1)
    experts = model.experts if isinstance(model, MixtureOfExpertsEnsemble) else [(cfg.model.active_experts()[0],
                                                                                  model)]
    for name, est in experts:
        try:
            getattr(est, "check_params", lambda: None)()
        except ValueError as err:
            raise ConfigError(f"expert {name!r} cannot train ({err}): refused before any unit is prepared") from None


def task_record(task: Task, start: float, end: float, cpu: float, *, node_id: str | None = None,
                resources: dict | None = None) -> dict:
    """One row of ``manifest.json["tasks"]`` (times: seconds since the epoch; cpu: process CPU seconds)."""
    return {"unit": task.unit.unit_id, "expert": task.expert, "phase": task.phase, "block": task.block,
            "kind": task.kind, "node_id": node_id, "resources": resources, "start_unix": start, "end_unix": end,
            "cpu_seconds": round(cpu, 4), "host": socket.gethostname(), "pid": os.getpid()}


def _node_id() -> str | None:
    """The Ray node this process runs on, None outside Ray (Ray is not imported for it)."""
    import sys

    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_node_id()


@dataclass(frozen=True)
class Timed:
    """A run-level backend task (a fold's market fit, a batch of the run's outputs) that also returns its record.

    ``Timed(fn, phase, label)(**kwargs)`` returns ``(fn(**kwargs), record)``; the record has the keys of
    :func:`task_record` (``unit`` None, ``phase`` e.g. "market" / "outputs", ``label`` naming the item), so the
    manifest's ``run_tasks`` read like its unit steps. ``label``: the item's keys whose values name it.
    """

    fn: Callable
    phase: str
    label: tuple[str, ...] = ()

    def __call__(self, **kwargs) -> tuple[Any, dict]:
        t0, c0 = time.time(), time.process_time()
        out = self.fn(**kwargs)
        names = [self.phase]
        for key in self.label:
            item = kwargs.get(key)
            if isinstance(item, (list, tuple)):
                item = f"{item[0]}..{item[-1]} ({len(item)})" if item else "none"
            names.append(str(item if isinstance(item, (str, int)) or item is None
                             else getattr(item, "index", item)))  # a fold names itself by its index
        record = {"unit": None, "label": " ".join(names),
                  "expert": None, "phase": self.phase, "block": None, "kind": "cpu", "node_id": _node_id(),
                  "resources": None, "start_unix": t0, "end_unix": time.time(),
                  "cpu_seconds": round(time.process_time() - c0, 4), "host": socket.gethostname(), "pid": os.getpid()}
        return out, record


def run_task(task: Task, frames, values: list, **where) -> tuple[Any, dict]:
    """Call one step; returns (its value, its record). ``where``: node_id / resources for the record."""
    t0, c0 = time.time(), time.process_time()
    out = task.fn(task.unit, frames, *task.args, *values)
    return out, task_record(task, t0, time.time(), time.process_time() - c0, **where)


def finish_result(result, records: list[dict]):
    """Attach a unit's task records to its result; its wall time spans them, its CPU time sums them.

    The node and resources of the result are the last task's node and, per resource, the largest amount any of
    its tasks was assigned (a unit with a CNN expert shows its GPU fraction).
    """
    if not records:
        return result
    result.tasks = list(records)
    result.started_unix = min(r["start_unix"] for r in records)
    result.wall_seconds = max(r["end_unix"] for r in records) - result.started_unix
    result.cpu_seconds = sum(r["cpu_seconds"] for r in records)
    result.node_id = records[-1]["node_id"]
    assigned: dict[str, float] = {}
    for r in records:
        for k, v in (r["resources"] or {}).items():
            assigned[k] = max(assigned.get(k, 0.0), float(v))
    result.resources = assigned or None
    return result


def run_unit(unit, frames: dict[str, pd.DataFrame]):
    """Run one unit's graph in this process, tasks in graph order; returns its result with the task records."""
    values: dict[tuple, Any] = {}
    records = []
    out = None
    for task in unit_graph(unit):
        out, rec = run_task(task, frames, [values[k] for k in task.deps])
        values[task.key] = out
        records.append(rec)
    return finish_result(out, records)
