"""The driver of ``fleet train``: it coordinates; the work is done by the modules it calls.

Recipe (ARCHITECTURE.md): load and validate the panel (:mod:`fleet.training.inputs`) -> asset
registry -> purged walk-forward folds on the union timeline -> per fold, on that fold's training
window only: alignment, Ward clustering on 1-|corr| and the market factor of the dominant cluster
(:mod:`fleet.market.fold`) -> training units (islands / hierarchical / global,
:mod:`fleet.training.plan`) -> backend (local loop or Ray actors) -> tables, predictions, models of
the last fold and a manifest (:mod:`fleet.training.artifacts`), written through the run's
:class:`~fleet.store.layout.RunLayout` to a staging directory renamed into place at the end
(:mod:`fleet.store.rundir`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from fleet._version import __version__
from fleet.config import FactorMethod, FleetConfig
from fleet.data.bars import BarCache
from fleet.data.fetch import sha256_file
from fleet.data.panel import Panel, union_timeline
from fleet.errors import ConfigError, UnitsFailedError
from fleet.evaluation.splits import PurgedWalkForward
from fleet.evaluation.tables import seeds_table
from fleet.market.fold import fit_fold_market, fmt_cluster_map, fmt_members
from fleet.models.factory import has_gpu_steps, needs_torch
from fleet.models.specs import gate_spec
from fleet.store import RunDirectory, is_uri, join_location
from fleet.store.layout import FAILURES, RESULTS_SEEDS
from fleet.store.location import default_out
from fleet.training.artifacts import output_stream, redacted, write_run
from fleet.training.backends import TrainFn, make_backend
from fleet.training.graph import Timed, check_config
from fleet.training.context import Echo, RunContext, RunSummary, records
from fleet.training.inputs import check_history, load_inputs, run_registry
from fleet.training.output_stream import OutputStream
from fleet.training.plan import plan_fold, with_run_size
from fleet.training.refit import add_refit
from fleet.training.refit_window import refit_window
from fleet.training.unit import UnitFailure, UnitResult, train_unit

__all__ = ["RunSummary", "SeedsSummary", "load_inputs", "resume_fleet", "run_fleet", "run_seeds"]


def run_fleet(config: FleetConfig, *, echo: Echo = print, argv: list[str] | None = None,
              train_fn: TrainFn | None = None, frame: pd.DataFrame | None = None) -> RunSummary:
    """Train the whole fleet as configured and write the run directory.

    Each unit's result is saved in the run's staging directory as it finishes, so an
    interrupted run can be finished with :func:`resume_fleet` (``fleet train --resume``).
    ``config.out`` may be an object-store URI (``s3://bucket/prefix``, see
    :mod:`fleet.training.rundir`): then every worker (Ray actor, or this process with the local
    backend) writes its own unit's result there, and this driver writes the tables, predictions,
    models and, last, ``manifest.json``.

    Args:
        config: resolved configuration.
        echo: where progress lines go (the CLI passes ``click.echo``).
        argv: the command line, recorded in the manifest.
        train_fn: function trained per unit; None means :func:`train_unit` (tests pass a stand-in).
        frame: bars as a long DataFrame instead of ``config.data.path`` (:func:`fleet.train`); such a
            run cannot be resumed (its data is not on disk).

    Returns:
        A :class:`RunSummary` with the tables and the final run directory.

    Raises:
        UnitsFailedError: some units failed; the others' results stay in the staging directory,
            nothing is written at ``--out`` (for a URI: no ``manifest.json``) and the run can be resumed.
        ConfigError: ``--out`` exists already; for a URI also an unsupported scheme, a missing bucket,
            an unreachable endpoint or a failed write probe (all checked before any training).
        FleetError: bad input or configuration (nothing is left on disk).
    """
    rundir = RunDirectory(config.out or default_out())
    if rundir.remote:  # the configuration is recorded (run.json, manifest, models): no credentials in it
        config = config.model_copy(update={"out": rundir.shown})
    return _run(config, rundir, echo=echo, argv=argv, train_fn=train_fn, frame=frame)


def resume_fleet(path: str | Path, *, echo: Echo = print, argv: list[str] | None = None,
                 train_fn: TrainFn | None = None, address: str | None = None) -> RunSummary:
    """Finish an interrupted or failed run: train only the units without a complete saved result.

    The configuration is the one saved when the run started (``run.json``), so the run is planned
    again exactly as before; the planned unit ids and the data files' SHA-256 must match.

    Args:
        path: the run's staging directory, or its ``--out`` path or URI (see :meth:`RunDirectory.resume`).
        address: the Ray cluster to finish a ``--backend ray`` run on (``HOST:PORT`` of its head), when the one it
            started on is gone; None: the saved ``resources.address``. Where the steps run does not change
            their results (steps are pure; ``num_cpus``, which sets the models' threads, stays as saved).

    Raises:
        ConfigError: nothing to resume at ``path``, the data / plan changed since the run started, or
            ``address`` given for a run that does not use the Ray backend.
        UnitsFailedError: as :func:`run_fleet`.
    """
    rundir = RunDirectory.resume(path)
    state = rundir.state
    if state.get("in_memory_data"):
        raise ConfigError(f"--resume {rundir.staging}: the run was trained on an in-memory DataFrame "
                          "(fleet.train), which is not on disk; start a new run instead")
    raw = dict(state["config"])
    if address is not None:
        resources = dict(raw.get("resources") or {})
        if resources.get("backend", "local") != "ray":
            raise ConfigError(f"--address={address!r} with --resume {rundir.staging}: that run uses --backend "
                              f"{resources.get('backend', 'local')}, not ray; resume it without --address")
        raw["resources"] = {**resources, "address": address}
    data_path = raw.get("data", {}).get("path")
    if data_path and not is_uri(data_path) and not Path(data_path).is_absolute() and state.get("cwd"):
        raw["data"] = {**raw["data"], "path": str(Path(state["cwd"]) / data_path)}
    try:
        config = FleetConfig.model_validate(raw)
    except ValueError as err:
        raise ConfigError(f"--resume {rundir.staging}: the saved configuration is not valid for this version "
                          f"of fleet ({err})") from None
    then = "completed in place" if rundir.remote else f"will be renamed to {rundir.final}"
    where = f" on the Ray cluster at {address}" if address is not None else ""
    echo(f"Resuming {rundir.staging}{where} (run started {state.get('started')}, {then})")
    return _run(config, rundir, echo=echo, argv=argv, train_fn=train_fn)


def _run(config: FleetConfig, rundir: RunDirectory, *, echo: Echo, argv: list[str] | None,
         train_fn: TrainFn | None, frame: pd.DataFrame | None = None) -> RunSummary:
    """One run with its bar cache: staged by :func:`_load`, read by the units and the hold-out, removed at the end
    (whatever the outcome: a resumed run stages it again)."""
    cache = BarCache(bar_cache_location(rundir))
    cache.clear()  # a resumed URI run may find an earlier attempt's cache
    try:
        return _run_cached(config, rundir, cache, echo=echo, argv=argv, train_fn=train_fn, frame=frame)
    finally:
        cache.clear()


def bar_cache_location(rundir: RunDirectory) -> str:
    """Where a run's bar cache (:mod:`fleet.data.bars`) lives: ``bars/`` under a URI run's prefix (shared storage
    every Ray node reaches), or a hidden directory beside a local run's staging directory (``.<name>.bars-<id>``;
    on a cluster of several machines that path must be on a filesystem every node mounts)."""
    if rundir.remote:
        return join_location(rundir.final, "bars")
    staging = Path(rundir.staging).absolute()  # workers may run in another directory
    # not named like a staging directory (".<name>.partial-<id>"), which --resume and its users look for
    return str(staging.parent / staging.name.replace(".partial-", ".bars-"))


def _run_cached(config: FleetConfig, rundir: RunDirectory, cache: BarCache, *, echo: Echo, argv: list[str] | None,
                train_fn: TrainFn | None, frame: pd.DataFrame | None = None) -> RunSummary:
    ctx = RunContext(config=config, rundir=rundir, echo=echo, argv=argv, started=pd.Timestamp.now(tz="UTC"))
    backend = make_backend(config.resources, train_fn=train_fn or train_unit)
    done = False
    try:
        backend.start(torch_first=needs_torch(config.model),  # Ray starts while the bars load
                      gpu_steps=has_gpu_steps(config.model, config.resources.num_gpus))
        timeline, late = _load(ctx, frame, cache)
        check_config(config)  # an expert that cannot train is refused now, before any fit or preparation
        ctx.backend_desc = backend.describe()
        _fit_markets(ctx, timeline, late, backend)
        _echo_experts(ctx)
        sources = sorted(set(ctx.panel.sources.values()))
        ctx.data_files = {p: sha256_file(p) for p in sources if Path(p).is_file()}
        resuming = _open_run(ctx, in_memory=frame is not None)
        summary = _train_and_write(ctx, backend, resuming)
        done = True
        return summary
    finally:
        backend.close(wait=done)  # a refusal is reported without waiting for Ray to finish starting


def _train_and_write(ctx: RunContext, backend, resuming: bool) -> RunSummary:
    """Train the units without a saved result, then write the run (the backend also builds its tables)."""
    rundir, echo, config = ctx.rundir, ctx.echo, ctx.config
    progress = _Progress()
    try:
        loaded = {u.unit_id: r for u in ctx.units if (r := rundir.load_unit(u.unit_id)) is not None}
        todo = [u for u in ctx.units if u.unit_id not in loaded]
        if resuming:
            echo(f"{len(loaded)} of {len(ctx.units)} units have a complete, verified result in the staging "
                 f"directory; training the other {len(todo)}")
        echo(f"Training {len(todo)} units ({config.strategy.value}) on {ctx.backend_desc}")
        stream = output_stream(ctx)
        for r in loaded.values():
            stream.unit_done(r)
        _train(ctx, backend, todo, progress, stream)
        if progress.failures:
            _raise_failed(ctx, progress.failures)
        rundir.delete(FAILURES)
        ctx.training["loaded"] = sorted(loaded)
        return write_run(ctx, [*loaded.values(), *progress.done], backend, stream)
    except UnitsFailedError:
        raise
    except BaseException:
        if resuming or progress.saved:
            echo(f"Run interrupted; {progress.saved} unit result(s) saved by this attempt. Finish it with: "
                 f"fleet train --resume {rundir.staging}")
        else:
            rundir.abort()
        raise


def _load(ctx: RunContext, frame: pd.DataFrame | None,
          cache: BarCache) -> tuple[pd.DatetimeIndex, dict[int, dict[str, str]]]:
    """Bars staged into ``cache`` (a lean panel and the bar reader), registry and folds into ``ctx``; returns the
    run's timeline (every asset's timestamps) and the late-listed assets."""
    config, echo = ctx.config, ctx.echo
    panel, ctx.source = load_inputs(config, echo, frame, cache=cache, features=ctx.features)
    # Copies of the window only: the slices of --days would keep the lean whole history alive.
    ctx.panel = panel = replace(panel, frames={s: f.copy() for s, f in panel.frames.items()})
    ctx.bars = cache.reader(panel)
    ctx.registry = run_registry(config, panel.symbols, ctx.source, ctx.notes, echo)
    echo(f"Data: {ctx.source}: {len(panel.symbols)} assets, bar {_bar_words(panel.bar)}, "
         f"columns {', '.join(panel.columns)}")
    if panel.missing_columns():
        ctx.note(f"no {'/'.join(panel.missing_columns())} column(s): features needing them are left out")
    all_ts = union_timeline(panel)
    early = ends_early(panel, all_ts.max())
    if early:
        ctx.note(f"warning: {len(early)} asset(s) end early, with no rows in the test blocks after that: "
                 + ", ".join(f"{s} ({d:,} days before the last bar)" for s, d in early[:3])
                 + (f" and {len(early) - 3} more (manifest notes)" if len(early) > 3 else ""))
    holdout = pd.Timedelta(days=config.validation.holdout_days)
    splitter = PurgedWalkForward(config.validation.folds, horizon=config.labels.horizon,
                                 embargo_bars=config.validation.embargo_bars, bar=panel.bar, holdout=holdout)
    ctx.folds = splitter.folds(all_ts)
    late = check_history(config, panel, ctx.features)
    ctx.timeline_end = all_ts.max() - holdout
    if config.refit:
        ctx.refit_window = refit_window(ctx.folds, all_ts, ctx.timeline_end)
    if config.market.clusters is not None and config.market.clusters > len(panel.symbols):
        ctx.note(f"clusters={config.market.clusters} > {len(panel.symbols)} assets: using {len(panel.symbols)}")
    return all_ts, late


def _fit_markets(ctx: RunContext, timeline: pd.DatetimeIndex, late: dict[int, dict[str, str]], backend) -> None:
    """Each fold's market fit (:func:`fit_fold_market`, one backend task per fold, which aligns the returns it
    needs itself: the driver never holds the fleet's return matrix) and units (:func:`plan_fold`) into ``ctx``."""
    config, echo, folds = ctx.config, ctx.echo, ctx.folds
    echo(f"Walk-forward: {len(folds)} folds, purge {config.labels.horizon} + embargo "
         f"{config.validation.embargo_bars} bars; clustering and {config.market.factor_method.value} factor "
         "refitted on each fold's training window")
    asset_ids = {s: ctx.registry.id_of(s) for s in ctx.panel.symbols}
    windows = [*folds, *([ctx.refit_window] if ctx.refit_window is not None else [])]
    fits = backend.map(Timed(fit_fold_market, "market", ("fold",)),
                       [{"fold": fold, "short": late.get(fold.index)} for fold in windows],
                       {"panel": ctx.panel, "timeline": timeline, "config": config})
    ctx.run_tasks += [rec for _, rec in fits]
    for fold, (fm, _) in zip(folds, fits):
        ctx.markets.append(fm)
        echo(f"  fold {fold.index}: train {fold.train_start:%Y-%m-%d} -> {fold.train_end:%Y-%m-%d %H:%M}, "
             f"test -> {fold.test_end:%Y-%m-%d %H:%M} | clusters {fmt_cluster_map(fm.clusters)} | "
             f"factor explained variance {fm.explained_variance:.1%}")
        if fm.excluded:
            echo(f"    not in fold {fold.index} (too little history before its training end): "
                 + ", ".join(f"{s} ({why})" for s, why in sorted(fm.excluded.items())))
        ctx.units += plan_fold(config=config, features=ctx.features, fold=fold, timeline_end=ctx.timeline_end,
                               asset_ids={s: i for s, i in asset_ids.items() if s in fm.clusters.cluster_map},
                               cluster_of=fm.clusters.cluster_map, factor=fm.factor,
                               is_final=fold.index == folds[-1].index)
    ctx.units = with_run_size(ctx.units)
    if ctx.refit_window is not None:
        add_refit(ctx, fits[-1][0], asset_ids)
    final = ctx.markets[-1]
    method = "PCA" if config.market.factor_method is FactorMethod.pca else config.market.factor_method.value
    echo(f"Dominant cluster {final.clusters.dominant_cluster} ({final.clusters.dominant_reason}): "
         f"{fmt_members(final.clusters.members[final.clusters.dominant_cluster])}; "
         f"{method} explained variance {final.explained_variance:.1%} (last fold's training window)")


