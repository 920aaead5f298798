"""Noise floors: what each quality figure reads on pure-noise markets of a run's shape, and a run's excess over it.

A per-asset AUC or time-series IC is computed inside one test block of one asset. When the score tracks the
price level (a trend or mean-reversion feature does), the sample correlation of the score with the next return
inside a finite block is biased: the block's mean level contains the returns that follow each bar, so the
demeaned level is negatively correlated with them even on a random walk (the finite-sample bias of a predictive
regression on a persistent regressor, Stambaugh 1999, "Predictive regressions", J. Financial Economics 54).
Its size is of the order of 1/sqrt(bars per block), like the sampling noise itself, so it does not vanish with
longer blocks relative to the noise, and averaging over assets and folds makes it significant. The floor of a
shape is measured here by running the same pipeline (``fleet.train``, local backend) on pure-noise synthetic
markets (``synthetic.signal_strength: 0``) of that shape over several seeds.

Figures (all from the out-of-sample ``predictions``, holdout rows excluded):
    auc_pooled      ROC AUC of p_up for y over all assets of a fold, mean over folds
                    (:func:`fleet.evaluation.bootstrap.fold_auc`, what gates.py and quality.py rank on)
    auc_asset       mean over (fold, asset) of the AUC inside each (:func:`fleet.evaluation.metrics.per_asset_auc`)
    ic_asset        mean over (fold, asset) of the Pearson correlation of p_up with forward_return
    rank_ic_asset   the same with Spearman's rank correlation
    rank_ic_xs      cross-sectional Rank IC: at each timestamp the Spearman correlation of p_up with
                    forward_return across the assets (timestamps with >= 3 assets), then the mean over timestamps.
                    It compares assets at one instant, so no within-block level bias enters: its floor is 0.

A floor is reported as mean +- se over seeds (se = sd / sqrt(seeds)); ``sd`` is the spread of a single run of the
shape on noise. A run's excess over the floor is ``figure - floor`` with se = sqrt(floor_se^2 + sd^2) for one run
(its own sampling noise taken as the noise spread of its shape), or sqrt(floor_se^2 + se_runs^2) for the mean of
several runs.

Usage (from the repository root):

    python benchmarks/noise_floor.py --assets 10 --days 365 --folds 3 --seeds 8 --out floors.csv
    python benchmarks/noise_floor.py --bar 1d --assets 20 --days 12000 --folds 5 --close-only --seeds 4
    python benchmarks/noise_floor.py --run runs/x --floors floors.csv    # a run beside its floor

The synthetic market makes hourly 24/7 bars only; ``--bar 1d`` builds equities-like daily bars from them
(OHLC of each UTC day, volume summed, weekdays kept) and trains on that DataFrame.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

import fleet
from fleet.api import resolve_config
from fleet.data.synthetic import synthetic_market
from fleet.errors import FleetError
from fleet.evaluation.bootstrap import fold_auc
from fleet.evaluation.metrics import information_coefficients, per_asset_auc

FIGURES = ("auc_pooled", "auc_asset", "ic_asset", "rank_ic_asset", "rank_ic_xs")
LABELS = {"auc_pooled": "AUC pooled per fold", "auc_asset": "AUC per asset", "ic_asset": "IC per asset",
          "rank_ic_asset": "Rank IC per asset", "rank_ic_xs": "Rank IC cross-sectional"}
BARS = {"1h": pd.Timedelta(hours=1), "1d": pd.Timedelta(days=1)}
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Shape:
    """What a floor depends on: fleet size, bars per test block (days, bar, folds) and the model.

    ``clusters`` is the synthetic market's planted cluster count (assets must divide by it); every other config
    field comes from the base config (the defaults, or the run's own config with ``--run``).
    """

    bar: str = "1h"
    assets: int = 10
    clusters: int = 2
    days: int = 365
    folds: int = 3
    strategy: str = "hierarchical"
    experts: str = "trend"
    horizon: int = 4
    close_only: bool = False

    def check(self) -> Shape:
        if self.bar not in BARS:
            raise ValueError(f"bar={self.bar!r}: expected one of {sorted(BARS)}")
        if self.assets < 2 or self.clusters < 1 or self.assets % self.clusters:
            raise ValueError(f"assets={self.assets}, clusters={self.clusters}: expected >= 2 assets in clusters "
                             "of equal size (assets divisible by clusters)")
        return self

    def describe(self) -> str:
        cols = ", close only" if self.close_only else ""
        return (f"{self.assets} assets ({self.clusters} planted clusters), {self.days} d of {self.bar} bars{cols}, "
                f"{self.folds} folds, {self.strategy}, experts {self.experts}, horizon {self.horizon}")


def planted_clusters(assets: int) -> int:
    """The planted cluster count used for ``assets`` when none is given: the largest of 3, 2, 1 that divides it."""
    return next(k for k in (3, 2, 1) if assets % k == 0)


# --- the figures --------------------------------------------------------------------------------------------------

def cross_sectional_rank_ic(preds: pd.DataFrame, score: str = "p_up", target: str = "forward_return",
                            min_assets: int = 3) -> float:
    """Mean over timestamps of the Spearman correlation of ``score`` with ``target`` across the assets.

    Args:
        preds: long rows (n, ...) with ``timestamp``, ``score`` and ``target``; one row per (timestamp, asset).
        min_assets: timestamps with fewer rows are skipped (two assets give only +-1).

    Returns:
        The mean of the per-timestamp rank correlations (ranks with ties averaged, as ``scipy.stats.spearmanr``);
        a timestamp where the score is constant across the assets counts 0 (it ranks nothing), one where the
        target is constant is skipped. NaN when no timestamp is left.
    """
    d = preds[["timestamp", score, target]].dropna()
    g = d.groupby("timestamp", sort=False)
    d = d.assign(_n=g[score].transform("size"), _a=g[score].rank(method="average"),
                 _b=g[target].rank(method="average"))
    d = d[d["_n"] >= min_assets]
    g = d.groupby("timestamp", sort=False)
    a = d["_a"] - g["_a"].transform("mean")
    b = d["_b"] - g["_b"].transform("mean")
    parts = pd.DataFrame({"t": d["timestamp"], "ab": a * b, "aa": a * a, "bb": b * b}).groupby("t").sum()
    parts = parts[parts["bb"] > 0]
    rho = (parts["ab"] / np.sqrt(parts["aa"] * parts["bb"])).where(parts["aa"] > 0, 0.0)
    return float(rho.mean()) if len(rho) else float("nan")


def _ics(p: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    """(IC, Rank IC) of one block; a forecast constant in the block ranks nothing: 0, like its AUC of 0.5."""
    if p.size >= 2 and np.ptp(p) == 0 and np.ptp(r) > 0:
        return 0.0, 0.0
    return information_coefficients(p, r)


def per_asset_ics(preds: pd.DataFrame) -> tuple[float, float]:
    """(IC, Rank IC) of p_up with forward_return inside each (fold, asset), each averaged over the groups.

    Pearson and Spearman by :func:`fleet.evaluation.metrics.information_coefficients`; a group whose p_up is
    constant counts 0 (as its AUC counts 0.5), a group whose forward_return is constant is left out.
    """
    ics = np.array([_ics(g["p_up"].to_numpy(np.float64), g["forward_return"].to_numpy(np.float64))
                    for _, g in preds.groupby(["fold", "symbol"], sort=True)], dtype=np.float64).reshape(-1, 2)
    return tuple(float(np.nanmean(c)) if np.isfinite(c).any() else float("nan") for c in ics.T)


def figures(preds: pd.DataFrame) -> dict[str, float]:
    """Every figure of :data:`FIGURES` from one run's out-of-sample predictions (columns timestamp, symbol, fold,
    p_up, y, forward_return), plus ``bars_per_block`` (distinct timestamps per fold, mean over folds)."""
    ic, ric = per_asset_ics(preds)
    return {"auc_pooled": fold_auc(preds, "p_up"), "auc_asset": per_asset_auc(preds), "ic_asset": ic,
            "rank_ic_asset": ric, "rank_ic_xs": cross_sectional_rank_ic(preds),
            "bars_per_block": float(preds.groupby("fold")["timestamp"].nunique().mean())}


# --- the floor and the excess -------------------------------------------------------------------------------------

def floor_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """The floor of each figure from one row per noise seed (columns :data:`FIGURES`).

    Returns:
        One row per figure: ``figure``, ``floor`` (mean over seeds), ``floor_se`` (sd / sqrt(seeds)), ``floor_sd``
        (sample sd, ddof 1: the spread of one run on noise), ``seeds``.

    Raises:
        ValueError: fewer than 2 seeds (no se), or a figure column is missing.
    """
    missing = [f for f in FIGURES if f not in per_seed.columns]
    if missing or len(per_seed) < 2:
        raise ValueError(f"floor_table: need >= 2 seeds with columns {list(FIGURES)} (got {len(per_seed)} rows, "
                         f"missing {missing})")
    rows = []
    for f in FIGURES:
        v = per_seed[f].to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        sd = float(v.std(ddof=1)) if v.size >= 2 else float("nan")
        rows.append({"figure": f, "floor": float(v.mean()) if v.size else float("nan"),
                     "floor_se": sd / math.sqrt(v.size) if v.size >= 2 else float("nan"), "floor_sd": sd,
                     "seeds": int(v.size)})
    return pd.DataFrame(rows)


def excess(values: Mapping[str, float] | pd.DataFrame, floor: pd.DataFrame,
           value_se: Mapping[str, float] | None = None) -> pd.DataFrame:
    """A run's figures (or the per-seed figures of several runs) beside the floor, and their excess over it.

    Args:
        values: one run's figures by name (a mapping, or a one-row frame), or one row per run (seed).
        floor: :func:`floor_table`'s output for the same shape.
        value_se: the run's own se per figure when known (e.g. a block bootstrap's); replaces the default below.

    Returns:
        One row per figure: ``figure``, ``value`` (the run's, or the mean over runs), ``value_se`` (the floor's
        sd for one run: its sampling noise on a market of its shape; sd / sqrt(runs) for several), ``floor``,
        ``floor_se``, ``excess`` = value - floor, ``excess_se`` = sqrt(value_se^2 + floor_se^2), ``z`` =
        excess / excess_se.
    """
    frame = pd.DataFrame([dict(values)]) if isinstance(values, Mapping) else values
    fl, value_se_given = floor.set_index("figure"), value_se
    rows = []
    for f in FIGURES:
        v = frame[f].to_numpy(dtype=np.float64)
        v = v[np.isfinite(v)]
        value = float(v.mean()) if v.size else float("nan")
        value_se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size >= 2 else float(fl.at[f, "floor_sd"])
        if value_se_given is not None and f in value_se_given:
            value_se = float(value_se_given[f])
        floor_v, floor_se = float(fl.at[f, "floor"]), float(fl.at[f, "floor_se"])
        ex, ex_se = value - floor_v, math.hypot(value_se, floor_se)
        rows.append({"figure": f, "value": value, "value_se": value_se, "floor": floor_v, "floor_se": floor_se,
                     "excess": ex, "excess_se": ex_se, "z": ex / ex_se if ex_se > 0 else float("nan")})
    return pd.DataFrame(rows)


# --- running the pipeline on noise --------------------------------------------------------------------------------

def daily_noise_bars(shape: Shape, seed: int) -> pd.DataFrame:
    """Equities-like daily bars of a pure-noise synthetic market: OHLCV of each UTC day of its hourly bars
    (open first, high max, low min, close last, volume summed), weekdays only; long frame (timestamp, symbol, ...),
    close only when ``shape.close_only``."""
    m = synthetic_market(n_clusters=shape.clusters, assets_per_cluster=shape.assets // shape.clusters,
                         days=shape.days, seed=seed, signal_strength=0.0)
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    parts = []
    for sym, f in m.panel.frames.items():
        d = f.resample("1D").agg(agg)
        d = d[d.index.day_of_week < 5]
        parts.append(d[["close"]] if shape.close_only else d)
    out = pd.concat(parts, keys=list(m.panel.frames), names=["symbol", "timestamp"]).reset_index()
    return out[["timestamp", "symbol", *[c for c in out.columns if c not in ("timestamp", "symbol")]]]


def noise_config(shape: Shape, base: Mapping | None = None) -> dict:
    """The config of a noise run of ``shape``: ``base`` (a FleetConfig dict; None = defaults) with the shape's fields,
    no data path, no registry, the local backend, one seed, no report, signal_strength 0."""
    cfg = {k: dict(v) if isinstance(v, Mapping) else v for k, v in (base or {}).items()}
    for section in ("data", "synthetic", "validation", "labels", "model", "resources", "evaluation"):
        cfg.setdefault(section, {})
    cfg["data"].update(path=None, symbols=None, days=shape.days)
    cfg["synthetic"].update(signal_strength=0.0, n_clusters=shape.clusters,
                            assets_per_cluster=shape.assets // shape.clusters)
    cfg["validation"]["folds"] = shape.folds
    cfg["labels"]["horizon"] = shape.horizon
    cfg["model"]["experts"] = shape.experts.split(",")
    cfg["resources"].update(backend="local", address=None)
    cfg["evaluation"].update(seeds=1, report=False)
    cfg.update(strategy=shape.strategy, registry=None, out=None)
    return cfg


def noise_figures(shape: Shape, seed: int, workdir: Path, base: Mapping | None = None) -> dict[str, float]:
    """Train one pure-noise fleet of ``shape`` with ``seed`` (market and model) and return its :func:`figures`."""
    cfg = noise_config(shape, base)
    data = daily_noise_bars(shape, seed) if shape.bar == "1d" else None
    run = fleet.train(data, config=cfg, echo=None, seed=seed, out=str(workdir / f"seed{seed}"))
    return figures(run.predictions)


def measure(shape: Shape, seeds: Sequence[int], base: Mapping | None = None,
            echo: Callable[[str], None] | None = print) -> pd.DataFrame:
    """Per-seed figures of noise runs of ``shape``: one row per seed (``seed``, ``seconds``, :data:`FIGURES`,
    ``bars_per_block``), a progress line per seed through ``echo``."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="noise_floor_") as tmp:
        for i, seed in enumerate(seeds, 1):
            t0 = time.perf_counter()
            row = {"seed": seed, **noise_figures(shape, seed, Path(tmp), base)}
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            if echo:
                echo(f"  seed {seed:>3} ({i}/{len(seeds)}) {row['seconds']:5.0f} s  "
                     + "  ".join(f"{f} {row[f]:+.4f}" for f in FIGURES))
    return pd.DataFrame(rows)


