"""Turns a strategy and one fold's clustering into training units."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from fleet.config import FleetConfig, Strategy
from fleet.evaluation.splits import Fold
from fleet.features.spec import FeatureSpec
from fleet.training.unit import TrainingUnit


def plan_fold(*, config: FleetConfig, features: FeatureSpec, fold: Fold, timeline_end: pd.Timestamp,
              asset_ids: dict[str, int], cluster_of: dict[str, int], factor: pd.Series | None,
              is_final: bool) -> list[TrainingUnit]:
    """Units of one fold for ``config.strategy``.

    * islands: one unit per asset;
    * hierarchical: one unit per cluster of this fold's clustering;
    * global: one unit holding every asset.

    Args:
        features: the run's feature settings (``FeatureSpec.from_config(config)``), given to every unit.
        asset_ids: symbol -> registry id of every asset in the run.
        cluster_of: symbol -> cluster id fitted on this fold's training window.
        factor: this fold's market factor (or None), injected into every unit.
        is_final: the last fold, whose models are kept.

    Returns:
        Units in a deterministic order (by group name). A unit whose experts include a CNN asks for
        ``max(resources.num_gpus, resources.cnn_num_gpus)`` GPUs (used only when the cluster has GPUs);
        other units ask for ``resources.num_gpus`` (0 by default: CPUs only).
    """
    strategy = Strategy(config.strategy)
    if strategy is Strategy.islands:
        groups = {s: [s] for s in sorted(asset_ids)}
    elif strategy is Strategy.hierarchical:
        groups = {}
        for s in sorted(asset_ids):
            groups.setdefault(f"cluster{cluster_of[s]}", []).append(s)
    else:
        groups = {"global": sorted(asset_ids)}
    r = config.resources
    num_gpus = max(r.num_gpus, r.cnn_num_gpus) if config.model.uses_cnn() else r.num_gpus
    return [
        TrainingUnit(unit_id=f"fold{fold.index}/{g}", group=g, fold=fold, timeline_end=timeline_end,
                     assets={s: asset_ids[s] for s in members}, cluster_of={s: cluster_of[s] for s in members},
                     factor=factor, config=config, features=features, is_final=is_final,
                     num_gpus=num_gpus)
        for g, members in sorted(groups.items())
    ]


def with_run_size(units: list[TrainingUnit]) -> list[TrainingUnit]:
    """The run's units (every fold's :func:`plan_fold`) with ``run_units`` set to their number.

    A run trades when any of its units trades, so each unit's policy test runs at the run's level divided by
    this count. It is a pure function of the plan, so local and Ray backends and ``--resume`` see the same count.
    """
    return [replace(u, run_units=len(units)) for u in units]
