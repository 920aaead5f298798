"""``--refit``: every unit group fitted once more on all the data, after the walk-forward, for serving.

The walk-forward's last fold trains on bars before its test block, so its models stop learning where that block
starts. The refit fits the same units (the same task graph: experts, inner folds, gate, policy procedure) on the
whole timeline up to its last bar, with clustering and market factor fitted on that window as a fold's market fit
is (:func:`fleet.market.fold.fit_fold_market`), as mlforecast's ``fit`` after ``cross_validation`` or Qlib's final
training on train + valid do. The refit window is a :class:`~fleet.evaluation.splits.Fold` whose training window
is every bar ``<=`` the timeline's last bar (``timeline_end``: before the hold-out, which stays unseen) and whose
test block is empty, so the refit predicts nothing and enters no results table. Its models are stored under
``models/refit/`` (:mod:`fleet.store.layout`) and served instead of the last fold's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import pandas as pd

from fleet.config import FleetConfig
from fleet.features.spec import FeatureSpec
from fleet.store.layout import REFIT_UNIT
from fleet.training.plan import plan_fold
from fleet.training.refit_window import last_bar
from fleet.training.unit import TrainingUnit

if TYPE_CHECKING:
    from fleet.market.fold import FoldMarket
    from fleet.training.context import RunContext

def plan_refit(*, config: FleetConfig, features: FeatureSpec, market: "FoldMarket", timeline_end: pd.Timestamp,
               asset_ids: Mapping[str, int], run_units: int) -> list[TrainingUnit]:
    """The refit units: :func:`~fleet.training.plan.plan_fold` on the refit window with the refit's market fit
    (``market.fold`` is the window of :func:`fleet.training.refit_window.refit_window`), each named
    ``refit/<group>`` and keeping its model.

    Args:
        asset_ids: symbol -> registry id of every asset of the run (those the refit clustering left out get no
            unit, as in a fold).
        run_units: the walk-forward's unit count (:func:`~fleet.training.plan.with_run_size`): the refit's policy
            tests run at the same level as the last fold's, and the walk-forward's units are planned as without
            ``--refit``.
    """
    units = plan_fold(config=config, features=features, fold=market.fold, timeline_end=timeline_end,
                      asset_ids={s: i for s, i in asset_ids.items() if s in market.clusters.cluster_map},
                      cluster_of=market.clusters.cluster_map, factor=market.factor, is_final=True)
    return [replace(u, unit_id=f"{REFIT_UNIT}/{u.group}", run_units=run_units) for u in units]


def add_refit(ctx: "RunContext", market: "FoldMarket", asset_ids: Mapping[str, int]) -> None:
    """The refit's market fit and units (:func:`plan_refit`) into the run's context, after the walk-forward's units
    (whose planning they leave as it is), with one progress line."""
    from fleet.market.fold import fmt_cluster_map

    ctx.refit_market = market
    before = " before the hold-out" if ctx.config.validation.holdout_days > 0 else ""
    ctx.echo(f"  refit: train {market.fold.train_start:%Y-%m-%d} -> {last_bar(market.fold):%Y-%m-%d %H:%M} "
             f"(last bar{before}), no test | clusters {fmt_cluster_map(market.clusters)} | "
             f"factor explained variance {market.explained_variance:.1%}")
    ctx.units += plan_refit(config=ctx.config, features=ctx.features, market=market, timeline_end=ctx.timeline_end,
                            asset_ids=asset_ids, run_units=len(ctx.units))


def refit_record(market: "FoldMarket", results: list) -> dict:
    """``manifest.json["refit"]``: the window, its clustering and factor, and each refit unit's timing row."""
    window = market.fold
    return {"train_start": window.train_start.isoformat(), "last_bar": last_bar(window).isoformat(),
            "cluster_map": market.clusters.cluster_map, "dominant_cluster": market.clusters.dominant_cluster,
            "factor_explained_variance": market.explained_variance, "excluded": market.excluded,
            "units": [r.timing() for r in results],
            "tasks": [t for r in results for t in (getattr(r, "tasks", None) or [])]}
