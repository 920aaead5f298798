"""What one ``fleet train`` run carries from planning to its artifacts, and what it returns."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from fleet.config import FleetConfig
from fleet.data.panel import Panel
from fleet.data.registry import AssetRegistry
from fleet.evaluation.splits import Fold
from fleet.features.spec import FeatureSpec
from fleet.market.clustering import ClusterResult
from fleet.market.fold import FoldMarket
from fleet.store import RunDirectory
from fleet.training.unit import TrainingUnit

Echo = Callable[[str], None]


@dataclass
class RunContext:
    """One run's state, filled by the driver as it goes and read by :func:`fleet.training.artifacts.write_run`.

    Attributes:
        config: the resolved configuration. rundir: where the run is written (staging area).
        echo: where progress lines go. argv: the command line (recorded; None: ``sys.argv``).
        started: UTC start (of the first attempt when resuming). t0: ``time.perf_counter()`` at start.
        panel, source: the driver's share of the validated bars (a lean panel: close and volume, see
            ``Panel.frame_columns``) and where they came from. notes: lines for the manifest.
        bars: symbol -> the asset's full validated bars over the run's window, read from the run's bar cache
            (:class:`~fleet.data.bars.BarReader`); what the backends' units and the hold-out read.
        registry: the asset ids. folds, markets: the walk-forward folds and each one's market fit.
        timeline_end: last timestamp before the hold-out. units: every planned unit.
        backend_desc: the backend, in words. data_files: data file -> SHA-256.
        training: trained / loaded unit ids and the backend's timings (set after training).
        run_tasks: records of the run-level backend tasks (market fits, outputs; :class:`~fleet.training.graph.Timed`).
        features: the run's feature settings, built here once from ``config`` (:meth:`FeatureSpec.from_config`);
            the history check and every unit read them, and each unit's served model stores them.
        refit_window, refit_market: with ``--refit``, the refit's window (:func:`fleet.training.refit.refit_window`)
            and its market fit; None without.
    """

    config: FleetConfig
    rundir: RunDirectory
    echo: Echo
    argv: list[str] | None
    started: pd.Timestamp
    t0: float = field(default_factory=time.perf_counter)
    panel: Panel | None = None
    bars: Mapping[str, pd.DataFrame] | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)
    registry: AssetRegistry | None = None
    folds: list[Fold] = field(default_factory=list)
    markets: list[FoldMarket] = field(default_factory=list)
    timeline_end: pd.Timestamp | None = None
    units: list[TrainingUnit] = field(default_factory=list)
    backend_desc: str = ""
    data_files: dict[str, str] = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    run_tasks: list[dict] = field(default_factory=list)
    features: FeatureSpec = field(init=False)
    refit_window: Fold | None = None
    refit_market: FoldMarket | None = None

    def __post_init__(self) -> None:
        self.features = FeatureSpec.from_config(self.config)

    def note(self, line: str) -> None:
        """Record ``line`` in the manifest's notes and print it indented."""
        self.notes.append(line)
        self.echo("  " + line)


@dataclass
class RunSummary:
    """What ``fleet train`` produced (also written to the run directory)."""

    out: Path | str
    per_asset: pd.DataFrame
    per_cluster: pd.DataFrame
    per_fold: pd.DataFrame
    forced_entry: pd.DataFrame | None
    bars_per_year: float
    final_clusters: ClusterResult
    explained_variance: float
    wall_seconds: float
    units: int
    backend: str
    notes: list[str] = field(default_factory=list)
    config: FleetConfig | None = None
    trained: int = 0
    loaded: int = 0
    train_seconds: float = 0.0
    expert_auc: pd.DataFrame | None = None
    expert_weights: pd.DataFrame | None = None
    report: Path | None = None
    holdout: pd.DataFrame | None = None
    book: pd.DataFrame | None = None

    def to_dict(self) -> dict:
        """A JSON-ready summary (``fleet train --json``): where the run is, what ran and the tables.

        Tables are lists of row records (NaN -> null); returns are simple returns, as in the CSVs.
        """
        return {"out": str(self.out), "units": self.units, "trained": self.trained, "loaded": self.loaded,
                "backend": self.backend, "wall_seconds": round(self.wall_seconds, 3),
                "train_seconds": round(self.train_seconds, 3), "bars_per_year": self.bars_per_year,
                "report": None if self.report is None else str(self.report), "notes": list(self.notes),
                "per_cluster": records(self.per_cluster), "per_asset": records(self.per_asset),
                "holdout": None if self.holdout is None else records(self.holdout),
                "book": None if self.book is None else records(self.book)}


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows of ``frame`` as JSON-ready dicts (NaN -> None, numpy scalars -> Python numbers)."""
    import json

    return json.loads(frame.to_json(orient="records", double_precision=15))
