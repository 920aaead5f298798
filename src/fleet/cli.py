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
from typing import Any

import click

from fleet.cli_options import ConfigCommand
from fleet.cli_output import FleetCommand, current, print_run, print_seeds
from fleet.config import OVERRIDES, load_config
from fleet.errors import ConfigError, FleetError, FleetWarning

# pandas, torch, Ray and the training code are imported inside the commands that use them, so that
# `fleet --help` and `fleet <command> --help` stay fast.


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


@main.command(cls=ConfigCommand)
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="YAML fleet spec, e.g. fleet/crypto10.yaml; the options below override it.")
@click.option("--resume", "resume", help="Finish an interrupted or failed run (its staging directory, --out path or "
              "--out URI), keeping its configuration; only --address may be given with it.")
def train(overrides: dict[str, Any], config_path: str | None, resume: str | None) -> None:
    """Train the fleet under purged walk-forward validation and write a run directory.

    The driver clusters assets and extracts the market factor on each fold's training
    window, trains one unit per asset / cluster / fleet per fold (Ray actors with
    --backend ray), and prints per-cluster and per-asset out-of-sample results.
    A Ray node lost mid-run never hangs it: the units whose steps ran there start again on the
    surviving nodes (once), and units that no alive node can run fail after a 60 s wait for one
    (exit 3; finish with --resume, adding --address to use another cluster).

    \b
    Exit codes: 0 done; 2 bad input or configuration (nothing written);
    3 some units failed (the others are kept for --resume: fix, then resume);
    130 interrupted (Ctrl-C). Every option: docs/cli.md.
    """
    argv = ["fleet", *sys.argv[1:]]
    echo = current().progress
    address = overrides.get(OVERRIDES["address"])
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
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False),
              help="Directory for <SYMBOL>.parquet (what `fleet train --data` reads).")
@click.option("--base-url", default=None, help="Archive server.  [default: https://data.binance.vision]")
@click.option("--cache", type=click.Path(file_okay=False),
              help="Where verified zips are kept for resuming.  [default: OUT/.cache]")
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
@click.option("--api-key-env", metavar="NAME",
              help="Require the API key held in environment variable NAME as a bearer token on every route "
                   "but /healthz and the OpenAPI document (the key is never given on the command line).")
def serve_run(run_dir, address, host, port, replicas, num_cpus, max_body_bytes, max_queued_requests,
              api_key_env) -> None:
    """Start serving RUN_DIR; prints the base URL and blocks until Ctrl-C (or SIGTERM), then stops
    Serve cleanly and exits with 0 (stopping is this command's normal end)."""
    import signal
    import time

    from fleet.serving import runner
    from fleet.serving.predictor import FleetPredictor
    from fleet.store import require_local

    require_local(run_dir, "fleet serve")
    predictor = FleetPredictor(run_dir)  # clear one-line error before any Ray start-up
    from fleet.serving.auth import key_from_env

    api_key = key_from_env(api_key_env) if api_key_env else None

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
                                    max_queued_requests=max_queued_requests, api_key=api_key)
        out = current()
        out.emit({"url": url, "model_version": predictor.model_version, "units": len(predictor.units),
                  "assets": len(predictor.assets)})
        out.progress(f"Serving run {predictor.model_version} ({len(predictor.units)} units, "
                     f"{len(predictor.assets)} assets) at {url}")
        out.progress(f"  POST {url}/v1/predict   GET {url}/v1/models   docs {url}/docs   (Ctrl-C to stop)")
        if api_key is not None:
            out.progress(f"  bearer token required (from ${api_key_env}); /healthz and /docs stay open")
        from fleet.ray_logs import ray_log_path

        out.progress(f"  Ray's own log lines: {ray_log_path()} (the replicas': Ray's session logs)")
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
@click.option("--api-key-env", metavar="NAME",
              help="Replicas require the API key held in their environment variable NAME (e.g. set from a "
                   "Kubernetes Secret) as a bearer token; the config names the variable, never the key.")
def serve_build(run_dir, output, host, port, replicas, num_cpus, api_key_env) -> None:
    """Write a Serve config for RUN_DIR (for `serve deploy` and a KubeRay RayService serveConfigV2)."""
    import yaml

    from fleet.serving.runner import serve_config
    from fleet.store import require_local

    require_local(run_dir, "fleet serve build")
    config = serve_config(run_dir, host=host, port=port, replicas=replicas, num_cpus=num_cpus,
                          api_key_env=api_key_env)
    with open(output, "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False)
    current().emit({"config": str(output), "run_dir": config["applications"][0]["args"]["run_dir"]})
    current().show(f"Wrote {output}: deploy with `serve deploy {output}` (RUN_DIR must exist at "
               f"{config['applications'][0]['args']['run_dir']} on every node)")


if __name__ == "__main__":  # pragma: no cover
    main()
