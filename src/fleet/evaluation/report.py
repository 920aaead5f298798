"""``fleet report RUN_DIR``: one self-contained HTML page with plots and tables of a finished run.

Reads only the run directory (no data files, no Ray) and writes, into ``RUN_DIR/report/`` or
another directory:

* ``report.html``: every plot embedded as a base64 PNG (the page opens anywhere on its own),
  plus the results tables as HTML tables;
* the same plots as PNG files beside it: ``clusters.png`` (dendrogram and correlation heatmap),
  ``market_factor.png``, ``equity.png`` (per-asset equity curves against buy-and-hold),
  ``expert_weights.png``, ``gate_weights.png`` (several experts only) and ``forced_entry.png``
  (``--forced-entry`` runs only).

Equity curves use :func:`fleet.evaluation.metrics.equity_returns` (the 1/h-tranche curve of the
results tables). Buy-and-hold is the same curve with a signal on every bar and no cost: its
log equity ``sum(forward_return) / h`` follows the asset's log price (an h-bar moving average of
it), which is also the price line of the market-factor plot: the run directory holds no prices.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.cluster.hierarchy import dendrogram  # noqa: E402

from fleet.errors import RunDirectoryError  # noqa: E402
from fleet.evaluation.metrics import equity_returns  # noqa: E402

__all__ = ["REQUIRED_FILES", "RunData", "load_run", "write_report"]

REQUIRED_FILES = ("manifest.json", "clusters.json", "results_per_asset.csv", "results_per_cluster.csv",
                  "results_per_fold.csv", "expert_weights.csv", "market_factor.parquet")
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

    @property
    def horizon(self) -> int:
        return int(self.manifest["config"]["labels"]["horizon"])

    @property
    def cost_bps(self) -> float:
        return float(self.manifest["config"]["policy"]["cost_bps"])

    @property
    def experts(self) -> list[str]:
        return list(dict.fromkeys(self.expert_weights["expert"].astype(str)))


def load_run(run_dir: str | Path) -> RunData:
    """Read what the report needs from a finished run directory.

    Raises:
        RunDirectoryError: the directory or one of its files is missing or unreadable (one line
            naming the file).
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
        predictions[symbol] = read(name, pd.read_parquet).sort_values("timestamp").reset_index(drop=True)
    forced_path = path / "forced_entry.csv"
    return RunData(
        path=path, manifest=manifest, clusters=clusters, per_asset=per_asset,
        per_cluster=read("results_per_cluster.csv", pd.read_csv),
        per_fold=read("results_per_fold.csv", pd.read_csv),
        expert_weights=read("expert_weights.csv", pd.read_csv),
        factor=factor.set_index("timestamp")["market_factor"],
        predictions=predictions,
        forced_entry=read("forced_entry.csv", pd.read_csv) if forced_path.is_file() else None,
    )


# ---------------------------------------------------------------------------------------------- plots