# --- runs, CSV of floors ------------------------------------------------------------------------------------------

def shape_of_run(run) -> Shape:
    """The :class:`Shape` of a finished :class:`fleet.api.Run`: its assets, bar, folds, strategy, experts, horizon,
    columns and days (the config's ``data.days``, cut to the span its data cover)."""
    m, cfg = run.manifest, run.config
    bar = pd.Timedelta(m["data"]["bar"])
    names = [k for k, v in BARS.items() if v == bar]
    if not names:
        raise ValueError(f"{run.path}: bar {bar} has no noise floor here (expected 1h or 1d bars)")
    first = min(pd.Timestamp(t) for t in m["data"]["first"].values())
    last = max(pd.Timestamp(t) for t in m["data"]["last"].values())
    days = min(cfg.data.days, math.ceil((last - first) / pd.Timedelta(days=1)) + 1)
    assets = len(m["data"]["symbols"])
    synthetic = cfg.data.path is None and m["data"].get("source") == "synthetic"
    clusters = cfg.synthetic.n_clusters if synthetic and bar == BARS["1h"] else planted_clusters(assets)
    return Shape(bar=names[0], assets=assets, clusters=clusters, days=days, folds=cfg.validation.folds,
                 strategy=cfg.strategy.value, experts=",".join(cfg.model.experts), horizon=cfg.labels.horizon,
                 close_only=list(m["data"]["columns"]) == ["close"]).check()