def _echo_experts(ctx: RunContext) -> None:
    """One line naming the experts and the gate (in the words of its row of the gate table); a note on where CNN
    experts train."""
    model = ctx.config.model
    experts = model.active_experts()
    words = ""
    if len(experts) > 1:
        spec = gate_spec(model.moe.gate)
        words = (f"{spec.name}{spec.describe(model.moe, spec.resolve_top_k(model.moe.top_k, len(experts)))}; "
                 f"{model.moe.inner_folds} inner out-of-fold blocks"
                 + (f", guarded by {model.moe.criterion}" if model.moe.guard and spec.guarded else ""))
    ctx.echo(f"Experts: {', '.join(experts)}; gate: {words or 'none'}")
    if model.uses_cnn():
        from fleet.models._openmp import cuda_available

        if cuda_available():
            ctx.note("CNN experts train on CUDA (bf16 autocast)")
        else:
            ctx.note("CNN experts train on CPU: no CUDA device here"
                     + (" (units would ask Ray for a GPU on a GPU cluster)"
                        if ctx.units and ctx.units[0].num_gpus else ""))


#: An asset whose last bar is this much earlier than the panel's last bar is reported as ending early.
EARLY_END = pd.Timedelta(days=7)


def ends_early(panel: Panel, end: pd.Timestamp) -> list[tuple[str, int]]:
    """(symbol, whole days between its last bar and ``end``) of the assets whose data end more than
    :data:`EARLY_END` before ``end`` (the latest bar of any asset), latest-ending last."""
    gaps = [(s, end - f.index[-1]) for s, f in panel.frames.items() if len(f)]
    return [(s, int(g / pd.Timedelta(days=1))) for s, g in sorted(gaps, key=lambda x: -x[1]) if g > EARLY_END]


