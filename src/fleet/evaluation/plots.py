"""The plots of ``fleet report`` (matplotlib, Agg backend), each from a :class:`~fleet.evaluation.run_data.RunData`.

Equity curves are the marked-to-market curves of the results tables
(:func:`fleet.evaluation.metrics.mark_to_market`, :func:`~fleet.evaluation.metrics.portfolio_returns`),
compounded into simple-return equity ``prod(1 + P&L) - 1``; buy-and-hold is ``exp(cumsum(return_1)) - 1`` (the
equal-weight fleet's: the per-timestamp mean of the assets' simple returns, compounded).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402
from scipy.cluster.hierarchy import dendrogram  # noqa: E402

from fleet.evaluation.metrics import mark_to_market, portfolio_returns, segments_of  # noqa: E402
from fleet.evaluation.run_data import RunData  # noqa: E402
from fleet.evaluation.tables import base_rate_share  # noqa: E402

DPI = 100
#: Fleets up to this many assets get each asset's dot named in the per-fold chart.
NAMED_DOTS = 12


def _asset_curves(run: RunData, p: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gross, net and buy-and-hold cumulative log growth of one asset's rows (marked to market; the books' simple
    returns compounded with log1p)."""
    seg = segments_of(p["bar_number"].to_numpy()) if "bar_number" in p else None
    gross, net = mark_to_market(p["return_1"].to_numpy(), p["signal"].to_numpy(), horizon=run.horizon,
                                cost_bps=run.cost_bps, segment=seg)
    return (np.cumsum(np.log1p(gross)), np.cumsum(np.log1p(net)),
            np.cumsum(p["return_1"].to_numpy(dtype=np.float64)))


def _fold_lines(ax, run: RunData, label: bool = False) -> None:
    for i, t in enumerate(run.fold_starts):
        ax.axvline(t, color="k", ls=":", lw=0.7, alpha=0.6, label="fold boundary (test block starts)"
                   if label and i == 0 else None)


def _correlation_scale(m: np.ndarray) -> tuple[float, float, str]:
    """Colour range and map for a correlation matrix: the off-diagonal values' own range (to 0.05) on a sequential
    map when none is negative and a diverging map centred on 0 otherwise, so that the differences the clustering
    acts on are visible."""
    off = m[~np.eye(len(m), dtype=bool)]
    off = off[np.isfinite(off)]
    if not len(off):
        return -1.0, 1.0, "RdBu_r"
    if off.min() >= 0:
        # The diagonal's 1.0 is left out of the range (drawn in the top colour), so the spread between pairs shows.
        return float(np.floor(off.min() * 20) / 20), float(min(1.0, np.ceil(off.max() * 20) / 20)), "viridis"
    top = float(np.ceil(np.abs(off).max() * 20) / 20)
    return -top, top, "RdBu_r"


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
    vmin, vmax, cmap_name = _correlation_scale(m)
    im = ax2.imshow(m, cmap=cmap_name, vmin=vmin, vmax=vmax)
    ax2.set_xticks(range(n), ordered, rotation=90)
    ax2.set_yticks(range(n), ordered)
    if n <= 15:
        for i in range(n):
            for j in range(n):
                dark = (m[i, j] - vmin) / (vmax - vmin) < 0.6 if cmap_name == "viridis" else abs(m[i, j]) > 0.6 * vmax
                ax2.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7,
                         color="white" if dark else "black")
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
    """The reference asset's log price and how closely the market factor follows its 1-bar moves over time.

    Top: the asset's log price change since the first test bar. Bottom: the correlation of the factor's 1-bar
    value with the asset's 1-bar log return in rolling windows of about 7 days (a standardised factor has no
    level to draw: cumulating it shows the drift removed by its in-sample standardisation, not the market).
    Returns (figure, out-of-sample correlation of the 1-bar moves).
    """
    ref, why = _reference_asset(run)
    pred = run.predictions[ref]
    bar = pd.Timedelta(run.manifest.get("data", {}).get("bar", "1h"))
    t = pd.DatetimeIndex(pred["timestamp"])
    r = pred["return_1"].to_numpy(dtype=np.float64)
    # The 1-bar return of row t is the move over (t, t + bar]: the log price change is drawn at t + bar.
    price = pd.Series(np.concatenate(([0.0], np.cumsum(r))), index=t[:1].append(t + bar))
    factor = run.factor.dropna()
    factor.index = pd.DatetimeIndex(factor.index)
    fitted = run.factor_fitted_until
    # Like for like: the factor's value over (t, t + bar] against the asset's return_1 at t.
    both = pd.DataFrame({"f": factor.reindex(t + bar).to_numpy(), "r": r}, index=t)
    outside = both[both.index >= fitted] if fitted is not None else both
    outside = outside.dropna()
    rho = float(np.corrcoef(outside["f"], outside["r"])[0, 1]) if len(outside) > 2 else float("nan")
    window = int(max(10, round(7 * pd.Timedelta("1D") / bar)))
    rolling = both["f"].rolling(window, min_periods=window // 2).corr(both["r"])
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(12, 6.5), dpi=DPI, sharex=True,
                                  gridspec_kw={"height_ratios": [1.4, 1]})
    for a in (ax, ax2):
        if fitted is not None and fitted > price.index[0]:
            a.axvspan(price.index[0], min(fitted, price.index[-1]), color="0.85", alpha=0.6, lw=0,
                      label="in sample for the factor (loadings fitted on the last fold's training window)"
                      if a is ax else None)
        _fold_lines(a, run, label=a is ax)
    ax.plot(price.index, price.to_numpy(), color="tab:orange", lw=1.2, label=f"{ref} log price change")
    ax.set_ylabel(f"{ref} log price change\nsince the first test bar")
    ax.legend(fontsize=8, loc="best")
    ax2.plot(rolling.index, rolling.to_numpy(), color="tab:blue", lw=1.0,
             label=f"rolling correlation over {window} bars")
    if np.isfinite(rho):
        ax2.axhline(rho, color="k", ls="--", lw=0.8, label=f"out of sample, all bars: {rho:.2f}")
    ax2.set_ylim(min(-0.05, float(np.nanmin(rolling.to_numpy())) - 0.05) if rolling.notna().any() else -1, 1.0)
    ax2.axhline(0, color="k", lw=0.5)
    ax2.set_ylabel("correlation of 1-bar moves,\nmarket factor vs asset")
    ax2.legend(fontsize=8, loc="lower left")
    ax2.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.set_title(f"Market factor against {ref} ({why}): does the factor follow the market?", fontsize=11)
    fig.tight_layout()
    return fig, rho


