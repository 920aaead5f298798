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

import os
import socket
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fleet.config import FleetConfig
from fleet.evaluation.splits import Fold
from fleet.models.artifact import UnitModel
from fleet.evaluation.costaware import apply_positions
from fleet.training.bars import bar_columns
from fleet.training.policy_unit import unit_meta, unit_policy

__all__ = ["TrainingUnit", "UnitFailure", "UnitModel", "UnitResult", "bar_columns", "train_unit"]
# UnitModel (the served artifact) lives in fleet.models.artifact; the name stays importable here because
# runs pickled before issue 15 name fleet.training.unit.UnitModel (fleet.models.artifact.MOVED).


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
        is_final: True for the last fold, whose fitted model is kept.
        num_gpus: GPUs this unit asks Ray for when the cluster has any (planning sets it for units
            whose experts include a CNN; GBM-only units ask for CPUs only).
    """

    unit_id: str
    group: str
    fold: Fold
    timeline_end: pd.Timestamp
    assets: dict[str, int]
    cluster_of: dict[str, int]
    factor: pd.Series | None
    config: FleetConfig
    is_final: bool = False
    num_gpus: float = 0.0

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
            ``cluster`` (the asset's cluster in this fold's clustering), and per expert ``p_<expert>`` (its own P(up), refitted
            on the full training window) and ``w_<expert>`` (its gate weight; 1 for a single expert).
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
    predictions: pd.DataFrame
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
    policy = unit_policy(cfg, model, ds.X_train, ds.y_train, ds.train_meta, frames)  # training window only
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
        kept = UnitModel(group=unit.group, assets={s: unit.assets[s] for s in ds.preprocessors}, estimator=model,
                         preprocessors=ds.preprocessors, feature_names=ds.feature_names,
                         trained_until=unit.fold.train_end, config=cfg.to_dict(), policy=policy, meta=meta)
    return UnitResult(
        unit_id=unit.unit_id, group=unit.group, fold=unit.fold.index, assets=sorted(unit.assets), predictions=preds,
        d_by_asset={s: p.d for s, p in ds.preprocessors.items()}, n_train=len(ds.X_train), n_test=len(ds.X_test),
        wall_seconds=0.0, cpu_seconds=0.0, host=socket.gethostname(),
        pid=os.getpid(), model=kept, skipped_assets=ds.skipped_assets, skipped_features=ds.skipped_features,
        gate=gate, policy=policy)
