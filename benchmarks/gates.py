"""Gate comparison on cached expert predictions: train the experts once, iterate on gates cheaply.

Usage (from the repository root):

    python benchmarks/gates.py --data ../shared/data/crypto_1h --days 365 --folds 3 \
        --experts trend,stress,sde --cache /tmp/gates_cache.pkl

Step 1 (skipped when ``--cache`` exists): one ``fleet`` run (local backend, ``--gate best``, guard
off) through :func:`fleet.training.driver.run_fleet`, whose units are trained by the real
:func:`fleet.training.unit.train_unit`; for every unit the inner out-of-fold rows (gate inputs,
experts' OOF P(up), labels, inner blocks) and the test rows (gate inputs, the full-window experts'
P(up), labels) are kept. Step 2 (``--only-experts a,b`` first cuts the cache to those experts' columns): for
every gate variant, :meth:`MixtureOfExpertsEnsemble.fit_gate_stage` (the code a unit runs) is fitted on each unit's
OOF rows (the gate on the blocks where no expert's inner P(up) is constant; with ``--recalibrate asset`` the per-asset
level on all of them, as in a unit) and applied to its test rows.

Metrics, both shown; the table is ranked on the per-asset one:

* ``asset_auc``: the per-asset AUC, the mean over the (fold, asset) groups of the AUC inside the group
  (:func:`fleet.evaluation.metrics.per_asset_auc`): timing within each asset, not which asset drifted up;
  ``vs_best_asset`` = that minus the best single expert's per-asset figure (the expert with the highest one, chosen
  after the fact) and ``se_asset`` the paired block-bootstrap standard error of that difference.
* ``auc`` (issue 12's figure): AUC pooled over all assets of a fold, then averaged over the folds; it also rewards
  an expert that only ranks the assets by their drift. ``vs_best`` / ``se`` as above on it (the best expert by the
  pooled figure); ``auc_all`` = the AUC pooled over every test row of every fold.

The standard errors come from :func:`fleet.evaluation.bootstrap.paired_auc_se` (blocks of 10 label horizons, all
assets of a bar drawn together). Also:
routing = share of units in which the expert with the best inner OOF per-asset AUC gets the largest mean
gate weight on the unit's test rows, over the ``routed`` units that have inner OOF rows at all (a unit without
any has no best inner expert; ``top_ties`` counts units whose largest weight is shared, where a tie that includes
the best inner expert counts as a hit); fallback = share of units whose guard fell back; w_base = the select gate's
share of the constant base-rate P(up) (the experts' w_ columns sum to 1 minus it).
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import roc_auc_score

from fleet.config import FleetConfig, load_config
from fleet.errors import FleetError
from fleet.evaluation.bootstrap import fold_auc, paired_auc_se
from fleet.features.fingerprint import FINGERPRINT_PREFIX
from fleet.models import BestExpertGate, MLPGate, MixtureOfExpertsEnsemble, RuleGate, SelectGate, StackGate
from fleet.models.criteria import CRITERIA
from fleet.models.moe import constant_experts
from fleet.training.dataset import build_unit_dataset
from fleet.training.driver import run_fleet
from fleet.training.unit import train_unit


def _gate_columns(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns if c.startswith(FINGERPRINT_PREFIX) or c in ("market_factor", "asset_id", "bar_time")]


def build_cache(cfg: FleetConfig) -> dict:
    """Run fleet once and keep every unit's OOF and test rows (see module docstring)."""
    cache: dict = {}

    def capture(unit, frames):
        res = train_unit(dataclasses.replace(unit, is_final=True), frames)
        ens = res.model.estimator
        c = unit.config
        ds = build_unit_dataset(assets=unit.assets, frames=frames, fold=unit.fold, timeline_end=unit.timeline_end,
                                factor=unit.factor, features=unit.features)
        cols = _gate_columns(ds.X_train)
        names = ens.expert_names_
        times = ds.X_train["bar_time"].to_numpy(np.int64)[ens.oof_index_]
        starts = {int(b): int(times[ens.oof_block_ == b].min()) for b in np.unique(ens.oof_block_)}
        cache[unit.unit_id] = {
            "fold": unit.fold.index, "names": names, "wall": res.wall_seconds,
            "X_oof": ds.X_train.iloc[ens.oof_index_][cols].reset_index(drop=True), "P_oof": ens.oof_probs_,
            "y_oof": np.asarray(ds.y_train)[ens.oof_index_], "block": ens.oof_block_, "starts": starts,
            "X_test": ds.X_test[cols].reset_index(drop=True),
            "P_test": res.predictions[[f"p_{n}" for n in names]].to_numpy(),
            "y_test": res.predictions["y"].to_numpy(), "symbol": res.predictions["symbol"].to_numpy()}
        if not unit.is_final:
            res.model = None
        return res

    t0 = time.perf_counter()
    # Keep every inner block in the cache, also those in which an expert's P(up) is constant: evaluate() leaves them
    # out of the gate's rows as the units do (informative_rows()) unless --keep-constant-blocks scores the rule
    # before 2026-12-03. The units run in this process (local backend), so the patch reaches collect_oof.
    with mock.patch("fleet.models.inner.constant_experts", lambda P, names: []):
        run_fleet(cfg, echo=lambda s: None, train_fn=capture)
    return {"units": cache, "seconds": time.perf_counter() - t0, "config": cfg.to_dict()}


