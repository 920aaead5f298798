"""A Gantt chart of a run's task graph: one lane per worker process, grouped by the resources Ray gave it.

Reads ``manifest.json["tasks"]`` (:func:`fleet.training.graph.task_record`): each step is a bar from its start to
its end on the lane of the worker (node, pid) that ran it; lanes holding a GPU come first. When every step ran in
one process (``--backend local``) the lanes are the units instead, so the run reads as the sequence it was rather
than one solid bar. Colour: CNN steps (kind 'gpu') against the other steps, with the phase written on bars wide
enough to hold it; the legend names only the kinds that ran. Overlap of CNN and tabular work shows as bars at the
same time on GPU and CPU lanes.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

COLOURS = {"gpu": "#d62728", "cpu": "#1f77b4", "unit": "#7f7f7f"}


def _lane(t: dict) -> tuple:
    res = t.get("resources") or {}
    gpu = float(res.get("GPU", 0.0))
    return (-gpu, str(t.get("node_id") or t.get("host") or ""), int(t.get("pid") or 0))


def plot_tasks(tasks: list[dict]):
    """Figure of the steps (see module docstring); ValueError when ``tasks`` is empty."""
    if not tasks:
        raise ValueError("plot_tasks: no task records (manifest.json has no 'tasks')")
    t0 = min(t["start_unix"] for t in tasks)
    one_process = len({_lane(t) for t in tasks}) == 1
    lane_of = (lambda t: (0.0, str(t.get("unit", "")), 0)) if one_process else _lane
    lanes = sorted({lane_of(t) for t in tasks})
    row = {lane: i for i, lane in enumerate(lanes)}
    fig, ax = plt.subplots(figsize=(11, max(3.5, 0.45 * len(lanes) + 1.6)))
    span = max(t["end_unix"] for t in tasks) - t0
    for t in tasks:
        start, width = t["start_unix"] - t0, max(t["end_unix"] - t["start_unix"], 1e-3)
        y = row[lane_of(t)]
        ax.barh(y, width, left=start, height=0.7, color=COLOURS.get(t.get("kind"), "#7f7f7f"), alpha=0.8,
                edgecolor="white", linewidth=0.3)
        if width > 0.06 * span:
            ax.text(start + width / 2, y, t["phase"] + (f" {t['expert']}" if t.get("expert") else ""),
                    ha="center", va="center", fontsize=7, color="white")
    ax.set_yticks(range(len(lanes)))
    if one_process:
        ax.set_yticklabels([f"unit {unit}" for _, unit, _ in lanes], fontsize=8)
        ax.set_title("All steps ran one after another in one process (local backend): one lane per unit",
                     fontsize=10)
    else:
        ax.set_yticklabels([f"{'GPU ' + format(-g, 'g') if g else 'CPU'} pid {pid}" for g, _, pid in lanes],
                           fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the first step started")
    kinds = {t.get("kind") for t in tasks}
    shown = [(COLOURS["gpu"], "CNN expert steps")] if "gpu" in kinds else []
    if kinds - {"gpu"}:
        shown.append((COLOURS["cpu"], "other steps (tabular experts, prepare, gate, assemble)"))
    ax.legend([plt.Rectangle((0, 0), 1, 1, color=c) for c, _ in shown], [label for _, label in shown],
              loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, fontsize=8)
    fig.tight_layout()
    return fig