def _bar_words(bar: pd.Timedelta) -> str:
    """A bar length as people say it: ``1 h``, ``15 min``, ``1 day`` (not ``0 days 01:00:00``)."""
    for unit, size in (("day", pd.Timedelta(days=1)), ("h", pd.Timedelta(hours=1)), ("min", pd.Timedelta(minutes=1))):
        if bar >= size and bar % size == pd.Timedelta(0):
            n = bar // size
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''}"
    return str(bar)


def _open_run(ctx: RunContext, in_memory: bool) -> bool:
    """Open the staging area (new run: save ``run.json``; resume: check the plan). True when resuming.

    Raises:
        ConfigError: resuming, but the data files' SHA-256 or the planned units changed.
    """
    rundir, unit_ids = ctx.rundir, [u.unit_id for u in ctx.units]
    if rundir.state is not None:
        saved = rundir.state
        if (saved.get("units") != unit_ids
                or sorted(saved.get("data_files", {}).values()) != sorted(ctx.data_files.values())):
            raise ConfigError(f"--resume {rundir.staging}: the data or the plan changed since the run started "
                              "(data files' SHA-256 or planned units differ); start a new run instead")
        ctx.started = pd.Timestamp(saved["started"])
        rundir.open()
        return True
    rundir.open({"fleet_version": __version__, "command": redacted(ctx.argv if ctx.argv is not None else sys.argv),
                 "cwd": str(Path.cwd()), "started": ctx.started.isoformat(), "config": ctx.config.to_dict(),
                 "units": unit_ids, "data_files": ctx.data_files, "in_memory_data": in_memory})
    where = "Writing to" if rundir.remote else "Staging in"
    ctx.echo(f"{where} {rundir.staging} (if interrupted: fleet train --resume {rundir.staging})")
    return False


