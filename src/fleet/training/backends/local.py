"""In-process backend: a plain loop over :func:`train_unit`."""

from __future__ import annotations

import pandas as pd

from fleet.training.unit import TrainingUnit, UnitResult, train_unit


class LocalBackend:
    """Runs units one after another in this process (scikit-learn may still use threads)."""

    def describe(self) -> str:
        return "local (in-process loop)"

    def run(self, units: list[TrainingUnit], frames: dict[str, pd.DataFrame], on_result) -> list[UnitResult]:
        results = []
        for unit in units:
            result = train_unit(unit, frames)
            on_result(result)
            results.append(result)
        return results

    def close(self) -> None:
        pass
