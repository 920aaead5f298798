"""TrendExpert variants on the same folds: learner (hgb | lightgbm) x early stopping x asset-aware.

Trains each variant with ``fleet``'s own path (:func:`fleet.training.driver.run_fleet`, local
backend, ``--experts trend``) on a reduced crypto_1h setting and prints, per strategy and variant:

    strategy  variant  AUC (pooled)  AUC (fold mean)  trees  unit s  run s

AUC (pooled): ROC AUC of P(up) over every out-of-sample row of the run; AUC (fold mean): AUC
pooled over the assets of each fold, averaged over folds (the figure of issue 12). trees: mean
boosting iterations of the last fold's models. unit s: sum of the units' ``train_unit`` walls
(features + fit + predict); run s: the whole run. Every variant sees the same folds (the splits
depend on the data only). Usage (from the repository root):

    python benchmarks/trend.py                                    # 365 days, 3 folds, global + hierarchical
    python benchmarks/trend.py --days 730 --folds 5 --repeat 2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from fleet.config import load_config
from fleet.training.driver import run_fleet

VARIANTS = {
    "hgb": {},
    "hgb ES": {"model.trend.early_stopping": True, "model.trend.max_iter": 500},
    "lightgbm": {"model.trend.learner": "lightgbm"},
    "lightgbm ES": {"model.trend.learner": "lightgbm", "model.trend.early_stopping": True,
                    "model.trend.max_iter": 500},
    "hgb ES patience 30": {"model.trend.early_stopping": True, "model.trend.max_iter": 500,
                           "model.trend.n_iter_no_change": 30},
    "hgb no asset id": {"model.asset_aware": False},
}


def run_variant(data: str, strategy: str, variant: str, out: Path, args) -> dict:
    cfg = load_config("fleet/crypto10.yaml", {
        "out": str(out), "strategy": strategy, "data.path": data, "data.days": args.days,
        "validation.folds": args.folds, "resources.backend": "local", "model.experts": ["trend"],
        **VARIANTS[variant]})
    s = run_fleet(cfg, echo=lambda m: None)
    preds = pd.concat([pd.read_parquet(p) for p in sorted((s.out / "predictions").glob("*.parquet"))])
    per_fold = [roc_auc_score(g["y"], g["p_up"]) for _, g in preds.groupby("fold")]
    models = [pd.read_pickle(p).estimator for p in sorted((s.out / "models").glob("*.pkl"))]
    return {"strategy": strategy, "variant": variant, "auc_pooled": roc_auc_score(preds["y"], preds["p_up"]),
            "auc_fold_mean": float(np.mean(per_fold)), "trees": float(np.mean([m.n_iter_ for m in models])),
            "run_s": s.wall_seconds, "train_s": s.train_seconds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/crypto_1h")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--strategies", default="global,hierarchical")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--repeat", type=int, default=1, help="runs per variant (walls: the minimum is shown)")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            for strategy in args.strategies.split(","):
                for variant in args.variants.split(","):
                    out = Path(tmp) / f"{strategy}-{variant.replace(' ', '_')}-{r}"
                    row = run_variant(args.data, strategy, variant, out, args)
                    rows.append(row)
                    print(f"{strategy:12s} {variant:16s} AUC {row['auc_pooled']:.4f} / {row['auc_fold_mean']:.4f} "
                          f"trees {row['trees']:.0f} train {row['train_s']:.1f} s run {row['run_s']:.1f} s",
                          file=sys.stderr, flush=True)
    t = (pd.DataFrame(rows).groupby(["strategy", "variant"], sort=False)
         .agg(auc_pooled=("auc_pooled", "first"), auc_fold_mean=("auc_fold_mean", "first"), trees=("trees", "first"),
              train_s=("train_s", "min"), run_s=("run_s", "min")).reset_index())
    print(f"crypto_1h, last {args.days} days, {args.folds} folds, --experts trend, local backend; "
          f"walls: min of {args.repeat}")
    print(t.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
