"""From every unit's result to the finished run directory: tables, predictions, models, manifest.

The file names and formats are :mod:`fleet.store.layout`'s; the tables are
:mod:`fleet.evaluation.tables`'. ``manifest.json`` is written last (on an object store its
presence marks the run complete), then the staging area is committed.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass, replace
from importlib import metadata

import pandas as pd

from fleet._version import __version__
from fleet.evaluation.costaware import order_policy_rows
from fleet.evaluation.tables import BASE_RATE_SHOWN, EXPERT_LEVELS, fold_order, holdout_table
from fleet.models.artifact import load_unit_model
from fleet.store import display_location, is_uri
from fleet.store import layout as L
from fleet.store.layout import is_refit_unit, model_file
from fleet.training.context import RunContext, RunSummary
from fleet.training.holdout import predict_holdout
from fleet.training.output_stream import OutputStream, run_follow
from fleet.training.outputs import OutputPlan, apply_run_policy, prediction_columns
from fleet.training.unit import UnitResult


@dataclass
class Evaluated:
    """Every table of the run (the prediction rows stay on storage, written by the output tasks)."""

    bars_per_year: float
    per_asset: pd.DataFrame
    per_cluster: pd.DataFrame
    per_fold: pd.DataFrame
    forced: pd.DataFrame | None
    expert_auc: pd.DataFrame
    expert_weights: pd.DataFrame
    holdout_rows: pd.DataFrame | None = None
    holdout: pd.DataFrame | None = None
    policy_comparison: pd.DataFrame | None = None
    book: pd.DataFrame | None = None
    book_curves: pd.DataFrame | None = None


def redacted(command: list[str]) -> list[str]:
    """The command line as recorded: URIs without ``user:secret@`` credentials."""
    return [display_location(a) if is_uri(a) else a for a in command]


def versions() -> dict[str, str]:
    """Versions of Python, fleet and the libraries that shape results (recorded in the manifest)."""
    out = {"fleet": __version__, "python": platform.python_version()}
    for pkg in ("numpy", "pandas", "scikit-learn", "scipy", "statsmodels", "pyarrow", "ray", "torch", "pydantic",
                "lightgbm"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _gate_warnings(ctx: RunContext, results: list[UnitResult]) -> None:
    """One console line for the units whose gate had no inner out-of-fold row, one for the units the guard sent
    to their best single expert (counts; the units are in the manifest)."""
    gated = [r for r in results if r.gate]
    no_rows = [r for r in gated if not r.gate.get("oof_rows")]
    if no_rows:
        ctx.note(f"warning: {len(no_rows)} of {len(gated)} units had no inner out-of-fold row (a window too short "
                 "for an inner fold): their gate could not be fitted and keeps its start (equal weights, or the first "
                 "expert); manifest units[].gate.oof_rows")
    guarded = [r for r in gated if r.gate.get("fallback") and r.gate.get("oof_rows")]
    if guarded:
        ctx.note(f"gate guard: {len(guarded)} of {len(gated)} units answer with their best single expert (the "
                 "cross-fitted gate lost to it on the inner out-of-fold rows); manifest units[].gate.fallback")


def write_run(ctx: RunContext, results: list[UnitResult], backend, stream: OutputStream | None = None) -> RunSummary:
    """Tables, predictions, models and manifest from every unit's saved result; commits the run into place.

    ``results`` are what the workers kept of each unit (:meth:`fleet.store.UnitStore.save`: no prediction rows,
    no model); the prediction files and tables are built by ``backend`` tasks (:mod:`fleet.training.outputs`).
    Refit units' results (``--refit``) are in no table: they add ``models/refit/`` and ``manifest.json["refit"]``.
    """
    refit = [r for r in results if is_refit_unit(r.unit_id)]  # served models only: in no table
    results = sorted((r for r in results if not is_refit_unit(r.unit_id)), key=lambda r: (r.fold, r.group))
    _gate_warnings(ctx, results)
    ev = evaluate(ctx, results, backend, stream)
    write_files(ctx, results, ev)
    record = manifest(ctx, results, ev)
    if ctx.refit_market is not None:
        record["refit"] = write_refit(ctx, refit)
    ctx.rundir.layout.write_manifest(record)  # last: marks the run complete
    out = ctx.rundir.commit()
    report = _report(ctx, out)
    final = ctx.markets[-1]
    return RunSummary(out=out, report=report, per_asset=ev.per_asset, per_cluster=ev.per_cluster,
                      per_fold=ev.per_fold, forced_entry=ev.forced, bars_per_year=ev.bars_per_year,
                      final_clusters=final.clusters, explained_variance=final.explained_variance,
                      wall_seconds=time.perf_counter() - ctx.t0, units=len(ctx.units), backend=ctx.backend_desc,
                      notes=ctx.notes, config=ctx.config, trained=len(ctx.training["trained"]),
                      loaded=len(ctx.training["loaded"]), train_seconds=ctx.training["backend_seconds"],
                      expert_auc=ev.expert_auc, expert_weights=ev.expert_weights, holdout=ev.holdout,
                      book=ev.book)


def _bars_per_year(ctx: RunContext) -> float:
    if ctx.config.evaluation.bars_per_year is not None:
        bars_per_year = float(ctx.config.evaluation.bars_per_year)
        ctx.echo(f"Annualising with {bars_per_year:g} bars per year (--bars-per-year)")
    else:
        bars_per_year = float(ctx.panel.bars_per_year())
        ctx.echo(f"Annualising with {bars_per_year:g} bars per year (inferred from the data; override with "
                 "--bars-per-year)")
    return bars_per_year


def output_stream(ctx: RunContext) -> OutputStream:
    """The run's :class:`~fleet.training.output_stream.OutputStream` (built once the markets are fitted: it needs
    the final fold's clusters), after saying how returns are annualised."""
    return OutputStream(output_plan(ctx, _bars_per_year(ctx)), ctx.units)