def gate_variants(horizon: int, seed: int) -> dict:
    """name -> unfitted gate (and whether the guard is on)."""
    mlp = dict(purge_bars=horizon, random_state=seed)
    return {
        "best": (BestExpertGate(), False),  # by the per-asset AUC over (inner block, asset) groups (or --criterion)
        "best pooled": (BestExpertGate(criterion="auc"), False),  # by the AUC pooled over the unit's rows
        # the selection margin: switch only when the challenger's inner AUC is higher by > z standard errors
        **{f"best z{z}": (BestExpertGate(switch_z=float(z), horizon=horizon), False) for z in (0.5, 1, 2, 3)},
        "best raw": (BestExpertGate(criterion="log_loss"), False),
        "best calibrated": (BestExpertGate(criterion="calibrated"), False),
        "select": (SelectGate(), False),  # the default: the base rate chooses, the experts are served (3g)
        "select off": (SelectGate(base_rate="off"), False),  # experts only (the default before 3g)
        "select mix": (SelectGate(base_rate="mix"), False),  # the base rate chosen and served (3f)
        "select base": (SelectGate(base_rate="mix"), False),  # 3f's name for "select mix"
        "select auc": (SelectGate(criterion="auc"), False),  # the pooled AUC
        "select asset_auc": (SelectGate(criterion="asset_auc"), False),
        "select best-start": (SelectGate(start="best"), False),
        "select 20": (SelectGate(rounds=20), False),
        "select 100": (SelectGate(rounds=100), False),
        "stack": (StackGate(), False),
        "stack guarded": (StackGate(), True),
        "stack asset": (StackGate(asset_intercepts=True), False),
        "mlp": (MLPGate(**mlp), False),
        "mlp guarded": (MLPGate(**mlp), True),
        "mlp top-E": (MLPGate(top_k=99, **mlp), False),
        "mlp top-E guarded": (MLPGate(top_k=99, **mlp), True),
        "mlp fp only": (MLPGate(expert_inputs=False, **mlp), False),
        "mlp oracle": (MLPGate(objective="oracle", balance_coef=0.1, val_fraction=0.0, **mlp), False),
        "rule": (RuleGate(), False),
        "rule guarded": (RuleGate(), True),
    }


