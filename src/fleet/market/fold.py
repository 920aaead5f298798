"""The per-fold market fit: clustering and market factor on one fold's training window only.

Recipe (ARCHITECTURE.md): align the 1-bar log returns of the assets with enough history before
the fold's training end, Ward clustering on 1-|corr| (:mod:`fleet.market.clustering`), then the
market factor of the dominant cluster (:mod:`fleet.market.factor`), applied to the whole timeline
with loadings and scaling from the training window (no look-ahead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from fleet.config import FactorMethod, FleetConfig
from fleet.data.panel import Panel, union_timeline
from fleet.errors import ConfigError, DataError
from fleet.market.align import align_log_returns
from fleet.market.cluster_inputs import clustering_input
from fleet.market.clustering import ClusterResult, cluster_assets
from fleet.market.factor import MarketFactor

#: Fewest bars before a fold's training end for an asset to take part in that fold's clustering.
MIN_CLUSTER_BARS = 200


class FoldWindow(Protocol):
    """What the market fit needs of a fold (:class:`fleet.evaluation.splits.Fold` has it)."""

    index: int
    train_end: pd.Timestamp


@dataclass
class FoldMarket:
    """What the driver fitted for one fold on its training window."""

    fold: FoldWindow
    clusters: ClusterResult
    factor: pd.Series
    explained_variance: float
    excluded: dict[str, str] = field(default_factory=dict)


def dollar_volume(panel: Panel, end: pd.Timestamp) -> pd.Series | None:
    """Mean close x volume of each asset over bars before ``end``; None without a volume column."""
    if "volume" not in panel.columns:
        return None
    return pd.Series({s: float((f["close"] * f["volume"])[f.index < end].mean()) for s, f in panel.frames.items()})


#: Members shown per cluster, and clusters shown per fold, on the console (clusters.json holds the full lists).
SHOWN_MEMBERS, SHOWN_CLUSTERS = 3, 8


def fmt_members(members: list[str]) -> str:
    """The first :data:`SHOWN_MEMBERS` symbols, then ``... +N`` for the rest."""
    more = f", ... +{len(members) - SHOWN_MEMBERS}" if len(members) > SHOWN_MEMBERS else ""
    return ", ".join(members[:SHOWN_MEMBERS]) + more


def fmt_cluster_map(clusters: ClusterResult) -> str:
    """``0*: 2 (A, B); 1: 5 (C, D, E, ... +2)`` for progress lines: per cluster (``*``: the dominant one) its size and
    first members, at most :data:`SHOWN_CLUSTERS` clusters (a 300-asset fleet would otherwise print a wall)."""
    items = sorted(clusters.members.items())
    text = "; ".join(f"{c}{'*' if c == clusters.dominant_cluster else ''}: {len(m)} ({fmt_members(m)})"
                     for c, m in items[:SHOWN_CLUSTERS])
    more = len(items) - SHOWN_CLUSTERS
    return text + (f"; ... +{more} clusters (clusters.json)" if more > 0 else "")


def _eligible(panel: Panel, fold: FoldWindow, short: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """(sorted assets with at least :data:`MIN_CLUSTER_BARS` bars before the fold's training end and not ``short``,
    the others with the reason); DataError when none is eligible."""
    counts = {s: int((f.index < fold.train_end).sum()) for s, f in panel.frames.items()}
    eligible = sorted(s for s, n in counts.items() if n >= MIN_CLUSTER_BARS and s not in short)
    excluded = {s: f"{n} bars before {fold.train_end:%Y-%m-%d %H:%M} (< {MIN_CLUSTER_BARS})"
                for s, n in counts.items() if n < MIN_CLUSTER_BARS}
    excluded.update({s: why for s, why in short.items() if s not in excluded})
    if not eligible:
        raise DataError(f"fold {fold.index}: no asset has {MIN_CLUSTER_BARS} bars before {fold.train_end}; "
                        "use fewer --folds or more --days")
    return eligible, excluded


def fit_fold_market(panel: Panel, fold: FoldWindow, config: FleetConfig, short: dict[str, str] | None = None,
                    timeline: pd.DatetimeIndex | None = None) -> FoldMarket:
    """Clustering and market factor of one fold, fitted on its training window only.

    Only assets with at least ``MIN_CLUSTER_BARS`` bars before ``fold.train_end`` take part (assets
    that start late — or, with ``--days``, end early and so start early — may have none in early
    folds); correlations are measured from the latest start among them, so every asset overlaps.
    Assets left out are listed in ``FoldMarket.excluded`` and get no unit in that fold.

    Args:
        panel: the whole panel.
        fold: the fold; only bars with timestamp < ``fold.train_end`` are used for fitting.
        config: the run's configuration (``config.market``, ``config.features``).
        short: assets to leave out of this fold with the reason (:func:`fleet.training.inputs.check_history`: too little
            history before the fold's training end to train them).
        timeline: the run's whole timeline (sorted union of every asset's timestamps; default: taken from
            ``panel``). The fitted factor is applied to the dominant cluster's 1-bar log returns aligned on it
            (:func:`~fleet.market.align.align_log_returns`, ``min_overlap`` 0: the columns every asset would get
            aligned with all the others), loadings and scaling from the training window.

    Returns:
        The fold's :class:`FoldMarket`; its ``factor`` is a float64 series on ``timeline``.

    Raises:
        DataError: when no asset has enough bars before the fold's training end.
    """
    m = config.market
    eligible, excluded = _eligible(panel, fold, short or {})
    start = max(panel.frames[s].index[0] for s in eligible)
    train_returns = align_log_returns({s: panel.frames[s]["close"] for s in eligible}, bar=panel.bar,
                                      max_ffill=m.max_ffill, start=start, end=fold.train_end,
                                      min_overlap=m.min_overlap)
    n_clusters = None if m.clusters is None else min(m.clusters, len(eligible))
    volume = dollar_volume(panel, fold.train_end)
    if volume is not None:
        volume = volume[eligible]
    clustered = clustering_input(m.cluster_on, train_returns, closes={s: panel.frames[s]["close"] for s in eligible},
                                 end=fold.train_end, features=config.features)  # residual / FFD variants
    clusters = cluster_assets(clustered, n_clusters=n_clusters, distance_threshold=m.distance_threshold,
                              dollar_volume=volume, min_cluster_size=m.min_cluster_size,
                              signed=m.cluster_on == "residual")
    dominant = clusters.members[clusters.dominant_cluster]
    weights = None
    if m.factor_method is FactorMethod.weighted_mean:
        if volume is None:
            raise ConfigError("factor_method=weighted_mean needs a volume column to weight by; the data has none "
                              "(use --factor-method pca or mean)")
        weights = volume[dominant]
    factor = MarketFactor(method=m.factor_method.value).fit(train_returns[dominant], weights=weights)
    if timeline is None:
        timeline = union_timeline(panel)
    whole = align_log_returns({s: panel.frames[s]["close"] for s in dominant}, bar=panel.bar, max_ffill=m.max_ffill,
                              min_overlap=0.0, grid=timeline)
    series = factor.transform(whole)
    return FoldMarket(fold=fold, clusters=clusters, factor=series,
                      explained_variance=float(factor.explained_variance_ratio_), excluded=excluded)

