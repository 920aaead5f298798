"""Whole-run wall, serial share and driver memory of ``fleet train``, with an Amdahl projection to more cores.

Each run is a fresh ``fleet train`` process (so Ray's own start counts); its driver's resident memory is sampled
every 0.1 s from ``/proc/PID/status`` (``VmHWM``: the peak RSS of the driver process only, Linux: Ray's workers are
separate processes). The process's wall runs from just before its start to its exit, both read with ``time.time()``
so that it lines up with the unit steps' ``start_unix`` / ``end_unix`` in ``manifest.json["tasks"]``. For every
strategy, fleet size and backend the table gives:

* ``wall s``       the process from start to exit;
* ``train s``      the backend's training phase (``manifest.json["training"]["backend_seconds"]``);
* ``1st step s``   launch -> the first unit step's start (imports, loading, market fits, ``ray.init``);
* ``tail s``       the last unit step's end -> exit (tables and writing the run);
* ``serial s``     the part of the wall during which no unit step runs: wall - |union of the steps' intervals|
                   (the intervals clipped to the process's wall);
* ``serial``       serial s / wall s;
* ``driver s``     the part of the wall during which no backend task runs at all, unit step or run-level task
                   (each fold's market fit, the batches that build the prediction files and tables:
                   ``manifest.json["run_tasks"]``): what the driver does alone; ``driver``: over the wall;
* ``steps s``      summed step time: sum over the unit steps' records of end_unix - start_unix;
* ``run tasks s``  the same over the run-level tasks;
* ``max step s``   the longest single step;
* ``x16``, ``x64`` Amdahl's projection to n cores, from the driver's serial time S (``driver s``) and all the
                   backend work W (``steps s`` + ``run tasks s``):
                   one core runs every step in turn, T(1) = S + W; n cores, the steps spread evenly and S unchanged,
                   T(n) = S + W / n; speed-up = T(1) / T(n) = (S + W) / (S + W / n). This is Amdahl's law
                   1 / (s + (1 - s) / n) with the serial fraction s = S / (S + W) of the one-core time (not of the
                   measured wall, in which the steps already overlap). A ``*`` marks a projection that no scheduler
                   can reach because W / n is shorter than the longest step (T(n) >= S + max step);
* ``peak MiB``     the driver's peak RSS;
* ``units`` / ``tasks``: from the manifest;
* ``ray/local``    the local wall divided by the Ray wall of the same strategy and fleet (> 1: Ray is faster).

Below the table, per strategy and backend over its fleet sizes: the driver's memory growth, the least-squares line
peak MiB = a + b x assets (``scipy.stats.linregress``), printed as b MiB per asset (with its standard error from
three sizes on) and the intercept a.

The step times are each step's wall as it ran on this machine: with the local backend a step's fit may use every
core through OpenMP, and on a loaded machine steps wait for each other, so W is the work as measured here, not a
one-core time; the projection also takes the steps' and the serial part's times as they were here.

Fleets are the built-in synthetic market (``synthetic.n_clusters`` x ``synthetic.assets_per_cluster`` assets)
unless ``--data`` is given. Bounded: one run per (strategy, size, backend), each under ``--timeout`` seconds.

Usage::

    python benchmarks/fleet_wall.py --sizes 10x10 --strategy islands --days 730 --folds 5
    python benchmarks/fleet_wall.py --sizes 1x10,10x10,10x30,10x100 --strategy global,hierarchical,islands \\
        --backends ray --days 365 --folds 3
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

STRATEGIES = ("islands", "hierarchical", "global")


def union_seconds(intervals) -> float:
    """Length of the union of [start, end) intervals, seconds (overlaps counted once; empty -> 0)."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def wall_split(tasks: list[dict], started_unix: float, ended_unix: float) -> dict:
    """How a process's wall divides between unit steps and the driver alone.

    Args:
        tasks: ``manifest.json["tasks"]`` records, each with ``start_unix`` / ``end_unix`` (seconds since the epoch).
        started_unix / ended_unix: the process's start and exit, seconds since the epoch.

    Returns:
        ``wall`` (s), ``busy`` (|union of the steps' intervals clipped to the wall|, s), ``serial`` (wall - busy, s),
        ``serial_share`` (serial / wall), ``first_step`` (first start - launch, s), ``tail`` (exit - last end, s),
        ``steps`` (summed step time, s: sum of end - start), ``max_step`` (s). With no record every second is serial
        and first_step / tail are NaN.

    Raises:
        ValueError: when ``ended_unix`` is not after ``started_unix``, or a record ends before it starts.
    """
    wall = ended_unix - started_unix
    if not wall > 0:
        raise ValueError(f"ended_unix must be after started_unix, got a wall of {wall} s")
    spans = [(float(t["start_unix"]), float(t["end_unix"])) for t in tasks]
    bad = [s for s in spans if s[1] < s[0]]
    if bad:
        raise ValueError(f"a task record ends before it starts: start_unix, end_unix = {bad[0]}")
    clipped = [(max(s, started_unix), min(e, ended_unix)) for s, e in spans]
    busy = union_seconds([(s, e) for s, e in clipped if e > s])
    nan = float("nan")
    return {"wall": wall, "busy": busy, "serial": wall - busy, "serial_share": (wall - busy) / wall,
            "first_step": min(s for s, _ in spans) - started_unix if spans else nan,
            "tail": ended_unix - max(e for _, e in spans) if spans else nan,
            "steps": sum(e - s for s, e in spans), "max_step": max((e - s for s, e in spans), default=0.0)}


