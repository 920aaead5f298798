"""Command line: parse, load the configuration, delegate to the library.

Options left unset keep the value of the fleet spec (``--config``) or the default in
:mod:`fleet.config`; the CLI holds no defaults of its own (``--help`` reads them from
:class:`~fleet.config.FleetConfig`, :mod:`fleet.cli_options`). Every command takes ``-q``, ``-v``
and ``--json`` (:mod:`fleet.cli_output`); ``-o/--out`` names what a command writes.

Exit codes: 0 done; 2 bad input or configuration; 3 training units failed (the run is
resumable); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
import warnings

import click

from fleet.cli_options import NameChoice, config_option
from fleet.cli_output import FleetCommand, current, print_run, print_seeds
from fleet.config import OVERRIDES, Backend, FactorMethod, Strategy, dotted_overrides, load_config
from fleet.errors import ConfigError, FleetError, FleetWarning
from fleet.models.specs import EXPERT_NAMES, GATE_NAMES, gates_help, top_k_default_help

# pandas, torch, Ray and the training code are imported inside the commands that use them, so that
# `fleet --help` and `fleet <command> --help` stay fast (issue 15).


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # One readable line for our own warnings instead of Python's file:line format.
    if issubclass(category, FleetWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


class FleetGroup(click.Group):
    """Reports :class:`FleetError` as one line on stderr (the traceback too with ``-v``; with ``--json``
    also ``{"error": ..., "exit_code": ...}`` on stdout) with its exit code: 2 for bad input or
    configuration, 3 when training units failed (the run is left resumable). Ctrl-C exits with 130
    (128 + SIGINT, the shell's convention)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except FleetError as err:
            _report_error(str(err), err.exit_code)
            ctx.exit(err.exit_code)
        except KeyboardInterrupt:
            _report_error("interrupted", 130)
            ctx.exit(130)


def _report_error(message: str, code: int) -> None:
    out = current()
    if out.verbose:
        import traceback

        traceback.print_exc()
    click.echo(f"error: {message}" if code != 130 else message, err=True)
    out.emit({"error": message, "exit_code": code})


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


@main.command(cls=FleetCommand)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML fleet spec, e.g. fleet/crypto10.yaml.")
@click.option("--data", help="Directory of per-symbol parquet/CSV files, or one long-format file; a local path or an s3:// / gs:// URI. Default: built-in synthetic market.")
@click.option("--symbols", help="Comma-separated symbols to train (default: all in the data).")
@config_option("--days", type=int, key="days", help="Keep the last N calendar days of the data (one window for all assets).")
@config_option("--strategy", type=_choice(Strategy), key="strategy", help="Units: one per asset, per correlation cluster, or one for the fleet.")
@config_option("--backend", type=_choice(Backend), key="backend", help="Run units in-process, or on a pool of Ray actors (one unit per actor call).")
@click.option("--address", help="Ray cluster address, HOST:PORT of its head (default: RAY_ADDRESS, set inside `ray job submit`; else the latest `ray start` cluster on this machine; else a new local Ray).")
@config_option("--num-cpus", type=float, key="num_cpus", help="CPUs each unit's Ray actor asks for.")
@config_option("--num-gpus", type=float, key="num_gpus", help="GPUs (fractions allowed) each unit's Ray actor asks for.")
@config_option("--cnn-num-gpus", type=float, key="cnn_num_gpus", help="GPUs (fractions allowed) each CNN expert's Ray task asks for when the cluster has GPUs: 1/f CNN tasks share a GPU.")
@config_option("--folds", type=int, key="folds", help="Purged walk-forward folds.")
@config_option("--horizon", type=int, key="horizon", help="Label horizon in bars: y = 1 when the forward log return is > 0.")
@config_option("--embargo", "embargo_bars", type=int, key="embargo_bars", help="Bars dropped between the purged training window and each test block.")
@config_option("--holdout-days", type=float, key="holdout_days", help="Final days kept out of every fold.")
@config_option("--clusters", type=int, key="clusters", help="Number of Ward clusters on 1-|corr|.")
@click.option("--distance-threshold", type=float, help="Cut the dendrogram at this distance instead of --clusters.")
@config_option("--factor-method", type=_choice(FactorMethod), key="factor_method", help="Market factor of the dominant cluster.")
@config_option("--max-d", type=float, key="max_d", help="Cap on the FFD order d (smallest d with ADF p < 0.05).")
@config_option("--threshold", type=float, key="threshold", help="Signal long when p_up > threshold.")
@config_option("--cost-bps", type=float, key="cost_bps", help="Trading cost per side in basis points.")
@config_option("--policy", type=click.Choice(["fixed", "tuned"]), key="policy", help="fixed: p_up > threshold on every bar (1/h tranches); tuned: hysteresis / expected-return threshold chosen per unit on the training window's inner out-of-fold predictions, kept only when it passes Hansen's SPA test over the candidate grid (else the unit stays flat).")
@config_option("--sides", type=click.Choice(["long", "both"]), key="sides", help="Long only, or long and short (short when p_up < 1 - threshold).")
@config_option("--meta-label/--no-meta-label", "meta_label", default=None, key="meta_label", help="Meta-labelling (AFML 3.6): a secondary model fitted on the training window's out-of-fold bets keeps only the fixed rule's bets it expects to pay.")
@config_option("--labels", type=click.Choice(["fixed_horizon", "triple_barrier"]), key="labels", help="Label: sign of the h-bar return, or the triple-barrier label (AFML ch. 3).")
@config_option("--cluster-on", type=click.Choice(["returns", "residual", "ffd"]), key="cluster_on", help="Cluster on raw returns, residual returns after the market factor, or FFD log prices.")
@config_option("--min-cluster-size", type=int, key="min_cluster_size", help="A cluster with fewer assets joins its nearest cluster.")
@config_option("--forced-entry/--no-forced-entry", default=None, key="forced_entry", help="Forced daily entry: per asset and UTC day with no signal up to the cut-off bar, go long at the cut-off bar.")
@config_option("--forced-entry-cutoff", key="forced_entry_cutoff", help="UTC time HH:MM of the forced-entry decision bar.", none="the day's last bar")
@config_option("--bars-per-year", type=float, key="bars_per_year", help="Bars per year for annualising.", none="inferred: 8760 hourly 24/7, 252 daily equities")
@config_option("--experts", key="experts", help=f"Comma-separated experts: {', '.join(EXPERT_NAMES)} (several -> mixture of experts).")
@config_option("--gate", type=NameChoice("gate", GATE_NAMES), key="gate", help=f"Gate of the mixture. {gates_help()}.")
@config_option("--top-k", type=int, key="top_k", help="Experts each row is routed to by a routing gate (renormalised "
               "weights).", none=top_k_default_help())
@config_option("--balance-coef", type=float, key="balance_coef", help="Coefficient of the MLP gate's load-balancing term.")
@config_option("--inner-folds", type=int, key="inner_folds", help="Inner out-of-fold blocks of each training window that the gate learns from.")
@config_option("--guard/--no-guard", "guard", default=None, key="guard", help="Fall back to the best single expert when the cross-fitted gate loses to it.")
@config_option("--recalibrate", type=click.Choice(["asset", "off"]), key="recalibrate", help="Per-asset level of the mixture. off: the gate's mixture as it is; asset: each asset's P(up) gets the logit intercept that sets its mean on the inner out-of-fold rows to its up-rate there (calibration in the large; one asset's ranking, so its per-asset AUC, is unchanged).", none="off")
@config_option("--learner", type=click.Choice(["hgb", "lightgbm"]), key="learner", help="TrendExpert's booster: scikit-learn HistGradientBoosting, or LightGBM (pip install 'fleet[lightgbm]').")
@config_option("--early-stopping/--no-early-stopping", "early_stopping", default=None, key="early_stopping", help="TrendExpert: choose the boosting iterations on a purged time-ordered tail of the training window, then refit.")
@config_option("--asset-aware/--no-asset-aware", "asset_aware", default=None, key="asset_aware", help="Experts see the asset (id categorical, CNN embedding, per-asset intercepts); --no-asset-aware is the asset-agnostic ablation.")
@config_option("--moe/--no-moe", "moe_enabled", default=None, key="moe_enabled", help="--no-moe: only the first of --experts, no gate.")
@config_option("--report/--no-report", "report", default=None, key="report", help="Write the HTML report (as `fleet report`) into RUN_DIR/report/ at the end of the run.")
@config_option("--seed", type=int, key="seed", help="Random seed (same seed -> same results on every backend).")
@config_option("--seeds", type=int, key="seeds", help="Repeat the run with seeds seed..seed+N-1; --out then holds seed<k>/ runs and results_seeds.csv (mean, std).")
@config_option("--bootstrap-reps", type=int, key="bootstrap_reps", help="Stationary block bootstrap draws over timestamps behind the standard errors of the results tables (0: none).")
@config_option("-o", "--out", key="out", help="Run directory (must not exist), or an object-store URI s3://BUCKET/PREFIX or gs://BUCKET/PREFIX (must be empty; S3-compatible server: add ?endpoint_override=HOST:PORT&scheme=http).", none="runs/<UTC timestamp>")
@config_option("--registry", key="registry", help="Asset registry JSON shared by runs: created if missing, extended with new symbols (version + 1), never renumbered; relative to the current directory (in a spec: to the spec).", none="none: per-run ids")
@click.option("--resume", "resume", help="Finish an interrupted or failed run: its staging directory (printed at start), its --out path or its --out URI. Trains only units without a complete saved result; every other option is taken from the saved run, except --address: a Ray run can be finished on another cluster (e.g. when a node or the whole cluster it started on is gone).")
def train(config_path, data, symbols, days, strategy, backend, address, num_cpus, num_gpus, cnn_num_gpus, folds,
          horizon, embargo_bars, holdout_days, clusters, distance_threshold, factor_method, max_d, threshold, cost_bps,
          policy, sides, meta_label, labels, cluster_on, min_cluster_size, forced_entry, forced_entry_cutoff,
          bars_per_year, experts, gate, top_k, balance_coef, inner_folds, guard, recalibrate,
          learner, early_stopping, asset_aware, moe_enabled, report, seed, seeds, bootstrap_reps, out, registry,
          resume) -> None:
    """Train the fleet under purged walk-forward validation and write a run directory.

    The driver clusters assets and extracts the market factor on each fold's training
    window, trains one unit per asset / cluster / fleet per fold (Ray actors with
    --backend ray), and prints per-cluster and per-asset out-of-sample results.
    A Ray node lost mid-run never hangs it: the units whose steps ran there start again on the
    surviving nodes (once), and units that no alive node can run fail after a 60 s wait for one
    (exit 3; finish with --resume, adding --address to use another cluster).

    \b
    Exit codes: 0 done; 2 bad input or configuration (nothing written); 3 some units failed
    (the others are kept in the staging directory: fix, then --resume); 130 interrupted (Ctrl-C).
    """
    options = {k: v for k, v in locals().items() if k in OVERRIDES}  # the options share their names
    overrides = dotted_overrides(options)
    argv = ["fleet", *sys.argv[1:]]
    echo = current().progress
    if resume is not None:
        # --address only says where the steps run (they are pure): a run can be finished on another cluster.
        given = [k for k, v in {"--config": config_path, **overrides}.items()
                 if v is not None and k != OVERRIDES["address"]]
        if given:
            raise ConfigError(f"--resume takes no other options but --address (got {', '.join(given)} set): a "
                              "resumed run keeps the configuration it started with")
        from fleet.training.driver import resume_fleet

        summary = resume_fleet(resume, echo=echo, argv=argv, address=address)
        print_run(summary, summary.config)
        return
    config = load_config(config_path, overrides)
    _torch_first_if_needed(config)
    from fleet.training.driver import run_fleet, run_seeds

    if config.evaluation.seeds > 1:
        print_seeds(run_seeds(config, echo=echo, argv=argv), config)
        return
    print_run(run_fleet(config, echo=echo, argv=argv), config)


def _torch_first_if_needed(config) -> None:
    """Load torch before the driver imports scikit-learn when this process may train a CNN or the MLP gate
    (OpenMP load order, see :mod:`fleet.models._openmp`)."""
    from fleet.models.factory import needs_torch

    if needs_torch(config.model):
        from fleet.models._openmp import torch_first

        torch_first()


@main.command("report", cls=FleetCommand)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False),
              help="Directory for report.html and its PNGs.  [default: RUN_DIR/report]")
