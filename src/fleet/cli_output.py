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


SHOWN_METRICS = ["precision", "recall", "auc", "expectancy", "trades", "folds", "ic", "rank_ic", "icir",
                 "sharpe_net", "ann_return_net", "max_dd_net"]


def print_run(summary, config) -> None:
    """The per-cluster / per-asset / hold-out / forced-entry / expert tables of a finished run."""
    import pandas as pd  # here, not at the top: `fleet --help` does not load pandas

    out = current()
    if out.json:
        out.emit(summary.to_dict())
        return
    from fleet.evaluation.policy import ADVICE_T, DISABLE_DELTA

    shown = SHOWN_METRICS
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4f}".format):
        click.echo("\nPer cluster (out-of-sample, all folds; expectancy = mean forward log return of "
                   f"signalled bars net of {config.policy.cost_bps:g} bps per side; *_net: marked-to-market curve "
                   f"net of costs on turnover; sharpe against cash, annualised with {summary.bars_per_year:g} "
                   "bars/year; ann_return, max_dd: simple returns (0.1 = 10 %); all columns in the CSVs):")
        per_cluster = summary.per_cluster.assign(assets=summary.per_cluster["assets"].map(short_members))
        click.echo(per_cluster[["cluster", "dominant", "assets", *shown]].to_string(index=False))
        per_asset, title = shown_assets(summary.per_asset)
        click.echo(f"\n{title}:")
        click.echo(per_asset[["asset", "cluster", *shown]].to_string(index=False))
        if summary.holdout is not None:
            click.echo(f"\nHold-out ({config.validation.holdout_days:g} final days, predicted by the last fold's "
                       "models; results_holdout.csv):")
            click.echo(summary.holdout[["asset", *[c for c in shown if c != "folds"]]].to_string(index=False))
        if summary.forced_entry is not None:
            click.echo("\nForced daily entry: natural vs forced trades (mean forward log return, win rate; delta_t: "
                       "Welch's t of the difference):")
            click.echo(summary.forced_entry.to_string(index=False))
            bad = summary.forced_entry[summary.forced_entry["advice"] != ""]["asset"].tolist()
            if bad:
                click.echo(f"advice: forced trades' mean return is worse than the natural ones' by more than "
                           f"{-DISABLE_DELTA:g} with |t| > {ADVICE_T:g} for {', '.join(bad)}: "
                           "consider --no-forced-entry")
            else:
                click.echo(f"no advice: no asset's forced trades are worse than its natural ones by more than "
                           f"{-DISABLE_DELTA:g} with |t| > {ADVICE_T:g}")
        _print_experts(summary)
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


def _print_experts(summary) -> None:
    if summary.expert_auc is None or summary.expert_auc["expert"].nunique() <= 2:
        return
    auc = summary.expert_auc[summary.expert_auc["level"] != "asset"]
    w = summary.expert_weights[summary.expert_weights["level"] != "asset"]
    click.echo("\nExperts (AUC alone and of the ensemble; mean gate weight), fleet and per cluster; "
               "per asset in expert_auc.csv / expert_weights.csv:")
    table = auc.pivot_table(index=["level", "name"], columns="expert", values="auc", sort=False)
    weights = w.pivot_table(index=["level", "name"], columns="expert", values="mean_weight", sort=False)
    click.echo(table.join(weights.add_prefix("w_")).reset_index().to_string(index=False))


def print_seeds(summary, config) -> None:
    """Mean ± std of the headline metrics over the seeds, and where the runs are."""
    import pandas as pd

    out = current()
    if out.json:
        out.emit(summary.to_dict())
        return
    wide = summary.table[summary.table["metric"].isin(["auc", "rank_ic", "expectancy", "sharpe_net"])]
    wide = wide.assign(value=[f"{m:.4f} ± {s:.4f}" for m, s in zip(wide["mean"], wide["std"])])
    wide = wide.pivot_table(index=["level", "name"], columns="metric", values="value", aggfunc="first", sort=True)
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        click.echo(f"\nMean ± std over {config.evaluation.seeds} seeds "
                   f"({config.seed}..{config.seed + config.evaluation.seeds - 1}); every metric in results_seeds.csv:")
        click.echo(wide.reset_index().to_string(index=False))
    click.echo(f"\nRuns directory: {summary.out}  ({summary.wall_seconds:.1f} s)")
