"""RayBackend.start: Ray connects and warm actors start in a background thread while the driver loads; the
market fits (``map``) run on those actors in the items' order, a run takes them over, and close() leaves nothing
behind. One slow test starts its own Ray from `fleet train` (the thread that starts Ray must outlive it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fleet.errors import DataError

ray = pytest.importorskip("ray")


def _functions():
    """Functions for the actors, made here so that cloudpickle sends them by value (workers cannot import a test
    module)."""
    def pid_of(k: int) -> tuple[int, int]:
        import os

        return k, os.getpid()

    def refuse(k: int) -> None:
        if k == 2:
            raise DataError("item 2 is refused")

    return pid_of, refuse


_pid_of, _refuse = _functions()


@pytest.fixture
def backend(ray_session):
    from fleet.training.backends.ray_backend import RayBackend

    b = RayBackend(num_cpus=1)
    b.start()
    yield b
    b.close()


def test_map_runs_on_the_warm_actors_in_the_items_order(backend):
    backend.describe()  # waits for the start thread
    warm = list(backend._warm)
    assert len(warm) == 2  # one per CPU slot of the session's 2-CPU Ray
    actor_pids = {ray.get(a.call.remote(_pid_of, {}, {"k": 0}))[1] for a in warm}
    out = backend.map(_pid_of, [{"k": k} for k in range(7)], {})
    assert [k for k, _ in out] == list(range(7))
    assert {pid for _, pid in out} <= actor_pids and os.getpid() not in actor_pids


def test_an_error_in_one_item_is_raised_as_itself(backend):
    with pytest.raises(DataError, match="item 2 is refused"):
        backend.map(_refuse, [{"k": k} for k in range(4)], {})


def test_close_kills_the_actors_no_run_took(ray_session):
    from fleet.training.backends.ray_backend import RayBackend

    b = RayBackend(num_cpus=1)
    b.start()
    b.describe()
    warm = list(b._warm)
    b.close()
    for actor in warm:
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(actor.call.remote(_pid_of, {}, {"k": 0}), timeout=60)
    assert ray.is_initialized()  # a Ray this backend did not start is left running


def test_a_run_with_gpu_steps_on_a_gpu_cluster_starts_no_actor_ahead(ray_session):
    from fleet.training.backends.ray_backend import RayBackend

    b = RayBackend(num_cpus=1)
    b.start(gpu_steps=True)  # the session's Ray has one (logical) GPU
    b.describe()
    assert b._warm == []
    b.close()


@pytest.mark.slow
def test_fleet_train_starts_its_own_ray_in_the_background(tmp_path):
    """`fleet train --backend ray` with no cluster to join: Ray is started by the start thread (its head processes
    die when the thread that started them ends, so the thread must live until close), and the market fits and the
    steps run in the same warm actors."""
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONUNBUFFERED": "1"}
    spec = tmp_path / "spec.yaml"
    spec.write_text("strategy: hierarchical\nseed: 1\ndata: {days: 120}\nsynthetic: {n_clusters: 2, "
                    "assets_per_cluster: 2}\nvalidation: {folds: 2}\nresources: {backend: ray, num_cpus: 1}\n")
    proc = subprocess.run([sys.executable, "-m", "fleet.cli", "train", "--config", str(spec), "--out",
                           str(tmp_path / "run")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    markets = [t for t in manifest["run_tasks"] if t["phase"] == "market"]
    assert markets and {t["pid"] for t in markets} <= {t["pid"] for t in manifest["tasks"]}


def _slow_start(monkeypatch, seconds: float) -> list[str]:
    """Replace the start thread's connect by a sleep and its shut-down by a record (no Ray is started); returns the
    record of what happened, in order."""
    import time

    from fleet.training.backends.ray_backend import RayBackend

    events: list[str] = []

    def connect(self):
        time.sleep(seconds)
        events.append("started")

    monkeypatch.setattr(RayBackend, "_connect_and_warm", connect)
    monkeypatch.setattr(RayBackend, "_shut_down", lambda self: events.append("shut down"))
    return events


def test_close_after_a_failure_does_not_wait_for_the_start_and_the_start_is_undone(monkeypatch):
    import time

    from fleet.training.backends import ray_backend
    from fleet.training.backends.ray_backend import RayBackend

    events = _slow_start(monkeypatch, 1.5)
    first = RayBackend()
    first.start()
    t0 = time.perf_counter()
    first.close(wait=False)
    assert time.perf_counter() - t0 < 0.5 and events == []
    second = RayBackend()
    second.start()  # waits until the first start is undone: it must not shut down the second's Ray
    assert events[:2] == ["started", "shut down"] and not ray_backend._ABANDONED
    second.close()  # a finished start: waited for, then shut down as before
    assert events == ["started", "shut down", "started", "shut down"]


def test_a_refusal_while_the_bars_load_is_raised_before_ray_has_started(monkeypatch, tmp_path):
    """`fleet train --backend ray` with too short a history: the refusal comes while Ray is still starting (here a
    4 s stand-in), not after it; the start is undone afterwards."""
    import time

    import fleet
    from fleet.training.backends import ray_backend

    events = _slow_start(monkeypatch, 4.0)
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="5 folds need at least"):
        fleet.train(config={"resources": {"backend": "ray"}}, days=20, folds=5, out=str(tmp_path / "run"), echo=None)
    assert time.perf_counter() - t0 < 3.5 and events == []
    ray_backend._finish_abandoned()  # what the interpreter does at exit
    assert events == ["started", "shut down"]
    assert not (tmp_path / "run").exists()
