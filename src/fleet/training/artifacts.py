"""From every unit's result to the finished run directory: tables, predictions, models, manifest.

The file names and formats are :mod:`fleet.store.layout`'s; the tables are
:mod:`fleet.evaluation.tables`'. ``manifest.json`` is written last (on an object store its
presence marks the run complete), then the staging area is committed.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import dataclass
from importlib import metadata

import pandas as pd

from fleet import __version__
from fleet.evaluation.costaware import policy_comparison
from fleet.evaluation.policy import apply_policy, forced_entry_report
from fleet.evaluation.tables import expert_tables, fold_table, holdout_table, results_tables
from fleet.store import display_location, is_uri
from fleet.store import layout as L
from fleet.training.context import RunContext, RunSummary
from fleet.training.holdout import predict_holdout
from fleet.training.unit import UnitResult

#: Columns of predictions/<SYM>.parquet before the per-expert p_<e>, w_<e> columns.
PREDICTION_COLUMNS = ["timestamp", "fold", "p_up", "signal", "forward_return", "y", "forced_entry", "return_1",
                      "bar_number", "cluster"]


@dataclass
class Evaluated:
    """The out-of-sample rows after the policy and every table computed from them."""

    predictions: pd.DataFrame
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


def write_run(ctx: RunContext, results: list[UnitResult]) -> RunSummary:
    """Tables, predictions, models and manifest from every unit's result; commits the run into place."""
    results.sort(key=lambda r: (r.fold, r.group))
    fell_back = [f"{r.unit_id} -> {r.gate['fallback']}" for r in results if r.gate and r.gate.get("fallback")]
    if fell_back:
        ctx.note(f"gate guard: {len(fell_back)} of {len(results)} units answer with one expert (the cross-fitted "
                 f"gate lost to their best single expert on the inner out-of-fold rows, or the window was too "
                 f"short for any inner fold; manifest units[].gate says which): {', '.join(fell_back)}")
    ev = evaluate(ctx, results)
    write_files(ctx, results, ev)
    ctx.rundir.layout.write_manifest(manifest(ctx, results, ev))  # last: marks the run complete
    out = ctx.rundir.commit()
    report = _report(ctx, out)
    final = ctx.markets[-1]
    return RunSummary(out=out, report=report, per_asset=ev.per_asset, per_cluster=ev.per_cluster,
                      per_fold=ev.per_fold, forced_entry=ev.forced, bars_per_year=ev.bars_per_year,
                      final_clusters=final.clusters, explained_variance=final.explained_variance,
                      wall_seconds=time.perf_counter() - ctx.t0, units=len(ctx.units), backend=ctx.backend_desc,
                      notes=ctx.notes, config=ctx.config, trained=len(ctx.training["trained"]),
                      loaded=len(ctx.training["loaded"]), train_seconds=ctx.training["backend_seconds"],
                      expert_auc=ev.expert_auc, expert_weights=ev.expert_weights, holdout=ev.holdout)


def _bars_per_year(ctx: RunContext) -> float:
    if ctx.config.evaluation.bars_per_year is not None:
        bars_per_year = float(ctx.config.evaluation.bars_per_year)
        ctx.echo(f"Annualising with {bars_per_year:g} bars per year (--bars-per-year)")
    else:
        bars_per_year = float(ctx.panel.bars_per_year())
        ctx.echo(f"Annualising with {bars_per_year:g} bars per year (inferred from the data; override with "
                 "--bars-per-year)")
    return bars_per_year