def amdahl(serial: float, steps: float, cores: int) -> tuple[float, float]:
    """Amdahl's projection (Amdahl 1967) of a run to ``cores`` cores: (projected wall s, speed-up over one core).

    T(1) = serial + steps (one core runs every step in turn); T(n) = serial + steps / n (the steps spread evenly,
    the serial part unchanged); speed-up = T(1) / T(n), i.e. 1 / (s + (1 - s) / n) with s = serial / T(1).

    Raises:
        ValueError: for cores < 1, a negative time, or no time at all.
    """
    if cores < 1 or serial < 0 or steps < 0 or serial + steps <= 0:
        raise ValueError(f"need cores >= 1 and non-negative serial / steps seconds, not all zero; got "
                         f"cores={cores}, serial={serial}, steps={steps}")
    wall = serial + steps / cores
    return wall, (serial + steps) / wall


def memory_slope(assets, peak_mib) -> dict:
    """Least-squares line peak MiB = intercept + slope x assets (``scipy.stats.linregress``).

    Returns:
        ``slope`` (MiB per asset), ``intercept`` (MiB), ``slope_se`` (standard error of the slope, MiB per asset;
        NaN with two sizes, where the line fits exactly), ``n`` (points).

    Raises:
        ValueError: with fewer than two distinct asset counts.
    """
    from scipy.stats import linregress

    x, y = [float(a) for a in assets], [float(m) for m in peak_mib]
    if len(x) != len(y) or len(set(x)) < 2:
        raise ValueError(f"need peak memory at two or more distinct fleet sizes, got assets={x}")
    fit = linregress(x, y)
    return {"slope": float(fit.slope), "intercept": float(fit.intercept),
            "slope_se": float(fit.stderr) if len(x) > 2 else float("nan"), "n": len(x)}


