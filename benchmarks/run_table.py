"""Fleet-level figures of finished runs with their standard errors, as a markdown table.

    python benchmarks/run_table.py RUN [RUN ...] [--reps 500] [--by cluster]

One row per run (and, with --by cluster, one per cluster of it): pooled AUC, per-asset AUC, Rank IC (per-asset time
series, pooled rows), net Sharpe and net annual return of the equal-weight book, each with its standard error from a
stationary block bootstrap over timestamps (fleet.evaluation.metrics.summarise). The model-quality tables of
docs/benchmarks.md (section "Model quality") are printed by this script.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd


def _pm(v: float, se: float, digits: int, signed: bool = False) -> str:
    if pd.isna(v):
        return "–"
    sign = "+" if signed else ""
    return f"{v:{sign}.{digits}f} ± {se:.{digits}f}" if pd.notna(se) else f"{v:{sign}.{digits}f}"


def fleet_rows(run, *, reps: int, seed: int, by: str | None) -> list[dict]:
    """The fleet row of ``run`` (and one per cluster with ``by='cluster'``)."""
    from fleet.evaluation.metrics import summarise

    cfg = run.config
    preds = run.predictions
    kw = dict(threshold=cfg.policy.threshold, cost_bps=cfg.policy.cost_bps, horizon=cfg.labels.horizon,
              bars_per_year=run.manifest.get("bars_per_year"), reps=reps, seed=seed)
    table = summarise(preds, [], **kw).assign(group="fleet")
    if by:
        table = pd.concat([table, summarise(preds, by, **kw).assign(group=lambda t: by + " " + t[by].astype(str))])
    experts = ",".join(cfg.model.active_experts())
    rows = []
    for r in table.itertuples():
        rows.append({"run": run.path.name, "strategy": cfg.strategy.value, "experts": experts,
                     "policy": cfg.policy.kind.value, "group": r.group,
                     "auc": _pm(r.auc, r.auc_se, 4), "auc per asset": _pm(r.auc_per_asset, r.auc_per_asset_se, 4),
                     "rank IC": _pm(r.rank_ic, r.rank_ic_se, 4, signed=True),
                     "net Sharpe": _pm(r.sharpe_net, r.sharpe_net_se, 2, signed=True),
                     "net ann. return": "–" if pd.isna(r.ann_return_net) else f"{r.ann_return_net:+.1%}",
                     "round trips": f"{r.round_trips:,.0f}"})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--reps", type=int, default=500, help="bootstrap draws (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--by", choices=["cluster", "fold"], default=None, help="also one row per cluster or fold")
    args = ap.parse_args(argv)
    import fleet
    from fleet.errors import FleetError

    try:
        rows = [r for path in args.runs for r in fleet_rows(fleet.load_run(path), reps=args.reps, seed=args.seed,
                                                             by=args.by)]
    except FleetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    table = pd.DataFrame(rows)
    print("| " + " | ".join(table.columns) + " |")
    print("| " + " | ".join("---" for _ in table.columns) + " |")
    for rec in table.itertuples(index=False):
        print("| " + " | ".join(str(v) for v in rec) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
