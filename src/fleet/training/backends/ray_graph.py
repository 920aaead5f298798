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
* Output tasks (``follow``, the run's :class:`~fleet.training.output_stream.OutputStream`): a batch of assets
  whose units are all done runs on an idle actor whenever no unit step is waiting, so on a cluster the outputs
  overlap the training, on actors that have imported everything already; once every unit is done, what is left
  of the stream (the last batches, then the pooled groups) runs on the same actors. An output task that raised, or
  was lost with its actor (more than :data:`FOLLOW_LOSSES` times), stops this for the run and the units train
  on; the driver then runs every task the stream has not collected (:func:`fleet.training.artifacts.evaluate`),
  where an error of the task's own code is raised as itself.
* Faults: actors have Ray's ``max_restarts`` / ``max_task_retries`` (steps are pure, so a re-run step gives the
  same value). An application error fails its unit only (a :class:`UnitFailure` value). A system failure (an
  actor lost more often than Ray retries, or a step's input lost with its node) starts the unit again from its
  first step on fresh actors, :data:`UNIT_RESTARTS` time(s), then fails it naming the lost nodes.
* Node loss: no wait is unbounded. ``ray.wait`` returns every :data:`~.ray_nodes.NODE_CHECK_S` seconds to look
  at the nodes; after a loss the pool shrinks to what the surviving nodes hold (else the actor Ray restarts, or
  a fresh one, would wait forever for CPUs that idle actors keep), and the units whose steps no alive node can
  hold fail after :data:`~.ray_nodes.NODE_WAIT_S` seconds.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import replace

import ray

from fleet.errors import FleetWarning
from fleet.training.backends.ray_nodes import NODE_WAIT_S, NodeWatch

# fleet.training.graph / unit (and through them scikit-learn) are imported where they are used: a StepWorker's
# process imports this module first, and one that trains a CNN or the MLP gate must load torch before
# scikit-learn (fleet.models._openmp).

#: Times Ray restarts an actor after its process dies, per actor.
MAX_RESTARTS = 3
#: Times Ray re-submits the step an actor was running when its process died (system failures only).
MAX_TASK_RETRIES = 3
#: Times a unit starts again from its first step on fresh actors after a system failure of one of its steps.
UNIT_RESTARTS = 1
#: Output tasks lost with their actors before the run leaves the rest of its output tasks to the driver.
FOLLOW_LOSSES = 1
_FOLLOW_OFF = FOLLOW_LOSSES + 1


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

    def follow(self, task):
        """Run one output task (a :class:`~fleet.training.output_stream.FollowTask`); returns (value, record)."""
        return task()

    def call(self, fn, shared: dict, item: dict):
        """``fn(**shared, **item)``: one item of :meth:`RayBackend.map` (``shared`` arrives resolved)."""
        return fn(**shared, **item)


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
        watch: the cluster's nodes (:class:`~.ray_nodes.NodeWatch`); None: a new one.
        follow: the run's :class:`~fleet.training.output_stream.OutputStream`, or None.
        warm: idle :class:`StepWorker` actors of shape (num_cpus, 0) already started (with ``torch_first``): taken
            into the CPU pool up to its quota, the rest killed; the run kills them all at its end.
    """

    def __init__(self, units, frames, on_result, sink, *, shape_of, cpu_slots: int, cluster_gpus: float,
                 train_fn=None, torch_first: bool = False, watch: NodeWatch | None = None, follow=None,
                 warm: list | None = None):
        from fleet.training.graph import unit_graph

        self.torch_first = torch_first
        self.graphs = {u.unit_id: unit_graph(u, train_fn) for u in units}
        self.units = list(units)
        self.on_result, self.sink, self.shape_of = on_result, sink, shape_of
        shapes = {shape_of(t) for g in self.graphs.values() for t in g}
        self.cpu_slots = self.capacity = cpu_slots  # capacity: what the alive nodes hold now (<= cpu_slots)
        self.quota = pool_sizes(shapes, cpu_slots, cluster_gpus) if shapes else {}
        self.frames_ref = ray.put(frames)
        self.watch = watch if watch is not None else NodeWatch()
        self.idle: dict = {}
        self.alive: dict = {}
        self.outcomes: list = []
        self.restarts: dict[str, int] = {}  # unit_id -> times started again after a system failure
        self.starved: dict = {}  # shape -> since when (monotonic s) no alive node holds it
        self.waiting: list = []  # units not yet admitted
        self.active: dict[str, dict] = {}  # unit_id -> {"ref", "values", "records", "left"}
        self.ready: list = []  # Task
        self.running: dict = {}  # record ref -> (task, actor, shape, value ref, the unit's state)
        self.follow = follow
        self.follow_ready: list = []  # FollowTask
        self.follow_running: dict = {}  # ref -> (FollowTask, actor, shape)
        self.follow_lost = 0  # output tasks lost with their actor: after FOLLOW_LOSSES, the driver runs the rest
        self.failed = False  # a unit failed: the run ends without outputs
        self.warm = list(warm or [])

    def _n_alive(self) -> int:
        return sum(len(v) for v in self.alive.values())

    def _actor(self, shape):
        """An idle actor of ``shape``, a new one within its quota and the alive nodes' capacity, else None."""
        if self.idle.get(shape):
            return self.idle[shape].pop()
        n_alive = self._n_alive()
        mine = len(self.alive.get(shape, []))
        if n_alive >= self.capacity and mine == 0:  # fewer slots than shapes: free an idle actor of another
            for other, pool in self.idle.items():
                if pool:
                    self._drop(pool.pop(), other)
                    n_alive -= 1
                    break
        if n_alive >= self.capacity or mine >= self.quota.get(shape, 1):
            return None
        cpus, gpus = shape
        actor = StepWorker.options(num_cpus=cpus, num_gpus=gpus, max_restarts=MAX_RESTARTS,
                                   max_task_retries=MAX_TASK_RETRIES).remote(self.torch_first)
        self.alive.setdefault(shape, []).append(actor)
        return actor

    def _drop(self, actor, shape) -> None:
        """Kill ``actor`` for good (no Ray restart) and forget it; its resources go back to the cluster."""
        if actor in self.alive.get(shape, []):
            self.alive[shape].remove(actor)
        ray.kill(actor, no_restart=True)

    def _release(self, actor, shape) -> None:
        """``actor`` finished its step: idle again, or killed when the pool is larger than the alive nodes hold
        (after a node loss an actor Ray restarts, or a fresh one, waits for the CPUs an idle actor keeps)."""
        if actor not in self.alive.get(shape, []):
            return
        if self._n_alive() > self.capacity:
            self._drop(actor, shape)
        else:
            self.idle.setdefault(shape, []).append(actor)

    def _warm(self) -> None:
        """Start every pool's actors now (GPU shapes first), so they start side by side, while the first steps
        run, and not one at a time when a step of their shape is first ready (a start costs seconds). The actors
        handed over already started (``warm``) fill the CPU pool first."""
        cpu = next((s for s in self.quota if s[1] == 0), None)
        for actor in self.warm:
            if cpu is not None and len(self.alive.get(cpu, [])) < self.quota[cpu] and self._n_alive() < self.capacity:
                self.alive.setdefault(cpu, []).append(actor)
                self.idle.setdefault(cpu, []).append(actor)
            else:
                ray.kill(actor, no_restart=True)
        self.warm = []
        for shape in sorted(self.quota, key=lambda s: -s[1]):
            for _ in range(self.quota[shape]):
                if self._n_alive() >= self.capacity:
                    return
                actor = self._actor(shape)
                if actor is not None:
                    self.idle.setdefault(shape, []).append(actor)

    def run(self) -> list:
        """Run every graph; returns the outcomes (results or failures) in the order they finished.

        Never waits on a step without looking at the cluster's nodes every :data:`~.ray_nodes.NODE_CHECK_S`
        seconds (:meth:`_health`).
        """
        self.waiting = list(self.units)
        try:
            self._warm()
            while self.waiting or self.running or self.ready or self._more_follow():
                self._admit()
                self._dispatch()
                if self.running or self.follow_running:
                    done, _ = ray.wait([*self.running, *self.follow_running], num_returns=1,
                                       timeout=self.watch.check_s)
                    for ref in done:
                        if ref in self.follow_running:
                            self._collect_follow(ref, *self.follow_running.pop(ref))
                            continue
                        made_ready = self._collect(ref, self.running.pop(ref))  # may replace self.ready
                        self.ready += made_ready
                elif self.ready and self.capacity == 0:  # every node that held these steps is gone: wait a while
                    time.sleep(self.watch.check_s)
                elif self.ready:  # pragma: no cover -- every shape has a quota of at least one actor
                    raise RuntimeError("no Ray actor could be started for the ready steps")
                self._health()
        finally:
            for pool in self.alive.values():
                for actor in pool:
                    ray.kill(actor, no_restart=True)
        return self.outcomes

    def _admit(self) -> None:
        """Admit waiting units (at most ``2 x slots`` in flight: bounded object-store use)."""
        cap = max(2, 2 * self.cpu_slots)
        while self.waiting and len(self.active) < cap:
            u = self.waiting.pop(0)
            self.active[u.unit_id] = {"ref": ray.put(u), "values": {}, "records": [],
                                      "left": {t.key: t for t in self.graphs[u.unit_id]}}
            self.ready += [t for t in self.graphs[u.unit_id] if not t.deps]

    def _dispatch(self) -> None:
        """Submit ready steps to actors, earliest unit first."""
        order = {u.unit_id: i for i, u in enumerate(self.units)}
        self.ready.sort(key=lambda t: order[t.unit.unit_id])
        for task in list(self.ready):
            shape = self.shape_of(task)
            actor = self._actor(shape)
            if actor is None:
                continue
            self.ready.remove(task)
            st = self.active[task.unit.unit_id]
            prior = st["records"] if task.last else []
            value_ref, record_ref = actor.run.remote(replace(task, unit=None), [self.frames_ref], prior, self.sink,
                                                     st["ref"], *[st["values"][k] for k in task.deps])
            self.running[record_ref] = (task, actor, shape, value_ref, st)
        if not self.ready and self.follow_lost <= FOLLOW_LOSSES:  # idle actors take output tasks
            self._dispatch_follow()

    def _more_follow(self) -> bool:
        """Whether output tasks are left to run here: once every unit is done (none failed) and no output task is
        queued or running, the stream's next stage (:meth:`OutputStream.flush`); False without actors."""
        if self.follow is None or self.follow_running or self.follow_lost > FOLLOW_LOSSES:
            return bool(self.follow_running)
        if self.waiting or self.active or self.capacity == 0 or self.failed:
            return False
        if not self.follow_ready:
            self.follow_ready = self.follow.flush()
        return bool(self.follow_ready)

    def _dispatch_follow(self) -> None:
        """Output tasks on idle actors (or new ones within the pools' quotas), CPU-only actors first."""
        for shape in sorted(self.quota, key=lambda s: s[1]):
            while self.follow_ready:
                actor = self._actor(shape)
                if actor is None:
                    break
                task = self.follow_ready.pop(0)
                self.follow_running[actor.follow.remote(task)] = (task, actor, shape)

    def _collect_follow(self, ref, task, actor, shape) -> None:
        """A finished output task: its value to the stream. A task that raised stops the output tasks here (the
        driver runs it again and raises its error there, once every unit is saved); one lost with its actor is left
        for the driver to run again."""
        try:
            out = ray.get(ref)
        except ray.exceptions.RayTaskError as err:
            self._release(actor, shape)
            cause = err.cause if err.cause is not None else err
            self.follow_lost = self.follow_lost + 1 if isinstance(cause, ray.exceptions.RayError) else _FOLLOW_OFF
            return
        except ray.exceptions.RayError:
            self._drop(actor, shape)
            self.follow_lost += 1
            return
        self._release(actor, shape)
        self.follow.collect(task, out)

    def _collect(self, ref, entry) -> list:
        """Handle a finished step; returns the unit's steps it made ready."""
        task, actor, shape, value_ref, st = entry
        uid = task.unit.unit_id
        try:
            record = ray.get(ref)
        except ray.exceptions.RayTaskError as err:
            self._release(actor, shape)
            cause = err.cause if err.cause is not None else err
            if isinstance(cause, ray.exceptions.RayError):  # Ray's own error inside the step: an input lost
                return self._lost(task, st, cause)
            if self.active.get(uid) is st:  # the step's own code raised: not retried, a value
                self._forget(uid)
                self._fail(task.unit, f"{type(cause).__name__}: {cause}", str(err))
            return []
        except ray.exceptions.RayError as err:  # the actor is gone (more deaths than Ray retries, or its node)
            self._drop(actor, shape)
            return self._lost(task, st, err)
        self._release(actor, shape)
        if self.active.get(uid) is not st:  # the unit failed or was started again meanwhile
            return []
        st["records"].append(record)
        st["values"][task.key] = value_ref
        del st["left"][task.key]
        if task.last:
            try:
                result = ray.get(value_ref)
            except ray.exceptions.RayError as err:  # the value was lost with its node
                return self._lost(task, st, err)
            self._forget(uid)
            self.outcomes.append(result)
            self.on_result(result)
            if self.follow is not None:
                self.follow_ready += self.follow.unit_done(result)
            return []
        done = set(st["values"])
        return [t for t in st["left"].values() if task.key in t.deps and set(t.deps) <= done]

    def _lost(self, task, st: dict, err: Exception) -> list:
        """A system failure of one of the unit's steps (its actor lost after Ray's restarts and retries, or an
        input lost with its node): the unit starts again from its first step on fresh actors, at most
        :data:`UNIT_RESTARTS` times (steps are pure, so it gives the same result), then it fails naming the
        lost nodes."""
        uid = task.unit.unit_id
        if self.active.get(uid) is not st:
            return []
        self._forget(uid)
        lost = self.watch.describe_lost()
        what = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}" + (f" ({lost})" if lost else "")
        if self.restarts.get(uid, 0) < UNIT_RESTARTS:
            self.restarts[uid] = self.restarts.get(uid, 0) + 1
            self.waiting.insert(0, task.unit)
            warnings.warn(f"{uid}: its {task.phase} step was lost ({what[:200]}); the unit starts again on fresh "
                          "actors", FleetWarning, stacklevel=2)
            return []
        self._fail(task.unit, what, str(err))
        return []

    def _health(self) -> None:
        """Look at the nodes (:class:`NodeWatch`); after a node loss shrink the pool to what the alive nodes hold,
        and fail the units whose steps no alive node has been able to hold for :data:`NODE_WAIT_S` seconds."""
        gone = self.watch.check()
        if gone:
            warnings.warn(f"Ray node(s) {', '.join(g[:8] for g in gone)} lost; the run goes on with the "
                          f"surviving nodes ({self.watch.slots(self._cpu_shape())} step actor(s)), and the units "
                          "whose steps ran there start again", FleetWarning, stacklevel=2)
        if not self.watch.lost:
            return
        self.capacity = min(self.cpu_slots, self.watch.slots(self._cpu_shape()))
        excess = self._n_alive() - self.capacity
        for shape, pool in self.idle.items():
            while pool and excess > 0:
                self._drop(pool.pop(), shape)
                excess -= 1
        now = time.monotonic()
        for shape in self.quota:
            if self.watch.slots(shape) > 0:
                self.starved.pop(shape, None)
            elif now - self.starved.setdefault(shape, now) >= NODE_WAIT_S:
                self._fail_shape(shape)

    def _cpu_shape(self) -> tuple[float, float]:
        return (min((s[0] for s in self.quota), default=1.0), 0.0)

    def _fail_shape(self, shape) -> None:
        """Fail every unit still to run a step of ``shape``, which no alive node holds."""
        cpus, gpus = shape
        error = (f"NodeLost: no alive Ray node can hold a step asking for num_cpus={cpus:g}, num_gpus={gpus:g} "
                 f"(waited {NODE_WAIT_S:g} s for one; {self.watch.describe_lost()})")
        for uid, st in list(self.active.items()):
            if any(self.shape_of(t) == shape for t in st["left"].values()):
                self._forget(uid)
                self._fail(self.graphs[uid][0].unit, error, "")
        for unit in [u for u in self.waiting if any(self.shape_of(t) == shape for t in self.graphs[u.unit_id])]:
            self.waiting.remove(unit)
            self._fail(unit, error, "")
        for ref, (task, actor, s, _, _) in list(self.running.items()):
            if s == shape:  # its actor waits for a node that is gone
                del self.running[ref]
                self._drop(actor, s)
        self.starved.pop(shape, None)

    def _forget(self, uid: str) -> None:
        """Take the unit out of ``active`` with its ready steps (steps still running are ignored when they end)."""
        del self.active[uid]
        self.ready = [t for t in self.ready if t.unit.unit_id != uid]

    def _fail(self, unit, error: str, tb: str) -> None:
        """Report ``unit`` (already forgotten) as a :class:`UnitFailure`."""
        from fleet.training.unit import UnitFailure

        failure = UnitFailure.of(unit, error, tb)
        self.failed = True
        self.outcomes.append(failure)
        self.on_result(failure)


def warn_no_gpu(asked: bool, cluster_gpus: float) -> None:
    """Warn once when GPUs are asked for on a cluster that has none (the steps then train on CPU)."""
    if asked and cluster_gpus == 0:
        warnings.warn("GPUs asked for but the Ray cluster has no GPU: units train on CPU", FleetWarning, stacklevel=3)
