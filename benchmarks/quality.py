"""Model quality table: single CNN, single GBM, MoE (rule gate), MoE (MLP gate) x strategy x dataset.

Seed 003 section 6 asks for one table that says what each model family is worth out of sample on
the same folds and seeds. This script trains every cell with ``fleet``'s own training path
(:func:`fleet.training.driver.run_fleet`, local backend) from the repository's fleet specs
(``fleet/crypto10.yaml`` hourly, ``fleet/equities20.yaml`` daily close-only) and prints:

    dataset  strategy  model  units  AUC  Rank IC  expectancy net (bps)  max DD net  round trips  Sharpe net

each as mean +- std over the seeds. Usage (from the repository root):

    python benchmarks/quality.py                      # the documented reduced setting
    python benchmarks/quality.py --seeds 3 --crypto-days 730 --folds 5   # fuller, hours on 2 cores

Models (``model.experts`` of the run; ``--moe-experts`` changes the mixture's experts):
    CNN        ``[pattern]``: the dilated causal CNN alone (PatternExpert, asset-id embedding)
    CNN (no asset emb)  the same CNN built without the asset embedding (``model.asset_aware: false``)
    GBM        ``[trend]``: the HistGradientBoosting trend expert alone
    GBM (no asset id)   the same GBM without the asset id categorical (seed 000's ablation: what
               knowing the asset is worth; on ``islands`` units hold one asset, so the pair is equal)
    Momentum   ``[momentum]``: the logistic regression on own and market-factor returns alone
    MoE rule   ``[trend, pattern, stress, sde, momentum]`` with the rule gate (regime rules, top-k), guarded
    MoE MLP    the same experts with the MLP gate (mixture likelihood), guarded
    MoE stack  the same experts with the logistic stacker, guarded
    MoE best   the same experts, the unit's single best expert by inner out-of-fold loss (the gate axis of
               issue 12: mlp / stack / best / select / rule)
    MoE select the same experts, ensemble selection (Caruana et al. 2004) on the inner out-of-fold rows
Strategies: global (one unit for all assets), hierarchical (one unit per correlation cluster,
refitted per fold), islands (one unit per asset); the hierarchical variants of issue 17 cluster on residual
returns (``hierarchical residual``), on FFD log prices (``hierarchical ffd``) or merge clusters below 2 assets
(``hierarchical min2``).

Policies (``--policies fixed,tuned``): ``fixed`` is p_up > threshold on every bar (1/h tranches); ``tuned`` the
units' cost-aware policies (:mod:`fleet.evaluation.costaware`), chosen on their training windows. A tuned cell
is trained once and its predictions scored under both (the policy does not change P(up)); ``turnover`` is the
mean |change of exposure| per bar.

``asset_auc``: the per-asset AUC, the mean over the (fold, asset) groups of the AUC inside the group
(:func:`fleet.evaluation.metrics.per_asset_auc`): timing within each asset, not which asset drifted up. Models are
compared on it. ``auc_fold``: issue 12's figure, AUC pooled over all assets of a fold, then averaged over the folds
(it also rewards knowing which asset drifts up). For mixtures also each expert's own figures (``asset_auc_<expert>``,
``auc_<expert>``, from the ``p_<expert>`` columns: the same expert fits as that expert alone), ``vs_best_asset`` /
``vs_best`` (the mixture's figure minus its best expert's by the same figure, that expert chosen after the fact),
``se_vs_best_asset`` / ``se_vs_best`` (the standard error of that difference, a paired block bootstrap over blocks of
10 label horizons, all assets of a bar drawn together: :func:`fleet.evaluation.bootstrap.paired_auc_se`) and
``fallback`` (share of units whose guard fell back).

Metrics over all out-of-sample rows of the run pooled (``fleet.evaluation.metrics.summarise`` with
no grouping): AUC of P(up) for the label; Rank IC = Spearman correlation of P(up) with the forward
log return; expectancy = the marked-to-market book's net P&L per round trip (half its turnover; signals
P(up) > the spec's threshold, 0.55; the spec's cost, 10 bps per side, on turnover), in basis
points; round trips = the book's turnover / 2; max DD net = largest drawdown of the equal-weight portfolio's equity, each asset trading
1/h tranches on its signals marked to market, net of costs on turnover, as a simple return (0.30 =
a 30 % loss from the peak); Sharpe net = that portfolio's Sharpe ratio against cash, annualised
(``fleet.evaluation.metrics``). Forced daily entry is off so that every model is judged on its own
signals. "n/a" = no round trip.

Every model of a cell sees the same folds (the splits depend on the data only) and the same seeds
(``seed .. seed+seeds-1``). The HistGradientBoosting expert has no random step with these settings,
so the GBM rows have std 0 by construction; the CNN and the gates depend on the seed.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import json

import numpy as np
import pandas as pd

from fleet.config import load_config
from fleet.evaluation.bootstrap import fold_auc, paired_auc_se
from fleet.evaluation.metrics import summarise
from fleet.training.driver import run_fleet

MOE_EXPERTS = ["trend", "pattern", "stress", "sde", "momentum"]
MODELS = {
    "CNN": {"model.experts": ["pattern"]},
    "CNN (no asset emb)": {"model.experts": ["pattern"], "model.asset_aware": False},
    "GBM": {"model.experts": ["trend"]},
    "GBM (no asset id)": {"model.experts": ["trend"], "model.asset_aware": False},
    "Momentum": {"model.experts": ["momentum"]},
    "MoE rule": {"model.experts": MOE_EXPERTS, "model.moe.gate": "rule"},
    "MoE MLP": {"model.experts": MOE_EXPERTS, "model.moe.gate": "mlp"},
    "MoE stack": {"model.experts": MOE_EXPERTS, "model.moe.gate": "stack"},
    "MoE best": {"model.experts": MOE_EXPERTS, "model.moe.gate": "best"},
    "MoE select": {"model.experts": MOE_EXPERTS, "model.moe.gate": "select"},
    # the per-asset level of the mixture (model.moe.recalibrate: asset; docs/mixture.md)
    "MoE select level": {"model.experts": MOE_EXPERTS, "model.moe.gate": "select", "model.moe.recalibrate": "asset"},
}
# Strategy variants: the strategy is the first word; the rest sets how hierarchical clusters (issue 17).
STRATEGY_VARIANTS = {
    "global": {}, "hierarchical": {}, "hierarchical residual": {"market.cluster_on": "residual"},
    "hierarchical ffd": {"market.cluster_on": "ffd"}, "hierarchical min2": {"market.min_cluster_size": 2},
    "islands": {},
}
STRATEGIES = ["global", "hierarchical", "islands"]
#: Policy axis: the tuned run's predictions are also scored under the fixed rule (same P(up), one training).
POLICIES = ["fixed", "tuned"]
SPECS = {"crypto_1h": "fleet/crypto10.yaml", "equities_1d": "fleet/equities20.yaml"}


def cell_config(dataset: str, data_path: str, strategy: str, model: str, seed: int, out: Path,
                args: argparse.Namespace):
    """The fleet configuration of one cell: the dataset's spec + the reduced setting + the model."""
    overrides = {
        "out": str(out), "seed": seed, "strategy": strategy.split()[0], **STRATEGY_VARIANTS.get(strategy, {}),
        "data.path": data_path, "policy.kind": "tuned" if "tuned" in getattr(args, "policies", "fixed") else "fixed",
        "data.days": args.crypto_days if dataset == "crypto_1h" else args.equities_days,
        "validation.folds": args.folds, "policy.forced_entry": False, "resources.backend": "local",
        "evaluation.seeds": 1, "model.pattern.epochs": args.cnn_epochs,
        "model.pattern.max_train_windows": args.cnn_windows, **MODELS[model],
    }
    if dataset == "crypto_1h" and args.crypto_symbols:
        overrides["data.symbols"] = args.crypto_symbols.split(",")
    if model.startswith("MoE") and getattr(args, "moe_experts", None):
        overrides["model.experts"] = args.moe_experts.split(",")
    return load_config(SPECS[dataset], overrides)


