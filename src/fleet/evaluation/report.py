"""``fleet report RUN_DIR``: one self-contained HTML page with plots and tables of a finished run.

Reads only the run directory (no data files, no Ray) and writes, into ``RUN_DIR/report/`` or
another directory:

* ``report.html``: a headline block (the run, data span, strategy and experts; fleet AUC, Rank
  IC and Sharpe net of costs; the share of assets with positive net expectancy; best and worst
  assets), every plot embedded as a base64 PNG (the page opens anywhere on its own) and the
  results tables formatted for people (bps, %, signs). The page is rendered from the Jinja2
  template ``fleet/evaluation/templates/report.html.j2`` (package data);
* the same plots as PNG files beside it: ``clusters.png`` (dendrogram and correlation heatmap),
  ``market_factor.png``, ``equity.png`` (per-asset equity against buy-and-hold),
  ``portfolio.png`` (the equal-weight fleet portfolio and its drawdown), ``fold_metrics.png``
  (AUC and Rank IC per fold), ``p_up_hist.png``, ``calibration.png`` (reliability plot),
  ``expert_weights.png`` and ``gate_weights.png`` (several experts only) and
  ``forced_entry.png`` (``--forced-entry`` runs only).

Equity curves are the marked-to-market curves of the results tables
(:func:`fleet.evaluation.metrics.mark_to_market`, :func:`~fleet.evaluation.metrics.portfolio_returns`),
shown as simple-return equity ``exp(cumsum(P&L)) - 1``. Buy-and-hold is ``exp(cumsum(return_1)) - 1``,
the asset's own price change over the out-of-sample rows (the predictions carry the 1-bar return of
every row: the run directory holds no prices).
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402
from scipy.cluster.hierarchy import dendrogram  # noqa: E402

from fleet.errors import RunDirectoryError  # noqa: E402
from fleet.evaluation.metrics import mark_to_market, portfolio_returns, segments_of, summarise  # noqa: E402

__all__ = ["REQUIRED_FILES", "RunData", "load_run", "write_report"]

REQUIRED_FILES = ("manifest.json", "clusters.json", "results_per_asset.csv", "results_per_cluster.csv",
                  "results_per_fold.csv", "expert_weights.csv", "market_factor.parquet")
PREDICTION_COLUMNS = ("timestamp", "fold", "p_up", "signal", "forward_return", "y", "return_1")
DPI = 100


@dataclass
class RunData:
    """What the report reads from a run directory."""

    path: Path
    manifest: dict
    clusters: dict
    per_asset: pd.DataFrame
    per_cluster: pd.DataFrame
    per_fold: pd.DataFrame
    expert_weights: pd.DataFrame
    factor: pd.Series
    predictions: dict[str, pd.DataFrame]
    forced_entry: pd.DataFrame | None
    holdout: pd.DataFrame | None = None

    @property
    def horizon(self) -> int:
        return int(self.manifest["config"]["labels"]["horizon"])

    @property
    def cost_bps(self) -> float:
        return float(self.manifest["config"]["policy"]["cost_bps"])

    @property
    def threshold(self) -> float:
        return float(self.manifest["config"]["policy"]["threshold"])

    @property
    def bars_per_year(self) -> float:
        return float(self.manifest["bars_per_year"])

    @property
    def experts(self) -> list[str]:
        return list(dict.fromkeys(self.expert_weights["expert"].astype(str)))

    @property
    def fold_starts(self) -> list[pd.Timestamp]:
        """Test-block starts of the walk-forward folds (fold boundaries on time axes)."""
        return [pd.Timestamp(f["test_start"]) for f in self.manifest.get("folds", [])]

    @property
    def factor_fitted_until(self) -> pd.Timestamp | None:
        """End of the last fold's training window: the market factor's loadings are in-sample before it."""
        folds = self.manifest.get("folds", [])
        return pd.Timestamp(folds[-1]["train_end"]) if folds else None

    def pooled(self) -> pd.DataFrame:
        """Every asset's prediction rows in one frame, with a symbol column."""
        return pd.concat([p.assign(symbol=s) for s, p in self.predictions.items()], ignore_index=True)