def floor_row(shape: Shape, per_seed: pd.DataFrame, commit: str) -> dict:
    """One CSV row: the shape, date, commit, seeds, bars per block, and per figure its floor, se and sd."""
    row = {**asdict(shape), "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "commit": commit,
           "seeds": len(per_seed), "first_seed": int(per_seed["seed"].min()),
           "bars_per_block": float(per_seed["bars_per_block"].mean())}
    for r in floor_table(per_seed).itertuples():
        row.update({r.figure: r.floor, f"{r.figure}_se": r.floor_se, f"{r.figure}_sd": r.floor_sd})
    return row


def write_floor(path: Path, row: dict) -> None:
    """Add ``row`` to the floors CSV at ``path``, replacing a row of the same shape."""
    keys = [f.name for f in fields(Shape)]
    old = pd.read_csv(path) if path.is_file() else pd.DataFrame()
    if len(old):
        same = np.logical_and.reduce([old[k].astype(str) == str(row[k]) for k in keys])
        old = old[~same]
    pd.concat([old, pd.DataFrame([row])], ignore_index=True).to_csv(path, index=False, float_format="%.6g")


def read_floor(path: Path, shape: Shape) -> pd.DataFrame | None:
    """The :func:`floor_table` of ``shape`` from a floors CSV (``attrs``: bars_per_block, date, commit of the
    measurement), or None when the file has no row of that shape."""
    if not path.is_file():
        return None
    df = pd.read_csv(path)
    same = np.logical_and.reduce([df[f.name].astype(str) == str(getattr(shape, f.name)) for f in fields(Shape)])
    if not same.any():
        return None
    r = df[same].iloc[-1]
    table = pd.DataFrame([{"figure": f, "floor": r[f], "floor_se": r[f"{f}_se"], "floor_sd": r[f"{f}_sd"],
                           "seeds": int(r["seeds"])} for f in FIGURES])
    table.attrs.update(bars_per_block=float(r["bars_per_block"]), date=str(r["date"]), commit=str(r["commit"]))
    return table