def run_cell(cfg, policies=("fixed",)) -> list[dict]:
    """Train one configuration and return its pooled out-of-sample metrics, one dict per policy in ``policies``
    (``fixed``: p_up > threshold on the same predictions; ``tuned``: the units' own policies, when the run has them)."""
    summary = run_fleet(cfg, echo=lambda s: None)
    preds = pd.concat([pd.read_parquet(p).assign(symbol=p.stem)
                       for p in sorted((summary.out / "predictions").glob("*.parquet"))], ignore_index=True)
    kw = dict(threshold=cfg.policy.threshold, cost_bps=cfg.policy.cost_bps, horizon=cfg.labels.horizon,
              bars_per_year=summary.bars_per_year)
    out = []
    for policy in policies:
        rows = preds if policy == "tuned" else preds.drop(columns=["signal", "position"], errors="ignore")
        if policy == "tuned" and "position" not in preds:
            continue
        out.append({"policy": policy, **_cell_metrics(summary, preds, summarise(rows, [], **kw).iloc[0],
                                                            cfg.labels.horizon)})
    return out


def _cell_metrics(summary, preds: pd.DataFrame, m: pd.Series, horizon: int) -> dict:
    cols = ["p_up", *[c for c in preds.columns if c.startswith("p_") and c != "p_up"]]
    aucs = {c: fold_auc(preds, c) for c in cols}
    asset_aucs = {c: fold_auc(preds, c, asset="symbol") for c in cols}
    manifest = json.loads((summary.out / "manifest.json").read_text())
    gates = [u.get("gate") for u in manifest["units"] if u.get("gate")]
    extra = {**{f"asset_auc_{c[2:]}": v for c, v in asset_aucs.items() if c != "p_up"},
             **{f"auc_{c[2:]}": v for c, v in aucs.items() if c != "p_up"}}
    if extra:  # a mixture: its distance from its best expert (chosen after the fact), with a paired standard error
        for figure, by, asset in (("_asset", asset_aucs, "symbol"), ("", aucs, None)):
            top = max((c for c in by if c != "p_up"), key=by.get)
            extra[f"vs_best{figure}"] = by["p_up"] - by[top]
            extra[f"se_vs_best{figure}"] = paired_auc_se(preds, "p_up", top, block=10 * horizon, time="timestamp",
                                                         asset=asset)
    if gates:
        extra["fallback"] = float(np.mean([bool(g.get("fallback")) for g in gates]))
    return {"units": summary.units, "auc_fold": aucs["p_up"], "asset_auc": asset_aucs["p_up"], **extra,
            "auc": m["auc"], "rank_ic": m["rank_ic"],
            "expectancy_bps": m["expectancy"] * 1e4, "max_dd_net": m["max_dd_net"], "round_trips": m["round_trips"],
            "turnover": m["turnover"], "sharpe_net": m["sharpe_net"], "n": int(m["n"]), "seconds": summary.wall_seconds}


