"""The driver of ``fleet train``: the work that needs the whole fleet, then the units.

Recipe (ARCHITECTURE.md): load and validate the panel -> asset registry -> purged
walk-forward folds on the union timeline -> per fold, on that fold's training window only:
alignment, Ward clustering on 1-|corr| and the market factor of the dominant cluster ->
training units (islands / hierarchical / global) -> backend (local loop or Ray actors) ->
per-asset and per-cluster tables, predictions, models of the last fold and a manifest,
written to a staging directory renamed into place at the end.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from fleet import __version__
from fleet.config import FactorMethod, FleetConfig
from fleet.data.fetch import sha256_file
from fleet.data.load import load_panel
from fleet.errors import ConfigError, DataError, UnitsFailedError
from fleet.data.panel import Panel
from fleet.data.registry import AssetRegistry, sync_registry
from fleet.data.synthetic import synthetic_market
from fleet.evaluation.metrics import RANK_COLUMNS, TRADING_COLUMNS, summarise
from fleet.evaluation.policy import apply_policy, forced_entry_report
from fleet.features.fracdiff import MIN_ADF_POINTS, ffd_weights
from fleet.evaluation.splits import Fold, PurgedWalkForward
from fleet.market.align import align_log_returns
from fleet.market.clustering import ClusterResult, cluster_assets
from fleet.market.factor import MarketFactor
from fleet.training.backends import TrainFn, make_backend
from fleet.training.graph import preflight
from fleet.training.history import MIN_CLUSTER_BARS
from fleet.training.plan import plan_fold
from fleet.training.rundir import RunDirectory, default_out, display_location, is_uri, join_location
from fleet.training.unit import TrainingUnit, UnitFailure, UnitResult, train_unit

Echo = Callable[[str], None]

# Results tables keep 15 significant digits: a figure can be recomputed from predictions/ and compared
# to ~1e-12 (the other CSVs keep 6).
RESULTS_FORMAT = "%.15g"
METRIC_COLUMNS = ["precision", "recall", "auc", "expectancy", "trades", "folds", *RANK_COLUMNS, *TRADING_COLUMNS]


@dataclass
class FoldMarket:
    """What the driver fitted for one fold on its training window."""

    fold: Fold
    clusters: ClusterResult
    factor: pd.Series
    explained_variance: float
    excluded: dict[str, str] = field(default_factory=dict)


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


def required_bars(config: FleetConfig) -> int:
    """Fewest bars per asset the configuration can work with.

    Fold 0 trains on the first of ``folds + 1`` equal blocks, and that block must hold the FFD
    order search (the widest FFD window on the d grid + 30 bars for the ADF test, AFML ch. 5) or
    the feature warm-up, whichever is longer (they overlap), plus the purge + embargo gap;
    every block needs at least 200 bars.
    """
    f = config.features
    warmup = max(max(f.return_horizons), f.vol_window + 1, f.rsi_window + 1, f.volume_window)
    gap = config.labels.horizon + config.validation.embargo_bars
    grid = np.arange(f.d_step, f.max_d + 1e-12, f.d_step)
    widest = max(ffd_weights(float(d), threshold=f.ffd_threshold, max_width=f.ffd_max_width).size for d in grid)
    per_block = max(200, max(widest + MIN_ADF_POINTS, warmup) + gap)
    return (config.validation.folds + 1) * per_block


def load_inputs(config: FleetConfig, echo: Echo, frame: pd.DataFrame | None = None) -> tuple[Panel, str]:
    """The validated panel and a one-line description of where it came from.

    ``frame``: a long DataFrame given to :func:`fleet.train`, validated like a long-format file; it
    replaces ``data.path``.

    Raises:
        DataError: bad input, or an asset with fewer bars than :func:`required_bars` (the message
            names the smallest ``--days`` that passes this and :func:`check_history`).
    """
    need = required_bars(config)
    if frame is not None or config.data.path:
        full = load_panel(frame if frame is not None else config.data.path, symbols=config.data.symbols, days=None)
        panel = full.last_days(config.data.days)  # what load_panel(days=...) returns
        where = "in-memory DataFrame" if frame is not None else config.data.path
        short = [s for s in panel.symbols if len(panel.frames[s]) < need]
        if short:
            details = "; ".join(f"{s} ({panel.sources.get(s, '?')}) has {len(panel.frames[s])} bars" for s in short)
            raise DataError(f"{details} in the last {config.data.days} days, but at least {need} bars are needed "
                            f"per asset; {_days_hint(config, _data_panels(full), full_span(full), need)}")
        return panel, f"{where} (last {config.data.days} days per asset)"
    market = synthetic_market(n_clusters=config.synthetic.n_clusters,
                              assets_per_cluster=config.synthetic.assets_per_cluster,
                              days=config.data.days, seed=config.seed,
                              signal_strength=config.synthetic.signal_strength)
    echo("No --data given: running on the built-in synthetic market.")
    echo("  " + market.description)
    panel = market.panel
    if config.data.symbols:
        panel = panel.subset(config.data.symbols)
    have = min(len(f) for f in panel.frames.values())
    if have < need:
        raise DataError(f"synthetic market: --days {config.data.days} gives {have} bars per asset, but "
                        f"{config.validation.folds} folds need at least {need} (FFD window, warm-up and "
                        f"purge in every block); {_days_hint(config, _synthetic_panels(config), None, need)}")
    return panel, f"synthetic market (seed={config.seed}, {config.data.days} days)"


def _dollar_volume(panel: Panel, end: pd.Timestamp) -> pd.Series | None:
    if "volume" not in panel.columns:
        return None
    return pd.Series({s: float((f["close"] * f["volume"])[f.index < end].mean()) for s, f in panel.frames.items()})


def _synthetic_panels(config: FleetConfig):
    """``--days`` -> (the synthetic panel a run would get, the assets a shortfall refuses: all)."""
    def panel_for_days(days: int) -> tuple[Panel, list[str]]:
        s = config.synthetic
        panel = synthetic_market(n_clusters=s.n_clusters, assets_per_cluster=s.assets_per_cluster, days=days,
                                 seed=config.seed, signal_strength=s.signal_strength).panel
        panel = panel.subset(config.data.symbols) if config.data.symbols else panel
        return panel, panel.symbols
    return panel_for_days


def _cut_by_days(full: Panel, panel: Panel) -> list[str]:
    """Assets of ``panel`` whose data hold earlier bars in ``full`` (their history was cut by --days)."""
    return [s for s in panel.symbols if len(panel.frames[s]) and full.frames[s].index[0] < panel.frames[s].index[0]]


def _data_panels(full: Panel):
    """``--days`` -> (the panel a run would load, the assets cut by --days)."""
    def panel_for_days(days: int) -> tuple[Panel, list[str]]:
        p = full.last_days(days)
        return p, _cut_by_days(full, p)
    return panel_for_days


def full_span(full: Panel) -> int:
    from fleet.training.history import span_days

    return span_days(full)


def _days_hint(config: FleetConfig, panel_for_days, hi: int | None, min_bars: int) -> str:
    """'use --days N or more (...)' with the smallest N that passes, or what else to do."""
    from fleet.training.history import smallest_days

    folds = config.validation.folds
    if hi is None:  # synthetic (hourly, one timeline): folds + 1 blocks that each clear need.sure always pass
        from fleet.training.history import history_need

        need = history_need(config, ("open", "high", "low", "close", "volume"), pd.Timedelta(hours=1))
        block = max(need.sure, min_bars) + config.labels.horizon + config.validation.embargo_bars + 2
        hi = max(config.data.days + 1, int(np.ceil(((folds + 1) * block) / 24 + config.validation.holdout_days)) + 1)
        source = f"{hi} days"
    else:
        source = f"the data's {hi} days"
    days = smallest_days(panel_for_days, config, lo=config.data.days, hi=hi, min_bars=min_bars)
    if days is None:
        return f"no --days value up to {source} is enough for {folds} folds: use fewer --folds"
    # Not "or more": between need.floor and need.sure the outcome follows the FFD order each window's
    # ADF search picks, so a slightly larger value can fail again (crypto_1h, 2 folds: 209 and 212 pass,
    # 210 and 211 do not); from need.sure on, every value passes.
    return f"use --days {days} (the smallest value that works with {folds} folds), or fewer --folds"


def check_history(config: FleetConfig, panel: Panel) -> dict[int, dict[str, str]]:
    """The up-front history check (:mod:`fleet.training.history`), before anything is written.

    Every asset must be trainable (FFD order search, feature warm-ups, 200 training rows) in
    every fold it takes part in. An asset that falls short because ``--days`` cut its history
    (the data hold earlier bars; on the synthetic market, always) makes the window too short: the
    run is refused, naming the smallest ``--days`` that passes (searched with the same splitter)
    or saying that none does. An asset that is short because its data start late (a late
    listing) is left out of the folds where it is short, as before.

    Returns:
        fold index -> {symbol: reason} of the late-listed assets to leave out of that fold.

    Raises:
        DataError: the window is too short (one line naming the assets, the bars and the --days to use).
    """
    from fleet.training.history import history_shortfalls

    short = history_shortfalls(panel, config)
    if not short:
        return {}
    symbols = sorted({s for _, s in short})
    if config.data.path:
        full = load_panel(config.data.path, symbols=config.data.symbols, days=None)
        cut = [s for s in symbols if s in _cut_by_days(full, panel)]
        panel_for_days, hi = _data_panels(full), full_span(full)
    else:
        cut, panel_for_days, hi = symbols, _synthetic_panels(config), None
    if not cut:
        late: dict[int, dict[str, str]] = {}
        for (k, s), why in short.items():
            late.setdefault(k, {})[s] = why
        return late
    first = {}
    for (k, s), why in sorted(short.items()):
        if s in cut and s not in first:
            first[s] = f"{s} in fold {k} ({why})"
    shown = "; ".join(list(first.values())[:3]) + (f"; and {len(first) - 3} more" if len(first) > 3 else "")
    raise DataError(f"--days {config.data.days} is too short for the FFD order search and feature warm-ups of "
                    f"{config.validation.folds} folds: {shown}; "
                    f"{_days_hint(config, panel_for_days, hi, required_bars(config))}")


def fit_fold_market(panel: Panel, fold: Fold, all_returns: pd.DataFrame, config: FleetConfig,
                    short: dict[str, str] | None = None) -> FoldMarket:
    """Clustering and market factor of one fold, fitted on its training window only.

    Only assets with at least ``MIN_CLUSTER_BARS`` bars before ``fold.train_end`` take part (assets
    that start late — or, with ``--days``, end early and so start early — may have none in early
    folds); correlations are measured from the latest start among them, so every asset overlaps.
    Assets left out are listed in ``FoldMarket.excluded`` and get no unit in that fold.

    Args:
        panel: the whole panel.
        fold: the fold; only bars with timestamp < ``fold.train_end`` are used for fitting.
        all_returns: (n_timestamps, n_assets) aligned 1-bar log returns over the whole timeline; the
            fitted factor is applied to all of it (loadings and scaling from the training window).
        short: assets to leave out of this fold with the reason (:func:`check_history`: too little
            history before the fold's training end to train them).

    Raises:
        DataError: when no asset has enough bars before the fold's training end.
    """
    m = config.market
    counts = {s: int((f.index < fold.train_end).sum()) for s, f in panel.frames.items()}
    short = short or {}
    eligible = sorted(s for s, n in counts.items() if n >= MIN_CLUSTER_BARS and s not in short)
    excluded = {s: f"{n} bars before {fold.train_end:%Y-%m-%d %H:%M} (< {MIN_CLUSTER_BARS})"
                for s, n in counts.items() if n < MIN_CLUSTER_BARS}
    excluded.update({s: why for s, why in short.items() if s not in excluded})
    if not eligible:
        raise DataError(f"fold {fold.index}: no asset has {MIN_CLUSTER_BARS} bars before {fold.train_end}; "
                        "use fewer --folds or more --days")
    start = max(panel.frames[s].index[0] for s in eligible)
    train_returns = align_log_returns({s: panel.frames[s]["close"] for s in eligible}, bar=panel.bar,
                                      max_ffill=m.max_ffill, start=start, end=fold.train_end,
                                      min_overlap=m.min_overlap)
    n_clusters = None if m.clusters is None else min(m.clusters, len(eligible))
    dollar_volume = _dollar_volume(panel, fold.train_end)
    if dollar_volume is not None:
        dollar_volume = dollar_volume[eligible]
    clusters = cluster_assets(train_returns, n_clusters=n_clusters, distance_threshold=m.distance_threshold,
                              dollar_volume=dollar_volume)
    dominant = clusters.members[clusters.dominant_cluster]
    weights = None
    if m.factor_method is FactorMethod.weighted_mean:
        if dollar_volume is None:
            raise ConfigError("factor_method=weighted_mean needs a volume column to weight by; the data has none "
                              "(use --factor-method pca or mean)")
        weights = dollar_volume[dominant]
    factor = MarketFactor(method=m.factor_method.value).fit(train_returns[dominant], weights=weights)
    series = factor.transform(all_returns[dominant])
    return FoldMarket(fold=fold, clusters=clusters, factor=series,
                      explained_variance=float(factor.explained_variance_ratio_), excluded=excluded)


def _redacted(command: list[str]) -> list[str]:
    """The command line as recorded: URIs without ``user:secret@`` credentials."""
    return [display_location(a) if is_uri(a) else a for a in command]


def _versions() -> dict[str, str]:
    out = {"fleet": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "pandas", "scikit-learn", "scipy", "statsmodels", "pyarrow", "ray", "torch", "pydantic",
                "lightgbm"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


#: Members shown per cluster, and clusters shown per fold, on the console (clusters.json holds the full lists).
SHOWN_MEMBERS, SHOWN_CLUSTERS = 3, 8


def _fmt_members(members: list[str]) -> str:
    more = f", ... +{len(members) - SHOWN_MEMBERS}" if len(members) > SHOWN_MEMBERS else ""
    return ", ".join(members[:SHOWN_MEMBERS]) + more


def _fmt_cluster_map(clusters: ClusterResult) -> str:
    """``c: size (first members, ... +more)`` per cluster, the dominant one starred, at most SHOWN_CLUSTERS."""
    items = sorted(clusters.members.items())
    text = "; ".join(f"{c}{'*' if c == clusters.dominant_cluster else ''}: {len(m)} ({_fmt_members(m)})"
                     for c, m in items[:SHOWN_CLUSTERS])
    return text + (f"; ... +{len(items) - SHOWN_CLUSTERS} clusters (clusters.json)" if len(items) > SHOWN_CLUSTERS
                   else "")


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
    kw = dict(threshold=config.policy.threshold, cost_bps=config.policy.cost_bps, horizon=config.labels.horizon,
              bars_per_year=bars_per_year)
    preds = predictions
    if "cluster" not in preds:
        preds = preds.assign(cluster=preds["symbol"].map(cluster_of))
    per_asset = summarise(preds, "symbol", **kw).rename(columns={"symbol": "asset"})
    per_asset.insert(1, "cluster", per_asset["asset"].map(cluster_of))
    per_asset = per_asset[["asset", "cluster", *METRIC_COLUMNS, "n"]]
    per_cluster = summarise(preds, "cluster", **kw)

    def members(c) -> str:
        rows = preds[preds["cluster"] == c]
        n = rows["fold"].nunique()
        k = rows.groupby("symbol")["fold"].nunique()
        return " ".join(s if k[s] == n else f"{s}({k[s]}/{n})" for s in sorted(k.index))

    per_cluster.insert(1, "dominant", per_cluster["cluster"] == dominant)
    per_cluster.insert(2, "assets", per_cluster["cluster"].map(members))
    per_cluster = per_cluster[["cluster", "dominant", "assets", *METRIC_COLUMNS, "n"]]
    return per_asset, per_cluster


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    ok = np.isfinite(p)
    y, p = y[ok], p[ok]
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def expert_tables(predictions: pd.DataFrame, cluster_of: dict[str, int],
                  experts: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Expert telemetry over all out-of-sample rows (clusters: the rows' own fold's clustering when
    ``predictions`` has a cluster column, else ``cluster_of``).

    Returns:
        (expert_auc, expert_weights): long tables with columns ``level`` ("fleet" | "cluster" |
        "asset"), ``name`` (all / cluster id / symbol), ``expert`` and ``auc`` (each expert alone, from its
        ``p_<expert>`` column, and ``ensemble`` from ``p_up``) or ``mean_weight`` (mean gate weight,
        ``w_<expert>``; rows of one group sum to 1), plus ``n`` rows and ``fallback_share``: the share of
        the group's rows predicted by units whose guard replaced the gate by their best single expert.
    """
    preds = predictions
    if "cluster" not in preds:
        preds = preds.assign(cluster=preds["symbol"].map(cluster_of))
    auc_rows, w_rows = [], []
    groups = [("fleet", "all", preds)]
    groups += [("cluster", str(c), g) for c, g in preds.groupby("cluster", sort=True)]
    groups += [("asset", str(s), g) for s, g in preds.groupby("symbol", sort=True)]
    for level, name, g in groups:
        y = g["y"].to_numpy()
        fb = float(g["gate_fallback"].mean()) if "gate_fallback" in g and len(g) else 0.0
        auc_rows.append({"level": level, "name": name, "expert": "ensemble", "auc": _auc(y, g["p_up"].to_numpy()),
                         "n": len(g), "fallback_share": fb})
        for e in experts:
            col = f"p_{e}" if f"p_{e}" in g else "p_up"
            auc_rows.append({"level": level, "name": name, "expert": e, "auc": _auc(y, g[col].to_numpy()), "n": len(g),
                             "fallback_share": fb})
            w = g[f"w_{e}"].mean() if f"w_{e}" in g else 1.0 / len(experts)
            w_rows.append({"level": level, "name": name, "expert": e, "mean_weight": float(w), "n": len(g),
                           "fallback_share": fb})
    return pd.DataFrame(auc_rows), pd.DataFrame(w_rows)


def fold_table(predictions: pd.DataFrame, config: FleetConfig, *, bars_per_year: float | None = None) -> pd.DataFrame:
    """Per-fold metrics: one row per (fold, asset), plus one ``asset = "ALL"`` row per fold (the
    equal-weight portfolio of every asset in that fold's test block). ``icir`` is NaN here (one fold).
    Each fold's curve starts flat and closes what is open at the fold's end."""
    kw = dict(threshold=config.policy.threshold, cost_bps=config.policy.cost_bps, horizon=config.labels.horizon,
              bars_per_year=bars_per_year)
    each = summarise(predictions, ["fold", "symbol"], **kw).rename(columns={"symbol": "asset"})
    pooled = summarise(predictions, "fold", **kw)
    pooled.insert(1, "asset", "ALL")
    out = pd.concat([pooled, each], ignore_index=True)
    out["_all"] = out["asset"] != "ALL"
    out = out.sort_values(["fold", "_all", "asset"], kind="stable").drop(columns="_all").reset_index(drop=True)
    return out[["fold", "asset", *[c for c in METRIC_COLUMNS if c != "folds"], "n"]]


def holdout_table(predictions: pd.DataFrame, config: FleetConfig, *,
                  bars_per_year: float | None = None) -> pd.DataFrame:
    """Hold-out metrics: one row per asset plus an ``asset = "ALL"`` row first (the equal-weight
    portfolio of all assets), the same columns as ``results_per_asset.csv`` less cluster and folds."""
    kw = dict(threshold=config.policy.threshold, cost_bps=config.policy.cost_bps, horizon=config.labels.horizon,
              bars_per_year=bars_per_year)
    each = summarise(predictions, "symbol", **kw).rename(columns={"symbol": "asset"})
    pooled = summarise(predictions, [], **kw)
    pooled.insert(0, "asset", "ALL")
    out = pd.concat([pooled, each], ignore_index=True)
    return out[["asset", *[c for c in METRIC_COLUMNS if c != "folds"], "n"]]


def predict_holdout(results: list[UnitResult], panel: Panel, final: FoldMarket, *, timeline_end: pd.Timestamp,
                    config: FleetConfig) -> pd.DataFrame:
    """The last fold's models predict the hold-out: every bar after ``timeline_end`` whose label
    (h bars ahead, on the asset's own bars) is in the data.

    Features are computed on the asset's whole history (they are causal); the models, the FFD order,
    the scaling and the market-factor loadings were all fitted on the last fold's training window, which
    ends before the last test block, itself before the hold-out: nothing fitted has seen a hold-out bar.

    Returns:
        Rows in the layout of the walk-forward predictions (timestamp, symbol, fold = the last fold's index,
        p_up, signal = p_up > threshold, y, forward_return, return_1, bar_number, cluster, and per expert
        p_<expert>, w_<expert>); empty when the hold-out holds no labelled bar.
    """
    from fleet.features.labels import binary_label, forward_log_return
    from fleet.training.unit import bar_columns

    h = config.labels.horizon
    names = config.model.active_experts()
    parts = []
    for r in results:
        if r.model is None:
            continue
        for symbol in sorted(r.model.preprocessors):
            frame = panel.frames[symbol]
            fwd = forward_log_return(frame["close"], h)
            X = r.model.design_matrix(symbol, frame, final.factor)
            ok = (X.notna().all(axis=1) & fwd.notna() & (frame.index > timeline_end)).to_numpy()
            if not ok.any():
                continue
            Xh = X.loc[ok]
            est = r.model.estimator
            if hasattr(est, "predict_details"):
                p_up, expert_p, weights = est.predict_details(Xh)
            else:
                p_up = est.predict_proba(Xh)[:, 1]
                expert_p, weights = p_up[:, None], np.ones((len(p_up), 1))
            rows = pd.DataFrame({"timestamp": frame.index[ok], "symbol": symbol, "fold": r.fold, "p_up": p_up})
            rows["signal"] = (p_up > config.policy.threshold).astype(np.int8)
            rows["y"] = binary_label(fwd[ok]).to_numpy().astype(np.int64)
            rows["forward_return"] = fwd[ok].to_numpy()
            rows["return_1"], rows["bar_number"] = bar_columns(rows, panel.frames)
            rows["cluster"] = int(final.clusters.cluster_map[symbol])
            for j, name in enumerate(names):
                rows[f"p_{name}"] = expert_p[:, j]
                rows[f"w_{name}"] = weights[:, j]
            parts.append(rows)
    if not parts:
        return pd.DataFrame(columns=["timestamp", "symbol", "fold", "p_up", "signal", "y", "forward_return",
                                     "return_1", "bar_number", "cluster"])
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def run_registry(config: FleetConfig, symbols: list[str], source: str, notes: list[str], echo: Echo) -> AssetRegistry:
    """The asset registry of a run: the shared file ``config.registry`` read and extended under its lock
    (:func:`~fleet.data.registry.sync_registry`), or, without one, this run's own ids (said once, in the notes).

    Raises:
        DataError: the registry file is corrupted or renumbered. ConfigError: it cannot be locked or written.
    """
    if not config.registry:
        notes.append("no --registry: asset ids are this run's own (sorted symbols) and are not stable across "
                     "runs; pass --registry PATH (or registry: in the fleet spec) to keep them")
        echo("  " + notes[-1])
        return AssetRegistry.from_symbols(symbols, source=source)
    registry, before = sync_registry(config.registry, symbols, source=source)
    change = ("created" if before is None else f"extended from version {before}" if before != registry.version
              else "unchanged")
    echo(f"Asset registry: {config.registry} version {registry.version} ({len(registry)} symbols, {change})")
    return registry


def run_fleet(config: FleetConfig, *, echo: Echo = print, argv: list[str] | None = None,
              train_fn: TrainFn | None = None, frame: pd.DataFrame | None = None) -> RunSummary:
    """Train the whole fleet as configured and write the run directory.

    Each unit's result is saved in the run's staging directory as it finishes, so an
    interrupted run can be finished with :func:`resume_fleet` (``fleet train --resume``).
    ``config.out`` may be an object-store URI (``s3://bucket/prefix``, see
    :mod:`fleet.training.rundir`): then every worker (Ray actor, or this process with the local
    backend) writes its own unit's result there, and this driver writes the tables, predictions,
    models and, last, ``manifest.json``.

    Args:
        config: resolved configuration.
        echo: where progress lines go (the CLI passes ``click.echo``).
        argv: the command line, recorded in the manifest.
        train_fn: function trained per unit; None means :func:`train_unit` (tests pass a stand-in).
        frame: bars as a long DataFrame instead of ``config.data.path`` (:func:`fleet.train`); such a
            run cannot be resumed (its data is not on disk).

    Returns:
        A :class:`RunSummary` with the tables and the final run directory.

    Raises:
        UnitsFailedError: some units failed; the others' results stay in the staging directory,
            nothing is written at ``--out`` (for a URI: no ``manifest.json``) and the run can be resumed.
        ConfigError: ``--out`` exists already; for a URI also an unsupported scheme, a missing bucket,
            an unreachable endpoint or a failed write probe (all checked before any training).
        FleetError: bad input or configuration (nothing is left on disk).
    """
    rundir = RunDirectory(config.out or default_out())
    if rundir.remote:  # the configuration is recorded (run.json, manifest, models): no credentials in it
        config = config.model_copy(update={"out": rundir.shown})
    return _run(config, rundir, echo=echo, argv=argv, train_fn=train_fn, frame=frame)


def resume_fleet(path: str | Path, *, echo: Echo = print, argv: list[str] | None = None,
                 train_fn: TrainFn | None = None) -> RunSummary:
    """Finish an interrupted or failed run: train only the units without a complete saved result.

    The configuration is the one saved when the run started (``run.json``), so the run is planned
    again exactly as before; the planned unit ids and the data files' SHA-256 must match.

    Args:
        path: the run's staging directory, or its ``--out`` path or URI (see :meth:`RunDirectory.resume`).

    Raises:
        ConfigError: nothing to resume at ``path``, or the data / plan changed since the run started.
        UnitsFailedError: as :func:`run_fleet`.
    """
    rundir = RunDirectory.resume(path)
    state = rundir.state
    if state.get("in_memory_data"):
        raise ConfigError(f"--resume {rundir.staging}: the run was trained on an in-memory DataFrame "
                          "(fleet.train), which is not on disk; start a new run instead")
    raw = dict(state["config"])
    data_path = raw.get("data", {}).get("path")
    if data_path and not Path(data_path).is_absolute() and state.get("cwd"):
        raw["data"] = {**raw["data"], "path": str(Path(state["cwd"]) / data_path)}
    try:
        config = FleetConfig.model_validate(raw)
    except ValueError as err:
        raise ConfigError(f"--resume {rundir.staging}: the saved configuration is not valid for this version "
                          f"of fleet ({err})") from None
    then = "completed in place" if rundir.remote else f"will be renamed to {rundir.final}"
    echo(f"Resuming {rundir.staging} (run started {state.get('started')}, {then})")
    return _run(config, rundir, echo=echo, argv=argv, train_fn=train_fn)


def _run(config: FleetConfig, rundir: RunDirectory, *, echo: Echo, argv: list[str] | None,
         train_fn: TrainFn | None, frame: pd.DataFrame | None = None) -> RunSummary:
    started = pd.Timestamp.now(tz="UTC")
    t0 = time.perf_counter()
    panel, source = load_inputs(config, echo, frame)
    notes: list[str] = []
    registry = run_registry(config, panel.symbols, source, notes, echo)
    echo(f"Data: {source}: {len(panel.symbols)} assets, bar {panel.bar}, columns {', '.join(panel.columns)}")
    if panel.missing_columns():
        notes.append(f"no {'/'.join(panel.missing_columns())} column(s): features needing them are left out")
        echo("  " + notes[-1])

    all_ts = pd.DatetimeIndex(sorted(set().union(*(f.index for f in panel.frames.values()))))
    holdout = pd.Timedelta(days=config.validation.holdout_days)
    splitter = PurgedWalkForward(config.validation.folds, horizon_bars=config.labels.horizon,
                                 embargo_bars=config.validation.embargo_bars, bar=panel.bar, holdout=holdout)
    folds = splitter.folds(all_ts)
    late = check_history(config, panel)
    timeline_end = all_ts.max() - holdout
    closes = {s: f["close"] for s, f in panel.frames.items()}
    # The whole-timeline returns only carry the fitted factor forward; overlap is checked per fold.
    all_returns = align_log_returns(closes, bar=panel.bar, max_ffill=config.market.max_ffill, min_overlap=0.0)
    if config.market.clusters is not None and config.market.clusters > len(panel.symbols):
        notes.append(f"clusters={config.market.clusters} > {len(panel.symbols)} assets: using {len(panel.symbols)}")
        echo("  " + notes[-1])

    echo(f"Walk-forward: {len(folds)} folds, purge {config.labels.horizon} + embargo "
         f"{config.validation.embargo_bars} bars; clustering and {config.market.factor_method.value} factor "
         "refitted on each fold's training window")
    asset_ids = {s: registry.id_of(s) for s in panel.symbols}
    markets: list[FoldMarket] = []
    units: list[TrainingUnit] = []
    for fold in folds:
        fm = fit_fold_market(panel, fold, all_returns, config, short=late.get(fold.index))
        markets.append(fm)
        echo(f"  fold {fold.index}: train {fold.train_start:%Y-%m-%d} -> {fold.train_end:%Y-%m-%d %H:%M}, "
             f"test -> {fold.test_end:%Y-%m-%d %H:%M} | clusters {_fmt_cluster_map(fm.clusters)} | "
             f"factor explained variance {fm.explained_variance:.1%}")
        if fm.excluded:
            echo(f"    not in fold {fold.index} (too little history before its training end): "
                 + ", ".join(f"{s} ({why})" for s, why in sorted(fm.excluded.items())))
        units += plan_fold(config=config, fold=fold, timeline_end=timeline_end,
                           asset_ids={s: i for s, i in asset_ids.items() if s in fm.clusters.cluster_map},
                           cluster_of=fm.clusters.cluster_map, factor=fm.factor, is_final=fold.index == folds[-1].index)
    final = markets[-1]
    method = "PCA" if config.market.factor_method is FactorMethod.pca else config.market.factor_method.value
    echo(f"Dominant cluster {final.clusters.dominant_cluster} ({final.clusters.dominant_reason}): "
         f"{_fmt_members(final.clusters.members[final.clusters.dominant_cluster])}; "
         f"{method} explained variance {final.explained_variance:.1%} (last fold's training window)")

    preflight(units)  # a unit that cannot train is refused now, before any preparation
    backend = make_backend(config.resources, train_fn=train_fn or train_unit)
    backend_desc = backend.describe()
    experts = config.model.active_experts()
    gate = config.model.moe.gate if len(experts) > 1 else "none"
    echo(f"Experts: {', '.join(experts)}; gate: {gate}" + (f", top-{min(config.model.moe.top_k or (2 if gate == 'rule' else len(experts)), len(experts))}"
                                                          if gate in ("rule", "mlp") else "")
         + (f"; {config.model.moe.inner_folds} inner out-of-fold blocks"
            + (", guarded" if config.model.moe.guard and gate != "best" else "") if len(experts) > 1 else ""))
    if config.model.uses_cnn():
        import torch

        if torch.cuda.is_available():
            notes.append("CNN experts train on CUDA (bf16 autocast)")
        else:
            notes.append("CNN experts train on CPU: no CUDA device here"
                         + (" (units would ask Ray for a GPU on a GPU cluster)" if units and units[0].num_gpus else ""))
        echo("  " + notes[-1])
    sources = sorted(set(panel.sources.values()))
    data_files = {p: sha256_file(p) for p in sources if Path(p).is_file()}
    unit_ids = [u.unit_id for u in units]
    resuming = rundir.state is not None
    if resuming:
        saved = rundir.state
        if saved.get("units") != unit_ids or sorted(saved.get("data_files", {}).values()) != sorted(data_files.values()):
            raise ConfigError(f"--resume {rundir.staging}: the data or the plan changed since the run started "
                              "(data files' SHA-256 or planned units differ); start a new run instead")
        started = pd.Timestamp(saved["started"])
        rundir.open()
    else:
        rundir.open({"fleet_version": __version__, "command": _redacted(argv if argv is not None else sys.argv),
                     "cwd": str(Path.cwd()), "started": started.isoformat(), "config": config.to_dict(),
                     "units": unit_ids, "data_files": data_files, "in_memory_data": frame is not None})
        where = "Writing to" if rundir.remote else "Staging in"
        echo(f"{where} {rundir.staging} (if interrupted: fleet train --resume {rundir.staging})")
    saved_now = 0
    try:
        loaded = {}
        for u in units:
            r = rundir.load_unit(u.unit_id)
            if r is not None:
                loaded[u.unit_id] = r
        todo = [u for u in units if u.unit_id not in loaded]
        if resuming:
            echo(f"{len(loaded)} of {len(units)} units have a complete, verified result in the staging directory; "
                 f"training the other {len(todo)}")
        echo(f"Training {len(todo)} units ({config.strategy.value}) on {backend_desc}")
        done: list[UnitResult] = []
        failures: list[UnitFailure] = []

        def on_result(r: UnitResult | UnitFailure) -> None:
            nonlocal saved_now
            n = len(done) + len(failures) + 1
            if isinstance(r, UnitFailure):
                failures.append(r)
                echo(f"  [{n:>3}/{len(todo)}] {r.unit_id:<24} FAILED: {r.error}")
                return
            if sink is None:  # else the worker that trained it has saved it
                rundir.save_unit(r.unit_id, r)
            saved_now += 1
            done.append(r)
            where = r.host + (f" node {r.node_id[:8]}" if r.node_id else "")
            echo(f"  [{n:>3}/{len(todo)}] {r.unit_id:<24} {len(r.assets):>2} asset(s) "
                 f"train {r.n_train:>7,} test {r.n_test:>6,} rows  {r.wall_seconds:6.1f} s  {where}")

        sink = rundir.unit_sink()
        if sink is not None:
            echo(f"  each worker writes its unit's result to {rundir.describe('units')}/")
        t_train, t_train_unix = time.perf_counter(), time.time()
        try:
            if todo:
                backend.run(todo, panel.frames, on_result, sink=sink)
        finally:
            backend.close()
        train_seconds = time.perf_counter() - t_train
        if failures:
            rundir.write_json("failures.json", [f.to_dict() for f in failures])
            nothing = ("the run has no manifest.json, so it is not complete" if rundir.remote
                       else f"nothing was written to {rundir.final}")
            shown = "; ".join(f"{f.unit_id} ({f.error})" for f in failures[:3])
            more = f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
            raise UnitsFailedError(
                f"{len(failures)} of {len(units)} units failed: {shown}{more} (all in "
                f"{rundir.describe('failures.json')}). The other units' results are kept in {rundir.staging}; "
                f"{nothing}. Fix the cause and run: fleet train --resume {rundir.staging}"
                " (a resume keeps the run's configuration: for an input error such as too little data, start a "
                "new run instead)", failures=failures, staging=rundir.staging)
        results = [*loaded.values(), *done]
        rundir.delete("failures.json")
        summary = _finish(config, rundir, panel=panel, registry=registry, source=source, notes=notes, folds=folds,
                          markets=markets, results=results, timeline_end=timeline_end, n_units=len(units),
                          backend_desc=backend_desc, started=started, t0=t0, argv=argv, data_files=data_files,
                          training={"trained": [r.unit_id for r in done], "loaded": sorted(loaded),
                                    "backend_seconds": round(train_seconds, 3),
                                    "backend_started_unix": t_train_unix},
                          echo=echo)
    except UnitsFailedError:
        raise
    except BaseException:
        if resuming or saved_now:
            echo(f"Run interrupted; {saved_now} unit result(s) saved by this attempt. Finish it with: "
                 f"fleet train --resume {rundir.staging}")
        else:
            rundir.abort()
        raise
    return summary


def _finish(config: FleetConfig, rundir: RunDirectory, *, panel: Panel, registry: AssetRegistry, source: str,
            notes: list[str], folds: list[Fold], markets: list[FoldMarket], results: list[UnitResult],
            timeline_end: pd.Timestamp, n_units: int, backend_desc: str, started: pd.Timestamp, t0: float,
            argv: list[str] | None, data_files: dict[str, str], training: dict, echo: Echo) -> RunSummary:
    """Tables, predictions, models and manifest from every unit's result; renames the run into place."""
    final = markets[-1]
    results.sort(key=lambda r: (r.fold, r.group))
    fell_back = [f"{r.unit_id} -> {r.gate['fallback']}" for r in results if r.gate and r.gate.get("fallback")]
    if fell_back:
        notes.append(f"gate guard: {len(fell_back)} of {len(results)} units answer with one expert (the cross-fitted "
                     f"gate lost to their best single expert on the inner out-of-fold rows, or the window was too "
                     f"short for any inner fold; manifest units[].gate says which): {', '.join(fell_back)}")
        echo("  " + notes[-1])

    predictions = pd.concat([r.predictions for r in results], ignore_index=True)
    # The policy needs whole UTC days per asset, which may straddle units and folds: applied here.
    policy = dict(threshold=config.policy.threshold, forced_entry=config.policy.forced_entry,
                  cutoff=config.policy.forced_entry_cutoff, bar=panel.bar)
    predictions = apply_policy(predictions, **policy)
    if config.evaluation.bars_per_year is not None:
        bars_per_year = float(config.evaluation.bars_per_year)
        echo(f"Annualising with {bars_per_year:g} bars per year (--bars-per-year)")
    else:
        bars_per_year = float(panel.bars_per_year())
        echo(f"Annualising with {bars_per_year:g} bars per year (inferred from the data; override with --bars-per-year)")
    per_asset, per_cluster = results_tables(predictions, final.clusters.cluster_map,
                                            final.clusters.dominant_cluster, config, bars_per_year=bars_per_year)
    per_fold = fold_table(predictions, config, bars_per_year=bars_per_year)
    forced = forced_entry_report(predictions) if config.policy.forced_entry else None
    holdout = holdout_rows = None
    if config.validation.holdout_days > 0:
        holdout_rows = predict_holdout(results, panel, final, timeline_end=timeline_end, config=config)
        if len(holdout_rows):
            holdout_rows = apply_policy(holdout_rows, **policy)
            holdout = holdout_table(holdout_rows, config, bars_per_year=bars_per_year)
            echo(f"Hold-out: {len(holdout_rows)} rows after {timeline_end:%Y-%m-%d %H:%M} predicted by the last "
                 f"fold's models -> results_holdout.csv, holdout_predictions/")
        else:
            notes.append(f"the hold-out ({config.validation.holdout_days:g} days) has no bar with a complete "
                         f"{config.labels.horizon}-bar label: no hold-out results")
            echo("  " + notes[-1])
    if forced is not None and panel.bar >= pd.Timedelta(days=1):
        notes.append(f"forced entry on {panel.bar} bars: every day without a natural signal is forced, "
                     "so the policy is close to always long")
        echo("  " + notes[-1])
    skipped = sorted({f for r in results for f in r.skipped_features})
    rundir.write_csv("results_per_asset.csv", per_asset, float_format=RESULTS_FORMAT)
    rundir.write_csv("results_per_cluster.csv", per_cluster, float_format=RESULTS_FORMAT)
    rundir.write_csv("results_per_fold.csv", per_fold, float_format=RESULTS_FORMAT)
    if forced is not None:
        rundir.write_csv("forced_entry.csv", forced)
    if holdout is not None:
        rundir.write_csv("results_holdout.csv", holdout, float_format=RESULTS_FORMAT)
    experts = config.model.active_experts()
    expert_auc, expert_weights = expert_tables(predictions, final.clusters.cluster_map, experts)
    rundir.write_csv("expert_auc.csv", expert_auc)
    rundir.write_csv("expert_weights.csv", expert_weights)
    # With several experts the files also hold each expert's P(up) and gate weight per row.
    expert_cols = [f"{k}_{e}" for e in experts for k in ("p", "w")] if len(experts) > 1 else []
    columns = ["timestamp", "fold", "p_up", "signal", "forward_return", "y", "forced_entry", "return_1", "bar_number",
               "cluster", *expert_cols]
    for symbol, rows in predictions.groupby("symbol", sort=True):
        rundir.write_parquet(f"predictions/{symbol}.parquet",
                             rows[columns].sort_values("timestamp").reset_index(drop=True))
    if holdout is not None:
        for symbol, rows in holdout_rows.groupby("symbol", sort=True):
            rundir.write_parquet(f"holdout_predictions/{symbol}.parquet",
                                 rows[columns].sort_values("timestamp").reset_index(drop=True))
    rundir.write_json("clusters.json", {
        **final.clusters.to_dict(),
        "fitted_on": f"training window of fold {final.fold.index} (timestamps < {final.fold.train_end.isoformat()})",
        "factor_method": config.market.factor_method.value,
        "factor_explained_variance": final.explained_variance,
        "folds": [{"fold": fm.fold.index, "train_end": fm.fold.train_end.isoformat(),
                   "cluster_map": fm.clusters.cluster_map, "dominant_cluster": fm.clusters.dominant_cluster,
                   "factor_explained_variance": fm.explained_variance} for fm in markets],
    })
    rundir.write_parquet("market_factor.parquet", final.factor.rename("market_factor").rename_axis("timestamp").reset_index())
    rundir.write_bytes("asset_registry.json", (json.dumps(registry.to_dict(), indent=2) + "\n").encode())
    model_index = {}
    for r in results:
        if r.model is not None:
            rundir.write_pickle(f"models/{r.group}.pkl", r.model)
            model_index[r.group] = {"file": f"models/{r.group}.pkl", "assets": r.model.assets,
                                    "trained_until": r.model.trained_until.isoformat(),
                                    "features": r.model.feature_names}
    rundir.write_json("models/index.json", model_index)
    wall = time.perf_counter() - t0
    command = _redacted(argv if argv is not None else sys.argv)
    # Written last: on an object store its presence is what marks the run complete.
    rundir.write_json("manifest.json", {
        "fleet_version": __version__,
        "out": rundir.shown,
        "command": rundir.state.get("command", command),
        "resumed_with": command if training["loaded"] else None,
        "started": started.isoformat(),
        "finished": pd.Timestamp.now(tz="UTC").isoformat(),
        "wall_seconds": round(wall, 3),
        "backend": backend_desc,
        "config": config.to_dict(),
        "versions": _versions(),
        "data": {"source": source, "symbols": panel.symbols, "bar": str(panel.bar), "columns": list(panel.columns),
                 "skipped_features": skipped,
                 "first": {s: f.index[0].isoformat() for s, f in panel.frames.items()},
                 "last": {s: f.index[-1].isoformat() for s, f in panel.frames.items()},
                 "files": data_files},
        "registry": {"path": config.registry, "version": registry.version, "symbols": len(registry)},
        "folds": [f.to_dict() for f in folds],
        "holdout": {"days": config.validation.holdout_days, "after": timeline_end.isoformat(),
                    "rows": 0 if holdout_rows is None else len(holdout_rows)},
        "bars_per_year": bars_per_year,
        "ffd_d": {r.unit_id: r.d_by_asset for r in results},
        "units": [r.timing() for r in results],
        # One record per step of every unit's task graph (fleet.training.graph.task_record).
        "tasks": [t for r in results for t in (getattr(r, "tasks", None) or [])],
        "training": training,
        "notes": notes,
    })
    out = rundir.commit()
    report = None
    if config.evaluation.report and rundir.remote:
        echo(f"note: no HTML report for a run on an object store; download it (e.g. `aws s3 sync`) and run "
             "`fleet report` on the copy")
    elif config.evaluation.report:
        from fleet.evaluation.report import write_report

        # After the commit: a plotting failure must not cost the trained run.
        try:
            report = write_report(out)
            echo(f"Report: {report}")
        except Exception as err:  # noqa: BLE001 -- reported, the run itself is complete
            echo(f"warning: the report could not be written ({type(err).__name__}: {err}); "
                 f"retry with `fleet report {out}`")
    return RunSummary(out=out, report=report, per_asset=per_asset, per_cluster=per_cluster, per_fold=per_fold,
                      forced_entry=forced, bars_per_year=bars_per_year, final_clusters=final.clusters,
                      explained_variance=final.explained_variance, wall_seconds=time.perf_counter() - t0,
                      units=n_units, backend=backend_desc, notes=notes, config=config,
                      trained=len(training["trained"]), loaded=len(training["loaded"]),
                      train_seconds=training["backend_seconds"], expert_auc=expert_auc,
                      expert_weights=expert_weights, holdout=holdout)


SEED_METRICS = ["precision", "recall", "auc", "expectancy", "trades", *RANK_COLUMNS, *TRADING_COLUMNS]


@dataclass
class SeedsSummary:
    """What ``fleet train --seeds N`` produced: one run per seed and the mean / std table."""

    out: Path | str
    runs: list[RunSummary]
    table: pd.DataFrame
    wall_seconds: float


def seeds_table(runs: list[RunSummary]) -> pd.DataFrame:
    """Mean and sample std (ddof=1) of every metric over repeated runs, per asset and per cluster.

    Returns:
        A long table with columns level ("asset" | "cluster"), name (symbol or cluster id), metric,
        mean, std, runs (number of runs that had the row; std is NaN with one). Cluster ids are
        compared as they are, so per-cluster rows are meaningful only where the seeds give the
        same clustering (always on real data: clustering does not depend on the seed).
    """
    parts = []
    for level, attr, key in (("asset", "per_asset", "asset"), ("cluster", "per_cluster", "cluster")):
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


def run_seeds(config: FleetConfig, *, echo: Echo = print, argv: list[str] | None = None) -> SeedsSummary:
    """Run the fleet ``config.evaluation.seeds`` times, with seeds seed .. seed + N - 1.

    Layout: ``--out`` holds one complete run directory per seed (``seed<k>/``) and
    ``results_seeds.csv`` (:func:`seeds_table`). The whole tree is staged and renamed into
    place at the end, so a failure leaves nothing at ``--out``. On an object store (URI ``--out``) the tree is
    written in place and ``results_seeds.csv``, written last, marks it complete.

    Raises:
        FleetError: as :func:`run_fleet`, for any of the runs.
    """
    t0 = time.perf_counter()
    n = config.evaluation.seeds
    parent = RunDirectory(config.out or default_out())
    parent.open()
    try:
        runs = []
        for k in range(n):
            seed = config.seed + k
            echo(f"=== run {k + 1}/{n}: seed {seed} ===")
            inside = parent.final if parent.remote else parent.staging
            sub = config.model_copy(update={"seed": seed, "out": join_location(inside, f"seed{seed}")}, deep=True)
            runs.append(run_fleet(sub, echo=echo, argv=argv))
        table = seeds_table(runs)
        parent.write_csv("results_seeds.csv", table)
        out = parent.commit()
    except BaseException:
        parent.abort()
        raise
    if not parent.remote:
        for r in runs:
            r.out = out / r.out.name
    return SeedsSummary(out=out, runs=runs, table=table, wall_seconds=time.perf_counter() - t0)