def report_cmd(run_dir, out_dir) -> None:
    """Write one self-contained HTML report (plots embedded, PNGs beside it) of a finished run:
    clusters, market factor, equity curves, experts and gate, forced entries, results tables."""
    from fleet.evaluation.report import write_report
    from fleet.store import require_local

    require_local(run_dir, "fleet report")
    path = write_report(run_dir, out_dir)
    current().show(f"Wrote {path} (and its PNGs in {path.parent})")
    current().emit({"report": str(path), "pngs": sorted(str(p) for p in path.parent.glob("*.png"))})


@main.group()
def data() -> None:
    """Download market data and look at it before training."""


@data.command("fetch", cls=FleetCommand)
@click.argument("source", type=click.Choice(["binance"]))
@click.option("--symbols", required=True, help="Comma-separated spot symbols, e.g. BTCUSDT,ETHUSDT.")
@click.option("--interval", default="1h", show_default=True, help="Kline interval (1m, 5m, 15m, 1h, 4h, 1d, ...).")
@click.option("--start", required=True, help="First month, YYYY-MM (included).")
@click.option("--end", required=True, help="Last month, YYYY-MM (included).")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Directory for <SYMBOL>.parquet (what `fleet train --data` reads).")
@click.option("--base-url", default=None, help="Archive server.  [default: https://data.binance.vision]")
@click.option("--cache", type=click.Path(file_okay=False), help="Where verified zips are kept for resuming.  [default: OUT/.cache]")
def data_fetch(source, symbols, interval, start, end, out, base_url, cache) -> None:
    """Download Binance's public monthly spot kline archives, verify their SHA-256 checksums and
    write one parquet per symbol. Reruns resume: verified archives in the cache are not fetched again."""
    from fleet.data.fetch import BINANCE_BASE_URL, fetch_binance

    base = base_url or BINANCE_BASE_URL
    echo = current().progress
    echo(f"Fetching {symbols} {interval} klines {start} .. {end} from {base}")
    summary = fetch_binance(symbols.split(","), interval=interval, start=start, end=end, out=out, base_url=base,
                            cache=cache, echo=echo)
    current().emit({"files": [str(f) for f in summary.files], "downloaded": summary.downloaded,
                    "cached": summary.cached, "missing": list(summary.missing)})
    echo(f"{summary.downloaded} archive(s) downloaded, {summary.cached} already in the cache (verified), "
               f"{len(summary.missing)} not published")
    if summary.missing:
        shown = ", ".join(summary.missing[:6]) + (", ..." if len(summary.missing) > 6 else "")
        echo(f"not published (HTTP 404): {shown}")
    echo(f"Wrote {len(summary.files)} file(s) to {out}; train with: fleet train --data {out}")