def _peak_rss(pid: int) -> int:
    """Peak resident set size of process ``pid`` so far, bytes (``VmHWM`` in /proc; 0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _spec(args, strategy: str, backend: str, size: str | None) -> dict:
    spec = {"strategy": strategy, "data": {"days": args.days}, "validation": {"folds": args.folds},
            "resources": {"backend": backend, "num_cpus": args.num_cpus},
            "model": {"experts": args.experts.split(",")}, "seed": args.seed}
    if size is not None:
        n_clusters, per_cluster = (int(v) for v in size.split("x"))
        spec["synthetic"] = {"n_clusters": n_clusters, "assets_per_cluster": per_cluster}
    if args.data:
        spec["data"]["path"] = str(Path(args.data).resolve())
    return spec


def _watch(cmd: list[str], log_path: Path, timeout: float) -> tuple[int, float, float, int, str]:
    """Run ``cmd``; returns (return code, start unix, exit unix, the driver's peak RSS bytes, its output)."""
    with open(log_path, "w+") as log:
        started = time.time()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
        peak = 0
        while True:
            peak = max(peak, _peak_rss(proc.pid))
            try:  # returns as soon as the process exits, so the exit time is not a sampling step late
                proc.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                if time.time() - started > timeout:
                    proc.kill()
        ended = time.time()
        log.seek(0)
        return proc.returncode, started, ended, peak, log.read()


def run_once(args, strategy: str, backend: str, size: str | None, root: Path) -> dict:
    """One ``fleet train`` process; returns its figures (or an error)."""
    out = root / f"{strategy}-{backend}-{size or 'data'}"
    cfg = root / f"{out.name}.yaml"
    cfg.write_text(yaml.safe_dump(_spec(args, strategy, backend, size)))
    cmd = [sys.executable, "-m", "fleet.cli", "train", "--config", str(cfg), "--out", str(out), "-q"]
    rc, started, ended, peak, text = _watch(cmd, root / f"{out.name}.log", args.timeout)
    row = {"strategy": strategy, "backend": backend, "size": size, "wall": ended - started}
    if rc != 0 or not (out / "manifest.json").exists():
        return {**row, "error": (text.strip().splitlines() or ["?"])[-1][:120]}
    manifest = json.loads((out / "manifest.json").read_text())
    tasks = manifest.get("tasks", [])
    split = wall_split(tasks, started, ended)
    run_tasks = manifest.get("run_tasks", [])
    # With the run-level backend tasks too (market fits, output batches): what the driver does alone.
    every = wall_split(tasks + run_tasks, started, ended)
    row.update(split, assets=len(list((out / "predictions").glob("*.parquet"))), peak_mib=peak / 2**20,
               train=float(manifest["training"]["backend_seconds"]), units=len(manifest["units"]),
               tasks=len(tasks) + len(run_tasks), driver_serial=every["serial"],
               driver_share=every["serial_share"], run_steps=every["steps"] - split["steps"])
    for n in args.cores:
        row[f"x{n}"] = amdahl(every["serial"], every["steps"], n)[1] if every["steps"] > 0 else float("nan")
        row[f"capped{n}"] = every["steps"] / n < every["max_step"]
    return row


def _table(rows: list[dict], cores: list[int]) -> list[str]:
    """The markdown table of :func:`run_once`'s rows."""
    head = ["strategy", "fleet", "assets", "backend", "units", "tasks", "wall s", "train s", "1st step s", "tail s",
            "serial s", "serial", "driver s", "driver", "steps s", "run tasks s", "max step s",
            *[f"x{n}" for n in cores], "peak MiB", "ray/local"]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" if h in ("strategy", "fleet", "backend")
                                                             else "---:" for h in head) + " |"]
    for r in rows:
        fleet = r["size"] or "data"
        if "error" in r:
            lines.append(f"| {r['strategy']} | {fleet} | | {r['backend']} | FAILED after {r['wall']:.0f} s: "
                         f"{r['error']} |")
            continue
        local = next((x for x in rows if (x["strategy"], x["size"], x["backend"]) == (r["strategy"], r["size"], "local")
                      and "error" not in x), None)
        ratio = f"{local['wall'] / r['wall']:.2f}x" if local and r["backend"] == "ray" else ""
        proj = [f"{r[f'x{n}']:.1f}x" + ("*" if r[f"capped{n}"] else "") for n in cores]
        cells = [r["strategy"], fleet, r["assets"], r["backend"], r["units"], r["tasks"], f"{r['wall']:.1f}",
                 f"{r['train']:.1f}", f"{r['first_step']:.1f}", f"{r['tail']:.1f}", f"{r['serial']:.1f}",
                 f"{r['serial_share']:.0%}", f"{r['driver_serial']:.1f}", f"{r['driver_share']:.0%}",
                 f"{r['steps']:.1f}", f"{r['run_steps']:.1f}", f"{r['max_step']:.1f}", *proj,
                 f"{r['peak_mib']:.0f}", ratio]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def _memory_lines(rows: list[dict]) -> list[str]:
    """Per (strategy, backend) with two or more fleet sizes: the driver's memory line over the sizes."""
    lines = []
    for key in dict.fromkeys((r["strategy"], r["backend"]) for r in rows):
        ok = [r for r in rows if (r["strategy"], r["backend"]) == key and "error" not in r]
        if len({r["assets"] for r in ok}) < 2:
            continue
        fit = memory_slope([r["assets"] for r in ok], [r["peak_mib"] for r in ok])
        se = "" if fit["slope_se"] != fit["slope_se"] else f" ± {fit['slope_se']:.2f}"
        lines.append(f"driver memory, {key[0]}, {key[1]}: {fit['slope']:.2f}{se} MiB per asset + {fit['intercept']:.0f}"
                     f" MiB (least squares over {fit['n']} sizes, {min(r['assets'] for r in ok)}-"
                     f"{max(r['assets'] for r in ok)} assets)")
    return lines


