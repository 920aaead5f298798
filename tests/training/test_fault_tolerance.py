"""Fault tolerance of `fleet train`: staged per-unit results, --resume, failed units as values, killed workers.

Failures are injected without any hook in the shipped code paths: the local backend's tests
monkeypatch ``train_unit`` or pass ``train_fn`` (a stand-in with its signature), the Ray tests
pass a ``train_fn`` that Ray pickles by value into the actors, and the process-level faults
are real SIGKILLs of a Ray worker / of the driver.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.config import FleetConfig
from fleet.errors import ConfigError, UnitsFailedError
from fleet.training import driver
from fleet.training.driver import resume_fleet, run_fleet
from fleet.store import RunDirectory
from fleet.training.unit import train_unit

BASE = dict(data={"days": 90}, synthetic={"n_clusters": 2, "assets_per_cluster": 2},
            validation={"folds": 2}, seed=5, model={"trend": {"max_iter": 40}}, strategy="islands")
FAILING = "fold1/C1S0"


def _config(out, backend="local", **kw) -> FleetConfig:
    return FleetConfig(**{**BASE, **kw}, out=str(out), resources={"backend": backend, "num_cpus": 1})


def fail_one(unit, frames):
    """train_unit, except for FAILING, which raises an application error."""
    if unit.unit_id == FAILING:
        raise ValueError(f"injected failure in {unit.unit_id}")
    return train_unit(unit, frames)


def slow_train(pid_dir, unit, frames):
    """train_unit after a 1.5 s pause, so a test can SIGKILL the worker while a unit is in flight.

    Writes ``<pid_dir>/<pid>`` first: the test kills only worker processes it started itself.
    """
    Path(pid_dir, str(os.getpid())).touch()
    time.sleep(1.5)
    return train_unit(unit, frames)


def _same_results(a: Path, b: Path) -> None:
    for name in ("results_per_asset.csv", "results_per_fold.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(a / name), pd.read_csv(b / name))
    files = sorted((a / "predictions").glob("*.parquet"))
    assert files and [f.name for f in files] == sorted(f.name for f in (b / "predictions").glob("*.parquet"))
    for f in files:
        pd.testing.assert_frame_equal(pd.read_parquet(f), pd.read_parquet(b / "predictions" / f.name))


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "run"
    run_fleet(_config(out), echo=lambda s: None)
    return out


def _staging(out: Path) -> Path:
    (found,) = out.parent.glob(f".{out.name}.partial-*")
    return found


# --- run directory: completeness is verified, not assumed -------------------------------------------------

def test_unit_result_needs_marker_and_matching_checksum(tmp_path):
    run = RunDirectory(tmp_path / "r").open({"units": ["fold0/A"]})
    assert run.load_unit("fold0/A") is None
    result = type("R", (), {})()
    result.unit_id = "fold0/A"
    run.save_unit("fold0/A", {"unit_id": "x"})  # wrong object for the id: not complete
    assert run.load_unit("fold0/A") is None
    pkl = run.staging / "units" / "fold0" / "A.pkl"
    marker = pkl.with_suffix(".done.json")
    assert json.loads(marker.read_text())["unit"] == "fold0/A"

    from fleet.training.unit import UnitFailure
    good = UnitFailure(unit_id="fold0/A", group="A", fold=0, error="e")  # any picklable value with unit_id
    run.save_unit("fold0/A", good)
    assert run.load_unit("fold0/A") == good
    data = bytearray(pkl.read_bytes())
    data[-2] ^= 0xFF  # a flipped byte: checksum no longer matches
    pkl.write_bytes(bytes(data))
    assert run.load_unit("fold0/A") is None
    run.save_unit("fold0/A", good)
    marker.unlink()  # result written, marker not yet: incomplete
    assert run.load_unit("fold0/A") is None


def test_resume_errors_are_one_clear_line(tmp_path, clean_run):
    with pytest.raises(ConfigError, match="not an interrupted run"):
        RunDirectory.resume(tmp_path / "nothing")
    with pytest.raises(ConfigError, match="that run is complete"):
        RunDirectory.resume(clean_run)


# --- an application error in one unit -----------------------------------------------------------------

def test_failed_unit_is_reported_others_kept_and_resume_trains_only_it(tmp_path, clean_run):
    out = tmp_path / "run"
    lines: list[str] = []
    with pytest.raises(UnitsFailedError) as info:
        run_fleet(_config(out), echo=lines.append, train_fn=fail_one)
    err = info.value
    assert [f.unit_id for f in err.failures] == [FAILING]
    assert FAILING in str(err) and "ValueError: injected failure" in str(err) and "--resume" in str(err)
    assert not out.exists()  # a run with failures is never committed to --out
    staging = _staging(out)
    assert json.loads((staging / "failures.json").read_text())[0]["unit"] == FAILING
    planned = json.loads((staging / "run.json").read_text())["units"]
    run = RunDirectory.resume(out)
    complete = [u for u in planned if run.load_unit(u) is not None]
    assert len(planned) == 8 and sorted(complete) == sorted(set(planned) - {FAILING})

    summary = resume_fleet(out, echo=lines.append)
    assert summary.out == out.resolve() and summary.trained == 1 and summary.loaded == 7
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["training"]["trained"] == [FAILING]
    assert not (out / "units").exists() and not (out / "failures.json").exists()
    _same_results(out, clean_run)


def test_cli_exit_code_and_message_name_the_failed_unit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(driver, "train_unit", fail_one)  # the local backend's per-unit function
    (tmp_path / "small.yaml").write_text("synthetic:\n  n_clusters: 2\n  assets_per_cluster: 2\n"
                                         "model:\n  trend:\n    max_iter: 40\n")
    args = ["train", "--config", "small.yaml", "--days", "90", "--folds", "2", "--strategy", "islands", "--seed", "5",
            "--out", "r"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 3, result.output
    assert f"error: 1 of 8 units failed: {FAILING} (ValueError: injected failure in {FAILING})" in result.output
    assert f"{FAILING:<24} FAILED" in result.output
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    bad = CliRunner().invoke(main, ["train", "--resume", "r", "--seed", "1"])
    assert bad.exit_code == 2 and "--resume takes no other options" in bad.output
    resumed = CliRunner().invoke(main, ["train", "--resume", "r"])
    assert resumed.exit_code == 0, resumed.output
    assert "7 of 8 units have a complete, verified result" in resumed.output
    assert "(8 units: 1 trained, 7 loaded from the interrupted run" in resumed.output


# --- Ray: application error and SIGKILLed worker -----------------------------------------------------

@pytest.fixture(scope="module")
def ray_by_value(ray_session):
    """Ray pickles this module's train_fn stand-ins by value (the tests directory is not importable in workers)."""
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray_session
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.mark.slow
def test_ray_failed_unit_is_a_value(tmp_path, clean_run, ray_by_value):
    out = tmp_path / "run"
    with pytest.raises(UnitsFailedError) as info:
        run_fleet(_config(out, backend="ray"), echo=lambda s: None, train_fn=fail_one)
    assert [f.unit_id for f in info.value.failures] == [FAILING]
    assert "ValueError: injected failure" in info.value.failures[0].error
    summary = resume_fleet(out, echo=lambda s: None)
    assert summary.trained == 1 and summary.loaded == 7
    _same_results(out, clean_run)


