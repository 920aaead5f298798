"""What the CLI prints: progress, people's summaries and ``--json`` documents, at the chosen verbosity.

Every command takes ``-q/--quiet`` (no progress lines), ``-v/--verbose`` (also the traceback of an
error, and the library's INFO log) and ``--json`` (stdout carries one JSON document, the command's
machine-readable summary; progress goes to stderr). The summaries are built by the library
(``RunSummary.to_dict``, ...); this module only prints.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import click


@dataclass
class Output:
    """The chosen verbosity of one command."""

    quiet: bool = False
    verbose: bool = False
    json: bool = False

    def progress(self, line: str) -> None:
        """A progress line: stdout, or stderr with --json; none with --quiet."""
        if not self.quiet:
            click.echo(line, err=self.json)

    def show(self, text: str) -> None:
        """Text for people (tables, where the run went): not printed with --json."""
        if not self.json:
            click.echo(text)

    def emit(self, data) -> None:
        """The command's JSON document on stdout (only with --json)."""
        if self.json:
            click.echo(json.dumps(data, indent=2, default=str))


def current() -> Output:
    """The :class:`Output` of the command being run (defaults outside a command)."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(Output) if ctx is not None else None
    return obj or Output()


_OUTPUT_OPTIONS = (
    click.Option(["-q", "--quiet"], is_flag=True, help="Print no progress lines, only the results."),
    click.Option(["-v", "--verbose"], is_flag=True, help="Also print the traceback of an error and INFO log lines."),
    click.Option(["--json", "json_mode"], is_flag=True,
                 help="Print one JSON document with the command's results on stdout (progress goes to stderr)."),
)


class FleetCommand(click.Command):
    """A command that also takes the output options ``-q``, ``-v`` and ``--json`` (listed after its own).

    They are the class's, not the command's :attr:`params` (which stay the command's own options),
    and they set :func:`current` before the command runs instead of reaching its callback.
    """

    def get_params(self, ctx):
        params = super().get_params(ctx)
        return [*params[:-1], *_OUTPUT_OPTIONS, params[-1]] if params else list(_OUTPUT_OPTIONS)

    def invoke(self, ctx):
        out = Output(quiet=ctx.params.pop("quiet", False), verbose=ctx.params.pop("verbose", False),
                     json=ctx.params.pop("json_mode", False))
        # On the root context: the group's error handler reads it after the command's context is gone.
        ctx.find_root().obj = out
        if out.verbose:
            logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        return super().invoke(ctx)


def metric_frame(table, keys: list[str]):
    """The console view of a results table: ``keys`` columns, then the metric registry's console figures
    (:func:`fleet.evaluation.metric_registry.shown`) as text in the report's units and signs, with ``± se`` where
    the table has a standard error; rows in the report's order (an ALL row first, then by net Sharpe, best first).
    """
    from fleet.evaluation import metric_registry as mr

    rows = mr.people_order(table)
    out = rows[keys].copy()
    for col in keys:
        out[col] = [mr.text(col, v) for v in rows[col]]
    for col in mr.shown("console"):
        if col not in rows:
            continue
        se = rows[f"{col}_se"] if f"{col}_se" in rows else [None] * len(rows)
        out[col] = [mr.text(col, v, e) for v, e in zip(rows[col], se)]
    return out


def _legend(config, summary) -> str:
    """What the console's results tables show, in one paragraph."""
    return (f"sorted by net Sharpe; ± one bootstrap standard error over timestamps; *_net: the marked-to-market curve "
            f"net of {config.policy.cost_bps:g} bps per side on turnover, annualised with "
            f"{summary.bars_per_year:g} bars/year; returns and drawdowns in % (simple), expectancy: net P&L per round "
            "trip in bps; every column in the CSVs, defined in docs/validation.md")


def print_run(summary, config) -> None:
    """The per-cluster / per-asset / hold-out / forced-entry / expert tables of a finished run."""
    import pandas as pd  # here, not at the top: `fleet --help` does not load pandas

    out = current()
    if out.json:
        out.emit(summary.to_dict())
        return
    from fleet.evaluation.metric_registry import text
    from fleet.evaluation.policy import ADVICE_T, DISABLE_DELTA

    with pd.option_context("display.width", 220, "display.max_columns", 30):
        click.echo(f"\nPer cluster (out-of-sample, all folds; {_legend(config, summary)}):")
        per_cluster = summary.per_cluster.assign(assets=summary.per_cluster["assets"].map(short_members))
        click.echo(metric_frame(per_cluster, ["cluster", "dominant", "assets"]).to_string(index=False))
        per_asset, title = shown_assets(summary.per_asset)
        click.echo(f"\n{title}:")
        click.echo(metric_frame(per_asset, ["symbol", "cluster"]).to_string(index=False))
        if summary.holdout is not None:
            click.echo(f"\nHold-out ({config.validation.holdout_days:g} final days, predicted by the last fold's "
                       "models; results_holdout.csv; not annualised when shorter than 90 days):")
            click.echo(metric_frame(summary.holdout, ["symbol"]).to_string(index=False))
        if summary.forced_entry is not None:
            click.echo("\nForced daily entry: natural vs forced trades (mean forward log return, win rate; delta_t: "
                       "Welch's t of the difference):")
            click.echo(people_text(summary.forced_entry).to_string(index=False))
            bad = summary.forced_entry[summary.forced_entry["advice"] != ""]["symbol"].tolist()
            gap = text("delta", -DISABLE_DELTA).lstrip("+")
            if bad:
                click.echo(f"advice: forced trades' mean return is worse than the natural ones' by more than "
                           f"{gap} with |t| > {ADVICE_T:g} for {', '.join(bad)}: consider --no-forced-entry")
            else:
                click.echo(f"no advice: no asset's forced trades are worse than its natural ones by more than "
                           f"{gap} with |t| > {ADVICE_T:g}")
        _print_experts(summary)
        _print_book(summary)
    resumed = f", {summary.loaded} loaded from the interrupted run" if summary.loaded else ""
    click.echo(f"\nRun directory: {summary.out}  ({summary.units} units: {summary.trained} trained{resumed}; "
               f"{summary.wall_seconds:.1f} s)")


#: Members listed per cluster row, and asset rows printed, on the console (the CSVs hold every one).
SHOWN_MEMBERS, SHOWN_ASSETS = 6, 40


def short_members(assets: str) -> str:
    """``"A B C ... (+N)"``: a cluster's first :data:`SHOWN_MEMBERS` members (space-separated, as in the CSV), then
    how many more; a 300-asset cluster would otherwise print a wall of symbols."""
    members = assets.split()
    if len(members) <= SHOWN_MEMBERS:
        return assets
    return f"{len(members)}: " + " ".join(members[:SHOWN_MEMBERS]) + f" ... (+{len(members) - SHOWN_MEMBERS})"


def shown_assets(per_asset):
    """The per-asset rows to print and their title: all of them up to :data:`SHOWN_ASSETS`, else the best and worst
    ``SHOWN_ASSETS / 2`` by AUC (``results_per_asset.csv`` holds every asset)."""
    if len(per_asset) <= SHOWN_ASSETS:
        return per_asset, "Per asset"
    half = SHOWN_ASSETS // 2
    ranked = per_asset.sort_values("auc", ascending=False, kind="stable")
    return (ranked.iloc[[*range(half), *range(len(ranked) - half, len(ranked))]],
            f"Per asset: the {half} best and {half} worst of {len(per_asset)} by AUC (every asset in "
            "results_per_asset.csv)")


def people_text(frame):
    """``frame`` with every cell as the console prints it (:func:`fleet.evaluation.metric_registry.text`: the
    registry's formats for its figures, separators for other numbers, never an exponent)."""
    from fleet.evaluation.metric_registry import text

    return frame.assign(**{c: [text(str(c), v) for v in frame[c]] for c in frame.columns})


def _print_experts(summary) -> None:
    if summary.expert_auc is None or summary.expert_auc["expert"].nunique() <= 2:
        return
    from fleet.evaluation.metric_registry import text

    auc = summary.expert_auc[summary.expert_auc["level"] != "asset"]
    w = summary.expert_weights[summary.expert_weights["level"] != "asset"]
    click.echo("\nExperts (AUC alone and of the ensemble; mean gate weight), fleet and per cluster; "
               "per asset in expert_auc.csv / expert_weights.csv:")
    table = auc.pivot_table(index=["level", "name"], columns="expert", values="auc", sort=False)
    weights = w.pivot_table(index=["level", "name"], columns="expert", values="mean_weight", sort=False)
    table = table.map(lambda v: text("auc", v)).join(weights.map(lambda v: text("mean_weight", v)).add_prefix("w_"))
    click.echo(table.reset_index().to_string(index=False))


def _print_book(summary) -> None:
    """The fleet books over all folds (results_book.csv has every fold)."""
    book = getattr(summary, "book", None)
    if book is None or not len(book):
        return
    run = book[book["fold"] == "all"].set_index("book")
    s, k, ls, bm = (run.loc[b] for b in ("score", "topk", "long_short", "benchmark"))
    click.echo("\nThe fleet as one book (all folds; t: Newey-West HAC; results_book.csv):")
    click.echo(f"  cross-sectional IC {s['cs_ic']:+.4f} (t {s['cs_ic_t']:+.1f}, ICIR {s['cs_icir']:+.3f}), "
               f"Rank IC {s['cs_rank_ic']:+.4f} (t {s['cs_rank_ic_t']:+.1f}, ICIR {s['cs_rank_icir']:+.3f})")
    click.echo(f"  top-{int(k['k'])} dropout {int(k['n_drop'])} long book, net: excess {k['excess_ann_return']:+.1%}"
               f"/yr over the equal-weight fleet, IR {k['information_ratio']:+.2f} (t {k['excess_t']:+.1f}), "
               f"excess max DD {k['excess_max_dd']:.1%}, turnover {k['turnover']:.3f}/bar")
    click.echo(f"  long-short book, net: Sharpe {ls['sharpe_net']:+.2f} (t {ls['sharpe_net_t']:+.1f}), beta "
               f"{ls['beta']:+.3f}, max DD {ls['max_dd_net']:.1%}, turnover {ls['turnover']:.3f}/bar; "
               f"equal-weight fleet Sharpe {bm['sharpe_net']:+.2f}")


def print_seeds(summary, config) -> None:
    """Mean ± std of the console's metrics over the seeds (formatted as the results tables), and where the runs
    are."""
    import pandas as pd

    from fleet.evaluation.metric_registry import METRICS, shown

    out = current()
    if out.json:
        out.emit(summary.to_dict())
        return
    metrics = [m for m in shown("console") if m in set(summary.table["metric"])]
    wide = summary.table[summary.table["metric"].isin(metrics)]
    wide = wide.assign(value=[METRICS[k].text(m, s) for k, m, s in zip(wide["metric"], wide["mean"], wide["std"])])
    wide = wide.pivot_table(index=["level", "name"], columns="metric", values="value", aggfunc="first", sort=True)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        click.echo(f"\nMean ± std over {config.evaluation.seeds} seeds "
                   f"({config.seed}..{config.seed + config.evaluation.seeds - 1}); every metric in results_seeds.csv:")
        click.echo(wide[metrics].reset_index().to_string(index=False))
    click.echo(f"\nRuns directory: {summary.out}  ({summary.wall_seconds:.1f} s)")