def informative_rows(u: dict) -> np.ndarray:
    """Mask (n_oof,) of the unit's cached out-of-fold rows outside the blocks in which an expert's P(up) is
    constant (what :func:`fleet.models.moe.collect_oof` leaves out of the gate's rows since 2026-12-03; the cache
    keeps them, see build_cache)."""
    flat = {b: bool(constant_experts(u["P_oof"][u["block"] == b], u["names"])) for b in np.unique(u["block"])}
    keep = np.ones(len(u["y_oof"]), dtype=bool)
    for b, f in flat.items():
        keep &= ~((u["block"] == b) & f)
    return keep


def cache_experts(units: dict) -> list[str]:
    """The experts of a cache's ``units`` (every unit holds the same names, in the same order)."""
    return next(iter(units.values()))["names"]


def restrict(cache: dict, experts: list[str]) -> dict:
    """The cache cut to the columns of ``experts`` (in that order): the mixture of fewer experts, without training
    them again (e.g. ``trend,momentum`` of a five-expert cache). The constant-block rule (:func:`informative`) then
    reads these experts alone, as a run of only them would; a cache built before the cache kept those blocks has
    already lost the blocks in which another expert's P(up) was constant.

    Raises:
        ValueError: an expert the cache does not hold (the message lists those it holds), or fewer than one.
    """
    names = cache_experts(cache["units"])
    unknown = [e for e in experts if e not in names]
    if unknown or not experts:
        raise ValueError(f"--only-experts {','.join(experts)}: {', '.join(unknown) or 'no expert'} not in the cache; "
                         f"it holds {','.join(names)}")
    cols = [names.index(e) for e in experts]
    units = {k: {**u, "names": list(experts), "P_oof": u["P_oof"][:, cols], "P_test": u["P_test"][:, cols]}
             for k, u in cache["units"].items()}
    return {**cache, "units": units}


def routing_hit(oof_scores: dict, names: list[str], W: np.ndarray, key: str = "auc") -> tuple[bool, bool] | None:
    """Issue 12's routing check for one unit: (the expert with the best inner out-of-fold AUC has the largest mean
    weight, that largest weight is shared by several experts), or None when the unit has no inner out-of-fold row.

    ``oof_scores``: expert -> {key: ...} (``MixtureOfExpertsEnsemble.oof_scores_``, which holds the pooled "auc"
    and the per-asset "asset_auc"; empty without inner rows); ``key``: which AUC names the best inner expert;
    ``W``: (n_rows, E) gate weights on the unit's test rows, columns in ``names`` order. A unit without inner rows
    has no best inner expert, so it is not counted (its equal start or first expert answers, which would otherwise
    count as a hit for ``names[0]``). A shared largest weight counts as a hit when the best inner expert shares it.
    """
    if not oof_scores:
        return None
    best = max(names, key=lambda n: oof_scores.get(n, {}).get(key, 0.5))
    w_mean = np.asarray(W, dtype=float).mean(axis=0)
    top = w_mean >= w_mean.max() - 1e-12
    return bool(top[names.index(best)]), bool(top.sum() > 1)


