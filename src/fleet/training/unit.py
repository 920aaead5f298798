"""A training unit and the pure function that trains it.

A *training unit* is one group of assets — one asset (islands), one correlation cluster
(hierarchical) or the whole fleet (global) — for one walk-forward fold. Grouping is decided
per fold because clusters are fitted on each fold's training window (no look-ahead); the
last fold's units are the models that are saved and served.

:func:`train_unit` is a pure function of (unit, bars): same inputs, same outputs, on any
backend. It runs the unit's task graph (:mod:`fleet.training.graph`) in this process; the local
backend loops over it and the Ray backend runs the same steps as Ray tasks, which is what the
local/ray parity tests rely on.
"""

from __future__ import annotations

import pandas as pd

from fleet.models.artifact import UnitModel
from fleet.training.bars import bar_columns
from fleet.training.records import TrainingUnit, UnitFailure, UnitResult

__all__ = ["TrainingUnit", "UnitFailure", "UnitModel", "UnitResult", "bar_columns", "train_unit"]
# UnitModel (the served artifact) lives in fleet.models.artifact and the records in fleet.training.records; the
# names stay importable here because runs pickled earlier name fleet.training.unit.UnitModel / .UnitResult
# (fleet.models.artifact.MOVED).


def train_unit(unit: TrainingUnit, frames: dict[str, pd.DataFrame]) -> UnitResult:
    """Train one unit on its fold's training window and predict its test block.

    Runs the unit's task graph in this process (:func:`fleet.training.graph.run_unit`: prepare, inner-fold fits,
    gate, full-window fits, assemble); the Ray backend runs the same steps as tasks.

    Args:
        unit: the unit description.
        frames: symbol -> bars of (at least) the unit's assets.

    Returns:
        A :class:`UnitResult`; its predictions cover the unit's assets over the fold's test block, and its
        ``tasks`` hold one record per step.

    Raises:
        DataError: when none of the unit's assets has enough training data in this fold.
    """
    from fleet.training.graph import run_unit

    return run_unit(unit, frames)
