"""The results tables of a run: per asset, per cluster, per fold, hold-out, expert telemetry and seeds.

Every figure comes from :func:`fleet.evaluation.metrics.summarise` over the out-of-sample
prediction rows; this module only chooses the groupings, and the columns and their order are the metric
registry's (:mod:`fleet.evaluation.metric_registry`). The files these
tables are written to are named in :mod:`fleet.store.layout`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from fleet.config import FleetConfig
from fleet.evaluation.metric_registry import results_columns
from fleet.evaluation.metrics import per_asset_auc, summarise

#: A hold-out shorter than this many days is not annualised (a Sharpe ratio from a few weeks is mostly noise).
MIN_ANNUALISED_DAYS = 90
#: Metrics compared over repeated runs (:func:`seeds_table`): the results tables' figures less folds and n.
SEED_METRICS = [c for c in results_columns(folds=False) if c != "n"]


def _summary_kw(config: FleetConfig, bars_per_year: float | None) -> dict:
    return dict(threshold=config.policy.threshold, cost_bps=config.policy.cost_bps, horizon=config.labels.horizon,
                bars_per_year=bars_per_year, reps=config.evaluation.bootstrap_reps, seed=config.seed)


def results_tables(predictions: pd.DataFrame, cluster_of: dict[str, int], dominant: int,
                   config: FleetConfig, *, bars_per_year: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-asset and per-cluster out-of-sample metrics (:func:`fleet.evaluation.metrics.summarise`).

    Args:
        predictions: all units' test predictions (timestamp, symbol, fold, p_up, signal, forward_return,
            return_1, y, and cluster: the asset's cluster in *its own fold's* clustering); ``signal`` is the
            signal after the trading policy.
        cluster_of: symbol -> cluster of the final fold's clustering (the deployed grouping): the per-asset
            table's ``cluster`` column, and the rows' cluster when ``predictions`` has no cluster column.
        dominant: id of the dominant cluster (0: canonical ids make the dominant cluster 0 in every fold).
        bars_per_year: for annualising; None leaves sharpe / ann_return NaN.

    Returns:
        (per_asset, per_cluster). A per-cluster row pools every fold's rows labelled with that cluster id
        in that fold; ``assets`` lists its members, ``SYM(k/n)`` when an asset was in it in k of the n folds
        the cluster's rows come from.
    """
    preds = predictions
    if "cluster" not in preds:
        preds = preds.assign(cluster=preds["symbol"].map(cluster_of))
    return (asset_table(preds, cluster_of, config, bars_per_year=bars_per_year),
            cluster_table(preds, dominant, config, bars_per_year=bars_per_year))


def asset_table(predictions: pd.DataFrame, cluster_of: dict[str, int], config: FleetConfig, *,
                bars_per_year: float | None = None) -> pd.DataFrame:
    """The per-asset table of :func:`results_tables` (one row per asset of ``predictions``; an asset's rows are
    all it has, so a batch of assets gives the same rows as the whole fleet)."""
    per_asset = summarise(predictions, "symbol", **_summary_kw(config, bars_per_year))
    per_asset.insert(1, "cluster", per_asset["symbol"].map(cluster_of))
    return per_asset[["symbol", "cluster", *results_columns()]]


def cluster_table(predictions: pd.DataFrame, dominant: int, config: FleetConfig, *,
                  bars_per_year: float | None = None) -> pd.DataFrame:
    """The per-cluster table of :func:`results_tables` (``predictions``: every row of the clusters to show,
    with their ``cluster`` column)."""
    preds = predictions
    per_cluster = summarise(preds, "cluster", **_summary_kw(config, bars_per_year))

    def members(c) -> str:
        rows = preds[preds["cluster"] == c]
        n = rows["fold"].nunique()
        k = rows.groupby("symbol")["fold"].nunique()
        return " ".join(s if k[s] == n else f"{s}({k[s]}/{n})" for s in sorted(k.index))

    per_cluster.insert(1, "dominant", per_cluster["cluster"] == dominant)
    per_cluster.insert(2, "assets", per_cluster["cluster"].map(members))
    return per_cluster[["cluster", "dominant", "assets", *results_columns()]]


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    ok = np.isfinite(p)
    y, p = y[ok], p[ok]
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


#: The levels of the expert tables, in their row order.
EXPERT_LEVELS = ("fleet", "cluster", "asset")
#: A base-rate share above this on some row puts ``expert = "base_rate"`` rows in the weights table.
BASE_RATE_SHOWN = 1e-9


