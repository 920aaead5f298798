"""The run's prediction files and results tables, built by backend tasks from the units' saved rows.

Every unit's worker saved its out-of-sample rows per asset (``units/<unit id>/<symbol>.parquet``,
:meth:`fleet.store.UnitStore.save`). The driver never reads them: two stages of tasks do, handed out by
:class:`fleet.training.output_stream.OutputStream` (on Ray, run by the step actors as the units finish; what is
left, by :meth:`Backend.map`), and the driver gathers small tables.

1. :func:`asset_outputs`, one task per batch of assets: an asset's rows of every fold, the run's trading policy
   (whole UTC days per asset, so it spans units and folds), ``predictions/<symbol>.parquet``, and every table
   row that depends on one asset only: the per-asset table, the (fold, asset) rows, the expert telemetry of the
   asset, the forced-entry report and the per-asset policy comparison.
2. :func:`pooled_outputs`, one task per cluster, per fold and one for the fleet: the rows that pool assets, read
   back from ``predictions/`` with the filter pushed down to the parquet reader (pyarrow dataset).

:func:`fleet.training.artifacts.evaluate` puts the pieces together; the tables equal those computed from all
rows at once (:func:`fleet.evaluation.tables.results_tables`, ``fold_table``, ``expert_tables``), because every
figure of a group depends on that group's rows only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from fleet.config import FleetConfig
from fleet.store import layout as L
from fleet.store.layout import RunLayout
from fleet.store.location import Storage

#: Columns of predictions/<SYM>.parquet before the per-expert p_<e>, w_<e> columns.
PREDICTION_COLUMNS = ["timestamp", "fold", "p_up", "signal", "forward_return", "y", "forced_entry", "return_1",
                      "bar_number", "cluster"]
#: At most this many asset batches per run (enough to keep every worker of a large cluster busy).
MAX_ASSET_BATCHES = 64


@dataclass(frozen=True)
class OutputPlan:
    """What every output task needs, put once in the object store.

    Attributes:
        storage: the run's staging area. config: the run's configuration.
        bars_per_year: for annualising. bar: the bar length (the policy's UTC days).
        cluster_of: symbol -> cluster of the final fold (the per-asset table's column). dominant: its id.
        fallback: (fold, symbol) -> 1 when the unit that predicted those rows answered with one expert (its guard).
    """

    storage: Storage
    config: FleetConfig
    bars_per_year: float
    bar: pd.Timedelta
    cluster_of: dict[str, int]
    dominant: int
    fallback: dict[tuple[int, str], int]

    def summary_kw(self) -> dict:
        return {"config": self.config, "bars_per_year": self.bars_per_year}

    def experts(self) -> list[str]:
        return self.config.model.active_experts()


def apply_run_policy(rows: pd.DataFrame, plan: OutputPlan) -> pd.DataFrame:
    """The run's policy (threshold, forced entry over whole UTC days) on one asset's or the hold-out's rows; rows
    whose units set positions (their own policy) are returned as they are."""
    if "position" in rows:  # each unit's own policy set signal and position (costaware)
        return rows
    from fleet.evaluation.policy import apply_policy

    p = plan.config.policy
    return apply_policy(rows, threshold=p.threshold, forced_entry=p.forced_entry, cutoff=p.forced_entry_cutoff,
                        bar=plan.bar)


def prediction_columns(rows: pd.DataFrame, experts: list[str]) -> list[str]:
    """The columns of a prediction file: :data:`PREDICTION_COLUMNS`, each expert's P(up) and gate weight (with
    several experts) and the policy's ``position`` / ``meta_keep`` where the units' policies set them."""
    expert_cols = [f"{k}_{e}" for e in experts for k in ("p", "w")] if len(experts) > 1 else []
    return [*PREDICTION_COLUMNS, *expert_cols, *[c for c in ("position", "meta_keep") if c in rows]]


def asset_outputs(plan: OutputPlan, symbols: list[str], parts: dict[str, list[str]]) -> dict:
    """Stage 1 for a batch of assets: their prediction files and every table row of one asset.

    Args:
        plan: the run's :class:`OutputPlan`. symbols: the batch. parts: symbol -> its unit files, in fold order.

    Returns:
        dict of frames: ``per_asset``, ``fold_assets``, ``expert_auc`` / ``expert_weights`` (asset level),
        ``forced`` (None without forced entry), ``policy`` (None unless the units set positions) and
        ``base_rate_max`` (the largest base-rate share of any row, float), ``clusters`` and ``folds`` (rows per
        cluster id, each row in its own fold's clustering, and per fold).
    """
    from fleet.evaluation.costaware import policy_comparison
    from fleet.evaluation.policy import forced_entry_report
    from fleet.evaluation.tables import asset_table, base_rate_share, expert_tables, fold_assets

    layout, config = RunLayout(plan.storage), plan.config
    batch = []
    for symbol in symbols:
        rows = pd.concat([layout.read_parquet(f) for f in parts[symbol]], ignore_index=True)
        rows = apply_run_policy(rows, plan)
        layout.write_parquet(L.prediction_file(symbol), rows[prediction_columns(rows, plan.experts())]
                             .sort_values("timestamp").reset_index(drop=True))
        batch.append(rows)
    preds = pd.concat(batch, ignore_index=True)
    experts = plan.experts()
    auc, weights = expert_tables(preds, plan.cluster_of, experts, levels=("asset",), base_rate=True)
    w_cols = [f"w_{e}" for e in experts]
    base = (float(base_rate_share(preds[w_cols]).max())
            if len(experts) > 1 and set(w_cols) <= set(preds.columns) and len(preds) else 0.0)
    policy = None
    if "position" in preds:
        p = config.policy
        policy = policy_comparison(preds, threshold=p.threshold, cost_bps=p.cost_bps, horizon=config.labels.horizon,
                                   sides=p.sides.value, bars_per_year=plan.bars_per_year,
                                   reps=config.evaluation.bootstrap_reps, seed=config.seed, levels=("asset",))
    # asset by asset: an asset's results row and its exposure-matched benchmark draw the same bootstrap, computed
    # once while it is the last one made (uncertainty.stationary_counts)
    per_asset = pd.concat([_with_timing(asset_table(g, plan.cluster_of, **plan.summary_kw()), g, plan)
                           for _, g in preds.groupby("symbol", sort=True)], ignore_index=True)
    return {"per_asset": per_asset,
            "fold_assets": fold_assets(preds, **plan.summary_kw()), "expert_auc": auc, "expert_weights": weights,
            "forced": forced_entry_report(preds) if config.policy.forced_entry else None, "policy": policy,
            "base_rate_max": base,
            "clusters": {int(c): int(k) for c, k in preds.groupby("cluster").size().items()},
            "folds": {int(f): int(k) for f, k in preds.groupby("fold").size().items()}}


def _with_timing(per_asset: pd.DataFrame, preds: pd.DataFrame, plan: OutputPlan) -> pd.DataFrame:
    """The per-asset table with the exposure-matched benchmark beside the net Sharpe
    (:mod:`fleet.evaluation.exposure_matched`)."""
    from fleet.evaluation.exposure_matched import MATCHED_COLUMNS, exposure_matched

    config = plan.config
    matched = exposure_matched(preds, horizon=config.labels.horizon, cost_bps=config.policy.cost_bps,
                               bars_per_year=plan.bars_per_year, reps=config.evaluation.bootstrap_reps,
                               seed=config.seed)
    out = per_asset.merge(matched, on="symbol", how="left")
    cols = list(per_asset.columns)
    at = cols.index("sharpe_net") + 1
    return out[[*cols[:at], *MATCHED_COLUMNS, *cols[at:]]]


#: The columns of predictions/ the fleet books read.
BOOK_COLUMNS_READ = ["timestamp", "fold", "p_up", "forward_return", "return_1"]


def pooled_items(clusters: dict[int, int], folds: dict[int, int]) -> list[dict]:
    """``Backend.map`` items of stage 2: the fleet books (all assets per timestamp), one per cluster, one per fold
    (``{id: rows}``) and one for the fleet, the groups with most rows first (their bootstrap costs most, and a
    long task started last would run alone)."""
    sized = ([(rows, {"kind": "cluster", "key": int(c)}) for c, rows in clusters.items()]
             + [(rows, {"kind": "fold", "key": int(k)}) for k, rows in folds.items()])
    return ([{"kind": "book", "key": None}] + [item for _, item in sorted(sized, key=lambda x: -x[0])]
            + [{"kind": "fleet", "key": None}])


def pooled_outputs(plan: OutputPlan, symbols: list[str], kind: str, key) -> dict:
    """Stage 2: the rows that pool several assets, for one cluster (``kind="cluster"``, the rows labelled with
    that cluster in their own fold), one fold (``"fold"``: its ALL row) or the fleet (``"fleet"``: the fleet's
    expert telemetry and the ALL rows of the policy comparison) or the fleet books (``"book"``:
    :func:`fleet.evaluation.fleet_book.book_tables` from the columns it needs). Returns a dict of frames (None where
    not applicable)."""
    import pyarrow.dataset as ds

    from fleet.evaluation.costaware import policy_comparison
    from fleet.evaluation.tables import cluster_table, expert_tables, fold_pooled

    config, experts = plan.config, plan.experts()
    if kind == "book":
        from fleet.evaluation.fleet_book import book_tables

        e = config.evaluation
        table, curves = book_tables(read_predictions(plan, symbols, columns=BOOK_COLUMNS_READ),
                                    horizon=config.labels.horizon, cost_bps=config.policy.cost_bps,
                                    bars_per_year=plan.bars_per_year, k=e.book_k, n_drop=e.book_drop)
        return {"book": table, "book_curves": curves}
    where = ds.field(kind) == key if kind in ("cluster", "fold") else None
    rows = read_predictions(plan, symbols, where)
    if kind == "fold":
        return {"fold_pooled": fold_pooled(rows, **plan.summary_kw())}
    auc, weights = expert_tables(rows, plan.cluster_of, experts, levels=(kind,), base_rate=True)
    out = {"expert_auc": auc, "expert_weights": weights}
    if kind == "cluster":
        out["per_cluster"] = cluster_table(rows, plan.dominant, **plan.summary_kw())
    elif "position" in rows:
        p = config.policy
        out["policy"] = policy_comparison(rows, threshold=p.threshold, cost_bps=p.cost_bps,
                                          horizon=config.labels.horizon, sides=p.sides.value,
                                          bars_per_year=plan.bars_per_year, reps=config.evaluation.bootstrap_reps,
                                          seed=config.seed, levels=("all",))
    return out


def read_predictions(plan: OutputPlan, symbols: list[str], where=None,
                     columns: list[str] | None = None) -> pd.DataFrame:
    """The rows of ``predictions/`` of ``symbols`` that match ``where`` (a ``pyarrow.dataset`` expression pushed
    down to the parquet reader; None: all), only ``columns`` (None: all; ``fold`` is needed), with their ``symbol``
    (a file's name) and ``gate_fallback`` (from the plan) columns."""
    import pyarrow.dataset as ds

    fs, parts = plan.storage.fs, []
    for s in symbols:
        table = ds.dataset(plan.storage.key(L.prediction_file(s)), filesystem=fs, format="parquet").to_table(
            filter=where, columns=columns)
        if table.num_rows:
            parts.append(table.to_pandas().assign(symbol=s))
    rows = pd.concat(parts, ignore_index=True)
    keys = zip(rows["fold"].to_numpy().tolist(), rows["symbol"].tolist())
    rows["gate_fallback"] = np.fromiter((plan.fallback.get(k, 0) for k in keys), dtype=np.int8, count=len(rows))
    return rows