@dataclass
class _Progress:
    """Units trained and failed by this attempt, and how many results it saved."""

    done: list[UnitResult] = field(default_factory=list)
    failures: list[UnitFailure] = field(default_factory=list)
    saved: int = 0


def _train(ctx: RunContext, backend, todo: list, progress: _Progress, stream: OutputStream | None = None) -> None:
    """Run ``todo`` on the backend; each result is saved by the worker that trained it and printed as it comes.

    ``stream``: the run's output tasks, which the backend may start as the units holding their assets finish."""
    rundir, echo = ctx.rundir, ctx.echo
    # a host names where a unit ran only when there is more than one machine to tell apart
    hosts = getattr(backend, "nodes", lambda: 1)() > 1

    def on_result(r: UnitResult | UnitFailure) -> None:
        n = len(progress.done) + len(progress.failures) + 1
        if isinstance(r, UnitFailure):
            progress.failures.append(r)
            echo(f"  [{n:>3}/{len(todo)}] {r.unit_id:<24} FAILED: {r.error}")
            return
        progress.saved += 1
        progress.done.append(r)
        where = f"  {r.host}" + (f" node {r.node_id[:8]}" if r.node_id else "") if hosts else ""
        echo(f"  [{n:>3}/{len(todo)}] {r.unit_id:<24} {len(r.assets):>2} asset(s) "
             f"train {r.n_train:>7,} test {r.n_test:>6,} rows  {r.wall_seconds:6.1f} s{where}")

    if rundir.remote:
        echo(f"  each worker writes its unit's result to {rundir.describe('units')}/")
    t_train, t_train_unix = time.perf_counter(), time.time()
    if todo:
        backend.run(todo, ctx.bars, on_result, sink=rundir.unit_sink(), follow=stream)
    ctx.training = {"trained": [r.unit_id for r in progress.done], "loaded": [],
                    "backend_seconds": round(time.perf_counter() - t_train, 3), "backend_started_unix": t_train_unix}


