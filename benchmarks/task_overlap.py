"""Placement and overlap of a run's task graph, from its manifest.json["tasks"].

    python benchmarks/task_overlap.py RUN_DIR_OR_MANIFEST

Prints: steps per phase; for CNN steps (kind 'gpu') and the other steps: count, the GPU fraction Ray gave
them, busy seconds (union of their intervals); the seconds when a CNN step and a tabular step ran at the same
time; the most steps of each kind running at once; whether every CNN step held a GPU and no other step did
(meaningful on a cluster with GPUs). Intervals are [start_unix, end_unix) of each step.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of [start, end) intervals, seconds."""
    total, end = 0.0, float("-inf")
    for s, e in sorted(intervals):
        if e <= end:
            continue
        total += e - max(s, end)
        end = e
    return total


def both_seconds(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    """Seconds during which at least one interval of ``a`` and one of ``b`` are open: |A| + |B| - |A u B|."""
    return union_seconds(a) + union_seconds(b) - union_seconds(a + b)


def max_concurrent(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = best = 0
    for _, d in events:
        now += d
        best = max(best, now)
    return best


def summary(tasks: list[dict]) -> dict:
    """The figures printed by :func:`main`, as a dict."""
    cnn = [t for t in tasks if t.get("kind") == "gpu"]
    other = [t for t in tasks if t.get("kind") != "gpu"]
    iv = lambda ts: [(t["start_unix"], t["end_unix"]) for t in ts]  # noqa: E731
    gpu = lambda t: float((t.get("resources") or {}).get("GPU", 0.0))  # noqa: E731
    phases: dict[str, int] = {}
    for t in tasks:
        phases[t["phase"]] = phases.get(t["phase"], 0) + 1
    span = (max(t["end_unix"] for t in tasks) - min(t["start_unix"] for t in tasks)) if tasks else 0.0
    return {"tasks": len(tasks), "phases": phases, "span_s": span,
            "cnn": {"n": len(cnn), "busy_s": union_seconds(iv(cnn)), "max_at_once": max_concurrent(iv(cnn)),
                    "gpu_fractions": sorted({gpu(t) for t in cnn})},
            "other": {"n": len(other), "busy_s": union_seconds(iv(other)), "max_at_once": max_concurrent(iv(other)),
                      "gpu_fractions": sorted({gpu(t) for t in other})},
            "overlap_s": both_seconds(iv(cnn), iv(other)),
            "placement_ok": all(gpu(t) > 0 for t in cnn) and all(gpu(t) == 0 for t in other)}


def main(path: str) -> None:
    p = Path(path)
    manifest = json.loads((p / "manifest.json" if p.is_dir() else p).read_text())
    s = summary(manifest.get("tasks", []))
    print(f"tasks: {s['tasks']} over {s['span_s']:.1f} s; per phase: {s['phases']}")
    for k in ("cnn", "other"):
        v = s[k]
        print(f"  {k:<5}: {v['n']:>5} steps, busy {v['busy_s']:8.1f} s, at most {v['max_at_once']} at once, "
              f"GPU fractions {v['gpu_fractions']}")
    print(f"  CNN and tabular steps running at the same time: {s['overlap_s']:.1f} s")
    print(f"  placement (CNN steps hold a GPU, the others none): {'yes' if s['placement_ok'] else 'NO'}")


if __name__ == "__main__":
    main(sys.argv[1])
