"""Training scaling benchmark: local loop vs Ray actors, fleet size, actor start-up and memory.

Prints four tables (bounded: every phase is a fixed small fleet; ~5 minutes on 2 cores):

1. **Units** — the same islands fleet (synthetic market, one fold, ``--unit-days`` days, heavier
   trees so a unit takes seconds) with 1, 2, 4 ... units, trained with ``--backend local`` and
   ``--backend ray``: wall of the training phase, speedup (local / ray), parallel efficiency
   = busy CPU-seconds of the units / (ray wall x cores), and Ray's overhead as a share of the ray
   wall = 1 - (sum of unit walls / actors) / ray wall (time not spent inside ``train_unit`` on the
   critical path: actor start-up, scheduling, transfers), split into *actor start s* (from the
   start of ``backend.run`` to each actor's first unit, mean over actors) and *other overhead*
   (the rest: scheduling, argument and result transfer, saving results, as a share of the ray wall);
   *whole run* columns: ``fleet train`` end to end (Ray's own start, ``ray.init``, falls outside
   ``backend.run`` and inside these).
2. **Fleet size** — islands fleets of 10 ... 120 synthetic assets (short units): wall and
   milliseconds per unit on both backends.
3. **Actor start-up** — a cold ``StepWorker`` actor (the task graph's worker) until ready (a fresh Python importing
   numpy/pandas/scikit-learn/statsmodels), and a warm call on it.
4. **Memory** (``--data``, default ``../shared/data/crypto_1h``) — peak RSS of the driver and of
   one actor for 2, 5 and 10 assets x 730 days (hierarchical, Ray), each in a fresh driver
   process, and how many times ``ray.put`` was called during the run.

Usage::

    python benchmarks/train_scaling.py
    python benchmarks/train_scaling.py --units 1,2,4,8 --sizes 10,50,100,120 --cpus 2
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _config(out: Path, *, assets: int, days: int, backend: str, heavy: bool, heavy_iter: int = 400):
    from fleet.config import FleetConfig

    trend = {"max_iter": heavy_iter, "min_samples_leaf": 50, "max_leaf_nodes": 31} if heavy else {"max_iter": 40}
    return FleetConfig.model_validate({
        "strategy": "islands", "seed": 0, "out": str(out),
        "data": {"days": days}, "synthetic": {"n_clusters": 1, "assets_per_cluster": assets},
        "validation": {"folds": 1}, "market": {"clusters": 1}, "model": {"trend": trend},
        "resources": {"backend": backend, "num_cpus": 1}})


def _one_thread() -> None:
    # Units are compared on one core each: scikit-learn's OpenMP threads would otherwise let the
    # local loop use every core and blur what the backend adds.
    os.environ["OMP_NUM_THREADS"] = "1"


def _train(cfg):
    from fleet.training.driver import run_fleet

    s = run_fleet(cfg, echo=lambda line: None)
    return s, json.loads((s.out / "manifest.json").read_text())


def units_table(unit_counts, days, cores, heavy_iter: int = 400) -> None:
    print(f"\n## 1. Units: islands fleet, {days} days, 1 fold, heavy trees ({heavy_iter} iterations); {cores} cores\n")
    print("| units | local s | ray s | speedup | efficiency | ray overhead | actor start s | other overhead | mean unit s "
          "| whole run local s | whole run ray s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    root = Path(tempfile.mkdtemp(prefix="fleet-scaling-"))
    for n in unit_counts:
        local, _ = _train(_config(root / f"l{n}", assets=n, days=days, backend="local", heavy=True,
                                      heavy_iter=heavy_iter))
        ray_s, manifest = _train(_config(root / f"r{n}", assets=n, days=days, backend="ray", heavy=True,
                                         heavy_iter=heavy_iter))
        units = manifest["units"]
        busy = sum(u["cpu_seconds"] for u in units)
        walls = sum(u["wall_seconds"] for u in units)
        actors = min(n, cores)
        eff = busy / (ray_s.train_seconds * cores)
        overhead = 1 - (walls / actors) / ray_s.train_seconds
        # Actor start-up: from the start of backend.run to each actor's first unit (mean over actors).
        t_run = manifest["training"]["backend_started_unix"]
        first: dict = {}
        for u in units:
            first[u["pid"]] = min(first.get(u["pid"], float("inf")), u["started_unix"])
        start = sum(t - t_run for t in first.values()) / len(first)
        other = overhead - start / ray_s.train_seconds
        print(f"| {n} | {local.train_seconds:.1f} | {ray_s.train_seconds:.1f} | "
              f"{local.train_seconds / ray_s.train_seconds:.2f} | {eff:.0%} | {overhead:.0%} | {start:.1f} | "
              f"{other:.0%} | {walls / n:.2f} | {local.wall_seconds:.1f} | {ray_s.wall_seconds:.1f} |", flush=True)


def sizes_table(sizes, cores) -> None:
    print(f"\n## 2. Fleet size: islands, 90 days, 1 fold, light trees; {cores} cores\n")
    print("| assets = units | local s | ms/unit local | ray s | ms/unit ray | speedup |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    root = Path(tempfile.mkdtemp(prefix="fleet-sizes-"))
    for n in sizes:
        local, _ = _train(_config(root / f"l{n}", assets=n, days=90, backend="local", heavy=False))
        ray_s, _ = _train(_config(root / f"r{n}", assets=n, days=90, backend="ray", heavy=False))
        print(f"| {n} | {local.train_seconds:.1f} | {1e3 * local.train_seconds / n:.0f} | {ray_s.train_seconds:.1f} | "
              f"{1e3 * ray_s.train_seconds / n:.0f} | {local.train_seconds / ray_s.train_seconds:.2f} |", flush=True)


def startup_table(cores) -> None:
    import ray

    from fleet.training.backends.ray_graph import StepWorker

    ray.init(num_cpus=cores, include_dashboard=False, logging_level="warning", log_to_driver=False)
    print("\n## 3. Actor start-up\n")
    print("| what | seconds |")
    print("| --- | ---: |")
    try:
        for i in range(3):
            t0 = time.perf_counter()
            actor = StepWorker.options(num_cpus=1).remote()
            ray.get(actor.__ray_ready__.remote())
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            ray.get(actor.__ray_call__.remote(lambda self: 0))
            warm = time.perf_counter() - t0
            print(f"| cold actor until ready (#{i + 1}) | {cold:.2f} |")
            print(f"| warm call on it (#{i + 1}) | {warm:.4f} |", flush=True)
            ray.kill(actor)
    finally:
        ray.shutdown()


def _peak_rss_child(data: str, symbols: int, report: str) -> None:
    """In a fresh process: one Ray run, driver and per-actor peak RSS, ray.put calls -> JSON at ``report``."""
    import ray

    from fleet.config import FleetConfig
    from fleet.training.driver import run_fleet
    from fleet.training.unit import train_unit

    names = sorted(Path(p).stem for p in glob.glob(os.path.join(data, "*.parquet")))[:symbols]
    rss_dir = tempfile.mkdtemp(prefix="fleet-rss-")

    def measured(unit, frames):  # runs in the actor (pickled by value from __main__)
        result = train_unit(unit, frames)
        Path(rss_dir, str(os.getpid())).write_text(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
        return result

    puts = []
    real_put = ray.put

    def counting_put(value, *a, **kw):
        puts.append(1)
        return real_put(value, *a, **kw)

    ray.put = counting_put
    cfg = FleetConfig.model_validate({"data": {"path": data, "symbols": names, "days": 730},
                                      "out": str(Path(tempfile.mkdtemp()) / "run"),
                                      "resources": {"backend": "ray", "num_cpus": 1}})
    t0 = time.perf_counter()
    s = run_fleet(cfg, echo=lambda line: None, train_fn=measured)
    actors = {p: int(Path(rss_dir, p).read_text()) for p in os.listdir(rss_dir)}
    Path(report).write_text(json.dumps({
        "assets": symbols, "units": s.units, "wall": time.perf_counter() - t0,
        "driver_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "actor_kib": max(actors.values()), "actors": len(actors), "puts": len(puts)}))


def memory_table(data: str, counts) -> None:
    print(f"\n## 4. Memory: {data}, 730 days, hierarchical, Ray\n")
    print("| assets | units | actors | driver peak RSS MiB | actor peak RSS MiB (max) | ray.put calls | wall s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in counts:
        report = tempfile.mktemp(suffix=".json")
        subprocess.run([sys.executable, __file__, "--memory-child", data, str(n), report], check=True)
        r = json.loads(Path(report).read_text())
        print(f"| {r['assets']} | {r['units']} | {r['actors']} | {r['driver_kib'] / 1024:.0f} | "
              f"{r['actor_kib'] / 1024:.0f} | {r['puts']} | {r['wall']:.1f} |", flush=True)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--memory-child":
        _peak_rss_child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--units", default="1,2,4", help="unit counts of table 1 (comma-separated)")
    ap.add_argument("--unit-days", type=int, default=730, help="days of synthetic data per asset in table 1")
    ap.add_argument("--unit-iter", type=int, default=400,
                    help="boosting iterations of table 1's heavy trees (sets how many seconds a unit takes)")
    ap.add_argument("--sizes", default="10,50,100,120", help="fleet sizes (assets) of table 2")
    ap.add_argument("--memory-assets", default="2,5,10", help="asset counts of table 4")
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "crypto_1h"),
                    help="real data for table 4 (skipped when missing)")
    ap.add_argument("--cpus", type=int, default=os.cpu_count(), help="cores (Ray gets as many logical CPUs)")
    ap.add_argument("--skip", default="", help="tables to skip, e.g. 2,4")
    args = ap.parse_args()
    _one_thread()
    os.environ.setdefault("RAY_NUM_CPUS", str(args.cpus))
    import ray

    skip = set(args.skip.split(","))
    print(f"# train_scaling  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  cores={args.cpus}  "
          f"ray={ray.__version__}  python={sys.version.split()[0]}")
    # One Ray for tables 1-2 with exactly --cpus logical CPUs (the backends join it).
    if not {"1", "2"} <= skip:
        ray.init(num_cpus=args.cpus, include_dashboard=False, logging_level="warning", log_to_driver=False)
        if "1" not in skip:
            units_table([int(x) for x in args.units.split(",")], args.unit_days, args.cpus, args.unit_iter)
        if "2" not in skip:
            sizes_table([int(x) for x in args.sizes.split(",")], args.cpus)
        ray.shutdown()
    if "3" not in skip:
        startup_table(args.cpus)
    if "4" not in skip:
        if Path(args.data).is_dir():
            memory_table(args.data, [int(x) for x in args.memory_assets.split(",")])
        else:
            print(f"\n## 4. Memory: skipped, {args.data} not found")


if __name__ == "__main__":
    main()
