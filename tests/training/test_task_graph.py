"""Each unit's mixture as a task graph: parity with the in-process graph and with the plain mixture fit,
placement of CNN steps on GPU-requesting workers beside tabular steps (logical GPUs), and a SIGKILLed worker.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fleet.config import FleetConfig
from fleet.evaluation.splits import PurgedWalkForward
from fleet.features.spec import FeatureSpec
from fleet.models.factory import build_model
from fleet.training.dataset import build_unit_dataset
from fleet.market.fold import fit_fold_market
from fleet.training.driver import load_inputs, run_fleet
from fleet.training.graph import unit_graph
from fleet.training.plan import plan_fold
from fleet.training.unit import train_unit

SMALL_CNN = {"epochs": 1, "max_train_windows": 256, "hidden": 4, "levels": 1}


def _config(experts, out=None, backend="local", strategy="islands", trend_iter=30, **kw) -> FleetConfig:
    return FleetConfig.model_validate({
        "data": {"days": 120}, "validation": {"folds": 2}, "strategy": strategy, "seed": 4,
        "synthetic": {"n_clusters": 1, "assets_per_cluster": 2}, "out": None if out is None else str(out),
        "model": {"experts": experts, "moe": {"min_inner_rows": 50}, "trend": {"max_iter": trend_iter}, "pattern": SMALL_CNN},
        "resources": {"backend": backend, "num_cpus": 1, "cnn_num_gpus": 0.5}, "evaluation": {"report": False}, **kw})


def _units(cfg: FleetConfig):
    panel, _ = load_inputs(cfg, echo=lambda s: None)
    ts = pd.DatetimeIndex(sorted(set().union(*(f.index for f in panel.frames.values()))))
    folds = PurgedWalkForward(2, horizon=4, embargo_bars=8, bar=panel.bar).folds(ts)
    units = []
    for fold in folds:
        fm = fit_fold_market(panel, fold, cfg)
        units += plan_fold(config=cfg, features=FeatureSpec.from_config(cfg), fold=fold, timeline_end=ts.max(),
                           asset_ids={s: i for i, s in enumerate(panel.symbols)}, cluster_of=fm.clusters.cluster_map,
                           factor=fm.factor, is_final=False)
    return units, panel.frames


def test_graph_shape_and_resource_kinds():
    cfg = _config(["trend", "pattern", "stress"])
    units, _ = _units(cfg)
    tasks = unit_graph(units[0])
    phases = [t.phase for t in tasks]
    assert phases.count("inner") == 3 * cfg.model.moe.inner_folds and phases.count("full") == 3
    assert phases[0] == "prepare" and phases[-1] == "assemble" and tasks[-1].last
    assert {t.kind for t in tasks if t.expert == "pattern"} == {"gpu"}
    assert {t.kind for t in tasks if t.expert != "pattern"} == {"cpu"}
    gate = next(t for t in tasks if t.phase == "gate")
    assert all(("full" not in k) for k in gate.deps)  # the gate waits for the inner fits only
    one = unit_graph(_units(_config(["trend"]))[0][0])
    assert [t.phase for t in one] == ["prepare", "full", "assemble"]


def test_in_process_graph_equals_the_plain_mixture_fit():
    """The graph's steps, composed per task, give what MixtureOfExpertsEnsemble.fit gives in one call."""
    cfg = _config(["trend", "stress", "sde"])
    units, frames = _units(cfg)
    unit = units[-1]
    result = train_unit(unit, frames)
    ds = build_unit_dataset(assets=unit.assets, frames=frames, fold=unit.fold, timeline_end=unit.timeline_end,
                            factor=unit.factor, features=unit.features)
    model = build_model(cfg.model, seed=unit.seed, horizon=cfg.labels.horizon, embargo=cfg.validation.embargo_bars,
                        num_threads=1).fit(ds.X_train, ds.y_train)
    p, P, W = model.predict_details(ds.X_test)
    np.testing.assert_allclose(result.predictions["p_up"].to_numpy(), p, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.predictions["p_stress"].to_numpy(), P[:, 1], rtol=0, atol=1e-12)
    assert len(result.tasks) == 1 + 3 * 3 + 1 + 3 + 1
    assert {r["phase"] for r in result.tasks} == {"prepare", "inner", "gate", "full", "assemble"}


def _overlaps(a: dict, b: dict) -> bool:
    return a["start_unix"] < b["end_unix"] and b["start_unix"] < a["end_unix"]


@pytest.mark.slow
def test_cnn_steps_on_gpu_workers_overlap_gbm_steps_and_equal_local(tmp_path, ray_session):
    """Logical GPUs (ray.init(num_gpus=1)): CNN steps only on GPU-requesting workers, GBM steps on CPU-only
    workers, at least one CNN interval overlapping a GBM interval, and every prediction equal to the local
    backend's to 1e-9."""
    # Trees heavy enough that the CPU steps outlast the GPU worker's start (a GPU-shaped worker is a fresh process
    # that loads torch first: its first step starts ~3 s after the first CPU step here).
    local = run_fleet(_config(["trend", "pattern"], tmp_path / "local", trend_iter=1200), echo=lambda s: None)
    remote = run_fleet(_config(["trend", "pattern"], tmp_path / "ray", backend="ray", trend_iter=1200),
                       echo=lambda s: None)
    tasks = json.loads((remote.out / "manifest.json").read_text())["tasks"]
    assert len(tasks) == 4 * (1 + 2 * 3 + 1 + 2 + 1)
    cnn = [t for t in tasks if t["expert"] == "pattern"]
    other = [t for t in tasks if t["expert"] != "pattern"]
    assert cnn and all(t["resources"].get("GPU") == pytest.approx(0.5) for t in cnn)
    assert all(t["resources"].get("GPU", 0) == 0 for t in other)
    assert not {t["pid"] for t in cnn} & {t["pid"] for t in other}  # separate worker processes
    gbm = [t for t in tasks if t["expert"] == "trend"]
    assert any(_overlaps(c, g) for c in cnn for g in gbm)
    for f in sorted((local.out / "predictions").glob("*.parquet")):
        a, b = pd.read_parquet(f), pd.read_parquet(remote.out / "predictions" / f.name)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-9)


