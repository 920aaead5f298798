"""Runs the units' task graphs (:mod:`fleet.training.graph`) on warm pools of Ray actors.

* Every step is one call of a :class:`StepWorker` actor, a thin shell over :func:`fleet.training.graph.run_task`.
* Actors are pooled by resource shape (num_cpus, num_gpus): a convolutional expert's ``inner`` / ``full`` steps
  go to actors that asked for ``cnn_num_gpus`` (when the cluster has GPUs), every other step to CPU-only actors.
  Pools stay warm for the whole run (a fresh worker imports pandas, scikit-learn and torch once, ~2 s here).
  With two shapes the CPU slots are split between them up front (GPU pool: at most half, at least one), so
  CNN work and tabular work run side by side.
* The bars' reader (:class:`~fleet.data.bars.BarReader`, a few hundred bytes plus the symbols) is ``ray.put`` once
  per run and each unit once; a step reads its unit's assets from the bar cache itself (each actor's reader keeps
  what it read, within a bound). A unit's design matrices are the ``prepare`` step's return value, stored once in
  the object store and passed by reference to the unit's later steps.
* Results are gathered with ``ray.wait``; a step is submitted when its inputs are done, earliest unit first, and
  at most ``2 x slots`` units are in flight (bounded object-store use).
* Faults are Ray's own: actors have ``max_restarts`` / ``max_task_retries`` (steps are pure, so a re-run step
  gives the same value). An application error fails its unit only (a :class:`UnitFailure` value); a worker that
  dies more often than Ray retries fails the unit whose step it was running.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import ray

from fleet.errors import FleetWarning

# fleet.training.graph / unit (and through them scikit-learn) are imported where they are used: a StepWorker's
# process imports this module first, and one that trains a CNN or the MLP gate must load torch before
# scikit-learn (fleet.models._openmp).

#: Times Ray restarts an actor after its process dies, per actor.
MAX_RESTARTS = 3
#: Times Ray re-submits the step an actor was running when its process died (system failures only).
MAX_TASK_RETRIES = 3


@ray.remote
class StepWorker:
    """Actor shell: runs one graph step per call and notes the node and resources Ray gave it.

    Args:
        torch_first: import torch before anything of fleet loads scikit-learn in this worker (the run trains a
            CNN or the MLP gate; :mod:`fleet.models._openmp`).
    """

    def __init__(self, torch_first: bool = False):
        if torch_first:
            from fleet.models._openmp import torch_first as load_torch_first

            load_torch_first()
        self._frames_ref = None
        self._frames = None

    @ray.method(num_returns=2)
    def run(self, task, frames_box: list, prior: list, sink, unit, *values):
        """Run ``task`` on the unit ``unit`` (resolved from its reference) with its inputs ``values``.

        ``frames_box`` is ``[ObjectRef]`` of the run's bar reader, fetched once per actor (which then reads the assets
        its steps ask for). For the unit's last step,
        ``prior`` (the records of its earlier steps) and this step's record are attached to the result, which is
        saved through ``sink`` when given (the value returned is then what the save keeps: no prediction rows, no
        model). Returns (value, record).
        """
        from fleet.training.graph import finish_result, run_task

        ref = frames_box[0]
        if self._frames is None or ref != self._frames_ref:
            self._frames, self._frames_ref = ray.get(ref), ref
        ctx = ray.get_runtime_context()
        where = {"node_id": ctx.get_node_id(),
                 "resources": {k: float(v) for k, v in ctx.get_assigned_resources().items()}}
        out, record = run_task(replace(task, unit=unit), self._frames, list(values), **where)
        if task.last:
            out = finish_result(out, [*prior, record])
            if sink is not None:
                out = sink.save(out.unit_id, out)
        return out, record


def pool_sizes(shapes: set[tuple[float, float]], cpu_slots: int, cluster_gpus: float) -> dict:
    """Actors per shape (num_cpus, num_gpus): one shape gets every CPU slot; with GPU shapes beside a CPU shape,
    each GPU shape gets min(what the GPUs hold, slots // number of shapes), at least 1, and the rest go to CPU."""
    if len(shapes) == 1:
        return {next(iter(shapes)): cpu_slots}
    share = max(1, cpu_slots // len(shapes))
    sizes = {s: max(1, min(int(cluster_gpus // s[1]), share)) for s in shapes if s[1] > 0}
    rest = [s for s in shapes if s[1] == 0]
    for s in rest:
        sizes[s] = max(1, (cpu_slots - sum(sizes.values())) // len(rest))
    return sizes


class GraphRun:
    """One run's graphs on Ray (see the module docstring); built and driven by :meth:`RayBackend.run`.

    Args:
        units, frames, on_result, sink: as for :meth:`RayBackend.run`.
        shape_of: task -> (num_cpus, num_gpus) it asks for.
        cpu_slots: actors the cluster's CPUs hold at once; cluster_gpus: the cluster's GPUs.
        train_fn: None for the step graph, else a stand-in trained as a one-task graph.
        torch_first: start every actor with torch loaded before scikit-learn (see :class:`StepWorker`).
    """

    def __init__(self, units, frames, on_result, sink, *, shape_of, cpu_slots: int, cluster_gpus: float,
                 train_fn=None, torch_first: bool = False):
        from fleet.training.graph import unit_graph

        self.torch_first = torch_first
        self.graphs = {u.unit_id: unit_graph(u, train_fn) for u in units}
        self.units = list(units)
        self.on_result, self.sink, self.shape_of = on_result, sink, shape_of
        shapes = {shape_of(t) for g in self.graphs.values() for t in g}
        self.cpu_slots = cpu_slots
        self.quota = pool_sizes(shapes, cpu_slots, cluster_gpus) if shapes else {}
        self.frames_ref = ray.put(frames)
        self.idle: dict = {}
        self.alive: dict = {}
        self.outcomes: list = []

    def _actor(self, shape):
        """An idle actor of ``shape``, a new one within its quota, else None."""
        if self.idle.get(shape):
            return self.idle[shape].pop()
        n_alive = sum(len(v) for v in self.alive.values())
        mine = len(self.alive.get(shape, []))
        if n_alive >= self.cpu_slots and mine == 0:  # fewer slots than shapes: free an idle actor of another
            for other, pool in self.idle.items():
                if pool:
                    victim = pool.pop()
                    self.alive[other].remove(victim)
                    ray.kill(victim, no_restart=True)
                    n_alive -= 1
                    break
        if n_alive >= self.cpu_slots or mine >= self.quota.get(shape, 1):
            return None
        cpus, gpus = shape
        actor = StepWorker.options(num_cpus=cpus, num_gpus=gpus, max_restarts=MAX_RESTARTS,
                                   max_task_retries=MAX_TASK_RETRIES).remote(self.torch_first)
        self.alive.setdefault(shape, []).append(actor)
        return actor

    def _warm(self) -> None:
        """Start every pool's actors now (GPU shapes first), so they start side by side, while the first steps
        run, and not one at a time when a step of their shape is first ready (a start costs seconds)."""
        for shape in sorted(self.quota, key=lambda s: -s[1]):
            for _ in range(self.quota[shape]):
                if sum(len(v) for v in self.alive.values()) >= self.cpu_slots:
                    return
                actor = self._actor(shape)
                if actor is not None:
                    self.idle.setdefault(shape, []).append(actor)

    def run(self) -> list:
        """Run every graph; returns the outcomes (results or failures) in the order they finished."""
        order = {u.unit_id: i for i, u in enumerate(self.units)}
        waiting = list(self.units)  # not yet admitted
        active: dict[str, dict] = {}  # unit_id -> {"ref", "values", "records", "left"}
        ready: list = []  # Task
        running: dict = {}  # record ref -> (task, actor, shape, value ref)
        cap = max(2, 2 * self.cpu_slots)
        try:
            self._warm()
            while waiting or running or ready:
                while waiting and len(active) < cap:
                    u = waiting.pop(0)
                    active[u.unit_id] = {"ref": ray.put(u), "values": {}, "records": [],
                                         "left": {t.key: t for t in self.graphs[u.unit_id]}}
                    ready += [t for t in self.graphs[u.unit_id] if not t.deps]
                ready.sort(key=lambda t: order[t.unit.unit_id])
                for task in list(ready):
                    if task.unit.unit_id not in active:  # its unit failed
                        ready.remove(task)
                        continue
                    shape = self.shape_of(task)
                    actor = self._actor(shape)
                    if actor is None:
                        continue
                    ready.remove(task)
                    st = active[task.unit.unit_id]
                    prior = st["records"] if task.last else []
                    value_ref, record_ref = actor.run.remote(replace(task, unit=None), [self.frames_ref], prior, self.sink, st["ref"],
                                                             *[st["values"][k] for k in task.deps])
                    running[record_ref] = (task, actor, shape, value_ref)
                if not running:
                    if ready:  # pragma: no cover -- every shape has a quota of at least one actor
                        raise RuntimeError("no Ray actor could be started for the ready steps")
                    continue
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    ready += self._collect(ref, running.pop(ref), active)
        finally:
            for pool in self.alive.values():
                for actor in pool:
                    ray.kill(actor, no_restart=True)
        return self.outcomes

    def _collect(self, ref, entry, active: dict) -> list:
        """Handle a finished step; returns the unit's steps it made ready."""
        task, actor, shape, value_ref = entry
        uid = task.unit.unit_id
        st = active.get(uid)
        try:
            record = ray.get(ref)
            self.idle.setdefault(shape, []).append(actor)
        except ray.exceptions.RayTaskError as err:  # the step's own code raised: not retried, a value
            self.idle.setdefault(shape, []).append(actor)
            cause = err.cause if err.cause is not None else err
            return self._fail(task, active, f"{type(cause).__name__}: {cause}", str(err))
        except ray.exceptions.RayError as err:  # the worker died more often than Ray retries
            self.alive[shape].remove(actor)
            ray.kill(actor, no_restart=True)
            return self._fail(task, active, f"{type(err).__name__}: {str(err).splitlines()[0]}", str(err))
        if st is None:  # the unit failed meanwhile
            return []
        st["records"].append(record)
        st["values"][task.key] = value_ref
        del st["left"][task.key]
        if task.last:
            result = ray.get(value_ref)
            del active[uid]
            self.outcomes.append(result)
            self.on_result(result)
            return []
        done = set(st["values"])
        return [t for t in st["left"].values() if task.key in t.deps and set(t.deps) <= done]

    def _fail(self, task, active: dict, error: str, tb: str) -> list:
        from fleet.training.unit import UnitFailure

        if active.pop(task.unit.unit_id, None) is not None:
            failure = UnitFailure.of(task.unit, error, tb)
            self.outcomes.append(failure)
            self.on_result(failure)
        return []


def warn_no_gpu(asked: bool, cluster_gpus: float) -> None:
    """Warn once when GPUs are asked for on a cluster that has none (the steps then train on CPU)."""
    if asked and cluster_gpus == 0:
        warnings.warn("GPUs asked for but the Ray cluster has no GPU: units train on CPU", FleetWarning, stacklevel=3)
