"""The report's figures of the fleet as one book (:mod:`fleet.evaluation.fleet_book`), and where they come from.

A run directory written with the books holds ``results_book.csv`` and ``book_curves.parquet``; for an older one
they are computed here from its predictions with the run's horizon and costs.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

from fleet.evaluation.run_data import RunData  # noqa: E402
from fleet.store import layout as L  # noqa: E402

DPI = 100


def book_data(run: RunData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results_book table, per-bar curves) of a run: its files, else :func:`~fleet.evaluation.fleet_book.
    book_tables` of its predictions (k and n_drop from its configuration)."""
    layout = L.RunLayout(run.path)
    if layout.has(L.RESULTS_BOOK) and layout.has(L.BOOK_CURVES):
        return layout.read_csv(L.RESULTS_BOOK), layout.read_parquet(L.BOOK_CURVES)
    from fleet.evaluation.fleet_book import book_tables

    ev = run.manifest["config"].get("evaluation", {})
    return book_tables(run.pooled(), horizon=run.horizon, cost_bps=run.cost_bps, bars_per_year=run.bars_per_year,
                       k=ev.get("book_k"), n_drop=ev.get("book_drop"))


def _equity(r) -> np.ndarray:
    return np.expm1(np.cumsum(np.log1p(np.asarray(r, dtype=np.float64))))


def plot_book_equity(run: RunData, table: pd.DataFrame, curves: pd.DataFrame):
    """Top: the top-k long book (net) against the equal-weight fleet, and its excess (summed, as Qlib's
    ``risk_analysis``); bottom: the market-neutral long-short book (net). Dotted lines: fold boundaries."""
    c = curves.sort_values("timestamp", kind="stable")
    t = pd.DatetimeIndex(c["timestamp"])
    topk = table[(table["book"] == "topk")].iloc[0]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(12, 7), dpi=DPI, sharex=True)
    ax.plot(t, _equity(c["benchmark"]), color="grey", lw=1, label="equal-weight fleet (benchmark, no costs)")
    ax.plot(t, _equity(c["topk"]), color="tab:blue", lw=1.2,
            label=f"top-{int(topk['k'])} dropout {int(topk['n_drop'])} long book, net of {run.cost_bps:g} bps/side")
    ax.plot(t, np.cumsum(c["topk"] - c["benchmark"]), color="tab:red", lw=1, ls="--",
            label="excess over the benchmark (summed per-bar excess)")
    ax2.plot(t, _equity(c["long_short"]), color="tab:green", lw=1.2,
             label=f"market-neutral long-short book, net of {run.cost_bps:g} bps/side")
    for a in (ax, ax2):
        a.axhline(0, color="k", lw=0.5)
        for s in c.groupby("fold")["timestamp"].min().iloc[1:]:
            a.axvline(pd.Timestamp(s), color="k", ls=":", lw=0.7, alpha=0.6)
        a.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        a.set_ylabel("equity, simple return")
        a.legend(fontsize=8, loc="best")
    ax.set_title(f"The fleet as one book, out of sample, rebalanced every {run.horizon} bars", fontsize=11)
    ax2.tick_params(axis="x", labelrotation=20, labelsize=8)
    fig.tight_layout()
    return fig


def plot_book_ic(table: pd.DataFrame):
    """Cross-sectional IC and Rank IC per fold and over all folds, with +-2 HAC standard errors (mean / t)."""
    s = table[table["book"] == "score"]
    labels = [f"fold {f}" if str(f) != "all" else "all folds" for f in s["fold"]]
    x = np.arange(len(s))
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=DPI)
    for off, col, color, name in ((-0.2, "cs_ic", "tab:blue", "IC (Pearson)"),
                                  (0.2, "cs_rank_ic", "tab:orange", "Rank IC (Spearman)")):
        v = s[col].to_numpy(dtype=float)
        se = np.abs(v / s[f"{col}_t"].to_numpy(dtype=float))
        ax.bar(x + off, v, 0.4, color=color, alpha=0.8, label=name, yerr=2 * se, capsize=3)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, labels)
    ax.set_ylabel("mean cross-sectional correlation")
    ax.set_title("Cross-sectional IC of p_up with the h-bar forward return, per fold (error bars: ±2 Newey-West "
                 "standard errors)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_book_groups(table: pd.DataFrame):
    """Qlib's group return: the mean h-bar forward return of each score quintile (q1 lowest p_up, q5 highest),
    over all folds (bars) and per fold (dots), in basis points of log return."""
    s = table[table["book"] == "score"]
    cols = [f"group_q{i}" for i in range(1, 6)]
    run = s[s["fold"].astype(str) == "all"][cols].to_numpy(dtype=float)[0] * 1e4
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=DPI)
    x = np.arange(1, 6)
    ax.bar(x, run, 0.6, color="tab:purple", alpha=0.8, label="all folds")
    for _, row in s[s["fold"].astype(str) != "all"].iterrows():
        ax.plot(x, row[cols].to_numpy(dtype=float) * 1e4, "o", ms=4, color="k", alpha=0.5)
    ax.plot([], [], "o", ms=4, color="k", alpha=0.5, label="one fold")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xticks(x, ["q1\n(lowest p_up)", "q2", "q3", "q4", "q5\n(highest p_up)"])
    ax.set_ylabel("mean forward return, bps (log)")
    ax.set_title("Mean h-bar forward return per cross-sectional quintile of p_up", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
