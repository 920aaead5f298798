"""Command line: parse, load the configuration, delegate to the library.

Options left unset keep the value of the fleet spec (``--config``) or the default in
:mod:`fleet.config`; the CLI holds no defaults of its own.
"""

from __future__ import annotations

import sys
import warnings

import click
import pandas as pd

from fleet.config import OVERRIDES, Backend, FactorMethod, Strategy, dotted_overrides, load_config
from fleet.errors import ConfigError, FleetError, FleetWarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # One readable line for our own warnings instead of Python's file:line format.
    if issubclass(category, FleetWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


class FleetGroup(click.Group):
    """Reports :class:`FleetError` as one line on stderr (no traceback) with its exit code:
    2 for bad input or configuration, 3 when training units failed (the run is left resumable)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FleetError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(err.exit_code)


@click.group(cls=FleetGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="fleet")
def main() -> None:
    """fleet: train a fleet of trading models over many assets on Ray, and serve them.

    Start with `fleet train --backend ray` (built-in synthetic market) or
    `fleet train --backend ray --data ../shared/data/crypto_1h`.
    """
    warnings.showwarning = _show_warning


def _choice(enum) -> click.Choice:
    return click.Choice([e.value for e in enum])


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML fleet spec, e.g. fleet/crypto10.yaml.")
@click.option("--data", help="Directory of per-symbol parquet/CSV files, or one long-format file. Default: built-in synthetic market.")
@click.option("--symbols", help="Comma-separated symbols to train (default: all in the data).")
@click.option("--days", type=int, help="Keep the last N days of each asset.  [default: 730]")
@click.option("--strategy", type=_choice(Strategy), help="Units: one per asset, per correlation cluster, or one for the fleet.  [default: hierarchical]")
@click.option("--backend", type=_choice(Backend), help="Run units in-process, or on a pool of Ray actors (one unit per actor call).  [default: local]")
@click.option("--address", help="Ray cluster address, HOST:PORT of its head (default: RAY_ADDRESS, set inside `ray job submit`; else the latest `ray start` cluster on this machine; else a new local Ray).")
@click.option("--num-cpus", type=float, help="CPUs each unit's Ray actor asks for.  [default: 1]")
@click.option("--num-gpus", type=float, help="GPUs (fractions allowed) each unit's Ray actor asks for.  [default: 0]")
@click.option("--cnn-num-gpus", type=float, help="GPUs (fractions allowed) each CNN expert's Ray task asks for when the cluster has GPUs: 1/f CNN tasks share a GPU.  [default: 0.5]")
@click.option("--folds", type=int, help="Purged walk-forward folds.  [default: 5]")
@click.option("--horizon", type=int, help="Label horizon in bars: y = 1 when the forward log return is > 0.  [default: 4]")
@click.option("--embargo", "embargo_bars", type=int, help="Bars dropped between the purged training window and each test block.  [default: 8]")
@click.option("--holdout-days", type=float, help="Final days kept out of every fold.  [default: 0]")
@click.option("--clusters", type=int, help="Number of Ward clusters on 1-|corr|.  [default: 3]")
@click.option("--distance-threshold", type=float, help="Cut the dendrogram at this distance instead of --clusters.")
@click.option("--factor-method", type=_choice(FactorMethod), help="Market factor of the dominant cluster.  [default: pca]")
@click.option("--max-d", type=float, help="Cap on the FFD order d (smallest d with ADF p < 0.05).  [default: 0.65]")
@click.option("--threshold", type=float, help="Signal long when p_up > threshold.  [default: 0.55]")
@click.option("--cost-bps", type=float, help="Trading cost per side in basis points.  [default: 10]")
@click.option("--forced-entry/--no-forced-entry", default=None, help="Forced daily entry: per asset and UTC day with no signal up to the cut-off bar, go long at the cut-off bar.  [default: off]")
@click.option("--forced-entry-cutoff", help="UTC time HH:MM of the forced-entry decision bar.  [default: the day's last bar]")
@click.option("--bars-per-year", type=float, help="Bars per year for annualising.  [default: inferred: 8760 hourly 24/7, 252 daily equities]")
@click.option("--experts", help="Comma-separated experts: trend, pattern, stress, sde, crypto_hft, equity_intraday, equity_daily, futures_trend, low_vol_etf (several -> mixture of experts).  [default: trend]")
@click.option("--gate", type=click.Choice(["rule", "mlp", "stack", "best"]), help="Gate of the mixture: seed-003 static rules, the trained MLP, logistic stacking of the experts' logit P(up), or the single expert with the best inner out-of-fold score (pooled AUC).  [default: best]")
@click.option("--top-k", type=int, help="Experts each row is routed to by the rule / mlp gate (renormalised weights).  [default: 2 for rule, all for mlp]")
@click.option("--balance-coef", type=float, help="Coefficient of the MLP gate's load-balancing term.  [default: 0.001]")
@click.option("--inner-folds", type=int, help="Inner out-of-fold blocks of each training window that the gate learns from.  [default: 3]")
@click.option("--guard/--no-guard", "guard", default=None, help="Fall back to the best single expert when the cross-fitted gate loses to it.  [default: --guard]")
@click.option("--learner", type=click.Choice(["hgb", "lightgbm"]), help="TrendExpert's booster: scikit-learn HistGradientBoosting, or LightGBM (pip install 'fleet[lightgbm]').  [default: hgb]")
@click.option("--early-stopping/--no-early-stopping", "early_stopping", default=None, help="TrendExpert: choose the boosting iterations on a purged time-ordered tail of the training window, then refit.  [default: off]")
@click.option("--asset-aware/--no-asset-aware", "asset_aware", default=None, help="Experts see the asset (id categorical, CNN embedding, per-asset intercepts); --no-asset-aware is the asset-agnostic ablation.  [default: on]")
@click.option("--moe/--no-moe", "moe_enabled", default=None, help="--no-moe: only the first of --experts, no gate.  [default: --moe]")
@click.option("--report/--no-report", "report", default=None, help="Write the HTML report (as `fleet report`) into RUN_DIR/report/ at the end of the run.  [default: off]")
@click.option("--seed", type=int, help="Random seed (same seed -> same results on every backend).  [default: 0]")
@click.option("--seeds", type=int, help="Repeat the run with seeds seed..seed+N-1; --out then holds seed<k>/ runs and results_seeds.csv (mean, std).  [default: 1]")
@click.option("--out", help="Run directory (must not exist), or an object-store URI s3://BUCKET/PREFIX or gs://BUCKET/PREFIX (must be empty; S3-compatible server: add ?endpoint_override=HOST:PORT&scheme=http).  [default: runs/<UTC timestamp>]")
@click.option("--registry", help="Asset registry JSON shared by runs: created if missing, extended with new symbols (version + 1), never renumbered; relative to the current directory (in a spec: to the spec).  [default: none: per-run ids]")
@click.option("--resume", "resume", help="Finish an interrupted or failed run: its staging directory (printed at start), its --out path or its --out URI. Trains only units without a complete saved result; every other option is taken from the saved run.")
def train(config_path, data, symbols, days, strategy, backend, address, num_cpus, num_gpus, cnn_num_gpus, folds, horizon,
          embargo_bars, holdout_days, clusters, distance_threshold, factor_method, max_d, threshold, cost_bps,
          forced_entry, forced_entry_cutoff, bars_per_year, experts, gate, top_k, balance_coef, inner_folds, guard,
          learner, early_stopping, asset_aware, moe_enabled, report, seed, seeds, out, registry, resume) -> None:
    """Train the fleet under purged walk-forward validation and write a run directory.

    The driver clusters assets and extracts the market factor on each fold's training
    window, trains one unit per asset / cluster / fleet per fold (Ray actors with
    --backend ray), and prints per-cluster and per-asset out-of-sample results.

    \b
    Exit codes: 0 done; 2 bad input or configuration (nothing written); 3 some units failed
    (the others are kept in the staging directory: fix, then --resume); 1 interrupted.
    """
    from fleet.training.driver import resume_fleet, run_fleet, run_seeds

    options = {k: v for k, v in locals().items() if k in OVERRIDES}  # the options share their names
    overrides = dotted_overrides(options)
    argv = ["fleet", *sys.argv[1:]]
    if resume is not None:
        given = [k for k, v in {"--config": config_path, **overrides}.items() if v is not None]
        if given:
            raise ConfigError(f"--resume takes no other options (got {', '.join(given)} set): a resumed run keeps "
                              "the configuration it started with")
        summary = resume_fleet(resume, echo=click.echo, argv=argv)
        _print_summary(summary, summary.config)
        return
    config = load_config(config_path, overrides)
    if config.evaluation.seeds > 1:
        seeds_summary = run_seeds(config, echo=click.echo, argv=argv)
        wide = seeds_summary.table[seeds_summary.table["metric"].isin(["auc", "rank_ic", "expectancy", "sharpe_net"])]
        wide = wide.assign(value=[f"{m:.4f} ± {s:.4f}" for m, s in zip(wide["mean"], wide["std"])])
        wide = wide.pivot_table(index=["level", "name"], columns="metric", values="value", aggfunc="first", sort=True)
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            click.echo(f"\nMean ± std over {config.evaluation.seeds} seeds "
                       f"({config.seed}..{config.seed + config.evaluation.seeds - 1}); every metric in results_seeds.csv:")
            click.echo(wide.reset_index().to_string(index=False))
        click.echo(f"\nRuns directory: {seeds_summary.out}  ({seeds_summary.wall_seconds:.1f} s)")
        return
    summary = run_fleet(config, echo=click.echo, argv=argv)
    _print_summary(summary, config)


@main.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False),
              help="Directory for report.html and its PNGs.  [default: RUN_DIR/report]")
def report_cmd(run_dir, out_dir) -> None:
    """Write one self-contained HTML report (plots embedded, PNGs beside it) of a finished run:
    clusters, market factor, equity curves, experts and gate, forced entries, results tables."""
    from fleet.evaluation.report import write_report
    from fleet.training.rundir import require_local

    require_local(run_dir, "fleet report")
    path = write_report(run_dir, out_dir)
    click.echo(f"Wrote {path} (and its PNGs in {path.parent})")


@main.group()
def data() -> None:
    """Download market data and look at it before training."""


@data.command("fetch")
@click.argument("source", type=click.Choice(["binance"]))
@click.option("--symbols", required=True, help="Comma-separated spot symbols, e.g. BTCUSDT,ETHUSDT.")
@click.option("--interval", default="1h", show_default=True, help="Kline interval (1m, 5m, 15m, 1h, 4h, 1d, ...).")
@click.option("--start", required=True, help="First month, YYYY-MM (included).")
@click.option("--end", required=True, help="Last month, YYYY-MM (included).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for <SYMBOL>.parquet (what `fleet train --data` reads).")
@click.option("--base-url", default=None, help="Archive server.  [default: https://data.binance.vision]")
@click.option("--cache", type=click.Path(file_okay=False), help="Where verified zips are kept for resuming.  [default: OUT/.cache]")
def data_fetch(source, symbols, interval, start, end, out, base_url, cache) -> None:
    """Download Binance's public monthly spot kline archives, verify their SHA-256 checksums and
    write one parquet per symbol. Reruns resume: verified archives in the cache are not fetched again."""
    from fleet.data.fetch import BINANCE_BASE_URL, fetch_binance

    base = base_url or BINANCE_BASE_URL
    click.echo(f"Fetching {symbols} {interval} klines {start} .. {end} from {base}")
    summary = fetch_binance(symbols.split(","), interval=interval, start=start, end=end, out=out, base_url=base,
                            cache=cache, echo=click.echo)
    click.echo(f"{summary.downloaded} archive(s) downloaded, {summary.cached} already in the cache (verified), "
               f"{len(summary.missing)} not published")
    if summary.missing:
        shown = ", ".join(summary.missing[:6]) + (", ..." if len(summary.missing) > 6 else "")
        click.echo(f"not published (HTTP 404): {shown}")
    click.echo(f"Wrote {len(summary.files)} file(s) to {out}; train with: fleet train --data {out}")


@data.command("inspect")
@click.argument("path", type=click.Path())
def data_inspect(path) -> None:
    """Per-symbol coverage, first/last timestamp, bars, gaps and bad rows of a data directory."""
    from fleet.data.inspect import inspect_data

    table = inspect_data(path)
    shown = table.assign(first=table["first"].map(_fmt_ts), last=table["last"].map(_fmt_ts),
                         coverage=table["coverage"].map(lambda v: "" if pd.isna(v) else f"{v:.1%}"))
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 120):
        click.echo(shown.astype(object).where(shown.notna(), "").to_string(index=False))
    bad = int((table["problem"] != "").sum())
    click.echo(f"\n{len(table)} row(s); {bad} with problems (`fleet train --data` stops at the first of them)"
               if bad else f"\n{len(table)} symbol(s), no problems")


def _fmt_ts(value) -> str:
    return "" if pd.isna(value) else f"{value:%Y-%m-%d %H:%M}"


def _print_summary(summary, config) -> None:
    from fleet.evaluation.policy import DISABLE_DELTA

    shown = ["precision", "recall", "auc", "expectancy", "trades", "folds", "ic", "rank_ic", "icir",
             "sharpe_net", "ann_return_net", "max_dd_net"]
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4f}".format):
        click.echo("\nPer cluster (out-of-sample, all folds; expectancy = mean forward log return of "
                   f"signalled bars net of {config.policy.cost_bps:g} bps per side; *_net: marked-to-market curve "
                   f"net of costs on turnover; sharpe against cash, annualised with {summary.bars_per_year:g} "
                   "bars/year; ann_return, max_dd: simple returns (0.1 = 10 %); all columns in the CSVs):")
        click.echo(summary.per_cluster[["cluster", "dominant", "assets", *shown]].to_string(index=False))
        click.echo("\nPer asset:")
        click.echo(summary.per_asset[["asset", "cluster", *shown]].to_string(index=False))
        if summary.holdout is not None:
            click.echo(f"\nHold-out ({config.validation.holdout_days:g} final days, predicted by the last fold's "
                       "models; results_holdout.csv):")
            click.echo(summary.holdout[["asset", *[c for c in shown if c != "folds"]]].to_string(index=False))
        if summary.forced_entry is not None:
            click.echo("\nForced daily entry: natural vs forced trades (mean forward log return, win rate):")
            click.echo(summary.forced_entry.to_string(index=False))
            bad = summary.forced_entry[summary.forced_entry["advice"] != ""]["asset"].tolist()
            if bad:
                click.echo(f"advice: forced trades' mean return is worse than the natural ones' by more than "
                           f"{-DISABLE_DELTA:g} for {', '.join(bad)}: consider --no-forced-entry")
        if summary.expert_auc is not None and summary.expert_auc["expert"].nunique() > 2:
            auc = summary.expert_auc[summary.expert_auc["level"] != "asset"]
            w = summary.expert_weights[summary.expert_weights["level"] != "asset"]
            click.echo("\nExperts (AUC alone and of the ensemble; mean gate weight), fleet and per cluster; "
                       "per asset in expert_auc.csv / expert_weights.csv:")
            table = auc.pivot_table(index=["level", "name"], columns="expert", values="auc", sort=False)
            weights = w.pivot_table(index=["level", "name"], columns="expert", values="mean_weight", sort=False)
            click.echo(table.join(weights.add_prefix("w_")).reset_index().to_string(index=False))
    resumed = f", {summary.loaded} loaded from the interrupted run" if summary.loaded else ""
    click.echo(f"\nRun directory: {summary.out}  ({summary.units} units: {summary.trained} trained{resumed}; "
               f"{summary.wall_seconds:.1f} s)")


class DefaultCommandGroup(click.Group):
    """A group that runs ``default_command`` when the first argument is not one of its subcommands.

    So ``fleet serve RUN_DIR`` starts serving and ``fleet serve build RUN_DIR`` builds a config.
    """

    def __init__(self, *args, default_command: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_command = default_command

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@main.group(cls=DefaultCommandGroup, default_command="run", invoke_without_command=False)
def serve() -> None:
    """Serve a run directory over HTTP with Ray Serve.

    \b
    fleet serve RUN_DIR [--port 8000]           start serving (same as `fleet serve run RUN_DIR`)
    fleet serve build RUN_DIR -o serve.yaml     write a Serve config (serve deploy / KubeRay RayService)
    """


@serve.command("run")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--address", help="Ray address of a running cluster (default: RAY_ADDRESS or a new local Ray).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface the HTTP proxy listens on.")
@click.option("--port", default=8000, show_default=True, type=int, help="HTTP port.")
@click.option("--replicas", default=1, show_default=True, type=int, help="Replicas of the prediction deployment.")
@click.option("--num-cpus", default=0.5, show_default=True, type=float, help="CPUs each replica reserves.")
@click.option("--max-body-bytes", default=4 * 1024 * 1024, show_default=True, type=int,
              help="Larger request bodies are refused with 413.")
@click.option("--max-queued-requests", default=-1, show_default=True, type=int,
              help="Requests allowed to wait for a busy replica; more get 503 at once (-1: no limit).")
def serve_run(run_dir, address, host, port, replicas, num_cpus, max_body_bytes, max_queued_requests) -> None:
    """Start serving RUN_DIR; prints the base URL and blocks until Ctrl-C (or SIGTERM)."""
    import signal
    import time

    from fleet.serving import runner
    from fleet.serving.predictor import FleetPredictor
    from fleet.training.rundir import require_local

    require_local(run_dir, "fleet serve")
    predictor = FleetPredictor(run_dir)  # clear one-line error before any Ray start-up

    def _interrupt(signum, frame):
        raise KeyboardInterrupt

    # Explicit handlers: a background process may start with SIGINT ignored, and SIGTERM (docker, k8s)
    # should shut Serve down as cleanly as Ctrl-C.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    started = None
    try:
        url, started = runner.start(run_dir, address=address, host=host, port=port, replicas=replicas,
                                    num_cpus=num_cpus, max_body_bytes=max_body_bytes,
                                    max_queued_requests=max_queued_requests)
        click.echo(f"Serving run {predictor.model_version} ({len(predictor.units)} units, "
                   f"{len(predictor.assets)} assets) at {url}")
        click.echo(f"  POST {url}/v1/predict   GET {url}/v1/models   docs {url}/docs   (Ctrl-C to stop)")
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        click.echo("Shutting down Serve.")
    finally:
        if started is not None:
            runner.stop(started)


@serve.command("build")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="YAML file to write.")
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface the HTTP proxy listens on.")
@click.option("--port", default=8000, show_default=True, type=int, help="HTTP port.")
@click.option("--replicas", default=1, show_default=True, type=int, help="Replicas of the prediction deployment.")
@click.option("--num-cpus", default=0.5, show_default=True, type=float, help="CPUs each replica reserves.")
def serve_build(run_dir, output, host, port, replicas, num_cpus) -> None:
    """Write a Serve config for RUN_DIR (for `serve deploy` and a KubeRay RayService serveConfigV2)."""
    import yaml

    from fleet.serving.runner import serve_config
    from fleet.training.rundir import require_local

    require_local(run_dir, "fleet serve build")
    config = serve_config(run_dir, host=host, port=port, replicas=replicas, num_cpus=num_cpus)
    with open(output, "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    click.echo(f"Wrote {output}: deploy with `serve deploy {output}` (RUN_DIR must exist at "
               f"{config['applications'][0]['args']['run_dir']} on every node)")


if __name__ == "__main__":  # pragma: no cover
    main()