def plot_equity(run: RunData):
    n = len(run.predictions)
    cols = min(4, n)
    rows = -(-n // cols)
    # Each panel its own y-scale: one asset's buy-and-hold can be ten times another's, and a shared scale would
    # flatten every strategy curve beside it.
    fig, axes = plt.subplots(rows, cols, figsize=(max(4 * cols, 10), 3.1 * rows + 1.4), dpi=DPI, squeeze=False)
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
        row = run.per_asset[run.per_asset["symbol"].astype(str) == symbol]
        sh = float(row["sharpe_net"].iloc[0]) if len(row) and "sharpe_net" in row else float("nan")
        shown = f", Sharpe net {sh:+.2f}" if np.isfinite(sh) else ""
        ax.set_title(f"{symbol}: {int(p['signal'].sum())} entry signals{shown}", fontsize=10)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.tick_params(axis="y", labelsize=8)
        if k % cols == 0:
            ax.set_ylabel("equity, simple return\nsince the first test bar")
    axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"Per-asset equity, out of sample, marked to market (1/{run.horizon} tranches held "
                 f"{run.horizon} bars; costs on turnover); each panel its own scale", fontsize=12)
    fig.tight_layout()
    return fig


def plot_portfolio(run: RunData, pooled: pd.DataFrame):
    bars = portfolio_returns(pooled, pooled["signal"].to_numpy(), horizon=run.horizon, cost_bps=run.cost_bps)
    hold = np.expm1(pooled["return_1"]).groupby(pooled["timestamp"], sort=True).mean()
    t = pd.DatetimeIndex(bars.index)
    net = np.cumsum(np.log1p(bars["net"].to_numpy()))
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(12, 6.5), dpi=DPI, sharex=True,
                                  gridspec_kw={"height_ratios": [2.2, 1]})
    ax.plot(t, np.expm1(np.cumsum(np.log1p(hold.to_numpy()))), color="grey", lw=1, label="equal-weight buy and hold")
    ax.plot(t, np.expm1(np.cumsum(np.log1p(bars["gross"].to_numpy()))), color="tab:blue", lw=0.9, alpha=0.6,
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
    """Per fold: the pooled AUC and Rank IC as bars from their no-skill level (0.5, 0) and each asset's as a dot,
    named when the fleet is small enough to read the names (at most :data:`NAMED_DOTS` assets)."""
    f = run.per_fold
    pooled = f[f["symbol"].astype(str) == "ALL"].sort_values("fold")
    each = f[f["symbol"].astype(str) != "ALL"]
    names = each["symbol"].astype(str).to_numpy()
    named = len(set(names)) <= NAMED_DOTS
    jitter = np.random.default_rng(0).uniform(-0.2, 0.2, len(each))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), dpi=DPI)
    for ax, col, ref, label in ((axes[0], "auc", 0.5, "ROC AUC of p_up"), (axes[1], "rank_ic", 0.0, "Rank IC")):
        x = pooled["fold"].to_numpy()
        ax.bar(x, pooled[col].to_numpy(dtype=float) - ref, 0.6, bottom=ref, color="tab:blue", alpha=0.7,
               label="all assets pooled")
        xs, ys = each["fold"].to_numpy() + jitter, each[col].to_numpy(dtype=float)
        ax.scatter(xs, ys, s=14, color="k", alpha=0.6, zorder=3,
                   label="one asset" + ("" if named else f" ({len(set(names))} assets, unnamed)"))
        if named:
            for xi, yi, name in zip(xs, ys, names):
                if np.isfinite(yi):
                    ax.annotate(name, (xi, yi), xytext=(3, 0), textcoords="offset points", fontsize=6,
                                va="center", alpha=0.8)
        ax.axhline(ref, color="tab:red", lw=1.0, ls="--", label=f"{ref:g}: no skill")
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
    # the select gate's share of the constant base rate, drawn in grey beside the experts when the run has one
    shown = run.experts + (["base_rate"] if (groups["expert"] == "base_rate").any() else [])
    table = groups.pivot_table(index="group", columns="expert", values="mean_weight", sort=False)[shown]
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(table) * len(shown) / 2 + 3), 4.5), dpi=DPI)
    x = np.arange(len(table))
    width = 0.8 / len(shown)
    for i, e in enumerate(shown):
        bars = ax.bar(x + (i - (len(shown) - 1) / 2) * width, table[e].to_numpy(), width, label=e,
                      **({"color": "0.6"} if e == "base_rate" else {}))
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, table.index)
    ax.set_ylabel("mean gate weight (out-of-sample rows)")
    ax.set_ylim(0, max(1.0, float(np.nanmax(table.to_numpy())) * 1.15))
    ax.axhline(1 / len(run.experts), color="k", ls=":", lw=0.8, label="equal weight")
    ax.legend(fontsize=8, ncol=len(shown) + 1)
    ax.set_title("Expert weight distribution: mean gate weight per expert, fleet and per cluster")
    fig.tight_layout()
    return fig