@pytest.mark.slow
def test_sigkilled_worker_is_retried_by_ray_and_results_equal_a_clean_run(tmp_path, clean_run, ray_by_value):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    killed: list[int] = []
    stop = threading.Event()

    def killer():
        # Kill the first worker that starts a unit, 0.5 s into that unit (its 1.5 s pause).
        while not stop.is_set():
            pids = sorted(pid_dir.iterdir(), key=lambda p: p.stat().st_mtime)
            if pids:
                time.sleep(0.5)
                pid = int(pids[0].name)
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        summary = run_fleet(_config(tmp_path / "run", backend="ray"), echo=lambda s: None,
                            train_fn=functools.partial(slow_train, str(pid_dir)))
    finally:
        stop.set()
        thread.join(timeout=30)
    assert killed, "no Ray step worker was seen training"
    manifest = json.loads((summary.out / "manifest.json").read_text())
    assert len(manifest["units"]) == 8 and killed[0] not in {u["pid"] for u in manifest["units"]}
    _same_results(summary.out, clean_run)


# --- the driver killed mid-run -------------------------------------------------------------------------

@pytest.mark.slow
def test_killed_driver_resumes_without_retraining_finished_units(tmp_path):
    (tmp_path / "heavy.yaml").write_text("model:\n  trend:\n    max_iter: 300\n    min_samples_leaf: 100\n")
    fleet = [sys.executable, "-m", "fleet.cli"]
    args = ["train", "--config", "heavy.yaml", "--days", "365", "--folds", "3", "--strategy", "islands", "--out", "r"]
    proc = subprocess.Popen([*fleet, *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            markers = list(tmp_path.glob(".r.partial-*/units/*/*.done.json"))
            if len(markers) >= 3 or proc.poll() is not None:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    run = RunDirectory.resume(tmp_path / "r")
    planned = run.state["units"]
    complete = sorted(u for u in planned if run.load_unit(u) is not None)
    assert 3 <= len(complete) < len(planned) == 27

    resumed = subprocess.run([*fleet, "train", "--resume", "r"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"training the other {len(planned) - len(complete)}" in resumed.stdout
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["training"]["loaded"] == complete
    assert sorted(manifest["training"]["trained"]) == sorted(set(planned) - set(complete))

    clean = subprocess.run([*fleet, *args[:-1], "clean"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr[-2000:]
    _same_results(tmp_path / "r", tmp_path / "clean")