def load_run(run_dir: str | Path) -> RunData:
    """Read what the report needs from a finished run directory.

    Raises:
        RunDirectoryError: the directory or one of its files is missing or unreadable, or the
            predictions lack a column the report needs (one line naming the file).
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise RunDirectoryError(f"fleet report: run directory {path} not found")
    if (path / "results_seeds.csv").exists() and not (path / "manifest.json").exists():
        raise RunDirectoryError(f"fleet report: {path} holds a --seeds run; report one of its seed<k>/ directories")
    for name in REQUIRED_FILES:
        if not (path / name).is_file():
            raise RunDirectoryError(f"fleet report: {path / name} is missing: {path} is not a complete run directory "
                                    "(written by `fleet train`)")

    def read(name, fn):
        try:
            return fn(path / name)
        except Exception as err:  # any parse error -> one line naming the file
            raise RunDirectoryError(f"fleet report: cannot read {path / name}: {err}") from None

    manifest = read("manifest.json", lambda p: json.loads(p.read_text()))
    clusters = read("clusters.json", lambda p: json.loads(p.read_text()))
    for key in ("config", "bars_per_year"):
        if key not in manifest:
            raise RunDirectoryError(f"fleet report: {path / 'manifest.json'} has no '{key}' entry")
    for key in ("cluster_map", "dominant_cluster", "linkage", "correlation"):
        if key not in clusters:
            raise RunDirectoryError(f"fleet report: {path / 'clusters.json'} has no '{key}' entry")
    per_asset = read("results_per_asset.csv", pd.read_csv)
    factor = read("market_factor.parquet", pd.read_parquet)
    if not {"timestamp", "market_factor"} <= set(factor.columns):
        raise RunDirectoryError(f"fleet report: {path / 'market_factor.parquet'}: expected columns timestamp, "
                                f"market_factor, found {', '.join(map(str, factor.columns))}")
    predictions = {}
    for symbol in per_asset["asset"].astype(str):
        name = f"predictions/{symbol}.parquet"
        if not (path / name).is_file():
            raise RunDirectoryError(f"fleet report: {path / name} is missing: {path} is not a complete run directory")
        frame = read(name, pd.read_parquet)
        missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
        if missing:
            raise RunDirectoryError(f"fleet report: {path / name} has no {', '.join(missing)} column(s): written by an "
                                    "older fleet; train the run again to report it")
        predictions[symbol] = frame.sort_values("timestamp").reset_index(drop=True)
    forced_path = path / "forced_entry.csv"
    holdout_path = path / "results_holdout.csv"
    return RunData(
        path=path, manifest=manifest, clusters=clusters, per_asset=per_asset,
        per_cluster=read("results_per_cluster.csv", pd.read_csv),
        per_fold=read("results_per_fold.csv", pd.read_csv),
        expert_weights=read("expert_weights.csv", pd.read_csv),
        factor=factor.set_index("timestamp")["market_factor"],
        predictions=predictions,
        forced_entry=read("forced_entry.csv", pd.read_csv) if forced_path.is_file() else None,
        holdout=read("results_holdout.csv", pd.read_csv) if holdout_path.is_file() else None,
    )


# ---------------------------------------------------------------------------------------------- plots


def _asset_curves(run: RunData, p: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gross, net and buy-and-hold cumulative log P&L of one asset's rows (marked to market)."""
    seg = segments_of(p["bar_number"].to_numpy()) if "bar_number" in p else None
    gross, net = mark_to_market(p["return_1"].to_numpy(), p["signal"].to_numpy(), horizon=run.horizon,
                                cost_bps=run.cost_bps, segment=seg)
    return np.cumsum(gross), np.cumsum(net), np.cumsum(p["return_1"].to_numpy(dtype=np.float64))


def _fold_lines(ax, run: RunData, label: bool = False) -> None:
    for i, t in enumerate(run.fold_starts):
        ax.axvline(t, color="k", ls=":", lw=0.7, alpha=0.6, label="fold boundary (test block starts)"
                   if label and i == 0 else None)


def plot_clusters(run: RunData):
    c = run.clusters
    corr = pd.DataFrame(c["correlation"]).T
    symbols = list(c["correlation"])
    corr = corr.loc[symbols, symbols]
    link = np.asarray(c["linkage"], dtype=np.float64).reshape(-1, 4)
    cmap = c["cluster_map"]
    labels = [f"{s} (c{cmap.get(s, '?')})" for s in symbols]
    n = len(symbols)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, max(4.5, 0.45 * n + 2)), dpi=DPI,
                                   gridspec_kw={"width_ratios": [1, 1.15]})
    if len(link):
        k = len(set(cmap.values()))
        # Colour the branches below the cut that gives the run's k clusters.
        heights = np.sort(link[:, 2])
        cut = (heights[-k] + heights[-k + 1]) / 2 if 1 < k <= len(heights) else None
        order = dendrogram(link, labels=labels, orientation="left", ax=ax1, color_threshold=cut,
                           above_threshold_color="grey")["leaves"]
        if cut is not None:
            ax1.axvline(cut, color="k", ls="--", lw=0.8)
        ax1.set_xlabel("Ward distance on 1 - |corr|")
        order = order[::-1]  # top-to-bottom as drawn
    else:
        ax1.text(0.5, 0.5, "one asset: no tree", ha="center", va="center", transform=ax1.transAxes)
        order = list(range(n))
    ax1.set_title(f"Dendrogram (Ward), {len(set(cmap.values()))} clusters; dominant: c{c['dominant_cluster']}")
    ordered = [symbols[i] for i in order]
    m = corr.loc[ordered, ordered].to_numpy(dtype=float)
    im = ax2.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1)
    ax2.set_xticks(range(n), ordered, rotation=90)
    ax2.set_yticks(range(n), ordered)
    if n <= 15:
        for i in range(n):
            for j in range(n):
                ax2.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7,
                         color="white" if abs(m[i, j]) > 0.6 else "black")
    fig.colorbar(im, ax=ax2, fraction=0.046, pad=0.04, label="correlation of log returns")
    ax2.set_title("Correlation of log returns\n(last fold's training window, dendrogram order)")
    fig.tight_layout()
    return fig