def output_plan(ctx: RunContext, bars_per_year: float) -> OutputPlan:
    """The :class:`~fleet.training.outputs.OutputPlan` of the run's output tasks (its ``fallback`` is filled in by
    the :class:`~fleet.training.output_stream.OutputStream` from the units' results)."""
    final = ctx.markets[-1]
    return OutputPlan(storage=ctx.rundir.storage, config=ctx.config, bars_per_year=bars_per_year, bar=ctx.panel.bar,
                      cluster_of=dict(final.clusters.cluster_map), dominant=final.clusters.dominant_cluster,
                      fallback={})


def _concat(pieces: list[dict], name: str, by: list[str] | None = None) -> pd.DataFrame | None:
    frames = [p[name] for p in pieces if p.get(name) is not None]
    if not frames:
        return None
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(by, kind="stable").reset_index(drop=True) if by else out


def evaluate(ctx: RunContext, results: list[UnitResult], backend, stream: OutputStream | None = None) -> Evaluated:
    """The run's policy on every out-of-sample row, its prediction files and every results table, by two stages
    of ``backend`` tasks (:mod:`fleet.training.outputs`); the hold-out here.

    ``stream``: the run's :class:`~fleet.training.output_stream.OutputStream`, whose asset batches the backend may
    have run while the units trained; what it has not run yet runs here (None: a new stream, all of it here).
    """
    config = ctx.config
    stream = stream if stream is not None else output_stream(ctx)
    bars_per_year = stream.plan.bars_per_year
    for r in results:  # every result, also those loaded on --resume (a result seen already is ignored)
        stream.unit_done(r)
    ran = len(stream.records)
    while tasks := stream.flush():
        for task, out in zip(tasks, backend.map(run_follow, [{"task": t} for t in tasks], {})):
            stream.collect(task, out)
    ctx.run_tasks += stream.records
    plan, symbols, assets, pooled = stream.plan, stream.symbols(), stream.asset_values, stream.pooled_values
    where = (f"; {ran} on the step actors, {stream.overlapped} of them while units trained" if ran else "")
    since = time.perf_counter() - (stream.units_done_at or time.perf_counter())
    ctx.echo(f"Tables and predictions/ of {len(symbols)} assets: {len(assets)} asset batches and {len(pooled)} "
             f"pooled groups as backend tasks{where}; done {since:.1f} s after the last unit")
    base_rate = max([a["base_rate_max"] for a in assets], default=0.0) > BASE_RATE_SHOWN
    expert_auc, expert_weights = (
        pd.concat([p[name] for p in pooled if name in p and p[name] is not None]
                  + [a[name] for a in assets], ignore_index=True) for name in ("expert_auc", "expert_weights"))
    expert_auc = _expert_order(expert_auc)
    expert_weights = _expert_order(expert_weights)
    if not base_rate and len(expert_weights):
        expert_weights = expert_weights[expert_weights["expert"] != "base_rate"].reset_index(drop=True)
    policy_rows = _concat([*pooled, *assets], "policy")
    book = _concat(pooled, "book")
    ev = Evaluated(bars_per_year=bars_per_year, per_asset=_concat(assets, "per_asset", ["symbol"]),
                   per_cluster=_concat(pooled, "per_cluster", ["cluster"]),
                   per_fold=with_cs_ic(fold_order(_concat(pooled, "fold_pooled"), _concat(assets, "fold_assets")),
                                       book),
                   book=book, book_curves=_concat(pooled, "book_curves"),
                   forced=_concat(assets, "forced", ["symbol"]) if config.policy.forced_entry else None,
                   expert_auc=expert_auc, expert_weights=expert_weights,
                   policy_comparison=None if policy_rows is None else order_policy_rows(policy_rows))
    if config.validation.holdout_days > 0:
        _evaluate_holdout(ctx, results, ev, plan)
    if ev.forced is not None and ctx.panel.bar >= pd.Timedelta(days=1):
        ctx.note(f"forced entry on {ctx.panel.bar} bars: every day without a natural signal is forced, "
                 "so the policy is close to always long")
    return ev