def mean_std(values) -> str:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return "n/a"
    if v.size == 1:
        return f"{v[0]:.4f}"
    return f"{v.mean():.4f} ± {v.std(ddof=1):.4f}"


def summary_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """One row per (dataset, strategy, model, policy): each figure as mean ± std over the seeds (``mean_std``)."""
    table = (per_seed.groupby(["dataset", "strategy", "model", "policy"], sort=False)
             .agg(units=("units", "first"), auc_fold=("auc_fold", mean_std), asset_auc=("asset_auc", mean_std),
                  **{c: (c, mean_std) for c in per_seed.columns
                     if c.startswith(("auc_", "asset_auc_")) and c != "auc_fold"},
                  **({"vs_best_asset": ("vs_best_asset", mean_std), "se_vs_best_asset": ("se_vs_best_asset", "mean"),
                      "vs_best": ("vs_best", mean_std), "se_vs_best": ("se_vs_best", "mean")}
                     if "vs_best" in per_seed else {}),
                  **({"fallback": ("fallback", "mean")} if "fallback" in per_seed else {}),
                  auc=("auc", mean_std), rank_ic=("rank_ic", mean_std),
                  expectancy_bps=("expectancy_bps", mean_std), max_dd_net=("max_dd_net", mean_std),
                  round_trips=("round_trips", "mean"), turnover=("turnover", mean_std),
                  sharpe_net=("sharpe_net", mean_std))
             .reset_index())
    table["round_trips"] = table["round_trips"].round().astype(int)
    return table


