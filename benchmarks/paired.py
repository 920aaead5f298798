"""Paired differences with their standard errors: mixture vs each expert, tuned vs fixed policy, run vs run.

    python benchmarks/paired.py RUN                 # the run's ensemble against each of its experts (fixed rule),
                                                    # and its tuned policy against the fixed rule on the same P(up)
    python benchmarks/paired.py RUN_A RUN_B         # two runs on the same rows (e.g. two strategies)

Every figure is scored on the (symbol, timestamp) rows both sides hold; the standard error of a difference comes
from a paired stationary block bootstrap over timestamps (fleet.evaluation.compare.paired_table). A difference
within one standard error is printed as a tie.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd


def _fixed(rows: pd.DataFrame, threshold: float, horizon: int, sides: str, cost_bps: float) -> pd.DataFrame:
    from fleet.evaluation.costaware import TradingPolicy, apply_positions

    bare = rows.drop(columns=["position", "signal", "meta_keep"], errors="ignore")
    return apply_positions(bare, TradingPolicy.fixed(threshold, horizon=horizon, sides=sides, cost_bps=cost_bps))


def comparisons(run_a, run_b=None, *, reps: int = 500, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The paired tables: {title: paired_table(...)} for one run (experts, tuned vs fixed) or two runs."""
    from fleet.evaluation.compare import paired_table

    cfg = run_a.config
    kw = dict(threshold=cfg.policy.threshold, cost_bps=cfg.policy.cost_bps, horizon=cfg.labels.horizon,
              bars_per_year=run_a.manifest.get("bars_per_year"), reps=reps, seed=seed)
    a = run_a.predictions
    if run_b is not None:
        return {f"{run_a.path.name} (a) vs {run_b.path.name} (b)": paired_table(a, run_b.predictions, **kw)}
    out = {}
    fixed = _fixed(a, cfg.policy.threshold, cfg.labels.horizon, cfg.policy.sides.value, cfg.policy.cost_bps)
    experts = [c[2:] for c in a.columns if c.startswith("p_") and c != "p_up"]
    for e in experts:
        alone = _fixed(a.assign(p_up=a[f"p_{e}"]), cfg.policy.threshold, cfg.labels.horizon, cfg.policy.sides.value,
                       cfg.policy.cost_bps)
        out[f"ensemble (a) vs {e} alone (b), fixed rule"] = paired_table(fixed, alone, **kw)
    if "position" in a:
        out["tuned policy (a) vs fixed rule (b), same P(up)"] = paired_table(a, fixed, **kw)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="one run directory (its experts and policy) or two (run vs run)")
    ap.add_argument("--reps", type=int, default=500, help="bootstrap draws (default 500)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if len(args.runs) > 2:
        ap.error("give one or two run directories")
    import fleet
    from fleet.errors import FleetError

    try:
        runs = [fleet.load_run(r) for r in args.runs]
        tables = comparisons(*runs, reps=args.reps, seed=args.seed)
    except FleetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not tables:
        print("nothing to compare: one expert and the fixed rule (give a second run)")
    for title, t in tables.items():
        print(f"\n{title}  (diff = a - b; se: paired stationary block bootstrap over timestamps, {args.reps} draws)")
        with pd.option_context("display.width", 160, "display.float_format", "{:+.4f}".format):
            print(t.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
