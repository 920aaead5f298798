"""Ray backend: a pool of Ray actors, one unit per actor call, the bars shared once through the object store.

Ray patterns followed (Ray docs, ``ray-core/patterns``): the actor is a thin shell around the
plain :func:`~fleet.training.unit.train_unit`; the bars are ``ray.put`` once and passed by
reference (zero-copy reads of numpy buffers on each node); results are gathered with
``ray.wait`` as they finish; every actor asks for explicit ``num_cpus`` / ``num_gpus``.

Fault tolerance is Ray's own (``ray-core/fault_tolerance/actors``): actors are created with
``max_restarts`` and ``max_task_retries``, so when a worker process dies (SIGKILL, OOM killer,
node loss) Ray restarts the actor and re-runs the unit it was training; ``train_unit`` is a
pure function, so the retried unit gives the same result. Application errors are not retried
(Ray retries actor tasks on system failures only): they come back as ``RayTaskError`` and are
reported as :class:`~fleet.training.unit.UnitFailure` values while the other units go on.

Actors are reused across units of a run (as many actors as can run at once, each trained
unit one actor call): starting an actor costs ~2 s here (a fresh Python importing pandas,
scikit-learn, statsmodels), which would dominate sub-second units if every unit had its own.
"""

from __future__ import annotations

import logging
import warnings

import pandas as pd
import ray

from fleet.errors import ConfigError, FleetWarning

# fleet.training.unit (and through it scikit-learn) is imported by the functions that use it, not here:
# this module is what an actor's worker process imports first, and an actor that trains a CNN or the MLP
# gate must load torch before scikit-learn (fleet.models._openmp).

#: Times Ray restarts a unit's actor after its process dies, per actor.
MAX_RESTARTS = 3
#: Times Ray re-submits the unit an actor was training when its process died (system failures only).
MAX_TASK_RETRIES = 3


@ray.remote
class UnitTrainer:
    """Actor shell: trains one unit per call and notes the Ray node it ran on.

    Args:
        train_fn: None for :func:`~fleet.training.unit.train_unit` (tests pass a stand-in with its signature).
        torch_first: import torch before anything else of fleet loads scikit-learn in this worker (the
            run's units train a CNN or the MLP gate; :mod:`fleet.models._openmp`).
    """

    def __init__(self, train_fn=None, torch_first: bool = False):
        if torch_first:
            from fleet.models._openmp import torch_first as load_torch_first

            load_torch_first()
        if train_fn is None:
            from fleet.training.unit import train_unit as train_fn
        self.train_fn = train_fn
        self._frames_ref = None
        self._frames: dict[str, pd.DataFrame] | None = None

    def train(self, unit: "TrainingUnit", frames_box: list, sink=None) -> "UnitResult":
        """Train ``unit``; ``frames_box`` is ``[ObjectRef]`` of the run's bars (symbol -> frame).

        With ``sink`` (a run on shared storage such as ``s3://``), the actor saves the result there
        itself, after noting its node, before returning it; an error while saving fails the unit.

        The reference is passed inside a list so Ray does not resolve it for every call: the actor
        fetches the bars once (zero-copy numpy buffers from the object store) and keeps them for
        the next units of the run, instead of rebuilding every asset's DataFrame per unit.
        """
        ref = frames_box[0]
        if self._frames is None or ref != self._frames_ref:
            self._frames, self._frames_ref = ray.get(ref), ref
        result = self.train_fn(unit, self._frames)
        ctx = ray.get_runtime_context()
        result.node_id = ctx.get_node_id()
        result.resources = {k: float(v) for k, v in ctx.get_assigned_resources().items()}
        if sink is not None:
            sink.save(result.unit_id, result)
        return result


