"""Each expert alone vs the mixture with the rule gate and with the MLP gate, on real data.

Usage (from the repository root; a few minutes on 2 CPU cores):

    python benchmarks/experts.py --data ../shared/data/crypto_1h

Reduced setting (documented, so that it runs in minutes on a laptop): 4 symbols (BTC, ETH, SOL,
XRP), the last 365 days, 3 purged walk-forward folds, one global unit per fold, the CNN capped at
2048 training windows x 2 epochs. Same folds and seed for every row.

How the rows are produced: two `fleet` runs with experts trend, pattern, stress, sde that differ
only in the gate (rule | mlp). "Each expert alone" is that expert's own P(up) on the test blocks
(``p_<expert>`` columns of the predictions: the expert refitted on the full training window, exactly
as it would be trained alone with that seed). Metrics over all out-of-sample rows pooled:
AUC, and expectancy = the marked-to-market book's net P&L per round trip (signals P(up) > 0.55, 10 bps per
side on turnover), with the number of round trips.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd

from fleet.config import FleetConfig
from fleet.evaluation.metrics import summarise
from fleet.training.driver import run_fleet

EXPERTS = ["trend", "pattern", "stress", "sde"]


def config(data: str, gate: str, out: Path, symbols, days: int, folds: int, seed: int) -> FleetConfig:
    return FleetConfig.model_validate({
        "out": str(out), "seed": seed, "strategy": "global",
        "data": {"path": data, "symbols": symbols, "days": days},
        "validation": {"folds": folds},
        "model": {"experts": EXPERTS, "moe": {"gate": gate},
                  "pattern": {"epochs": 2, "max_train_windows": 2048}},
    })


def metrics(preds: pd.DataFrame, p_col: str, cfg: FleetConfig) -> dict:
    rows = preds.drop(columns=["signal"], errors="ignore").assign(p_up=preds[p_col])
    m = summarise(rows, [], threshold=cfg.policy.threshold, cost_bps=cfg.policy.cost_bps,
                  horizon=cfg.labels.horizon).iloc[0]
    return {"auc": m["auc"], "expectancy_net": m["expectancy"], "round_trips": float(m["round_trips"]),
            "n": int(m["n"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/crypto_1h")
    ap.add_argument("--symbols", default="BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    symbols = args.symbols.split(",")
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for gate in ("rule", "mlp"):
            cfg = config(args.data, gate, Path(tmp) / gate, symbols, args.days, args.folds, args.seed)
            summary = run_fleet(cfg, echo=lambda s: None)
            preds = pd.concat([pd.read_parquet(p).assign(symbol=p.stem)
                               for p in sorted((summary.out / "predictions").glob("*.parquet"))], ignore_index=True)
            if gate == "mlp":  # experts alone: identical fits in both runs (same data, folds, seed)
                for e in EXPERTS:
                    rows.append({"model": f"{e} alone", **metrics(preds, f"p_{e}", cfg)})
            w = {f"w_{e}": preds[f"w_{e}"].mean() for e in EXPERTS}
            rows.append({"model": f"MoE {gate} gate", **metrics(preds, "p_up", cfg),
                         **{k: round(v, 3) for k, v in w.items()}})
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.4f}".format):
        print(f"{len(symbols)} symbols, last {args.days} days, {args.folds} folds, global unit, seed {args.seed} "
              f"({time.perf_counter() - t0:.0f} s)")
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