def _reference_asset(run: RunData) -> tuple[str, str]:
    """BTC if the run has it, else the dominant cluster's first asset; with the reason."""
    symbols = list(run.predictions)
    btc = [s for s in symbols if s.upper().startswith("BTC")]
    if btc:
        return btc[0], "BTC"
    dominant = run.clusters["dominant_cluster"]
    members = sorted(s for s, k in run.clusters["cluster_map"].items() if k == dominant and s in run.predictions)
    ref = members[0] if members else symbols[0]
    return ref, f"no BTC in this run: {ref}, first asset of the dominant cluster c{dominant}"


def plot_market_factor(run: RunData):
    ref, why = _reference_asset(run)
    pred = run.predictions[ref]
    bar = pd.Timedelta(run.manifest.get("data", {}).get("bar", "1h"))
    t = pd.DatetimeIndex(pred["timestamp"])
    # The 1-bar return of row t is the move over (t, t + bar]: the log price change is drawn at t + bar.
    price = pd.Series(np.concatenate(([0.0], np.cumsum(pred["return_1"].to_numpy(dtype=np.float64)))),
                      index=t[:1].append(t + bar))
    factor = run.factor.dropna()
    factor.index = pd.DatetimeIndex(factor.index)
    span = factor[(factor.index > price.index[0]) & (factor.index <= price.index[-1])]
    cum = pd.concat([pd.Series([0.0], index=price.index[:1]), span.cumsum()])
    fitted = run.factor_fitted_until
    # Like for like, out of sample only: the factor's return over (t, t + bar] against the asset's return_1 at t.
    both = pd.DataFrame({"f": factor.reindex(t + bar).to_numpy(), "r": pred["return_1"].to_numpy()}, index=t)
    if fitted is not None:
        both = both[both.index >= fitted]
    both = both.dropna()
    rho = float(np.corrcoef(both["f"], both["r"])[0, 1]) if len(both) > 2 else float("nan")
    fig, ax = plt.subplots(figsize=(12, 5), dpi=DPI)
    if fitted is not None and fitted > cum.index[0]:
        ax.axvspan(cum.index[0], min(fitted, cum.index[-1]), color="0.85", alpha=0.6, lw=0,
                   label="in sample for the factor (loadings fitted on the last fold's training window)")
    ax.plot(cum.index, cum.to_numpy(), color="tab:blue", lw=1.2, label="cumulative market factor (left)")
    ax.set_ylabel("cumulative market factor (standardised units)", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(price.index, price.to_numpy(), color="tab:orange", lw=1.2, label=f"{ref} log price change (right)")
    ax2.set_ylabel(f"{ref} log price change since the first test bar", color="tab:orange")
    _fold_lines(ax, run, label=True)
    ax.set_title(f"Market factor against {ref} ({why})\nshaded: in sample for the factor; correlation of 1-bar "
                 f"moves out of sample {rho:.2f}", fontsize=11)
    handles = [h for h in ax.get_legend_handles_labels()[0]] + ax2.get_lines()
    ax.legend(handles, [h.get_label() for h in handles], loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2,
              fontsize=8, frameon=False)
    fig.tight_layout()
    return fig, rho


def plot_equity(run: RunData):
    n = len(run.predictions)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(4 * cols, 10), 3.1 * rows + 1.4), dpi=DPI, squeeze=False,
                             sharey=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for k, (ax, (symbol, p)) in enumerate(zip(axes.flat, run.predictions.items())):
        gross, net, hold = _asset_curves(run, p)
        t = pd.DatetimeIndex(p["timestamp"])
        ax.plot(t, np.expm1(hold), color="grey", lw=1, label="buy and hold")
        ax.plot(t, np.expm1(gross), color="tab:blue", lw=0.8, alpha=0.6, label="signal, gross")
        ax.plot(t, np.expm1(net), color="tab:red", lw=1.2, label=f"signal, net of {run.cost_bps:g} bps/side")
        ax.axhline(0, color="k", lw=0.5)
        _fold_lines(ax, run, label=k == 0)
        row = run.per_asset[run.per_asset["asset"].astype(str) == symbol]
        sh = float(row["sharpe_net"].iloc[0]) if len(row) and "sharpe_net" in row else float("nan")
        shown = f", Sharpe net {sh:+.2f}" if np.isfinite(sh) else ""
        ax.set_title(f"{symbol}: {int(p['signal'].sum())} trades{shown}", fontsize=10)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.tick_params(axis="y", labelsize=8)
        if k % cols == 0:
            ax.set_ylabel("equity, simple return\nsince the first test bar")
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"Per-asset equity, out of sample, marked to market (1/{run.horizon} tranches held "
                 f"{run.horizon} bars; costs on turnover); one shared scale", fontsize=12)
    fig.tight_layout()
    return fig