def _listed(ap, option: str, value: str, known) -> list[str]:
    """The comma-separated names of ``option``; argparse's error (exit 2) naming the first unknown one."""
    names = value.split(",")
    for name in names:
        if name not in known:
            ap.error(f"{option}: unknown {name!r} (known: {', '.join(known)})")
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--data-dir", default="../shared/data", help="holds crypto_1h/ and equities_1d/")
    ap.add_argument("--datasets", default="crypto_1h,equities_1d")
    ap.add_argument("--strategies", default=",".join(STRATEGIES),
                    help=f"comma-separated, of: {', '.join(STRATEGY_VARIANTS)}")
    ap.add_argument("--policies", default="fixed", help="fixed and/or tuned (tuned trains with --policy tuned and "
                    "scores the same predictions under both)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--crypto-symbols", default="BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT,XRPUSDT,DOGEUSDT",
                    help="comma-separated subset of crypto_1h ('' = all ten)")
    ap.add_argument("--crypto-days", type=int, default=365, help="last N calendar days of the crypto data")
    ap.add_argument("--equities-days", type=int, default=5480, help="last N calendar days of the equity data (15 years)")
    ap.add_argument("--folds", type=int, default=3, help="purged walk-forward folds")
    ap.add_argument("--seeds", type=int, default=2, help="seeds 0..N-1")
    ap.add_argument("--cnn-epochs", type=int, default=2)
    ap.add_argument("--cnn-windows", type=int, default=2048, help="CNN training windows per fit (cap)")
    ap.add_argument("--moe-experts", default=None, help="experts of the MoE rows (default: trend,pattern,stress,sde,momentum)")
    ap.add_argument("--csv", default=None, help="also write the per-seed rows to this CSV")
    args = ap.parse_args(argv)

    data_dir = Path(args.data_dir)
    paths = {"crypto_1h": str(data_dir / "crypto_1h"), "equities_1d": str(data_dir / "equities_1d" / "sp500_20.parquet")}
    datasets = _listed(ap, "--datasets", args.datasets, SPECS)
    models = _listed(ap, "--models", args.models, MODELS)
    strategies = _listed(ap, "--strategies", args.strategies, STRATEGY_VARIANTS)
    policies = _listed(ap, "--policies", args.policies, POLICIES)
    seeds = list(range(args.seeds))
    cells = [(d, s, m) for d in datasets for s in strategies for m in models]
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (dataset, strategy, model) in enumerate(cells, 1):
            for seed in seeds:
                out = Path(tmp) / f"{dataset}-{strategy.replace(' ', '_')}-{''.join(c if c.isalnum() else '_' for c in model)}-{seed}"
                cfg = cell_config(dataset, paths[dataset], strategy, model, seed, out, args)
                for r in run_cell(cfg, policies):
                    rows.append({"dataset": dataset, "strategy": strategy, "model": model, "seed": seed, **r})
                    print(f"[{i}/{len(cells)}] {dataset} {strategy:12s} {model:18s} {r['policy']:5s} seed {seed}: "
                          f"AUC/fold {r['auc_fold']:.4f} per-asset {r['asset_auc']:.4f} Rank IC {r['rank_ic']:+.4f}, "
                          f"Sharpe net {r['sharpe_net']:+.3f}, "
                          f"{r['units']} units, {r['seconds']:.0f} s (elapsed {time.perf_counter() - t0:.0f} s)",
                          file=sys.stderr, flush=True)
    per_seed = pd.DataFrame(rows)
    if args.csv:
        per_seed.to_csv(args.csv, index=False)
    table = summary_table(per_seed)
    print(f"fleet quality benchmark, {started:%Y-%m-%d %H:%M} UTC, {time.perf_counter() - t0:.0f} s")
    print(f"setting: crypto_1h: {args.crypto_symbols or 'all ten symbols'}, last {args.crypto_days} days; "
          f"equities_1d: 20 stocks close-only, last {args.equities_days} days; {args.folds} folds; "
          f"seeds {seeds}; CNN {args.cnn_epochs} epochs x <= {args.cnn_windows} windows")
    print("asset_auc: per-asset AUC (mean over (fold, asset) groups), the figure models are compared on; auc_fold: "
          "pooled per fold; vs_best_asset / vs_best: minus the best expert's same figure, se_*: paired bootstrap SE")
    print("mean ± std over seeds; expectancy net of 10 bps/side in bps; max DD net a simple return (0.30 = 30 % loss); "
          "Sharpe net marked to market, annualised")
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_colwidth", 40):
        print(table.to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