def with_cs_ic(per_fold: pd.DataFrame, book: pd.DataFrame | None) -> pd.DataFrame:
    """The per-fold table with the cross-sectional IC columns of ``results_book.csv``'s score rows on its ALL rows
    (NaN on the asset rows: one asset has no cross-section), after the pooled ``ic`` / ``rank_ic``."""
    from fleet.evaluation.fleet_book import CS_IC_COLUMNS

    if book is None:
        return per_fold
    score = book[(book["book"] == "score") & (book["fold"] != "all")]
    cs = score.assign(fold=score["fold"].astype(int), symbol="ALL")[["fold", "symbol", *CS_IC_COLUMNS]]
    out = per_fold.merge(cs, on=["fold", "symbol"], how="left")
    cols = list(per_fold.columns)
    at = cols.index("icir") + 1
    return out[[*cols[:at], *CS_IC_COLUMNS, *cols[at:]]]


def _expert_order(table: pd.DataFrame) -> pd.DataFrame:
    """Expert table rows in :func:`~fleet.evaluation.tables.expert_tables`' order: fleet, clusters, assets (each
    sorted as there), experts in their order within a group."""
    if not len(table):
        return table
    level = table["level"].map({lv: i for i, lv in enumerate(EXPERT_LEVELS)})
    num = pd.to_numeric(table["name"], errors="coerce")
    key = pd.DataFrame({"level": level, "num": num.where(table["level"] == "cluster"),
                        "name": table["name"].where(table["level"] != "cluster", "")})
    order = key.sort_values(["level", "num", "name"], kind="stable").index
    return table.loc[order].reset_index(drop=True)


def _evaluate_holdout(ctx: RunContext, results: list[UnitResult], ev: Evaluated, plan: OutputPlan) -> None:
    config = ctx.config
    layout = ctx.rundir.layout
    with_models = [replace(r, model=load_unit_model(layout.storage.read_bytes(model_file(r.group)),
                                                    source=layout.describe(model_file(r.group))))
                   for r in results if r.model_info]
    rows = predict_holdout(with_models, ctx.bars, ctx.markets[-1], timeline_end=ctx.timeline_end, config=config)
    ev.holdout_rows = rows
    if len(rows):
        ev.holdout_rows = apply_run_policy(rows, plan)  # unless the units' stored policies set positions
        ev.holdout = holdout_table(ev.holdout_rows, config, bars_per_year=ev.bars_per_year)
        ctx.echo(f"Hold-out: {len(ev.holdout_rows)} rows after {ctx.timeline_end:%Y-%m-%d %H:%M} predicted by the last "
                 f"fold's models -> {L.RESULTS_HOLDOUT}, {L.HOLDOUT_PREDICTIONS_DIR}/")
    else:
        ctx.note(f"the hold-out ({config.validation.holdout_days:g} days) has no bar with a complete "
                 f"{config.labels.horizon}-bar label: no hold-out results")


def write_files(ctx: RunContext, results: list[UnitResult], ev: Evaluated) -> None:
    """Everything but the manifest and the prediction files (written by the output tasks), through the run's
    :class:`~fleet.store.layout.RunLayout`."""
    layout, config, final = ctx.rundir.layout, ctx.config, ctx.markets[-1]
    layout.write_tables({L.RESULTS_PER_ASSET: ev.per_asset, L.RESULTS_PER_CLUSTER: ev.per_cluster,
                         L.RESULTS_PER_FOLD: ev.per_fold, L.FORCED_ENTRY: ev.forced, L.RESULTS_HOLDOUT: ev.holdout,
                         L.POLICY_COMPARISON: ev.policy_comparison,
                         L.EXPERT_AUC: ev.expert_auc, L.EXPERT_WEIGHTS: ev.expert_weights, L.RESULTS_BOOK: ev.book})
    if ev.book_curves is not None:
        layout.write_parquet(L.BOOK_CURVES, ev.book_curves)
    if ev.holdout is not None:
        layout.write_predictions(ev.holdout_rows, prediction_columns(ev.holdout_rows, config.model.active_experts()),
                                 holdout=True)
    layout.write_json(L.CLUSTERS, {
        **final.clusters.to_dict(lazy_correlation=True),  # n² correlations, made row by row as written
        "fitted_on": f"training window of fold {final.fold.index} (timestamps < {final.fold.train_end.isoformat()})",
        "factor_method": config.market.factor_method.value,
        "factor_explained_variance": final.explained_variance,
        "folds": [{"fold": fm.fold.index, "train_end": fm.fold.train_end.isoformat(),
                   "cluster_map": fm.clusters.cluster_map, "dominant_cluster": fm.clusters.dominant_cluster,
                   "factor_explained_variance": fm.explained_variance} for fm in ctx.markets],
    })
    layout.write_market_factor(final.factor)
    layout.write_registry(ctx.registry.to_dict())
    layout.write_json(L.MODELS_INDEX, {r.group: r.model_info for r in results if r.model_info})


