"""Forced daily entry: the causal rule against the old look-ahead rule, on a finished run's predictions.

Issue 14 found that the old rule decided with the whole UTC day in view (was any bar above the
threshold? which bar had the day's highest p_up?), i.e. with bars inside the forced trade's own
label window. This script re-reads ``RUN_DIR/predictions/`` and applies both rules to the same
p_up, then prints, per asset and pooled, the forced trades' count, mean forward log return (bps),
win rate, t-statistic and the natural-vs-forced advice (``fleet.evaluation.policy``):

    python benchmarks/forced_entry.py RUN_DIR [--threshold 0.55] [--cutoff HH:MM]

The old rule is re-implemented here for the comparison only (fleet no longer uses it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from fleet.evaluation.policy import apply_forced_daily_entry, forced_entry_report


def old_lookahead_rule(predictions: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The pre-issue-14 rule: a day with no bar above the threshold trades its highest-p_up bar."""
    out = predictions.reset_index(drop=True).copy()
    natural = out["p_up"].to_numpy() > threshold
    day = out["timestamp"].dt.floor("D")
    quiet = ~pd.Series(natural).groupby([out["symbol"], day]).transform("any").to_numpy()
    ordered = out[quiet].assign(_day=day[quiet]).sort_values("timestamp", kind="stable")
    best = ordered.groupby(["symbol", "_day"], sort=False)["p_up"].idxmax()
    forced = out.index.isin(best.to_numpy())
    out["signal"] = (natural | forced).astype(np.int8)
    out["forced_entry"] = forced
    return out


def summary(rows: pd.DataFrame, label: str) -> pd.DataFrame:
    report = forced_entry_report(rows)
    forced = rows.loc[rows["forced_entry"], "forward_return"].to_numpy()
    t = forced.mean() / (forced.std(ddof=1) / np.sqrt(forced.size)) if forced.size > 1 else float("nan")
    pooled = {"symbol": "ALL", "forced_trades": forced.size, "forced_mean_return": forced.mean(),
              "forced_win_rate": float((forced > 0).mean()), "t": t}
    per = []
    for _, r in report.iterrows():
        f = rows.loc[(rows["symbol"] == r["symbol"]) & rows["forced_entry"], "forward_return"].to_numpy()
        per.append({**r.to_dict(), "t": f.mean() / (f.std(ddof=1) / np.sqrt(f.size)) if f.size > 1 else float("nan")})
    out = pd.concat([pd.DataFrame(per), pd.DataFrame([pooled])], ignore_index=True)
    out.insert(0, "rule", label)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--threshold", type=float, default=None, help="default: the run's policy.threshold")
    ap.add_argument("--cutoff", default=None, help="UTC HH:MM of the causal rule (default: the day's last bar)")
    args = ap.parse_args(argv)
    run = Path(args.run_dir)
    manifest = json.loads((run / "manifest.json").read_text())
    threshold = args.threshold if args.threshold is not None else manifest["config"]["policy"]["threshold"]
    bar = pd.Timedelta(manifest["data"]["bar"])
    files = sorted((run / "predictions").glob("*.parquet"))
    preds = pd.concat([pd.read_parquet(p).assign(symbol=p.stem) for p in files], ignore_index=True)
    preds = preds.drop(columns=["signal", "forced_entry"])
    causal = apply_forced_daily_entry(preds, threshold=threshold, cutoff=args.cutoff, bar=bar)
    both = pd.concat([summary(old_lookahead_rule(preds, threshold), "old (look-ahead)"), summary(causal, "causal")],
                     ignore_index=True)
    both["natural_mean_bps"] = both["natural_mean_return"] * 1e4
    both["forced_mean_bps"] = both["forced_mean_return"] * 1e4
    both["delta_bps"] = both["delta"] * 1e4
    cols = ["rule", "symbol", "natural_trades", "forced_trades", "natural_mean_bps", "forced_mean_bps",
            "forced_win_rate", "t", "delta_bps", "advice"]
    print(f"{run}: threshold {threshold}, {len(preds):,} out-of-sample rows")
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.2f}".format):
        print(both[cols].astype(object).where(both[cols].notna(), "").to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