def plot_portfolio(run: RunData, pooled: pd.DataFrame):
    bars = portfolio_returns(pooled, pooled["signal"].to_numpy(), horizon=run.horizon, cost_bps=run.cost_bps)
    hold = pooled.groupby("timestamp", sort=True)["return_1"].mean()
    t = pd.DatetimeIndex(bars.index)
    net = np.cumsum(bars["net"].to_numpy())
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(12, 6.5), dpi=DPI, sharex=True,
                                  gridspec_kw={"height_ratios": [2.2, 1]})
    ax.plot(t, np.expm1(np.cumsum(hold.to_numpy())), color="grey", lw=1, label="equal-weight buy and hold")
    ax.plot(t, np.expm1(np.cumsum(bars["gross"].to_numpy())), color="tab:blue", lw=0.9, alpha=0.6,
            label="signal, gross")
    ax.plot(t, np.expm1(net), color="tab:red", lw=1.3, label=f"signal, net of {run.cost_bps:g} bps/side")
    ax.axhline(0, color="k", lw=0.5)
    _fold_lines(ax, run, label=True)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylabel("equity, simple return")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"Fleet: equal-weight portfolio of the {len(run.predictions)} assets, out of sample, marked to market",
                 fontsize=11)
    dd = np.exp(net - np.maximum.accumulate(np.maximum(net, 0.0))) - 1.0
    ax2.fill_between(t, dd, 0, color="tab:red", alpha=0.35, lw=0)
    ax2.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax2.set_ylabel("drawdown, net")
    _fold_lines(ax2, run)
    ax2.tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.tight_layout()
    return fig