def evaluate(cache: dict, variants: list[str], horizon: int, embargo: int, inner_folds: int, seed: int,
             criterion: str = "asset_auc", keep_constant: bool = False, recalibrate: str = "off"):
    units = cache["units"]
    names = cache_experts(units)
    table, routing = [], {}
    base = None
    for v in variants:
        gate, guard = gate_variants(horizon, seed)[v]
        if "top-E" in v:
            gate.set_params(top_k=len(names))
        elif hasattr(gate, "top_k"):
            gate.set_params(top_k=min(2, len(names)))
        parts, hits, ties, falls, t0 = [], [], [], [], time.perf_counter()
        for uid, u in units.items():
            if isinstance(gate, BestExpertGate) and v == "best":
                gate.set_params(criterion=criterion)
            ens = MixtureOfExpertsEnsemble([(n, None) for n in names], gate=gate, purge_bars=horizon,
                                           embargo_bars=embargo, guard=guard, inner_folds=inner_folds,
                                           criterion=criterion, recalibrate=recalibrate)
            # the unit's own steps (with no out-of-fold row left, its first expert answers): the gate on the
            # informative rows, the per-asset level on all of them, as collect_oof hands them over
            rows = np.arange(len(u["y_oof"])) if keep_constant else np.flatnonzero(informative_rows(u))
            block = u["block"][rows]
            starts = {b: t for b, t in u["starts"].items() if (block == b).any()}
            ens.fit_gate_stage(u["X_oof"], u["y_oof"], (rows, u["P_oof"][rows], block, starts, [],
                                                         (np.arange(len(u["y_oof"])), u["P_oof"])))
            p, _, W = ens.predict_details(u["X_test"], u["P_test"])
            df = pd.DataFrame({"fold": u["fold"], "bar_time": u["X_test"]["bar_time"].to_numpy(), "y": u["y_test"],
                               "symbol": u["symbol"], "p_up": p,
                               **{f"p_{n}": u["P_test"][:, j] for j, n in enumerate(names)},
                               **{f"w_{n}": W[:, j] for j, n in enumerate(names)},
                               "w_base": 1.0 - W.sum(axis=1)})  # select's base-rate share (0 for the other gates)
            parts.append(df)
            hit = routing_hit(ens.oof_scores_, names, W, key="asset_auc")
            if hit is not None:
                hits.append(hit[0])
                ties.append(hit[1])
            falls.append(ens.fallback_ is not None)
        rows = pd.concat(parts, ignore_index=True)
        if base is None:
            base = {n: {"auc": fold_auc(rows, f"p_{n}"), "asset_auc": fold_auc(rows, f"p_{n}", asset="symbol")}
                    for n in names}
        table.append({"gate": v, **versus_best(rows, base, horizon, seed),
                      **{f"w_{n}": rows[f"w_{n}"].mean() for n in names}, "w_base": rows["w_base"].mean(),
                      "routing": np.mean(hits) if hits else np.nan, "routed": len(hits), "top_ties": int(np.sum(ties)),
                      "fallback": np.mean(falls), "gate_s": time.perf_counter() - t0})
    table = pd.DataFrame(table).sort_values("asset_auc", ascending=False, kind="stable").reset_index(drop=True)
    return base, table


