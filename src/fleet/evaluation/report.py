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
compounded into simple-return equity ``prod(1 + P&L) - 1``. Buy-and-hold is ``exp(cumsum(return_1)) - 1``,
the asset's own price change over the out-of-sample rows (the predictions carry the 1-bar return of
every row: the run directory holds no prices). The plots are :mod:`fleet.evaluation.plots`'; what is
read from the run directory is :mod:`fleet.evaluation.run_data`'s.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from fleet.evaluation import metric_registry  # noqa: E402
from fleet.evaluation.metrics import summarise  # noqa: E402
from fleet.evaluation.plots import (DPI, _gate_assets, _gate_table, _reference_asset, plot_calibration, plot_clusters,
                                    plot_equity, plot_expert_weights, plot_fold_metrics, plot_forced_entry,
                                    plot_gate_weights, plot_market_factor, plot_p_up_hist, plot_portfolio)  # noqa: E402
from fleet.evaluation.run_data import RunData, load_run  # noqa: E402
from fleet.models.specs import gate_spec  # noqa: E402
from fleet.store.layout import REPORT_DIR, REQUIRED_FILES  # noqa: E402

__all__ = ["REQUIRED_FILES", "RunData", "load_run", "write_report"]

# ----------------------------------------------------------------------------------------------- page

def _cell(column: str, value, se=None) -> tuple[str, str]:
    """(text, css class) of one table cell, formatted from the metric registry (bps, %, signs, `` ± se``); the
    classes pos / neg colour the signed figures."""
    return metric_registry.cell(column, value, se)