def plot_fold_metrics(run: RunData):
    f = run.per_fold
    pooled = f[f["asset"].astype(str) == "ALL"].sort_values("fold")
    each = f[f["asset"].astype(str) != "ALL"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), dpi=DPI)
    for ax, col, ref, label in ((axes[0], "auc", 0.5, "ROC AUC of p_up"), (axes[1], "rank_ic", 0.0, "Rank IC")):
        x = pooled["fold"].to_numpy()
        ax.bar(x, pooled[col].to_numpy(dtype=float) - ref, 0.6, bottom=ref, color="tab:blue", alpha=0.7,
               label="all assets pooled")
        ax.scatter(each["fold"].to_numpy() + np.random.default_rng(0).uniform(-0.2, 0.2, len(each)),
                   each[col].to_numpy(dtype=float), s=14, color="k", alpha=0.6, label="one asset", zorder=3)
        ax.axhline(ref, color="k", lw=0.8)
        ax.set_xticks(x, [f"fold {int(k)}" for k in x])
        ax.set_ylabel(label)
        ax.set_title(f"{label} per walk-forward fold (out of sample)", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_p_up_hist(run: RunData, pooled: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=DPI)
    p = pooled["p_up"].to_numpy(dtype=float)
    lo, hi = float(np.quantile(p, 0.001)), float(np.quantile(p, 0.999))
    lo, hi = min(lo, run.threshold - 0.01), max(hi, run.threshold + 0.01)
    bins = np.linspace(lo, hi, 60)
    for k, g in pooled.groupby("fold", sort=True):
        ax.hist(g["p_up"].to_numpy(dtype=float), bins=bins, histtype="step", lw=1.4, label=f"fold {int(k)}")
    ax.axvline(run.threshold, color="tab:red", ls="--", lw=1.2,
               label=f"threshold {run.threshold:g}: {np.mean(p > run.threshold):.1%} of bars above")
    ax.set_xlabel("p_up (predicted probability that the forward return is > 0)")
    ax.set_ylabel("bars")
    ax.set_title(f"Distribution of p_up, out of sample ({len(p):,} bars, all assets)", fontsize=11)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_calibration(run: RunData, pooled: pd.DataFrame):
    from sklearn.calibration import calibration_curve

    fig, ax = plt.subplots(figsize=(7.5, 6), dpi=DPI)
    y, p = pooled["y"].to_numpy(dtype=int), pooled["p_up"].to_numpy(dtype=float)
    points = [np.array([y.mean()]), np.quantile(p, [0.01, 0.99])]
    if len(np.unique(y)) == 2:
        frac, mean_p = calibration_curve(y, p, n_bins=10, strategy="quantile")
        ax.plot(mean_p, frac, "o-", color="tab:red", lw=1.6, label="all folds (10 quantile bins)", zorder=3)
        points += [frac, mean_p]
        for k, g in pooled.groupby("fold", sort=True):
            gy = g["y"].to_numpy(dtype=int)
            if len(np.unique(gy)) == 2 and len(g) >= 50:
                fr, mp = calibration_curve(gy, g["p_up"].to_numpy(dtype=float), n_bins=5, strategy="quantile")
                ax.plot(mp, fr, ".-", lw=0.8, alpha=0.6, label=f"fold {int(k)} (5 bins)")
                points += [fr, mp]
    allp = np.concatenate(points)
    lo, hi = float(allp.min()) - 0.02, float(allp.max()) + 0.02
    ax.plot([lo, hi], [lo, hi], color="k", ls="--", lw=0.8, label="perfectly calibrated")
    ax.axhline(y.mean(), color="grey", lw=0.8, ls=":", label=f"base rate of up bars {y.mean():.3f}")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("mean p_up in the bin")
    ax.set_ylabel("share of up bars (y = 1) in the bin")
    ax.set_title("Reliability of p_up, out of sample\n(sklearn.calibration.calibration_curve)", fontsize=11)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def _gate_table(run: RunData) -> pd.DataFrame | None:
    """One row per unit with a gate record in the manifest: best expert, fallback, guard losses."""
    rows = []
    for u in run.manifest.get("units", []):
        g = u.get("gate") or {}
        guard = g.get("guard") or {}
        if not g:
            continue
        rows.append({"unit": u["unit"], "best_expert": guard.get("best_expert", ""),
                     "fallback": g.get("fallback") or "", "gate_loss": guard.get("gate_loss", np.nan),
                     "best_loss": guard.get("best_loss", np.nan), "oof_rows": g.get("oof_rows", 0)})
    return pd.DataFrame(rows) if rows else None


def plot_expert_weights(run: RunData):
    w = run.expert_weights
    groups = w[w["level"].isin(["fleet", "cluster"])].copy()
    groups["group"] = np.where(groups["level"] == "fleet", "fleet", "cluster " + groups["name"].astype(str))
    table = groups.pivot_table(index="group", columns="expert", values="mean_weight", sort=False)[run.experts]
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(table) * len(run.experts) / 2 + 3), 4.5), dpi=DPI)
    x = np.arange(len(table))
    width = 0.8 / len(run.experts)
    for i, e in enumerate(run.experts):
        bars = ax.bar(x + (i - (len(run.experts) - 1) / 2) * width, table[e].to_numpy(), width, label=e)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, table.index)
    ax.set_ylabel("mean gate weight (out-of-sample rows)")
    ax.set_ylim(0, max(1.0, float(np.nanmax(table.to_numpy())) * 1.15))
    ax.axhline(1 / len(run.experts), color="k", ls=":", lw=0.8, label="equal weight")
    ax.legend(fontsize=8, ncol=len(run.experts) + 1)
    ax.set_title("Expert weight distribution: mean gate weight per expert, fleet and per cluster")
    fig.tight_layout()
    return fig


def _gate_assets(run: RunData) -> list[str]:
    ref, _ = _reference_asset(run)
    others = [s for s in run.predictions if s != ref]
    return [ref] + others[:1]


