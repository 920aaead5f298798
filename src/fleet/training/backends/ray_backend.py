"""Ray backend: one Ray actor per training unit, the bars shared once through the object store.

Ray patterns followed (Ray docs, ``ray-core/patterns``): the actor is a thin shell around the
plain :func:`~fleet.training.unit.train_unit`; the bars are ``ray.put`` once and passed by
reference (zero-copy reads of numpy buffers on each node); results are gathered with
``ray.wait`` as they finish; every actor asks for explicit ``num_cpus`` / ``num_gpus``.
"""

from __future__ import annotations

import logging
import warnings

import pandas as pd
import ray

from fleet.errors import ConfigError, FleetError, FleetWarning
from fleet.training.unit import TrainingUnit, UnitResult, train_unit


@ray.remote
class UnitTrainer:
    """Actor shell: trains one unit and notes the Ray node it ran on."""

    def train(self, unit: TrainingUnit, frames: dict[str, pd.DataFrame]) -> UnitResult:
        result = train_unit(unit, frames)
        ctx = ray.get_runtime_context()
        result.node_id = ctx.get_node_id()
        result.resources = {k: float(v) for k, v in ctx.get_assigned_resources().items()}
        return result


class RayBackend:
    """Runs each unit in its own Ray actor.

    Args:
        address: Ray address of a running cluster; None uses ``RAY_ADDRESS`` when set (e.g.
            inside ``ray job submit``) and otherwise starts a local Ray on this machine.
        num_cpus: CPUs each unit's actor reserves (fractions allowed).
        num_gpus: GPUs each unit's actor reserves (fractions allowed); ignored with a warning
            when the cluster has no GPU. Per unit, the request is ``TrainingUnit.num_gpus`` (planning
            raises it for units with a CNN expert), used only when the cluster has GPUs.
    """

    def __init__(self, address: str | None = None, num_cpus: float = 1.0, num_gpus: float = 0.0):
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
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
                f"each unit's actor asks for num_cpus={self.num_cpus:g}, num_gpus={self._gpus():g})")

    def _gpus(self) -> float:
        if self.num_gpus > 0 and ray.cluster_resources().get("GPU", 0) == 0:
            return 0.0
        return self.num_gpus

    @staticmethod
    def unit_gpus(unit: TrainingUnit, cluster_gpus: float) -> float:
        """GPUs to reserve for ``unit``: its planned request, or 0 when the cluster has no GPU."""
        return float(unit.num_gpus) if cluster_gpus > 0 else 0.0

    def run(self, units: list[TrainingUnit], frames: dict[str, pd.DataFrame], on_result) -> list[UnitResult]:
        self._connect()
        res = ray.cluster_resources()
        cluster_gpus = float(res.get("GPU", 0))
        if self.num_gpus > 0 and cluster_gpus == 0:
            warnings.warn(f"num_gpus={self.num_gpus:g} asked for but the Ray cluster has no GPU: units train on CPU",
                          FleetWarning, stacklevel=2)
        if res.get("CPU", 0) < self.num_cpus:
            raise ConfigError(f"num_cpus={self.num_cpus:g} per unit but the Ray cluster has only "
                              f"{res.get('CPU', 0):g} CPU: lower --num-cpus")
        # Keep only as many actors alive as can run at once; the rest would sit idle holding memory.
        # (GPU units beyond the GPUs queue inside Ray until one frees up.)
        slots = max(1, int(res.get("CPU", 1) // self.num_cpus))
        frames_ref = ray.put(frames)
        pending = list(units)
        running: dict[ray.ObjectRef, tuple[TrainingUnit, ray.actor.ActorHandle]] = {}
        results: list[UnitResult] = []
        try:
            while pending or running:
                while pending and len(running) < slots:
                    unit = pending.pop(0)
                    gpus = self.unit_gpus(unit, cluster_gpus)
                    actor = UnitTrainer.options(num_cpus=self.num_cpus, num_gpus=gpus).remote()
                    running[actor.train.remote(unit, frames_ref)] = (unit, actor)
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    unit, actor = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as err:
                        cause = err.cause
                        if isinstance(cause, FleetError):
                            raise type(cause)(f"unit {unit.unit_id}: {cause}") from None
                        raise
                    finally:
                        ray.kill(actor)  # frees its CPUs for the next unit
                    on_result(result)
                    results.append(result)
        finally:
            for _, actor in running.values():
                ray.kill(actor)
        return results

    def close(self) -> None:
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False