def _footer(cores: list[int]) -> str:
    xs = ", ".join(f"x{n}" for n in cores)
    return (f"serial = wall - |union of the unit steps' [start, end)|, over wall; driver = the same with the run-level "
            f"backend tasks (market fits, output batches: manifest run_tasks) counted as busy, i.e. the driver alone; "
            f"steps = sum of end - start over the unit steps, run tasks s the same over the run-level tasks. "
            f"{xs}: Amdahl from the driver's serial time S and all backend work W (steps + run tasks), "
            f"(S + W) / (S + W / n) for n cores (one core runs every "
            f"step in turn; the steps spread evenly, the serial part unchanged); * where steps / n is shorter than "
            f"the longest step, so no scheduler reaches it.")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10x10",
                    help="synthetic fleets, n_clusters x assets_per_cluster, comma-separated")
    ap.add_argument("--data", help="a data directory instead of the synthetic market (one size)")
    ap.add_argument("--strategy", default="islands", help=f"comma-separated, of {', '.join(STRATEGIES)}")
    ap.add_argument("--experts", default="trend", help="comma-separated experts")
    ap.add_argument("--days", type=int, default=730)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--num-cpus", type=float, default=1.0, help="CPUs per Ray step")
    ap.add_argument("--backends", default="local,ray", help="comma-separated, of local, ray")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    ap.add_argument("--cores", default="16,64", help="comma-separated core counts for the Amdahl projection")
    ap.add_argument("--keep", help="write the runs (configs, logs, run directories) here instead of a temporary "
                                   "directory that is removed at the end")
    args = ap.parse_args(argv)
    args.strategies = [s.strip() for s in args.strategy.split(",")]
    unknown = [s for s in args.strategies if s not in STRATEGIES]
    if unknown:
        ap.error(f"--strategy: unknown {unknown}; expected a comma-separated list of {', '.join(STRATEGIES)}")
    args.backend_list = [b.strip() for b in args.backends.split(",")]
    if any(b not in ("local", "ray") for b in args.backend_list):
        ap.error(f"--backends: expected a comma-separated list of local, ray; got {args.backends!r}")
    try:
        args.cores = [int(n) for n in args.cores.split(",")]
    except ValueError:
        ap.error(f"--cores: expected comma-separated integers, got {args.cores!r}")
    if any(n < 1 for n in args.cores):
        ap.error(f"--cores: every core count must be >= 1, got {args.cores}")
    return args


def main(argv=None) -> list[dict]:
    """Run every (strategy, size, backend), print the table; returns the rows."""
    args = parse_args(argv)
    sizes = [None] if args.data else args.sizes.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="fleet-wall-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for strategy in args.strategies:
            for size in sizes:
                for backend in args.backend_list:
                    r = run_once(args, strategy, backend, size, root)
                    rows.append(r)
                    done = r.get("error") or f"{r['wall']:.1f} s"
                    print(f"  {strategy:<12} {backend:<5} {size or args.data}: {done}", file=sys.stderr, flush=True)
    print(f"\nfleet train, experts {args.experts}, {args.days} d, {args.folds} folds, num_cpus {args.num_cpus:g}, "
          f"{os.cpu_count()} cores\n")
    print("\n".join(_table(rows, args.cores)))
    print("\n" + _footer(args.cores))
    for line in _memory_lines(rows):
        print(line)
    return rows


if __name__ == "__main__":
    main()