def _descendants(root: int) -> set[int]:
    """Processes below ``root`` (from /proc): the test kills only workers of the Ray it started."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    out, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - out
        out |= frontier
    return out


def _busy_step_workers() -> list[int]:
    pids = []
    for pid in _descendants(os.getpid()):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if title.startswith(b"ray::StepWorker.run"):
            pids.append(pid)
    return pids


@pytest.mark.slow
def test_sigkilled_step_worker_mid_graph_gives_identical_results(tmp_path, ray_session):
    """A worker SIGKILLed while it runs a step: Ray restarts the actor and re-runs the step (max_restarts /
    max_task_retries), and the run equals a clean local run."""
    experts = ["trend", "stress", "sde"]
    clean = run_fleet(_config(experts, tmp_path / "clean"), echo=lambda s: None)
    killed: list[int] = []
    stop = threading.Event()

    def killer():
        while not stop.is_set() and not killed:
            busy = _busy_step_workers()
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        run = run_fleet(_config(experts, tmp_path / "ray", backend="ray"), echo=lambda s: None)
    finally:
        stop.set()
        thread.join()
    assert killed, "no step worker was seen running"
    tasks = json.loads((run.out / "manifest.json").read_text())["tasks"]
    assert len(tasks) == 4 * (1 + 3 * 3 + 1 + 3 + 1)
    for f in sorted((clean.out / "predictions").glob("*.parquet")):
        a, b = pd.read_parquet(f), pd.read_parquet(run.out / "predictions" / f.name)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=0, atol=1e-9)


def test_cnn_num_gpus_flag_sets_the_cnn_steps_request():
    from click.testing import CliRunner

    from fleet.cli import main
    from fleet.config import dotted_overrides, load_config
    from fleet.training.backends.ray_backend import RayBackend

    assert "--cnn-num-gpus" in CliRunner().invoke(main, ["train", "--help"]).output
    cfg = load_config(None, dotted_overrides({"cnn_num_gpus": 0.25, "experts": "trend,pattern"}))
    assert cfg.resources.cnn_num_gpus == 0.25
    small = _config(["trend", "pattern"])
    units, _ = _units(small.model_copy(update={"resources": small.resources.model_copy(update={"cnn_num_gpus": 0.25})}))
    tasks = {t.phase + str(t.expert): t for t in unit_graph(units[0])}
    backend = RayBackend(num_cpus=1)
    assert backend.task_shape(tasks["fullpattern"], cluster_gpus=1) == (1, 0.25)
    assert backend.task_shape(tasks["fulltrend"], cluster_gpus=1) == (1, 0.0)
    assert backend.task_shape(tasks["fullpattern"], cluster_gpus=0) == (1, 0.0)


def test_a_unit_that_cannot_train_is_refused_before_any_preparation(tmp_path, monkeypatch):
    from fleet.errors import ConfigError
    from fleet.models import trend
    from fleet.training import graph

    monkeypatch.setattr(trend, "lightgbm_available", lambda: False)

    def never(**kw):
        raise AssertionError("a unit was prepared")

    monkeypatch.setattr(graph, "build_unit_dataset", never)
    cfg = _config(["trend", "stress"], tmp_path / "run")
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={
        "trend": cfg.model.trend.model_copy(update={"learner": "lightgbm"})})})
    with pytest.raises(ConfigError, match="expert 'trend' cannot train .*lightgbm.*refused before any unit is prepared"):
        run_fleet(cfg, echo=lambda s: None)
    assert not (tmp_path / "run").exists()


def test_console_cluster_summary_shows_sizes_and_first_members():
    from fleet.market.fold import fmt_cluster_map as _fmt_cluster_map

    members = {c: [f"S{c}_{i:02d}" for i in range(30)] for c in range(10)}
    clusters = type("C", (), {"members": members, "dominant_cluster": 2})()
    line = _fmt_cluster_map(clusters)
    assert line.startswith("0: 30 (S0_00, S0_01, S0_02, ... +27)") and "2*: 30" in line
    assert "S0_03" not in line and line.endswith("... +2 clusters (clusters.json)")


def test_gantt_has_one_lane_per_worker_gpu_lanes_first():
    from fleet.evaluation.gantt import plot_tasks

    rec = lambda pid, gpu, kind, s, e: {"unit": "u", "phase": "inner", "expert": "x", "kind": kind, "pid": pid,  # noqa
                                        "node_id": "n", "resources": {"CPU": 1.0, **({"GPU": gpu} if gpu else {})},
                                        "start_unix": s, "end_unix": e}
    fig = plot_tasks([rec(1, 0, "cpu", 0, 1), rec(2, 0.5, "gpu", 0.5, 2), rec(1, 0, "cpu", 1, 3)])
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["GPU 0.5 pid 2", "CPU pid 1"]
    assert len(fig.axes[0].patches) >= 3
    with pytest.raises(ValueError, match="no task records"):
        plot_tasks([])