def _raise_failed(ctx: RunContext, failures: list[UnitFailure]) -> None:
    """Write ``failures.json`` and raise.

    Raises:
        UnitsFailedError: always; names the first failures and the resume command.
    """
    rundir = ctx.rundir
    rundir.layout.write_json(FAILURES, [f.to_dict() for f in failures])
    nothing = ("the run has no manifest.json, so it is not complete" if rundir.remote
               else f"nothing was written to {rundir.final}")
    shown = "; ".join(f"{f.unit_id} ({f.error})" for f in failures[:3])
    more = f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
    raise UnitsFailedError(
        f"{len(failures)} of {len(ctx.units)} units failed: {shown}{more} (all in "
        f"{rundir.describe(FAILURES)}). The other units' results are kept in {rundir.staging}; "
        f"{nothing}. Fix the cause and run: fleet train --resume {rundir.staging}"
        " (a resume keeps the run's configuration: for an input error such as too little data, start a "
        "new run instead)", failures=failures, staging=rundir.staging)


@dataclass
class SeedsSummary:
    """What ``fleet train --seeds N`` produced: one run per seed and the mean / std table."""

    out: Path | str
    runs: list[RunSummary]
    table: pd.DataFrame
    wall_seconds: float

    def to_dict(self) -> dict:
        """A JSON-ready summary (``fleet train --seeds N --json``): the runs and the mean / std table."""
        return {"out": str(self.out), "runs": [r.to_dict() for r in self.runs], "seeds": records(self.table),
                "wall_seconds": round(self.wall_seconds, 3)}