@data.command("inspect", cls=FleetCommand)
@click.argument("path", type=click.Path())
def data_inspect(path) -> None:
    """Per-symbol coverage, first/last timestamp, bars, gaps and bad rows of a data directory."""
    import pandas as pd

    from fleet.data.inspect import inspect_data

    table = inspect_data(path)
    if current().json:
        from fleet.training.context import records

        current().emit(records(table.assign(first=table["first"].astype(str), last=table["last"].astype(str))))
        return
    shown = table.assign(first=table["first"].map(_fmt_ts), last=table["last"].map(_fmt_ts),
                         coverage=table["coverage"].map(lambda v: "" if pd.isna(v) else f"{v:.1%}"))
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 120):
        click.echo(shown.astype(object).where(shown.notna(), "").to_string(index=False))
    bad = int((table["problem"] != "").sum())
    click.echo(f"\n{len(table)} row(s); {bad} with problems (`fleet train --data` stops at the first of them)"
               if bad else f"\n{len(table)} symbol(s), no problems")


def _fmt_ts(value) -> str:
    import pandas as pd

    return "" if pd.isna(value) else f"{value:%Y-%m-%d %H:%M}"


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


@serve.command("run", cls=FleetCommand)
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
    """Start serving RUN_DIR; prints the base URL and blocks until Ctrl-C (or SIGTERM), then stops
    Serve cleanly and exits with 0 (stopping is this command's normal end)."""
    import signal
    import time

    from fleet.serving import runner
    from fleet.serving.predictor import FleetPredictor
    from fleet.store import require_local

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
        out = current()
        out.emit({"url": url, "model_version": predictor.model_version, "units": len(predictor.units),
                  "assets": len(predictor.assets)})
        out.progress(f"Serving run {predictor.model_version} ({len(predictor.units)} units, "
                     f"{len(predictor.assets)} assets) at {url}")
        out.progress(f"  POST {url}/v1/predict   GET {url}/v1/models   docs {url}/docs   (Ctrl-C to stop)")
        while True:
            time.sleep(1.0)
    except KeyboardInterrupt:
        current().progress("Shutting down Serve.")
    finally:
        if started is not None:
            runner.stop(started)