class RayBackend:
    """Runs units on a pool of Ray actors (one unit per actor call).

    Args:
        address: Ray address of a running cluster; None follows ``ray.init``: ``RAY_ADDRESS`` when
            set (inside ``ray job submit`` it names the job's cluster), else the latest cluster
            ``ray start`` began on this machine, else a new local Ray.
        num_cpus: CPUs each actor reserves (fractions allowed).
        num_gpus: default GPUs per actor (fractions allowed); ignored with a warning when the
            cluster has no GPU. Per unit, the request is ``TrainingUnit.num_gpus`` (planning raises
            it for units with a CNN expert), used only when the cluster has GPUs.
        train_fn: function trained per unit (None: :func:`~fleet.training.unit.train_unit`; tests pass a
            stand-in).
    """

    def __init__(self, address: str | None = None, num_cpus: float = 1.0, num_gpus: float = 0.0,
                 train_fn=None):
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.train_fn = train_fn
        self._started = False

    def _connect(self) -> None:
        if ray.is_initialized():
            return
        try:
            ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING,
                     log_to_driver=True)
        except ConnectionError as err:
            raise ConfigError(f"--address={self.address!r}: could not connect to a Ray cluster ({err})") from None
        self._started = True

    def describe(self) -> str:
        self._connect()
        res = ray.cluster_resources()
        return (f"ray ({len(ray.nodes())} node(s), {res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU; "
                f"each actor asks for num_cpus={self.num_cpus:g}, num_gpus={self._gpus():g}; "
                f"max_restarts={MAX_RESTARTS}, max_task_retries={MAX_TASK_RETRIES})")

    def _gpus(self) -> float:
        if self.num_gpus > 0 and ray.cluster_resources().get("GPU", 0) == 0:
            return 0.0
        return self.num_gpus

    def slots(self) -> int:
        """How many actors can run at once with the per-actor CPUs / GPUs asked for (>= 1)."""
        res = ray.cluster_resources()
        slots = int(res.get("CPU", 1) // self.num_cpus)
        num_gpus = self._gpus()
        if num_gpus > 0:
            slots = min(slots, int(res.get("GPU", 0) // num_gpus))
        return max(1, slots)

    @staticmethod
    def unit_gpus(unit: "TrainingUnit", cluster_gpus: float) -> float:
        """GPUs to reserve for ``unit``: its planned request, or 0 when the cluster has no GPU."""
        return float(unit.num_gpus) if cluster_gpus > 0 else 0.0

    def _slots(self, units) -> tuple[float, int]:
        """(the cluster's GPUs, how many actors its CPUs hold); warns when GPUs are asked for and there are
        none, ConfigError when one actor asks for more CPUs than the cluster has."""
        res = ray.cluster_resources()
        cluster_gpus = float(res.get("GPU", 0))
        if (self.num_gpus > 0 or any(u.num_gpus > 0 for u in units)) and cluster_gpus == 0:
            warnings.warn("GPUs asked for but the Ray cluster has no GPU: units train on CPU",
                          FleetWarning, stacklevel=3)
        if res.get("CPU", 0) < self.num_cpus:
            raise ConfigError(f"num_cpus={self.num_cpus:g} per unit but the Ray cluster has only "
                              f"{res.get('CPU', 0):g} CPU: lower --num-cpus")
        return cluster_gpus, max(1, int(res.get("CPU", 1) // self.num_cpus))

    def run(self, units: list["TrainingUnit"], frames: dict[str, pd.DataFrame], on_result, *, sink=None) -> list:
        """Train every unit; returns (and reports through ``on_result``) a result or a failure per unit.

        ``sink``: when given, each actor saves its unit's result through it (the sink is pickled to the
        actor, which opens the run's filesystem itself; on a cluster every node needs the storage's
        credentials).

        Actors are pooled by their GPU request (CNN units may ask for a GPU fraction, GBM units for
        none); at most as many actors live as the cluster's CPUs allow, and a shape's pool also
        stops at what the cluster's GPUs allow.

        Raises:
            ConfigError: the cluster has fewer CPUs than one actor asks for.
        """
        from fleet.models.factory import needs_torch
        from fleet.training.unit import UnitFailure, train_unit

        self._connect()
        cluster_gpus, cpu_slots = self._slots(units)
        torch_first = any(needs_torch(u.config.model) for u in units)
        train_fn = None if self.train_fn in (None, train_unit) else self.train_fn

        def capacity(gpus: float) -> int:
            return cpu_slots if gpus == 0 else max(1, min(cpu_slots, int(cluster_gpus // gpus)))

        frames_ref = ray.put(frames)  # once: every call gets the reference, not a copy
        pending = list(units)
        idle: dict[float, list] = {}
        alive: dict[float, list] = {}
        running: dict = {}
        outcomes: list = []

        def actor_for(gpus: float):
            """An idle actor of this shape, a new one if there is room, else None."""
            if idle.get(gpus):
                return idle[gpus].pop()
            n_alive = sum(len(v) for v in alive.values())
            if n_alive >= cpu_slots:
                # Free a slot held by an idle actor of another shape, if any.
                for other, pool in idle.items():
                    if other != gpus and pool:
                        victim = pool.pop()
                        alive[other].remove(victim)
                        ray.kill(victim, no_restart=True)
                        n_alive -= 1
                        break
            if n_alive >= cpu_slots or len(alive.get(gpus, [])) >= capacity(gpus):
                return None
            actor = UnitTrainer.options(num_cpus=self.num_cpus, num_gpus=gpus, max_restarts=MAX_RESTARTS,
                                        max_task_retries=MAX_TASK_RETRIES).remote(train_fn, torch_first)
            alive.setdefault(gpus, []).append(actor)
            return actor

        try:
            while pending or running:
                for unit in list(pending):
                    gpus = self.unit_gpus(unit, cluster_gpus)
                    actor = actor_for(gpus)
                    if actor is None:
                        continue
                    pending.remove(unit)
                    running[actor.train.remote(unit, [frames_ref], sink)] = (unit, actor, gpus)
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    unit, actor, gpus = running.pop(ref)
                    outcome, reusable = _outcome(ref, unit, UnitFailure)
                    if reusable:
                        idle.setdefault(gpus, []).append(actor)
                    else:
                        alive[gpus].remove(actor)
                        ray.kill(actor, no_restart=True)
                    on_result(outcome)
                    outcomes.append(outcome)
        finally:
            for pool in alive.values():
                for actor in pool:
                    ray.kill(actor, no_restart=True)
        return outcomes

    def close(self) -> None:
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False


def _outcome(ref, unit, failure_cls) -> tuple:
    """(the unit's result or failure, whether its actor can take another unit) of a finished call."""
    try:
        return ray.get(ref), True
    except ray.exceptions.RayTaskError as err:
        # An exception raised by the unit's own code: not retried, reported as a value.
        cause = err.cause if err.cause is not None else err
        return failure_cls.of(unit, f"{type(cause).__name__}: {cause}", str(err)), True
    except ray.exceptions.RayError as err:
        # The worker died more often than max_restarts / max_task_retries allow.
        return failure_cls.of(unit, f"{type(err).__name__}: {str(err).splitlines()[0]}", str(err)), False