def plot_gate_weights(run: RunData):
    assets = _gate_assets(run)
    bars_per_day = max(1.0, float(run.manifest["bars_per_year"]) / 365.0)
    fig, axes = plt.subplots(len(assets), 1, figsize=(12, 3.6 * len(assets)), dpi=DPI, squeeze=False)
    for ax, symbol in zip(axes[:, 0], assets):
        p = run.predictions[symbol]
        window = int(max(1, min(round(7 * bars_per_day), len(p) // 10)))
        cols = [f"w_{e}" for e in run.experts]
        roll = p[cols].rolling(window, min_periods=1).mean()
        ax.stackplot(pd.DatetimeIndex(p["timestamp"]), roll.to_numpy().T, labels=run.experts, alpha=0.85)
        active = (p[cols] > 0).sum(axis=1).mean()
        ax.set_ylim(0, 1)
        ax.set_ylabel("gate weight")
        ax.set_title(f"{symbol}: gate weights over time, rolling mean over {window} bars; "
                     f"mean active experts per bar {active:.2f}", fontsize=10)
        ax.legend(loc="upper left", fontsize=8, ncol=len(run.experts))
    fig.tight_layout()
    return fig


def plot_forced_entry(run: RunData):
    f = run.forced_entry
    x = np.arange(len(f))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(max(10, 0.9 * len(f) + 4), 4.5), dpi=DPI)
    for ax, col, label, scale in ((ax1, "mean_return", "mean forward log return per trade (bps)", 1e4),
                                  (ax2, "win_rate", "win rate (forward return > 0)", 1.0)):
        for i, (kind, colour) in enumerate((("natural", "tab:blue"), ("forced", "tab:orange"))):
            ax.bar(x + (i - 0.5) * 0.4, f[f"{kind}_{col}"].to_numpy(dtype=float) * scale, 0.4, color=colour,
                   label=f"{kind} ({int(f[f'{kind}_trades'].sum())} trades)")
        ax.set_xticks(x, f["asset"].astype(str), rotation=45, ha="right")
        ax.set_ylabel(label)
        ax.axhline(0.5 if col == "win_rate" else 0.0, color="k", lw=0.6)
        ax.legend(fontsize=8)
    ax2.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax1.set_title("Natural vs forced entries: mean return")
    ax2.set_title("Natural vs forced entries: win rate")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------- page

_RATIO = {"precision", "recall", "auc", "natural_win_rate", "forced_win_rate"}
_SIGNED = {"ic", "rank_ic", "icir", "sharpe", "sharpe_net"}
_PCT = {"ann_return", "ann_return_net"}
_BPS = {"expectancy", "natural_mean_return", "forced_mean_return", "delta"}
_INT = {"trades", "n", "folds", "days", "forced_days", "natural_trades", "forced_trades", "fold", "cluster"}


def _cell(column: str, value) -> tuple[str, str]:
    """(text, css class) of one table cell: bps, %, signs; classes pos / neg colour the signed figures."""
    if isinstance(value, (bool, np.bool_)):
        return ("●" if value else "", "mark")
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ("", "text") if column in ("advice", "assets") else ("–", "na")
    if isinstance(value, str):
        return (value, "text")
    v = float(value)
    tone = "pos" if v > 0 else "neg" if v < 0 else ""
    if column in _INT:
        return (f"{int(v):,}", "")
    if column in _BPS:
        return (f"{v * 1e4:+.1f} bps", tone)
    if column in _PCT:
        return (f"{v:+.1%}", tone)
    if column in ("max_dd", "max_dd_net"):
        return (f"{-v:.1%}" if v > 0 else "0.0%", "neg" if v > 0 else "")
    if column == "exposure":
        return (f"{v:.0%}", "")
    if column in _SIGNED:
        return (f"{v:+.2f}" if column in ("icir", "sharpe", "sharpe_net") else f"{v:+.3f}", tone)
    if column in _RATIO:
        return (f"{v:.3f}" if column in ("auc", "precision", "recall") else f"{v:.1%}", "")
    return (f"{v:.4g}", "")


def _table(df: pd.DataFrame, columns: list[str] | None = None, highlight: str | None = None) -> dict:
    """A table for the template: header names and rows of (text, css class) cells."""
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    rows = []
    for rec in df[cols].to_dict("records"):
        rows.append({"cells": [_cell(c, rec[c]) for c in cols],
                     "highlight": highlight is not None and str(rec.get(highlight, "")) == "ALL"})
    return {"columns": cols, "rows": rows}


def _png(fig, path: Path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    data = buf.getvalue()
    path.write_bytes(data)
    return base64.b64encode(data).decode("ascii")


def _span(values) -> str:
    ts = pd.DatetimeIndex([pd.Timestamp(v) for v in values])
    return f"{ts.min():%Y-%m-%d %H:%M} – {ts.max():%Y-%m-%d %H:%M} UTC" if len(ts) else "–"


def headline(run: RunData, pooled: pd.DataFrame) -> dict:
    """The figures of the page's headline block (fleet = equal-weight portfolio of every asset)."""
    cfg = run.manifest["config"]
    fleet = summarise(pooled, [], threshold=run.threshold, cost_bps=run.cost_bps, horizon=run.horizon,
                      bars_per_year=run.bars_per_year).iloc[0]
    pa = run.per_asset.dropna(subset=["sharpe_net"]).sort_values("sharpe_net", ascending=False)
    expectancy = run.per_asset["expectancy"]
    traded = expectancy.notna()
    best = [f"{r.asset} ({r.sharpe_net:+.2f})" for r in pa.head(3).itertuples()]
    worst = [f"{r.asset} ({r.sharpe_net:+.2f})" for r in pa.tail(3).iloc[::-1].itertuples()]
    data = run.manifest.get("data", {})
    experts = run.experts
    out = {
        "run": run.path.name,
        "data_span": _span([*data.get("first", {}).values(), *data.get("last", {}).values()]),
        "oos_span": _span([t for p in run.predictions.values() for t in (p["timestamp"].min(), p["timestamp"].max())]),
        "source": data.get("source", ""),
        "strategy": str(cfg.get("strategy")),
        "experts": ", ".join(experts) + (f" (gate {cfg['model']['moe']['gate']})" if len(experts) > 1 else ""),
        "assets": len(run.predictions),
        "folds": len(run.manifest.get("folds", [])),
        "auc": _cell("auc", fleet["auc"])[0],
        "rank_ic": _cell("rank_ic", fleet["rank_ic"]),
        "sharpe_net": _cell("sharpe_net", fleet["sharpe_net"]),
        "sharpe": _cell("sharpe", fleet["sharpe"]),
        "ann_return_net": _cell("ann_return_net", fleet["ann_return_net"]),
        "max_dd_net": _cell("max_dd_net", fleet["max_dd_net"]),
        "positive": f"{int((expectancy[traded] > 0).sum())} of {int(traded.sum())}",
        "positive_share": f"{(expectancy[traded] > 0).mean():.0%}" if traded.any() else "–",
        "best": ", ".join(best) or "–",
        "worst": ", ".join(worst) or "–",
        "cost_bps": f"{run.cost_bps:g}",
        "horizon": run.horizon,
        "threshold": f"{run.threshold:g}",
        "forced_entry": bool(cfg["policy"].get("forced_entry")),
        "holdout": None,
    }
    if run.holdout is not None and len(run.holdout):
        row = run.holdout[run.holdout["asset"].astype(str) == "ALL"]
        if len(row):
            r = row.iloc[0]
            out["holdout"] = {"days": f"{cfg['validation']['holdout_days']:g}", "auc": _cell("auc", r["auc"])[0],
                              "sharpe_net": _cell("sharpe_net", r["sharpe_net"]), "n": f"{int(r['n']):,}"}
    return out


def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(loader=PackageLoader("fleet.evaluation", "templates"),
                       autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def write_report(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write ``report.html`` and its PNGs for a run directory.

    Args:
        run_dir: a finished run directory (``fleet train --out``).
        out_dir: where to write; default ``RUN_DIR/report``. Created if missing; files in it are replaced.

    Returns:
        The path of the HTML file.

    Raises:
        RunDirectoryError: the run directory is missing or incomplete (names the missing file).
    """
    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run.path / "report"
    out.mkdir(parents=True, exist_ok=True)
    cfg = run.manifest["config"]
    pooled = run.pooled()
    figures: dict[str, dict] = {}

    def figure(name: str, fig, caption: str) -> dict:
        figures[name] = {"name": name, "b64": _png(fig, out / name), "caption": caption}
        return figures[name]

    ref, why = _reference_asset(run)
    figure("clusters.png", plot_clusters(run),
           f"Ward dendrogram on 1 - |corr| of log returns and the correlation matrix, fitted on the last fold's "
           f"training window ({run.clusters.get('fitted_on', '')}). Labels: symbol (cluster id). Dominant cluster "
           f"c{run.clusters['dominant_cluster']}: {run.clusters.get('dominant_reason', '')}. Earlier folds have their "
           "own clustering (clusters.json, 'folds'); the per-cluster table groups each fold's rows by it.")
    fig, rho = plot_market_factor(run)
    figure("market_factor.png", fig,
           f"Cumulative market factor ({run.clusters.get('factor_method', '')}, the last fold's loadings) against "
           f"{ref}'s log price ({why}), read from the predictions' 1-bar returns. The factor's loadings and scaling "
           "come from the last fold's training window, so over the shaded part (earlier folds' test blocks) it is in "
           "sample; only the unshaded part is out of sample. Correlation of 1-bar moves there: "
           f"{rho:.2f}. Dotted lines: fold boundaries.")
    figure("equity.png", plot_equity(run),
           f"Per asset, out of sample: simple-return equity of the signal, marked to market (every signal opens a "
           f"1/h tranche held h = {run.horizon} bars; the bar's P&L is exposure × the bar's return; costs of "
           f"{run.cost_bps:g} bps per side on each change of exposure), gross and net, against buy-and-hold. One "
           "shared y scale; dotted lines: fold boundaries.")
    figure("portfolio.png", plot_portfolio(run, pooled),
           "The fleet: equal-weight portfolio of all assets (per bar, the mean P&L of the assets with a prediction), "
           "net and gross of costs, against equal-weight buy-and-hold; below, the drawdown of the net curve from its "
           "running peak.")
    figure("fold_metrics.png", plot_fold_metrics(run),
           "ROC AUC and Rank IC per walk-forward fold (results_per_fold.csv): bars for all assets pooled, dots for "
           "single assets. Stable edges show in every fold; one good fold is not an edge.")
    figure("p_up_hist.png", plot_p_up_hist(run, pooled),
           f"Distribution of p_up per fold; the dashed line is the threshold ({run.threshold:g}) above which the "
           "policy goes long.")
    figure("calibration.png", plot_calibration(run, pooled),
           "Reliability plot: bars binned by p_up (quantile bins), share of up bars against mean p_up. On the "
           "diagonal p_up is a probability one can size with; flatter than the diagonal: overconfident.")
    mixture = len(run.experts) > 1
    active_table = None
    guard_info = None
    if mixture:
        figure("expert_weights.png", plot_expert_weights(run),
               "Mean gate weight of each expert over the out-of-sample rows, for the fleet and per cluster "
               "(expert_weights.csv; each group sums to 1).")
        figure("gate_weights.png", plot_gate_weights(run),
               f"Gate weights over time for {', '.join(_gate_assets(run))}: stacked rolling mean of w_<expert> "
               "(about a week of bars); bars where top-k leaves an expert out count as 0. Active experts = experts "
               "with a weight > 0 on a bar.")
        cols = [f"w_{e}" for e in run.experts]
        active = pd.DataFrame({s: (p[cols] > 0).mean().set_axis(run.experts) for s, p in run.predictions.items()}).T
        active = active.map(lambda v: f"{v:.0%}")
        active.insert(0, "mean_active", [f"{(p[cols] > 0).sum(axis=1).mean():.2f}" for p in run.predictions.values()])
        active_table = _table(active.rename_axis("asset").reset_index())
        guard = _gate_table(run)
        if guard is not None:
            guard_info = {"fallbacks": int((guard["fallback"] != "").sum()), "units": len(guard),
                          "table": _table(guard)}
    forced = None
    if run.forced_entry is not None:
        advice = run.forced_entry[run.forced_entry["advice"].fillna("") != ""]["asset"].astype(str).tolist()
        cutoff = cfg["policy"].get("forced_entry_cutoff") or "the day's last bar"
        figure("forced_entry.png", plot_forced_entry(run),
               f"Natural trades (p_up above the threshold) against forced ones (a day with no natural signal up to "
               f"the cut-off bar, {cutoff} UTC, is entered at that bar), per asset, from forced_entry.csv.")
        forced = {"advice": advice, "table": _table(run.forced_entry)}
    if run.manifest.get("tasks"):
        from fleet.evaluation.gantt import plot_tasks

        figure("tasks.png", plot_tasks(run.manifest["tasks"]),
               "Training steps per worker (manifest.json tasks): each unit's prepare, inner-fold and full-window fits "
               "per expert, gate and assemble, one lane per worker process, GPU-holding lanes first. CNN steps in red.")
    metric_cols = ["precision", "recall", "auc", "expectancy", "ic", "rank_ic", "icir", "sharpe_net", "sharpe",
                   "ann_return_net", "max_dd_net", "exposure", "trades", "folds", "n"]
    page = _environment().get_template("report.html.j2").render(
        title=f"fleet report: {run.path.name}",
        head=headline(run, pooled),
        figures=figures,
        mixture=mixture,
        single_expert=run.experts[0],
        active_table=active_table,
        guard=guard_info,
        forced=forced,
        per_cluster=_table(run.per_cluster, ["cluster", "dominant", "assets", *metric_cols]),
        per_asset=_table(run.per_asset.sort_values("sharpe_net", ascending=False, na_position="last"),
                         ["asset", "cluster", *metric_cols]),
        per_fold=_table(run.per_fold, ["fold", "asset", *metric_cols], highlight="asset"),
        holdout=_table(run.holdout, ["asset", *metric_cols], highlight="asset") if run.holdout is not None else None,
        command=" ".join(map(str, run.manifest.get("command") or [])),
        started=str(run.manifest.get("started", "")),
        bars_per_year=f"{run.bars_per_year:g}",
        gate=(cfg["model"]["moe"]["gate"] if mixture else ""),
    )
    target = out / "report.html"
    target.write_text(page, encoding="utf-8")
    return target