def _table(df: pd.DataFrame, columns: list[str] | None = None, highlight: str | None = None) -> dict:
    """A table for the template: header names and rows of (text, css class) cells."""
    cols = [c for c in (columns or list(df.columns)) if c in df.columns]
    rows = []
    ses = [c for c in df.columns if c.endswith("_se")]
    for rec in df[cols + ses].to_dict("records"):
        rows.append({"cells": [_cell(c, rec[c], rec.get(f"{c}_se")) for c in cols],
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
    reps = int(cfg.get("evaluation", {}).get("bootstrap_reps", 0) or 0)
    fleet = summarise(pooled, [], threshold=run.threshold, cost_bps=run.cost_bps, horizon=run.horizon,
                      bars_per_year=run.bars_per_year, reps=reps, seed=int(cfg.get("seed", 0) or 0)).iloc[0]
    pa = run.per_asset.dropna(subset=["sharpe_net"]).sort_values("sharpe_net", ascending=False)
    expectancy = run.per_asset["expectancy"]
    traded = expectancy.notna()
    best = [f"{r.symbol} ({_cell('sharpe_net', r.sharpe_net)[0]})" for r in pa.head(3).itertuples()]
    worst = [f"{r.symbol} ({_cell('sharpe_net', r.sharpe_net)[0]})" for r in pa.tail(3).iloc[::-1].itertuples()]
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
        "auc": _cell("auc", fleet["auc"], fleet["auc_se"])[0],
        "auc_per_asset": _cell("auc_per_asset", fleet["auc_per_asset"], fleet["auc_per_asset_se"])[0],
        "rank_ic": _cell("rank_ic", fleet["rank_ic"], fleet["rank_ic_se"]),
        "sharpe_net": _cell("sharpe_net", fleet["sharpe_net"], fleet["sharpe_net_se"]),
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
        row = run.holdout[run.holdout["symbol"].astype(str) == "ALL"]
        if len(row):
            r = row.iloc[0]
            out["holdout"] = {"days": f"{cfg['validation']['holdout_days']:g}", "auc": _cell("auc", r["auc"])[0],
                              "sharpe_net": _cell("sharpe_net", r["sharpe_net"]), "n": _cell("n", r["n"])[0]}
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
    out = Path(out_dir) if out_dir is not None else run.path / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    pooled = run.pooled()
    figures: dict[str, dict] = {}

    def figure(name: str, fig, caption: str) -> None:
        figures[name] = {"name": name, "b64": _png(fig, out / name), "caption": caption}

    _common_figures(run, pooled, figure)
    book = _book_figures(run, figure)
    mixture = len(run.experts) > 1
    active_table = guard_info = forced = None
    if mixture:
        active_table, guard_info = _mixture_figures(run, figure)
    if run.forced_entry is not None:
        forced = _forced_figure(run, figure)
    if run.manifest.get("tasks"):
        from fleet.evaluation.gantt import plot_tasks

        figure("tasks.png", plot_tasks(run.manifest["tasks"]),
               "Training steps (manifest.json tasks): each unit's prepare, inner-fold and full-window fits per expert, "
               "gate and assemble; one lane per worker process, GPU-holding lanes first (a run whose steps all ran in "
               "one process gets one lane per unit). The legend lists only the kinds of step that ran.")
    cfg = run.manifest["config"]
    tables = _results_tables(run)
    shown = [t for t in (*tables.values(), forced and forced["table"]) if t]
    page = _environment().get_template("report.html.j2").render(
        title=f"fleet report: {run.path.name}",
        head=headline(run, pooled),
        figures=figures,
        mixture=mixture,
        single_expert=run.experts[0],
        active_table=active_table,
        guard=guard_info,
        forced=forced,
        book=book,
        **tables,
        command=" ".join(map(str, run.manifest.get("command") or [])),
        started=str(run.manifest.get("started", "")),
        bars_per_year=f"{run.bars_per_year:g}",
        gate=(gate_words(cfg["model"]["moe"]["gate"]) if mixture else ""),
        glossary=_glossary({c for t in shown for c in t["columns"]}),
    )
    target = out / "report.html"
    target.write_text(page, encoding="utf-8")
    return target


def _results_tables(run: RunData) -> dict[str, dict | None]:
    """The results tables of the page: the metric registry's report figures, in its order; rows as the console
    prints them (:func:`~fleet.evaluation.metric_registry.people_order`), the per-fold table in fold order."""
    cols = metric_registry.shown("report")
    holdout = None
    if run.holdout is not None:
        holdout = _table(metric_registry.people_order(run.holdout), ["symbol", *cols], highlight="symbol")
    return {"per_cluster": _table(metric_registry.people_order(run.per_cluster), ["cluster", "dominant", "assets",
                                                                                  *cols]),
            "per_asset": _table(metric_registry.people_order(run.per_asset), ["symbol", "cluster", *cols]),
            "per_fold": _table(run.per_fold, ["fold", "symbol", *cols], highlight="symbol"),
            "holdout": holdout}


def _glossary(names: set[str]) -> list[dict]:
    """The metric registry's definition, unit and direction of each of ``names`` it holds, in its order."""
    better = {True: "higher", False: "lower", None: ""}
    return [{"name": m.name, "definition": m.definition, "unit": m.unit, "better": better[m.higher_is_better]}
            for m in metric_registry.METRICS.values() if m.name in names]


def _common_figures(run: RunData, pooled: pd.DataFrame, figure) -> None:
    """The figures of every run: clusters, market factor, equity, portfolio, folds, p_up, calibration."""
    ref, why = _reference_asset(run)
    figure("clusters.png", plot_clusters(run),
           f"Ward dendrogram on 1 - |corr| of log returns and the correlation matrix, fitted on the last fold's "
           f"training window ({run.clusters.get('fitted_on', '')}). Labels: symbol (cluster id). Dominant cluster "
           f"c{run.clusters['dominant_cluster']}: {run.clusters.get('dominant_reason', '')}. Earlier folds have their "
           "own clustering (clusters.json, 'folds'); the per-cluster table groups each fold's rows by it.")
    fig, rho = plot_market_factor(run)
    figure("market_factor.png", fig,
           f"Top: {ref}'s log price ({why}), read from the predictions' 1-bar returns. Below: how closely the market "
           f"factor ({run.clusters.get('factor_method', '')}, the last fold's loadings) follows {ref}'s 1-bar moves, "
           "as a rolling correlation. The factor's loadings and scaling come from the last fold's training window, so "
           "over the shaded part (earlier folds' test blocks) it is in sample; only the unshaded part is out of "
           f"sample. Correlation of 1-bar moves there: {rho:.2f}. Dotted lines: fold boundaries.")
    figure("equity.png", plot_equity(run),
           f"Per asset, out of sample: simple-return equity of the signal, marked to market (every signal opens a "
           f"1/h tranche held h = {run.horizon} bars; the bar's P&L is exposure × the bar's simple return, "
           f"compounded; costs of {run.cost_bps:g} bps per side on each change of exposure), gross and net, "
           "against buy-and-hold. One y scale per asset; dotted lines: fold boundaries.")
    figure("portfolio.png", plot_portfolio(run, pooled),
           "The fleet: equal-weight portfolio of all assets (per bar, the mean P&L of the assets with a prediction), "
           "net and gross of costs, against equal-weight buy-and-hold; below, the drawdown of the net curve from its "
           "running peak.")
    figure("fold_metrics.png", plot_fold_metrics(run),
           "ROC AUC and Rank IC per walk-forward fold (results_per_fold.csv): bars for all assets pooled, dots for "
           "single assets (named in small fleets); the dashed line is no skill (AUC 0.5, Rank IC 0). Stable edges "
           "show in every fold; one good fold is not an edge.")
    figure("p_up_hist.png", plot_p_up_hist(run, pooled),
           f"Distribution of p_up per fold; the dashed line is the threshold ({run.threshold:g}) above which the "
           "policy goes long.")
    figure("calibration.png", plot_calibration(run, pooled),
           "Reliability plot: bars binned by p_up (quantile bins), share of up bars against mean p_up. On the "
           "diagonal p_up is a probability one can size with; flatter than the diagonal: overconfident.")


def _book_figures(run: RunData, figure) -> dict:
    """The fleet-book figures; returns the all-folds rows of results_book.csv for the page."""
    from fleet.evaluation.book_plots import book_data, plot_book_equity, plot_book_groups, plot_book_ic

    table, curves = book_data(run)
    figure("book_equity.png", plot_book_equity(run, table, curves),
           f"The fleet as one book (results_book.csv, book_curves.parquet): every {run.horizon} bars the assets are "
           "ranked by p_up. Top: the top-k dropout long book (Qlib's TopkDropoutStrategy: hold k at 1/k each, swap "
           "at most n_drop of the held assets ranked lowest for the best not held), net of costs on turnover, "
           "against the equal-weight fleet, and the summed excess. Bottom: the market-neutral long-short book "
           "(weights proportional to the demeaned cross-sectional rank of p_up, gross exposure 1), net. Each fold's "
           "books open flat and close at its end.")
    figure("book_ic.png", plot_book_ic(table),
           "Cross-sectional IC (Pearson) and Rank IC (Spearman) of p_up with the h-bar forward return across the "
           "assets at each timestamp, averaged per fold and over all folds (Qlib's IC). Unlike the pooled ic / "
           "rank_ic of the tables it carries no level of any one asset.")
    figure("book_groups.png", plot_book_groups(table),
           "Qlib's group return: at each timestamp the assets split into five equal groups by p_up, the mean "
           "forward return of each; a monotone rise from q1 to q5 is a score that ranks assets.")
    cols = ["book", "k", "n_drop", "cs_ic", "cs_ic_t", "cs_rank_ic", "cs_rank_ic_t", "sharpe_net", "sharpe_net_t",
            "ann_return_net", "max_dd_net", "turnover", "excess_ann_return", "information_ratio", "excess_max_dd",
            "excess_t", "beta"]
    return {"table": _table(table[table["fold"].astype(str) == "all"], cols)}


def gate_words(name: str) -> str:
    """The report's line on the gate ``name``: its summary from the gate table; a name the table does not know (a
    run of another version) is shown as it is."""
    try:
        spec = gate_spec(name)
    except ValueError:
        return f"{name}."
    return f"{spec.name}: {spec.summary}" + ("." if spec.guarded else " (the guard leaves it alone).")


def _mixture_figures(run: RunData, figure) -> tuple[dict, dict | None]:
    """Expert and gate weight figures; returns (active-experts table, guard summary or None)."""
    figure("expert_weights.png", plot_expert_weights(run),
           "Mean gate weight of each expert over the out-of-sample rows, for the fleet and per cluster "
           "(expert_weights.csv; each group sums to 1; with select_base_rate: mix, the grey base_rate bar is the "
           "select gate's share of the constant base-rate P(up)).")
    shown, why = _gate_assets(run)
    figure("gate_weights.png", plot_gate_weights(run),
           f"Gate weights over time for {', '.join(shown)} ({why}): stacked "
           "w_<expert>, as the constants they are within each fold for gates with one weight vector per unit, else "
           "as a rolling mean (about a week of bars) inside each fold; bars where top-k leaves an expert out count as "
           "0; with select_base_rate: mix, the grey layer up to 1 is the constant base rate's share. Active experts "
           "= experts with a weight > 0 on a bar.")
    cols = [f"w_{e}" for e in run.experts]
    active = pd.DataFrame({s: (p[cols] > 0).mean().set_axis(run.experts) for s, p in run.predictions.items()}).T
    active = active.map(lambda v: f"{v:.0%}")
    active.insert(0, "mean_active", [f"{(p[cols] > 0).sum(axis=1).mean():.2f}" for p in run.predictions.values()])
    guard = _gate_table(run)
    guard_info = None if guard is None else {"fallbacks": int((guard["fallback"] != "").sum()), "units": len(guard),
                                             "table": _table(guard)}
    return _table(active.rename_axis("symbol").reset_index()), guard_info


def _forced_figure(run: RunData, figure) -> dict:
    """The forced-entry figure; returns the advice and the table for the page."""
    advice = run.forced_entry[run.forced_entry["advice"].astype(object).fillna("") != ""]["symbol"].astype(str).tolist()
    cutoff = run.manifest["config"]["policy"].get("forced_entry_cutoff") or "the day's last bar"
    figure("forced_entry.png", plot_forced_entry(run),
           f"Natural trades (p_up above the threshold) against forced ones (a day with no natural signal up to "
           f"the cut-off bar, {cutoff} UTC, is entered at that bar), per asset, from forced_entry.csv.")
    return {"advice": advice, "table": _table(run.forced_entry)}