@serve.command("build", cls=FleetCommand)
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("-o", "--out", "output", required=True, type=click.Path(dir_okay=False), help="YAML file to write.")
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface the HTTP proxy listens on.")
@click.option("--port", default=8000, show_default=True, type=int, help="HTTP port.")
@click.option("--replicas", default=1, show_default=True, type=int, help="Replicas of the prediction deployment.")
@click.option("--num-cpus", default=0.5, show_default=True, type=float, help="CPUs each replica reserves.")
def serve_build(run_dir, output, host, port, replicas, num_cpus) -> None:
    """Write a Serve config for RUN_DIR (for `serve deploy` and a KubeRay RayService serveConfigV2)."""
    import yaml

    from fleet.serving.runner import serve_config
    from fleet.store import require_local

    require_local(run_dir, "fleet serve build")
    config = serve_config(run_dir, host=host, port=port, replicas=replicas, num_cpus=num_cpus)
    with open(output, "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    current().emit({"config": str(output), "run_dir": config["applications"][0]["args"]["run_dir"]})
    current().show(f"Wrote {output}: deploy with `serve deploy {output}` (RUN_DIR must exist at "
               f"{config['applications'][0]['args']['run_dir']} on every node)")


if __name__ == "__main__":  # pragma: no cover
    main()