def floor_for(shape: Shape, floors: Path | None = None, seeds: Sequence[int] = range(8), base: Mapping | None = None,
              out: Path | None = None, echo: Callable[[str], None] | None = print) -> pd.DataFrame:
    """The floor of ``shape``: read from the ``floors`` CSV when it has that shape, else measured on ``seeds`` (and
    added to ``out`` when given). ``attrs``: bars_per_block, date, commit, source ("csv" or "measured").

    Raises:
        FleetError: a noise run failed (e.g. too few days for the folds).
    """
    floor = read_floor(floors, shape) if floors is not None else None
    if floor is not None:
        floor.attrs["source"] = "csv"
        return floor
    seeds, code = list(seeds), commit()  # the code that measures, read before the runs
    if echo:
        echo(f"  measuring on {len(seeds)} pure-noise markets (signal_strength 0, seeds {seeds[0]}..{seeds[-1]}), "
             f"commit {code}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    per_seed = measure(shape, seeds, base, echo)
    row = floor_row(shape, per_seed, code)
    if out is not None:
        write_floor(out, row)
    floor = floor_table(per_seed)
    floor.attrs.update(bars_per_block=row["bars_per_block"], date=row["date"], commit=row["commit"], source="measured")
    return floor


def run_excess(run_dir: str | Path, floors: Path | None = None, seeds: Sequence[int] = range(8),
               echo: Callable[[str], None] | None = None) -> pd.DataFrame:
    """:func:`excess` of a finished run over the floor of its shape (:func:`shape_of_run`, :func:`floor_for` with
    the run's own config), for scripts that rank runs on the excess rather than the raw figure."""
    run = fleet.load_run(run_dir)
    floor = floor_for(shape_of_run(run), floors, seeds, run.config.to_dict(), echo=echo)
    return excess(figures(run.predictions), floor)


def commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# --- printing -----------------------------------------------------------------------------------------------------

def _fmt(v: float, se: float | None = None) -> str:
    if not np.isfinite(v):
        return "n/a"
    return f"{v:+.4f}" if se is None else f"{v:+.4f} +- {se:.4f}"


def print_floor(table: pd.DataFrame, bars_per_block: float) -> None:
    print(f"{'figure':<24} {'floor +- se':>18} {'sd (one run)':>13} {'seeds':>6}")
    for r in table.itertuples():
        print(f"{LABELS[r.figure]:<24} {_fmt(r.floor, r.floor_se):>18} {r.floor_sd:>13.4f} {r.seeds:>6}")
    print(f"bars per test block (mean over folds): {bars_per_block:.0f}")


def print_excess(table: pd.DataFrame) -> None:
    print(f"{'figure':<24} {'run':>8} {'floor +- se':>18} {'excess +- se':>18} {'z':>6}")
    for r in table.itertuples():
        z = f"{r.z:+.1f}" if np.isfinite(r.z) else "n/a"
        print(f"{LABELS[r.figure]:<24} {_fmt(r.value):>8} {_fmt(r.floor, r.floor_se):>18} "
              f"{_fmt(r.excess, r.excess_se):>18} {z:>6}")
    print("excess se = sqrt(floor se^2 + sd of one noise run^2): the run's own sampling noise is taken as the "
          "spread of one noise run of its shape")


def _parse(argv) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=int, default=10)
    ap.add_argument("--clusters", type=int, default=None, help="planted clusters (default: 3, 2 or 1, the largest "
                    "that divides --assets)")
    ap.add_argument("--days", type=int, default=None, help="calendar days of data (default: the spec's, else 365)")
    ap.add_argument("--bar", choices=sorted(BARS), default="1h", help="1d: daily weekday bars built from the "
                    "synthetic hourly ones")
    ap.add_argument("--folds", type=int, default=None, help="walk-forward folds (default: the spec's, else 3)")
    ap.add_argument("--strategy", default=None, help="default: the spec's, else hierarchical")
    ap.add_argument("--experts", default=None, help="A,B (default: the spec's, else trend)")
    ap.add_argument("--horizon", type=int, default=None, help="label horizon, bars (default: the spec's, else 4)")
    ap.add_argument("--spec", type=Path, default=None, help="a fleet spec YAML whose config the noise runs use "
                    "(e.g. fleet/equities20.yaml: its features, labels, embargo, clusters); its data path is ignored")
    ap.add_argument("--close-only", action="store_true", help="bars with a close only (as equities_1d)")
    ap.add_argument("--seeds", type=int, default=8, help="noise markets (seeds first-seed .. first-seed+N-1)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="floors CSV to add this shape's row to")
    ap.add_argument("--run", type=Path, default=None, help="a finished run: its figures beside the floor of its shape")
    ap.add_argument("--floors", type=Path, default=None, help="with --run: read the floor from this CSV when it has "
                    "the run's shape (else it is measured, and added to --out if given)")
    args = ap.parse_args(argv)
    if args.seeds < 2:
        ap.error("--seeds: need >= 2 noise seeds for a standard error")
    return args


def _cli_shape(args) -> tuple[dict | None, Shape]:
    """(base config, shape) from the flags; a flag left out takes the spec's value, else the audit's shape."""
    spec = resolve_config(args.spec) if args.spec else None

    def pick(flag, from_spec, default):
        return flag if flag is not None else (from_spec() if spec is not None else default)

    shape = Shape(bar=args.bar, assets=args.assets, clusters=args.clusters or planted_clusters(args.assets),
                  days=pick(args.days, lambda: spec.data.days, 365),
                  folds=pick(args.folds, lambda: spec.validation.folds, 3),
                  strategy=pick(args.strategy, lambda: spec.strategy.value, "hierarchical"),
                  experts=pick(args.experts, lambda: ",".join(spec.model.experts), "trend"),
                  horizon=pick(args.horizon, lambda: spec.labels.horizon, 4), close_only=args.close_only)
    return (spec.to_dict() if spec is not None else None), shape.check()


def main(argv=None) -> int:
    args = _parse(argv)
    run, base = None, None
    try:
        if args.run is not None:
            run = fleet.load_run(args.run)
            shape, base = shape_of_run(run), run.config.to_dict()
        else:
            base, shape = _cli_shape(args)
    except (ValueError, FleetError) as err:
        print(f"noise_floor.py: {err}", file=sys.stderr)
        return 2
    print(f"Noise floor: {shape.describe()}")
    print(f"  command: python benchmarks/noise_floor.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    try:
        floor = floor_for(shape, args.floors, range(args.first_seed, args.first_seed + args.seeds), base, args.out)
    except FleetError as err:
        print(f"noise_floor.py: the noise run failed: {err}", file=sys.stderr)
        return 2
    if floor.attrs["source"] == "csv":
        print(f"  floor read from {args.floors} ({int(floor['seeds'].iloc[0])} seeds, measured "
              f"{floor.attrs['date']} at commit {floor.attrs['commit']})")
    elif args.out is not None:
        print(f"  floors written to {args.out}")
    print()
    print_floor(floor, floor.attrs["bars_per_block"])
    if run is not None:
        values = figures(run.predictions)
        print(f"\nRun {run.path} (bars per test block {values['bars_per_block']:.0f}) beside the floor of its shape")
        print_excess(excess(values, floor))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