def run_seeds(config: FleetConfig, *, echo: Echo = print, argv: list[str] | None = None) -> SeedsSummary:
    """Run the fleet ``config.evaluation.seeds`` times, with seeds seed .. seed + N - 1.

    Layout: ``--out`` holds one complete run directory per seed (``seed<k>/``) and
    ``results_seeds.csv`` (:func:`seeds_table`). The whole tree is staged and renamed into
    place at the end, so a failure leaves nothing at ``--out``. On an object store (URI ``--out``) the tree is
    written in place and ``results_seeds.csv``, written last, marks it complete.

    Raises:
        FleetError: as :func:`run_fleet`, for any of the runs.
    """
    t0 = time.perf_counter()
    n = config.evaluation.seeds
    parent = RunDirectory(config.out or default_out())
    parent.open()
    try:
        runs = []
        for k in range(n):
            seed = config.seed + k
            echo(f"=== run {k + 1}/{n}: seed {seed} ===")
            inside = parent.final if parent.remote else parent.staging
            sub = config.model_copy(update={"seed": seed, "out": join_location(inside, f"seed{seed}")}, deep=True)
            runs.append(run_fleet(sub, echo=echo, argv=argv))
        table = seeds_table(runs)
        parent.layout.write_csv(RESULTS_SEEDS, table)
        out = parent.commit()
    except BaseException:
        parent.abort()
        raise
    if not parent.remote:
        for r in runs:
            r.out = out / r.out.name
    return SeedsSummary(out=out, runs=runs, table=table, wall_seconds=time.perf_counter() - t0)
