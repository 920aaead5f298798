"""Backends run training units: in-process (local) or one Ray actor per unit (ray).

Both take the same units and call the same :func:`fleet.training.unit.train_unit`, so they
give identical results for the same seed. Ray is imported only in :mod:`.ray_backend`.
"""

from __future__ import annotations

from typing import Callable, Protocol

import pandas as pd

from fleet.config import Backend as BackendName
from fleet.config import ResourcesConfig
from fleet.training.unit import TrainingUnit, UnitResult

OnResult = Callable[[UnitResult], None]


class Backend(Protocol):
    """Runs units and reports each result as it finishes."""

    def describe(self) -> str: ...

    def run(self, units: list[TrainingUnit], frames: dict[str, pd.DataFrame], on_result: OnResult) -> list[UnitResult]: ...

    def close(self) -> None: ...


def make_backend(resources: ResourcesConfig) -> Backend:
    """The backend named by ``resources.backend`` (``local`` or ``ray``)."""
    if BackendName(resources.backend) is BackendName.ray:
        from fleet.training.backends.ray_backend import RayBackend

        return RayBackend(address=resources.address, num_cpus=resources.num_cpus, num_gpus=resources.num_gpus)
    from fleet.training.backends.local import LocalBackend

    return LocalBackend()
