"""What a training unit is and what it returns: :class:`TrainingUnit`, :class:`UnitResult`, :class:`UnitFailure`.

A *training unit* is one group of assets — one asset (islands), one correlation cluster
(hierarchical) or the whole fleet (global) — for one walk-forward fold. These records sit below both
:mod:`fleet.training.graph` (the unit's steps, which build a :class:`UnitResult`) and
:mod:`fleet.training.unit` (``train_unit``, which runs the steps), so neither imports the other's
caller. ``fleet.training.unit`` re-exports the three names (runs pickled before this split name them there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from fleet.config import FleetConfig
from fleet.evaluation.splits import Fold
from fleet.features.spec import FeatureSpec
from fleet.models.artifact import UnitModel

__all__ = ["TrainingUnit", "UnitFailure", "UnitResult"]


@dataclass(frozen=True)
class TrainingUnit:
    """Everything one unit needs besides the bars themselves.

    Attributes:
        unit_id: ``"fold{k}/{group}"``, unique within a run.
        group: ``"cluster{c}"``, the symbol (islands) or ``"global"``.
        fold: walk-forward fold (train/test boundaries, UTC).
        timeline_end: last timestamp before the hold-out.
        assets: symbol -> registry id of the unit's assets.
        cluster_of: symbol -> cluster id in this fold's clustering (for reporting).
        factor: this fold's market factor on the aligned UTC grid (standardised), or None.
        config: the resolved run configuration.
        features: the run's feature settings (:meth:`FeatureSpec.from_config` of ``config``, built once per run):
            what the unit's dataset is built with and what its served model stores.
        is_final: True for the last fold, whose fitted model is kept.
        num_gpus: GPUs this unit asks Ray for when the cluster has any (planning sets it for units
            whose experts include a CNN; GBM-only units ask for CPUs only).
        run_units: units in the whole run, all folds (:func:`fleet.training.plan.with_run_size`); the tuned
            policy's SPA test shares the run's level among them.
    """

    unit_id: str
    group: str
    fold: Fold
    timeline_end: pd.Timestamp
    assets: dict[str, int]
    cluster_of: dict[str, int]
    factor: pd.Series | None
    config: FleetConfig
    features: FeatureSpec
    is_final: bool = False
    num_gpus: float = 0.0
    run_units: int = 1

    @property
    def seed(self) -> int:
        return int(self.config.seed)


@dataclass
class UnitResult:
    """What a unit returns to the driver.

    Attributes:
        predictions: out-of-sample rows of the fold's test block, columns ``timestamp`` (UTC),
            ``symbol``, ``fold``, ``p_up``, ``signal`` (0/1), ``y``, ``forward_return`` (log-return
            over the label horizon), ``return_1`` (log return of the next bar, for the
            marked-to-market curve), ``bar_number`` (position of the bar in the asset's data),
            ``cluster`` (the asset's cluster in this fold's clustering), and per expert ``p_<expert>`` (its own
            P(up), refitted on the full training window) and ``w_<expert>`` (its gate weight; 1 for a single expert).
            None once the unit's result is saved (:meth:`fleet.store.UnitStore.save`): the rows are then in
            ``parts``.
        parts: symbol -> the file (relative to the run's staging area) holding that asset's rows of this unit,
            set when the result is saved; the driver keeps only this, never the rows.
        model_info: the ``models/index.json`` entry of the unit's served model once it is saved (final fold only).
        d_by_asset: FFD order chosen per asset on this fold's training window.
        n_train, n_test: rows used.
        wall_seconds, cpu_seconds: from the first task's start to the last task's end, and the process CPU time
            summed over the unit's tasks (:func:`fleet.training.graph.finish_result`).
        started_unix: when the unit's first task started, seconds since the epoch (wall clock of the
            worker; with the driver's ``training.backend_started_unix`` in the manifest it shows how
            long a unit waited, e.g. for its actor to start).
        host, pid: where it ran; node_id is filled in by the Ray backend.
        model: the fitted :class:`UnitModel` for final-fold units, else None.
        skipped_assets: assets left out of this fold, with the reason.
        skipped_features: features left out for lack of input columns.
        tasks: one record per step of the unit's task graph (:func:`fleet.training.graph.task_record`), in the
            order they finished; ``manifest.json["tasks"]`` is their concatenation.
        gate: a mixture's gate record (``MixtureOfExpertsEnsemble.gate_summary``: gate, fallback expert
            or None, guard losses, inner folds, experts' inner out-of-fold scores); None for one expert.
    """

    unit_id: str
    group: str
    fold: int
    assets: list[str]
    predictions: pd.DataFrame | None
    d_by_asset: dict[str, float]
    n_train: int
    n_test: int
    wall_seconds: float
    cpu_seconds: float
    host: str
    pid: int
    node_id: str | None = None
    resources: dict | None = None
    model: UnitModel | None = None
    skipped_assets: dict[str, str] = field(default_factory=dict)
    skipped_features: tuple[str, ...] = ()
    started_unix: float | None = None
    gate: dict | None = None
    policy: dict | None = None
    tasks: list[dict] | None = None
    parts: dict[str, str] | None = None
    model_info: dict | None = None

    def timing(self) -> dict:
        """One manifest row: unit id, seconds, rows and the node that trained it."""
        return {"unit": self.unit_id, "group": self.group, "fold": self.fold, "assets": self.assets,
                "wall_seconds": round(self.wall_seconds, 3), "cpu_seconds": round(self.cpu_seconds, 3),
                "started_unix": self.started_unix, "n_train": self.n_train, "n_test": self.n_test,
                "host": self.host, "pid": self.pid,
                "node_id": self.node_id, "resources": self.resources, "skipped_assets": self.skipped_assets,
                "gate": self.gate, "policy": self.policy}


@dataclass
class UnitFailure:
    """A unit that could not be trained, as a value (the run goes on with the other units).

    Attributes:
        unit_id, group, fold: which unit.
        error: ``"<ExceptionType>: <message>"`` of the application error, or what Ray reported when
            the unit's worker died more often than Ray's restarts / retries allow.
        traceback: the remote or local traceback as text ("" when there is none).
    """

    unit_id: str
    group: str
    fold: int
    error: str
    traceback: str = ""

    @classmethod
    def of(cls, unit: TrainingUnit, error: str, traceback: str = "") -> "UnitFailure":
        return cls(unit_id=unit.unit_id, group=unit.group, fold=unit.fold.index, error=error, traceback=traceback)

    def to_dict(self) -> dict:
        """One row of ``failures.json``."""
        return {"unit": self.unit_id, "group": self.group, "fold": self.fold, "error": self.error,
                "traceback": self.traceback}
