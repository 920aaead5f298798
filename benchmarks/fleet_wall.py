"""Whole-run wall and driver memory of ``fleet train``: the local loop against the Ray task graph, side by side.

Each run is a fresh ``fleet train`` process (so Ray's own start counts); its driver's resident memory is sampled
every 0.1 s from ``/proc/PID/status`` (``VmHWM``: the peak RSS of the driver process only, Linux: Ray's workers are separate processes). For every
fleet size and backend the table gives:

* ``wall s``     the process from start to exit;
* ``train s``    the backend's training phase (``manifest.json["training"]["backend_seconds"]``);
* ``serial``     the driver's serial share = 1 - train s / wall s (loading, market fits when local, tables,
                 writing; with Ray the market fits are tasks but still wait for each other's results);
* ``peak MiB``   the driver's peak RSS;
* ``units`` / ``tasks``: from the manifest;
* ``ray/local``  the local wall divided by the Ray wall (> 1: Ray is faster).

Fleets are the built-in synthetic market (``synthetic.n_clusters`` x ``synthetic.assets_per_cluster`` assets)
unless ``--data`` is given. Bounded: one run per (size, backend), each under ``--timeout`` seconds.

Usage::

    python benchmarks/fleet_wall.py --sizes 10x10 --strategy islands --days 730 --folds 5
    python benchmarks/fleet_wall.py --sizes 1x10,10x10,10x30 --strategy global --backends ray
    python benchmarks/fleet_wall.py --data ../shared/data/crypto_1h --experts trend,pattern,stress,sde
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def _peak_rss(pid: int) -> int:
    """Peak resident set size of process ``pid`` so far, bytes (``VmHWM`` in /proc; 0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_once(args, backend: str, size: str | None, root: Path) -> dict:
    """One ``fleet train`` process; returns its figures (or an error)."""
    out = root / f"{backend}-{size or 'data'}"
    spec = {"strategy": args.strategy, "data": {"days": args.days}, "validation": {"folds": args.folds},
            "resources": {"backend": backend, "num_cpus": args.num_cpus}, "model": {"experts": args.experts.split(",")},
            "seed": args.seed}
    if size is not None:
        n_clusters, per_cluster = (int(v) for v in size.split("x"))
        spec["synthetic"] = {"n_clusters": n_clusters, "assets_per_cluster": per_cluster}
    if args.data:
        spec["data"]["path"] = str(Path(args.data).resolve())
    cfg = root / f"{out.name}.yaml"
    cfg.write_text(yaml.safe_dump(spec))
    cmd = [sys.executable, "-m", "fleet.cli", "train", "--config", str(cfg), "--out", str(out), "-q"]
    t0 = time.perf_counter()
    log = open(root / f"{out.name}.log", "w+")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _peak_rss(proc.pid))
        if time.perf_counter() - t0 > args.timeout:
            proc.kill()
            break
        time.sleep(0.1)
    proc.wait()
    wall = time.perf_counter() - t0
    log.seek(0)
    text = log.read()
    log.close()
    if proc.returncode != 0 or not (out / "manifest.json").exists():
        return {"backend": backend, "size": size, "error": (text.strip().splitlines() or ["?"])[-1][:120],
                "wall": wall}
    manifest = json.loads((out / "manifest.json").read_text())
    train = float(manifest["training"]["backend_seconds"])
    assets = len(list((out / "predictions").glob("*.parquet")))
    return {"backend": backend, "size": size, "assets": assets, "wall": wall, "train": train,
            "serial": 1 - train / wall, "peak_mib": peak / 2**20, "units": len(manifest["units"]),
            "tasks": len(manifest.get("tasks", []))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10x10", help="synthetic fleets, n_clusters x assets_per_cluster, comma-separated")
    ap.add_argument("--data", help="a data directory instead of the synthetic market (one size)")
    ap.add_argument("--strategy", default="islands", choices=["islands", "hierarchical", "global"])
    ap.add_argument("--experts", default="trend", help="comma-separated experts")
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per Ray step")
    ap.add_argument("--backends", default="local,ray")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    args = ap.parse_args()
    sizes = [None] if args.data else args.sizes.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="fleet-wall-") as tmp:
        for size in sizes:
            for backend in args.backends.split(","):
                r = run_once(args, backend, size, Path(tmp))
                rows.append(r)
                done = r.get("error") or f"{r['wall']:.1f} s"
                print(f"  {backend:<5} {size or args.data}: {done}", file=sys.stderr, flush=True)
    print(f"\nfleet train, {args.strategy}, experts {args.experts}, {args.days} d, {args.folds} folds, "
          f"num_cpus {args.num_cpus:g}, {os.cpu_count()} cores")
    print(f"{'fleet':<10} {'assets':>6} {'backend':<7} {'units':>5} {'tasks':>6} {'wall s':>8} {'train s':>8} "
          f"{'serial':>7} {'peak MiB':>9} {'ray/local':>9}")
    for r in rows:
        if "error" in r:
            print(f"{r['size'] or 'data':<10} {'':>6} {r['backend']:<7} FAILED after {r['wall']:.0f} s: {r['error']}")
            continue
        local = next((x for x in rows if x["size"] == r["size"] and x["backend"] == "local" and "error" not in x), None)
        ratio = f"{local['wall'] / r['wall']:.2f}x" if local and r["backend"] == "ray" else ""
        print(f"{r['size'] or 'data':<10} {r['assets']:>6} {r['backend']:<7} {r['units']:>5} {r['tasks']:>6} "
              f"{r['wall']:>8.1f} {r['train']:>8.1f} {r['serial']:>7.0%} {r['peak_mib']:>9.0f} {ratio:>9}")


if __name__ == "__main__":
    main()
