"""Backends run training units: in-process (local) or in a pool of Ray actors (ray).

Both take the same units and call the same :func:`fleet.training.unit.train_unit`, so they
give identical results for the same seed. Ray is imported only in :mod:`.ray_backend`.

The bars reach the units as ``frames``, a ``Mapping[str, DataFrame]``: in a run, the
:class:`~fleet.data.bars.BarReader` of the run's bar cache, so a unit's step reads its own assets where
it runs and the driver never sends bars (a plain dict of frames works too, e.g. in tests).

Per-fold work of the driver (each fold's market fit) goes through ``Backend.map``: ``fn(**shared, **item)``
per item, in the driver's process (local) or as Ray tasks with ``shared`` put once in the object store (ray);
results come back in the items' order and an error in one item is raised as itself.

A unit that raises is reported as a :class:`~fleet.training.unit.UnitFailure` value through the
same ``on_result`` callback; the backend goes on with the other units. Only an interrupt
(``KeyboardInterrupt``) or a backend that cannot start stops a run.

With a ``sink`` (the run's :class:`~fleet.store.UnitStore`), the worker that trained a unit saves its result
where the run is written (prediction rows, model, the rest) and reports only the small rest to the driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Protocol, Union

import pandas as pd

from fleet.config import Backend as BackendName
from fleet.config import ResourcesConfig

if TYPE_CHECKING:  # not imported at run time: a Ray actor's worker imports this package before it may
    # load torch, and fleet.training.unit brings scikit-learn (OpenMP load order, fleet.models._openmp)
    from fleet.training.unit import TrainingUnit, UnitFailure, UnitResult

Outcome = Union["UnitResult", "UnitFailure"]
OnResult = Callable[[Outcome], None]
#: Saves a unit's result where the run is written (:class:`fleet.store.UnitStore`): given to a
#: backend, the worker that trained a unit saves it before reporting it, and a failed save is that unit's failure.
UnitSink = Any
#: ``train_unit`` or a stand-in with its signature (tests inject failing units this way).
TrainFn = Callable[["TrainingUnit", Mapping[str, pd.DataFrame]], "UnitResult"]


class Backend(Protocol):
    """Runs units and reports each outcome (result or failure) as it finishes."""

    def start(self, torch_first: bool = False, gpu_steps: bool = False) -> None:
        """Begin starting up (Ray: connect and warm the actors in the background) while the driver loads the
        data; returns at once. ``torch_first``: the run trains a torch network; ``gpu_steps``: some of its steps may
        ask for a GPU."""

    def describe(self) -> str: ...

    def nodes(self) -> int: ...

    def run(self, units: list["TrainingUnit"], frames: Mapping[str, pd.DataFrame], on_result: OnResult, *,
            sink: UnitSink | None = None, follow: "OutputStream | None" = None) -> list[Outcome]: ...

    def map(self, fn: Callable[..., Any], items: list[dict], shared: dict) -> list: ...

    def close(self, wait: bool = True) -> None:
        """Release what the backend holds. ``wait=False`` (the run failed): return without waiting for a start still
        under way (it is undone in the background), so that the error is reported at once."""


def make_backend(resources: ResourcesConfig, *, train_fn: TrainFn | None = None) -> Backend:
    """The backend named by ``resources.backend`` (``local`` or ``ray``).

    Args:
        resources: backend, Ray address and per-unit CPUs / GPUs.
        train_fn: the function trained per unit; None (:func:`~fleet.training.unit.train_unit`) except in tests.
    """
    if train_fn is None:
        from fleet.training.unit import train_unit as train_fn
    if BackendName(resources.backend) is BackendName.ray:
        from fleet.training.backends.ray_backend import RayBackend

        return RayBackend(address=resources.address, num_cpus=resources.num_cpus, num_gpus=resources.num_gpus,
                          train_fn=train_fn)
    from fleet.training.backends.local import LocalBackend

    return LocalBackend(train_fn=train_fn)