def _price_proxy(pred: pd.DataFrame, horizon: int) -> pd.Series:
    """Log price change from the out-of-sample forward returns: the buy-and-hold tranche curve."""
    bh, _ = equity_returns(pred["forward_return"].to_numpy(), np.ones(len(pred)), horizon=horizon, cost_bps=0.0)
    return pd.Series(np.cumsum(bh), index=pd.DatetimeIndex(pred["timestamp"]))


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
    h = run.horizon
    # sum_{s<=t} r_s / h telescopes to the mean log price over bars t+1..t+h (minus a constant):
    # drawn at t + h bars it is the trailing h-bar moving average of the log price.
    bar = pd.Timedelta(run.manifest.get("data", {}).get("bar", "0s"))
    price = _price_proxy(pred, h)
    price.index = price.index + h * bar
    factor = run.factor.dropna()
    factor.index = pd.DatetimeIndex(factor.index)
    span = factor[(factor.index > price.index[0] - h * bar) & (factor.index <= price.index[-1])]
    # As stored: standardised with the last training window's mean and std, so out of sample it
    # may drift against the price (the correlation of changes below is unaffected by a drift).
    cum = span.cumsum()
    # Like for like: the factor summed over (t, t+h] against the asset's forward return at t.
    fwd = factor.rolling(h).sum().shift(-h)
    both = pd.concat([fwd, pred.set_index("timestamp")["forward_return"]], axis=1, join="inner").dropna()
    rho = both.corr().iloc[0, 1] if len(both) > 2 else float("nan")
    fig, ax = plt.subplots(figsize=(12, 5), dpi=DPI)
    ax.plot(cum.index, cum.to_numpy(), color="tab:blue", lw=1.2, label="cumulative market factor (left)")
    ax.set_ylabel("cumulative market factor (standardised units)", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(price.index, price.to_numpy(), color="tab:orange", lw=1.2,
             label=f"{ref} log price ({h}-bar moving average, change since start; right)")
    ax2.set_ylabel(f"{ref} log price change", color="tab:orange")
    ax.set_title(f"Market factor against {ref} ({why})\nout-of-sample span; correlation of {h}-bar changes {rho:.2f}",
                 fontsize=11)
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2,
              fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def _grid(n: int, cols: int = 4):
    cols = min(cols, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(4 * cols, 10), 3.0 * rows + 1.2), dpi=DPI, squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def plot_equity(run: RunData):
    fig, axes = _grid(len(run.predictions))
    for ax, (symbol, p) in zip(axes, run.predictions.items()):
        r, s = p["forward_return"].to_numpy(), p["signal"].to_numpy()
        gross, net = equity_returns(r, s, horizon=run.horizon, cost_bps=run.cost_bps)
        t = pd.DatetimeIndex(p["timestamp"])
        ax.plot(t, _price_proxy(p, run.horizon).to_numpy(), color="grey", lw=1, label="buy and hold")
        ax.plot(t, np.cumsum(gross), color="tab:blue", lw=0.8, alpha=0.5, label="signal, gross")
        ax.plot(t, np.cumsum(net), color="tab:red", lw=1.2, label=f"signal, net of {run.cost_bps:g} bps/side")
        ax.axhline(0, color="k", lw=0.5)
        row = run.per_asset[run.per_asset["asset"].astype(str) == symbol]
        ir_net = float(row["ir_net"].iloc[0]) if len(row) and "ir_net" in row else float("nan")
        ir = f", IR net {ir_net:.2f}" if np.isfinite(ir_net) else ""
        ax.set_title(f"{symbol}: {int(s.sum())} trades{ir}", fontsize=10)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.tick_params(axis="y", labelsize=8)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"Per-asset equity (log, out-of-sample): signal net of costs vs buy-and-hold\n"
                 f"(1/{run.horizon} tranches held {run.horizon} bars)", fontsize=12)
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
    for ax, col, label in ((ax1, "mean_return", "mean forward log return per trade"),
                           (ax2, "win_rate", "win rate (forward return > 0)")):
        for i, (kind, colour) in enumerate((("natural", "tab:blue"), ("forced", "tab:orange"))):
            ax.bar(x + (i - 0.5) * 0.4, f[f"{kind}_{col}"].to_numpy(dtype=float), 0.4, color=colour,
                   label=f"{kind} ({int(f[f'{kind}_trades'].sum())} trades)")
        ax.set_xticks(x, f["asset"].astype(str), rotation=45, ha="right")
        ax.set_ylabel(label)
        ax.axhline(0.5 if col == "win_rate" else 0.0, color="k", lw=0.6)
        ax.legend(fontsize=8)
    ax1.set_title("Natural vs forced entries: mean return")
    ax2.set_title("Natural vs forced entries: win rate")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------- page


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="", border=0, classes="t")