def base_rate_share(weights: pd.DataFrame) -> pd.Series:
    """What the experts' gate weights leave of 1 on each row: the select gate's share of its constant base-rate
    P(up) under ``model.moe.select_base_rate: mix`` (0 for every other gate). ``weights``: (n, E) ``w_<expert>``
    columns; returns (n,) clipped at 0."""
    return (1.0 - weights.sum(axis=1)).clip(lower=0.0)


def expert_tables(predictions: pd.DataFrame, cluster_of: dict[str, int], experts: list[str], *,
                  levels: tuple[str, ...] = EXPERT_LEVELS,
                  base_rate: bool | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Expert telemetry over all out-of-sample rows (clusters: the rows' own fold's clustering when
    ``predictions`` has a cluster column, else ``cluster_of``).

    Returns:
        (expert_auc, expert_weights): long tables with columns ``level`` ("fleet" | "cluster" |
        "asset"), ``name`` (all / cluster id / symbol), ``expert`` and ``auc`` (each expert alone, from its
        ``p_<expert>`` column, and ``ensemble`` from ``p_up``) and ``auc_per_asset`` (the mean of each asset's AUC
        within each fold, :func:`fleet.evaluation.metrics.per_asset_auc`), or ``mean_weight`` (mean gate weight,
        ``w_<expert>``; rows of one group sum to 1), plus ``n`` rows and ``fallback_share``: the share of
        the group's rows predicted by units whose guard replaced the gate by their best single expert. When the
        experts' weights sum to less than 1 on some row (the select gate's share of the constant base rate
        P(up)), the weights table also has an ``expert = "base_rate"`` row per group holding that share.
        ``levels``: the levels to compute (a subset of :data:`EXPERT_LEVELS`; the tables of a fleet computed in
        pieces are the pieces' rows in that order). ``base_rate``: True always gives the base-rate rows when the
        weight columns are there (the caller drops them when no row of the fleet has a base-rate share), None
        decides from ``predictions``.
    """
    preds = predictions
    if "cluster" not in preds:
        preds = preds.assign(cluster=preds["symbol"].map(cluster_of))
    auc_rows, w_rows = [], []
    cols = [f"w_{e}" for e in experts]
    if len(experts) > 1 and set(cols) <= set(preds.columns):
        # the select gate's base-rate share: what the experts' weights leave of 1 on each row
        preds = preds.assign(w_base_rate=base_rate_share(preds[cols]))
    with_base = "w_base_rate" in preds and (base_rate if base_rate is not None
                                            else bool(preds["w_base_rate"].max() > BASE_RATE_SHOWN))
    shown = experts + (["base_rate"] if with_base else [])
    groups = [("fleet", "all", preds)] if "fleet" in levels else []
    if "cluster" in levels:
        groups += [("cluster", str(c), g) for c, g in preds.groupby("cluster", sort=True)]
    if "asset" in levels:
        groups += [("asset", str(s), g) for s, g in preds.groupby("symbol", sort=True)]
    for level, name, g in groups:
        y = g["y"].to_numpy()
        fb = float(g["gate_fallback"].mean()) if "gate_fallback" in g and len(g) else 0.0
        by = ("fold", "symbol") if "fold" in g else ("symbol",)
        ensemble = (_auc(y, g["p_up"].to_numpy()), per_asset_auc(g, "p_up", by=by))
        auc_rows.append({"level": level, "name": name, "expert": "ensemble", "auc": ensemble[0],
                         "auc_per_asset": ensemble[1], "n": len(g), "fallback_share": fb})
        for e in experts:
            # A single expert has no p_<expert> column: its AUC is the ensemble's (not sorted twice).
            auc = (_auc(y, g[f"p_{e}"].to_numpy()), per_asset_auc(g, f"p_{e}", by=by)) if f"p_{e}" in g else ensemble
            auc_rows.append({"level": level, "name": name, "expert": e, "auc": auc[0], "auc_per_asset": auc[1],
                             "n": len(g), "fallback_share": fb})
        for e in shown:
            w = g[f"w_{e}"].mean() if f"w_{e}" in g else 1.0 / len(experts)
            w_rows.append({"level": level, "name": name, "expert": e, "mean_weight": float(w), "n": len(g),
                           "fallback_share": fb})
    return pd.DataFrame(auc_rows), pd.DataFrame(w_rows)


def fold_table(predictions: pd.DataFrame, config: FleetConfig, *, bars_per_year: float | None = None) -> pd.DataFrame:
    """Per-fold metrics: one row per (fold, asset), plus one ``symbol = "ALL"`` row per fold (the
    equal-weight portfolio of every asset in that fold's test block; the only rows with standard errors).
    ``icir`` is NaN here (one fold).
    Each fold's curve starts flat and closes what is open at the fold's end."""
    return fold_order(fold_pooled(predictions, config, bars_per_year=bars_per_year),
                      fold_assets(predictions, config, bars_per_year=bars_per_year))


def fold_assets(predictions: pd.DataFrame, config: FleetConfig, *, bars_per_year: float | None = None) -> pd.DataFrame:
    """The (fold, asset) rows of :func:`fold_table`, without standard errors (one asset in one fold is left
    without: the per-asset table has them)."""
    kw = _summary_kw(config, bars_per_year)
    return summarise(predictions, ["fold", "symbol"], **{**kw, "reps": 0})


def fold_pooled(predictions: pd.DataFrame, config: FleetConfig, *, bars_per_year: float | None = None) -> pd.DataFrame:
    """The ``symbol = "ALL"`` rows of :func:`fold_table`, one per fold of ``predictions``, with standard errors."""
    pooled = summarise(predictions, "fold", **_summary_kw(config, bars_per_year))
    pooled.insert(1, "symbol", "ALL")
    return pooled


def fold_order(pooled: pd.DataFrame, each: pd.DataFrame) -> pd.DataFrame:
    """:func:`fold_table` from its pieces: per fold the ALL row, then the assets in order."""
    out = pd.concat([pooled, each], ignore_index=True)
    out["_all"] = out["symbol"] != "ALL"
    out = out.sort_values(["fold", "_all", "symbol"], kind="stable").drop(columns="_all").reset_index(drop=True)
    return out[["fold", "symbol", *results_columns(folds=False)]]


def holdout_table(predictions: pd.DataFrame, config: FleetConfig, *,
                  bars_per_year: float | None = None) -> pd.DataFrame:
    """Hold-out metrics: one row per asset plus an ``symbol = "ALL"`` row first (the equal-weight
    portfolio of all assets), the same columns as ``results_per_asset.csv`` less cluster and folds.
    A hold-out spanning fewer than :data:`MIN_ANNUALISED_DAYS` days is not annualised (sharpe, ann_return NaN)."""
    stamps = pd.DatetimeIndex(predictions["timestamp"]) if len(predictions) else pd.DatetimeIndex([])
    if len(stamps) and stamps.max() - stamps.min() < pd.Timedelta(days=MIN_ANNUALISED_DAYS):
        bars_per_year = None
    kw = _summary_kw(config, bars_per_year)
    each = summarise(predictions, "symbol", **kw)
    pooled = summarise(predictions, [], **kw)
    pooled.insert(0, "symbol", "ALL")
    out = pd.concat([pooled, each], ignore_index=True)
    return out[["symbol", *results_columns(folds=False)]]




class _Tables(Protocol):
    per_asset: pd.DataFrame
    per_cluster: pd.DataFrame


def seeds_table(runs: list[_Tables]) -> pd.DataFrame:
    """Mean and sample std (ddof=1) of every metric over repeated runs, per asset and per cluster.

    Returns:
        A long table with columns level ("asset" | "cluster"), name (symbol or cluster id), metric,
        mean, std, runs (number of runs that had the row; std is NaN with one). Cluster ids are
        compared as they are, so per-cluster rows are meaningful only where the seeds give the
        same clustering (always on real data: clustering does not depend on the seed).
    """
    parts = []
    for level, attr, key in (("asset", "per_asset", "symbol"), ("cluster", "per_cluster", "cluster")):
        tables = [getattr(r, attr).assign(_run=i) for i, r in enumerate(runs)]
        long = (pd.concat(tables, ignore_index=True)
                .melt(id_vars=[key, "_run"], value_vars=SEED_METRICS, var_name="metric")
                .astype({"value": "float64"}))
        g = long.groupby([key, "metric"], sort=False)["value"]
        stats = pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "runs": g.count()}).reset_index()
        stats.insert(0, "level", level)
        parts.append(stats.rename(columns={key: "name"}).astype({"name": str}))
    out = pd.concat(parts, ignore_index=True)
    order = {m: i for i, m in enumerate(SEED_METRICS)}
    out["_m"] = out["metric"].map(order)
    out = out.sort_values(["level", "name", "_m"], kind="stable").drop(columns="_m").reset_index(drop=True)
    return out[["level", "name", "metric", "mean", "std", "runs"]]