def _gate_assets(run: RunData) -> tuple[list[str], str]:
    """One asset per cluster of the last fold (its first by name), at most four, and the words that say so."""
    cmap = run.clusters.get("cluster_map", {}) if run.clusters else {}
    firsts = {}
    for symbol in sorted(run.predictions):
        firsts.setdefault(cmap.get(symbol, 0), symbol)
    assets = [firsts[k] for k in sorted(firsts)][:4]
    why = ("one asset per cluster (the first by name)" if len(firsts) > 1 else "the first asset by name")
    return assets, why + (f", {len(assets)} of {len(firsts)} clusters" if len(firsts) > 4 else "")


def plot_gate_weights(run: RunData):
    """Gate weights of a few assets over the out-of-sample bars, fold by fold.

    A gate whose weights are constant within a fold (select, best, stack: one weight vector per unit) is drawn as
    those constants, stepping at the fold boundaries. A gate whose weights change bar by bar (rule, mlp) is drawn
    as a rolling mean over about 7 days, computed inside each fold so that no window mixes two folds' models.
    """
    assets, why = _gate_assets(run)
    cols = [f"w_{e}" for e in run.experts]
    bars_per_day = max(1.0, float(run.manifest["bars_per_year"]) / 365.0)
    fig, axes = plt.subplots(len(assets), 1, figsize=(12, 3.3 * len(assets) + 0.6), dpi=DPI, squeeze=False)
    for ax, symbol in zip(axes[:, 0], assets):
        p = run.predictions[symbol]
        by_fold = p.groupby("fold", sort=False)[cols]
        constant = bool((by_fold.std(ddof=0).fillna(0.0).to_numpy() < 1e-9).all())
        if constant:
            shown, how = p[cols], "constant within each fold"
        else:
            window = int(max(1, min(round(7 * bars_per_day), len(p) // 10)))
            shown = by_fold.transform(lambda w: w.rolling(window, min_periods=1).mean())
            how = f"rolling mean over {window} bars within each fold"
        layers, labels, colors = [shown.to_numpy().T], list(run.experts), [f"C{i}" for i in range(len(cols))]
        base = base_rate_share(shown).to_numpy()
        if base.max() > 1e-9:  # the select gate's base-rate share (model.moe.select_base_rate: mix), in grey on top
            layers, labels, colors = layers + [base[None, :]], labels + ["base_rate"], colors + ["0.6"]
        t = pd.DatetimeIndex(p["timestamp"])
        ax.stackplot(t, np.vstack(layers), labels=labels, colors=colors, alpha=0.85, step="post" if constant else None)
        _fold_lines(ax, run)
        active = (p[cols] > 0).sum(axis=1).mean()
        ax.set_ylim(0, 1)
        ax.set_ylabel("gate weight")
        ax.set_title(f"{symbol} (cluster {run.clusters.get('cluster_map', {}).get(symbol, '?')}): {how}; "
                     f"mean active experts per bar {active:.2f}", fontsize=10)
        ax.legend(loc="upper left", fontsize=8, ncol=len(labels))
    fig.suptitle(f"Gate weights out of sample: {why}; dotted lines: fold boundaries", fontsize=11)
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
        ax.set_xticks(x, f["symbol"].astype(str), rotation=45, ha="right")
        ax.set_ylabel(label)
        ax.axhline(0.5 if col == "win_rate" else 0.0, color="k", lw=0.6)
        ax.legend(fontsize=8)
    ax2.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax1.set_title("Natural vs forced entries: mean return")
    ax2.set_title("Natural vs forced entries: win rate")
    fig.tight_layout()
    return fig