def _png(fig, path: Path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    data = buf.getvalue()
    path.write_bytes(data)
    return base64.b64encode(data).decode("ascii")


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
    esc = html.escape
    sections: list[str] = []

    def figure(name: str, fig, caption: str) -> str:
        b64 = _png(fig, out / name)
        return (f'<figure><img src="data:image/png;base64,{b64}" alt="{esc(name)}" data-file="{esc(name)}">'
                f'<figcaption>{caption} <a href="{esc(name)}">{esc(name)}</a></figcaption></figure>')

    ref, why = _reference_asset(run)
    sections.append("<h2>Clusters</h2>" + figure(
        "clusters.png", plot_clusters(run),
        f"Ward dendrogram on 1 - |corr| of log returns and the correlation matrix, fitted on the last fold's "
        f"training window ({esc(str(run.clusters.get('fitted_on', '')))}). Labels: symbol (cluster id). "
        f"Dominant cluster c{run.clusters['dominant_cluster']}: {esc(str(run.clusters.get('dominant_reason', '')))}."))
    sections.append("<h2>Market factor</h2>" + figure(
        "market_factor.png", plot_market_factor(run),
        f"Cumulative market factor ({esc(str(run.clusters.get('factor_method', '')))}, the last fold's loadings) "
        f"against {esc(ref)} ({esc(why)}). The price line is the log price change over the out-of-sample span, "
        f"read from the predictions' forward returns (cumulative forward return / h, an h-bar moving average "
        f"of the log price, drawn h bars later): the run directory holds no prices. The factor is standardised with the "
        f"last training window's mean and std, so its cumulative sum may drift away from the price while the "
        f"changes agree; the title gives the correlation of h-bar changes."))
    sections.append("<h2>Equity curves</h2>" + figure(
        "equity.png", plot_equity(run),
        f"Per asset, out-of-sample: log equity of the signal (every signalled bar opens a 1/h tranche held "
        f"h = {run.horizon} bars, as in the results tables), gross and net of {run.cost_bps:g} bps per side, "
        f"against buy-and-hold (the same curve long on every bar, no cost)."))
    if len(run.experts) > 1:
        sections.append("<h2>Experts</h2>" + figure(
            "expert_weights.png", plot_expert_weights(run),
            "Mean gate weight of each expert over the out-of-sample rows, for the fleet and per cluster "
            "(expert_weights.csv; each group sums to 1).")
            + figure("gate_weights.png", plot_gate_weights(run),
                     f"Gate weights over time for {', '.join(map(esc, _gate_assets(run)))}: stacked rolling mean "
                     "of w_&lt;expert&gt; (about a week of bars); bars where top-k leaves an expert out count as 0. "
                     "Active experts = experts with a weight &gt; 0 on a bar."))
        cols = [f"w_{e}" for e in run.experts]
        active = pd.DataFrame({s: (p[cols] > 0).mean().set_axis(run.experts) for s, p in run.predictions.items()}).T
        active.insert(0, "mean_active", [(p[cols] > 0).sum(axis=1).mean() for p in run.predictions.values()])
        sections.append("<p>Share of bars on which each expert is active (weight &gt; 0), per asset:</p>"
                        + _table(active.rename_axis("asset").reset_index()))
        guard = _gate_table(run)
        if guard is not None:
            n_fb = int((guard["fallback"] != "").sum())
            sections.append(f"<p>Gate guard: {n_fb} of {len(guard)} units fell back to their best single expert "
                            "(the gate's cross-fitted loss on the inner out-of-fold rows was above that expert's; "
                            "manifest <code>units[].gate</code>, <code>fallback_share</code> in expert_auc.csv):</p>"
                            + _table(guard))
    else:
        sections.append(f"<h2>Experts</h2><p>This run trained a single expert ({esc(run.experts[0])}): its weight "
                        "is 1 on every bar, so there is no expert weight distribution and no gate to plot "
                        "(train with <code>--experts a,b,...</code> for a mixture).</p>")
    if run.forced_entry is not None:
        advice = run.forced_entry[run.forced_entry["advice"].fillna("") != ""]["asset"].astype(str).tolist()
        note = (f"<p><b>Advice:</b> forced trades' mean return is worse than the natural ones' by more than 0.005 "
                f"for {esc(', '.join(advice))}: consider <code>--no-forced-entry</code>.</p>" if advice else
                "<p>No asset's forced trades are worse than its natural ones by more than 0.005.</p>")
        sections.append("<h2>Forced daily entry</h2>" + figure(
            "forced_entry.png", plot_forced_entry(run),
            "Natural trades (p_up above the threshold) against forced ones (a quiet UTC day's highest p_up), "
            "per asset, from forced_entry.csv.") + note + _table(run.forced_entry))
    else:
        sections.append("<h2>Forced daily entry</h2><p>Forced daily entry was off in this run "
                        "(<code>--forced-entry</code> to compare natural and forced trades).</p>")
    sections.append("<h2>Results per cluster</h2>" + _table(run.per_cluster))
    sections.append("<h2>Results per asset</h2>" + _table(run.per_asset))
    sections.append("<h2>Results per fold</h2>" + _table(run.per_fold))

    m = run.manifest
    head = (f"strategy {esc(str(cfg.get('strategy')))}; experts {esc(', '.join(run.experts))}"
            f"{'; gate ' + esc(str(cfg['model']['moe']['gate'])) if len(run.experts) > 1 else ''}; "
            f"horizon {run.horizon} bars; threshold {cfg['policy']['threshold']}; cost {run.cost_bps:g} bps per side; "
            f"forced entry {'on' if cfg['policy']['forced_entry'] else 'off'}; "
            f"{m['bars_per_year']:g} bars per year; {len(run.predictions)} assets; "
            f"{len(m.get('folds', []))} folds; started {esc(str(m.get('started', '')))}")
    command = esc(" ".join(map(str, m.get("command") or [])))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fleet report: {esc(run.path.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1400px; }}
figure {{ margin: 1em 0; }} img {{ max-width: 100%; border: 1px solid #ddd; }}
figcaption {{ font-size: 0.9em; color: #444; max-width: 1100px; }}
table.t {{ border-collapse: collapse; font-size: 0.8em; margin: 0.5em 0 1.5em; }}
table.t th, table.t td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; }}
code {{ background: #f4f4f4; }}
</style></head><body>
<h1>fleet report: {esc(run.path.name)}</h1>
<p>{head}</p>
<p><code>{command}</code></p>
<p>All numbers are out-of-sample (pooled over the walk-forward folds' test blocks); column meanings in the README
("How validation works").</p>
{chr(10).join(sections)}
</body></html>
"""
    target = out / "report.html"
    target.write_text(page, encoding="utf-8")
    return target