def write_refit(ctx: RunContext, refit: list[UnitResult]) -> dict:
    """The refit's ``models/refit/index.json`` and market factor (its models were saved by the workers); returns
    ``manifest.json["refit"]`` (:func:`fleet.training.refit.refit_record`)."""
    from fleet.training.refit import refit_record

    layout = ctx.rundir.layout
    refit = sorted(refit, key=lambda r: r.group)
    layout.write_market_factor(ctx.refit_market.factor, L.REFIT_FACTOR)
    layout.write_json(L.REFIT_INDEX, {r.group: r.model_info for r in refit if r.model_info})
    last = max(pd.Timestamp(r.model_info["trained_until"]) for r in refit)
    ctx.echo(f"Refit: {len(refit)} unit(s) trained on {ctx.refit_market.fold.train_start:%Y-%m-%d} -> "
             f"{last:%Y-%m-%d %H:%M} -> {L.REFIT_DIR}/ (served instead of the last fold's models)")
    return refit_record(ctx.refit_market, refit)


def manifest(ctx: RunContext, results: list[UnitResult], ev: Evaluated) -> dict:
    """The manifest: configuration, data, folds, versions, per-unit timings and notes."""
    panel, config, training = ctx.panel, ctx.config, ctx.training
    command = redacted(ctx.argv if ctx.argv is not None else sys.argv)
    return {
        "fleet_version": __version__,
        "out": ctx.rundir.shown,
        "command": ctx.rundir.state.get("command", command),
        "resumed_with": command if training["loaded"] else None,
        "started": ctx.started.isoformat(),
        "finished": pd.Timestamp.now(tz="UTC").isoformat(),
        "wall_seconds": round(time.perf_counter() - ctx.t0, 3),
        "backend": ctx.backend_desc,
        "config": config.to_dict(),
        "versions": versions(),
        "data": {"source": ctx.source, "symbols": panel.symbols, "bar": str(panel.bar), "columns": list(panel.columns),
                 "skipped_features": sorted({f for r in results for f in r.skipped_features}),
                 "first": {s: f.index[0].isoformat() for s, f in panel.frames.items()},
                 "last": {s: f.index[-1].isoformat() for s, f in panel.frames.items()},
                 "files": ctx.data_files},
        "registry": {"path": config.registry, "version": ctx.registry.version, "symbols": len(ctx.registry)},
        "folds": [f.to_dict() for f in ctx.folds],
        "holdout": {"days": config.validation.holdout_days, "after": ctx.timeline_end.isoformat(),
                    "rows": 0 if ev.holdout_rows is None else len(ev.holdout_rows)},
        "bars_per_year": ev.bars_per_year,
        "ffd_d": {r.unit_id: r.d_by_asset for r in results},
        "units": [r.timing() for r in results],
        # One record per step of every unit's task graph (fleet.training.graph.task_record).
        "tasks": [t for r in results for t in (getattr(r, "tasks", None) or [])],
        # The run-level backend tasks (each fold's market fit, the output batches), records of the same shape.
        "run_tasks": ctx.run_tasks,
        "training": training,
        "notes": ctx.notes,
    }


def _report(ctx: RunContext, out):
    """The HTML report when asked for (after the commit: a plotting failure must not cost the trained run)."""
    if not ctx.config.evaluation.report:
        return None
    if ctx.rundir.remote:
        ctx.echo("note: no HTML report for a run on an object store; download it (e.g. `aws s3 sync`) and run "
                 "`fleet report` on the copy")
        return None
    from fleet.evaluation.report import write_report

    try:
        report = write_report(out)
        ctx.echo(f"Report: {report}")
        return report
    except Exception as err:  # noqa: BLE001 -- reported, the run itself is complete
        ctx.echo(f"warning: the report could not be written ({type(err).__name__}: {err}); "
                 f"retry with `fleet report {out}`")
        return None