def versus_best(rows: pd.DataFrame, base: dict, horizon: int, seed: int) -> dict:
    """A variant's figures on its test ``rows`` (fold, bar_time, y, symbol, p_up and every p_<expert>) beside the
    best single expert's, per asset and pooled, each best expert chosen after the fact by its own figure
    (``base``: expert -> {"auc", "asset_auc"}); the standard errors are paired block-bootstrap ones (10 horizons)."""
    top_asset = max(base, key=lambda n: base[n]["asset_auc"])
    top = max(base, key=lambda n: base[n]["auc"])
    asset_auc, auc = fold_auc(rows, "p_up", asset="symbol"), fold_auc(rows, "p_up")
    return {"asset_auc": asset_auc, "vs_best_asset": asset_auc - base[top_asset]["asset_auc"],
            "se_asset": paired_auc_se(rows, "p_up", f"p_{top_asset}", block=10 * horizon, seed=seed, asset="symbol"),
            "auc": auc, "vs_best": auc - base[top]["auc"],
            "se": paired_auc_se(rows, "p_up", f"p_{top}", block=10 * horizon, seed=seed),
            "auc_all": roc_auc_score(rows["y"], rows["p_up"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/crypto_1h")
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--strategy", default="hierarchical")
    ap.add_argument("--experts", default="trend,stress,sde")
    ap.add_argument("--inner-folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=None, help="pickle of the cached expert predictions (built when missing)")
    ap.add_argument("--gates", default="best,best pooled,best raw,best calibrated,stack,stack guarded,stack asset,mlp,"
                    "mlp guarded,mlp top-E,mlp top-E guarded,mlp fp only,mlp oracle,rule,rule guarded")
    ap.add_argument("--cnn-epochs", type=int, default=2)
    ap.add_argument("--cnn-windows", type=int, default=2048)
    ap.add_argument("--spec", default=None, help="a fleet spec YAML to start from (e.g. fleet/equities20.yaml for its "
                    "horizon, embargo and clusters); the flags above override its fields")
    ap.add_argument("--keep-constant-blocks", action="store_true",
                    help="keep inner blocks in which an expert's P(up) is constant (the rule before 2026-12-03; "
                    "a cache built by gates.py before --only-experts was added does not hold them)")
    ap.add_argument("--only-experts", default=None, metavar="A,B",
                    help="score the mixture of these experts only, cut from the cache (no retraining)")
    ap.add_argument("--recalibrate", default=None, choices=["asset", "off"],
                    help="the mixture's per-asset level (model.moe.recalibrate; default: the cache's config, off)")
    ap.add_argument("--criterion", default="asset_auc", choices=list(CRITERIA),
                    help="what picks the best expert and what the guard compares (asset_auc: the per-asset AUC over "
                    "(inner block, asset) groups; auc: pooled over the unit's rows; calibrated; log_loss)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for the cache build (YAML value), e.g. model.trend.min_samples_leaf=200")
    args = ap.parse_args(argv)
    cache_path = Path(args.cache) if args.cache else None
    if cache_path is not None and cache_path.is_file():
        cache = pickle.loads(cache_path.read_bytes())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            over = {"seed": args.seed, "strategy": args.strategy, "data.path": args.data, "data.days": args.days,
                    "validation.folds": args.folds, "policy.forced_entry": False, "resources.backend": "local",
                    "model.experts": args.experts.split(","), "model.moe.gate": "best", "model.moe.guard": False,
                    "model.moe.inner_folds": args.inner_folds, "model.pattern.epochs": args.cnn_epochs,
                    "model.pattern.max_train_windows": args.cnn_windows, "out": str(Path(tmp) / "run"),
                    **{k.strip(): yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set)}}
            try:
                cache = build_cache(load_config(args.spec, over))
            except FleetError as err:  # a bad flag or too short a window: the message says what to change
                ap.exit(2, f"gates.py: {err}\n")
        if cache_path is not None:
            cache_path.write_bytes(pickle.dumps(cache))
    cfg = FleetConfig.model_validate(cache["config"])
    if args.only_experts:
        try:
            cache = restrict(cache, [e.strip() for e in args.only_experts.split(",") if e.strip()])
        except ValueError as err:
            ap.error(str(err))
    base, table = evaluate(cache, [g.strip() for g in args.gates.split(",")], cfg.labels.horizon,
                           cfg.validation.embargo_bars, cfg.model.moe.inner_folds, args.seed, args.criterion,
                           args.keep_constant_blocks, args.recalibrate or cfg.model.moe.recalibrate)
    print_table(cfg, cache, base, table, args.criterion)
    return 0


def print_table(cfg: FleetConfig, cache: dict, base: dict, table: pd.DataFrame, criterion: str) -> None:
    """The run's setting, each expert's figures alone and the variants' table (ranked on the per-asset AUC)."""
    experts = ",".join(cache_experts(cache["units"]))
    print(f"{cfg.data.path} {cfg.strategy.value} {cfg.data.days} d {cfg.validation.folds} folds, experts "
          f"{experts}, seed {cfg.seed}, {len(cache['units'])} units; experts trained once in "
          f"{cache['seconds']:.0f} s; criterion {criterion}")
    print("experts alone (per-asset AUC over (fold, asset) groups / AUC pooled per fold, mean over folds): "
          + ", ".join(f"{n} {a['asset_auc']:.4f} / {a['auc']:.4f}" for n, a in base.items()))
    print("ranked on the per-asset AUC (asset_auc); vs_best_asset / vs_best: minus the best expert's figure, "
          "se_asset / se: its paired block-bootstrap standard error")
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4f}".format):
        print(table.to_string(index=False))

if __name__ == "__main__":
    raise SystemExit(main())