def evaluate(ctx: RunContext, results: list[UnitResult]) -> Evaluated:
    """Apply the trading policy to every out-of-sample row and compute the results tables."""
    config, final = ctx.config, ctx.markets[-1]
    # The policy needs whole UTC days per asset, which may straddle units and folds: applied here.
    policy = dict(threshold=config.policy.threshold, forced_entry=config.policy.forced_entry,
                  cutoff=config.policy.forced_entry_cutoff, bar=ctx.panel.bar)
    predictions = pd.concat([r.predictions for r in results], ignore_index=True)
    if "position" not in predictions:  # else each unit's own policy set signal and position (costaware)
        predictions = apply_policy(predictions, **policy)
    bars_per_year = _bars_per_year(ctx)
    per_asset, per_cluster = results_tables(predictions, final.clusters.cluster_map,
                                            final.clusters.dominant_cluster, config, bars_per_year=bars_per_year)
    expert_auc, expert_weights = expert_tables(predictions, final.clusters.cluster_map,
                                               config.model.active_experts())
    ev = Evaluated(predictions=predictions, bars_per_year=bars_per_year, per_asset=per_asset, per_cluster=per_cluster,
                   per_fold=fold_table(predictions, config, bars_per_year=bars_per_year),
                   forced=forced_entry_report(predictions) if config.policy.forced_entry else None,
                   expert_auc=expert_auc, expert_weights=expert_weights)
    if "position" in predictions:  # natural (fixed threshold) vs each unit's own policy, same p_up
        ev.policy_comparison = policy_comparison(
            predictions, threshold=config.policy.threshold, cost_bps=config.policy.cost_bps,
            horizon=config.labels.horizon, sides=config.policy.sides.value, bars_per_year=bars_per_year,
            reps=config.evaluation.bootstrap_reps, seed=config.seed)
    if config.validation.holdout_days > 0:
        _evaluate_holdout(ctx, results, ev, policy)
    if ev.forced is not None and ctx.panel.bar >= pd.Timedelta(days=1):
        ctx.note(f"forced entry on {ctx.panel.bar} bars: every day without a natural signal is forced, "
                 "so the policy is close to always long")
    return ev


def _evaluate_holdout(ctx: RunContext, results: list[UnitResult], ev: Evaluated, policy: dict) -> None:
    config = ctx.config
    rows = predict_holdout(results, ctx.bars, ctx.markets[-1], timeline_end=ctx.timeline_end, config=config)
    ev.holdout_rows = rows
    if len(rows):
        if "position" not in rows:  # else the units' stored policies set signal and position
            ev.holdout_rows = apply_policy(rows, **policy)
        ev.holdout = holdout_table(ev.holdout_rows, config, bars_per_year=ev.bars_per_year)
        ctx.echo(f"Hold-out: {len(ev.holdout_rows)} rows after {ctx.timeline_end:%Y-%m-%d %H:%M} predicted by the last "
                 f"fold's models -> {L.RESULTS_HOLDOUT}, {L.HOLDOUT_PREDICTIONS_DIR}/")
    else:
        ctx.note(f"the hold-out ({config.validation.holdout_days:g} days) has no bar with a complete "
                 f"{config.labels.horizon}-bar label: no hold-out results")


def write_files(ctx: RunContext, results: list[UnitResult], ev: Evaluated) -> None:
    """Everything but the manifest, through the run's :class:`~fleet.store.layout.RunLayout`."""
    layout, config, final = ctx.rundir.layout, ctx.config, ctx.markets[-1]
    layout.write_tables({L.RESULTS_PER_ASSET: ev.per_asset, L.RESULTS_PER_CLUSTER: ev.per_cluster,
                         L.RESULTS_PER_FOLD: ev.per_fold, L.FORCED_ENTRY: ev.forced, L.RESULTS_HOLDOUT: ev.holdout,
                         L.POLICY_COMPARISON: ev.policy_comparison,
                         L.EXPERT_AUC: ev.expert_auc, L.EXPERT_WEIGHTS: ev.expert_weights})
    experts = config.model.active_experts()
    # With several experts the files also hold each expert's P(up) and gate weight per row.
    expert_cols = [f"{k}_{e}" for e in experts for k in ("p", "w")] if len(experts) > 1 else []
    policy_cols = [c for c in ("position", "meta_keep") if c in ev.predictions]  # set by the units' policies
    layout.write_predictions(ev.predictions, [*PREDICTION_COLUMNS, *expert_cols, *policy_cols])
    if ev.holdout is not None:
        held = [c for c in ("position", "meta_keep") if c in ev.holdout_rows]
        layout.write_predictions(ev.holdout_rows, [*PREDICTION_COLUMNS, *expert_cols, *held], holdout=True)
    layout.write_json(L.CLUSTERS, {
        **final.clusters.to_dict(),
        "fitted_on": f"training window of fold {final.fold.index} (timestamps < {final.fold.train_end.isoformat()})",
        "factor_method": config.market.factor_method.value,
        "factor_explained_variance": final.explained_variance,
        "folds": [{"fold": fm.fold.index, "train_end": fm.fold.train_end.isoformat(),
                   "cluster_map": fm.clusters.cluster_map, "dominant_cluster": fm.clusters.dominant_cluster,
                   "factor_explained_variance": fm.explained_variance} for fm in ctx.markets],
    })
    layout.write_market_factor(final.factor)
    layout.write_registry(ctx.registry.to_dict())
    layout.write_models({r.group: r.model for r in results if r.model is not None})


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
