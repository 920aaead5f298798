"""`fleet train --address` on two `ray start` nodes of this machine: both nodes used, results equal a local run,
a node lost mid-run never hangs the run, and `--resume --address` finishes a run on another cluster.

Every cluster is head + worker, 1 CPU each (:mod:`_ray_cluster`: own temp dirs, ports, auth token and process
groups), so the run's two step actors sit on different nodes. The fleet is the built-in synthetic market, small
enough for 2 cores; each test's clusters are stopped in a finalizer, even when the test fails.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from _ray_cluster import LocalCluster, absolute_env, kill_node

pytestmark = pytest.mark.slow

SPEC = """\
name: two-nodes
strategy: islands
seed: 3
data: {days: 365}
synthetic: {n_clusters: 3, assets_per_cluster: 3}
validation: {folds: 3}
model: {trend: {max_iter: 400, max_leaf_nodes: 31, min_samples_leaf: 50}}
resources: {num_cpus: 1}
"""
N_UNITS = 9 * 3  # islands: 9 assets x 3 folds, enough steps that some remain when a node is lost
#: The run must end this soon after its worker node is SIGKILLed (rc 0 with every unit, or rc 3 naming the lost).
AFTER_DEATH_S = 120
UNIT_LINE = re.compile(r"\[\s*\d+/\s*\d+\] (fold\d+/\S+)\s+(FAILED|\d.* node (\w+))")


def _fleet(args: list[str], cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fleet.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def work():
    """A short directory (Ray's socket paths live under the nodes' temp dirs and must stay < 108 bytes) with the
    fleet spec; removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="f2n-", dir="/tmp"))
    (root / "spec.yaml").write_text(SPEC)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def clusters(work):
    """Start clusters with ``clusters(name, workers)``; all of them are stopped when the test ends."""
    started: list[LocalCluster] = []

    def start(name: str, workers: int = 1) -> LocalCluster:
        cluster = LocalCluster(work, name)
        started.append(cluster)
        return cluster.start(workers=workers)

    yield start
    for cluster in started:
        cluster.close()


@pytest.fixture(scope="module")
def local_run(work):
    """The same fleet with --backend local: what every Ray run here must equal.

    One OpenMP thread, as Ray gives a 1-CPU actor's worker: the fits' values do not depend on it, but two
    spinning OpenMP threads on a busy 2-core machine make the in-process fits up to 10x slower.
    """
    proc = _fleet(["train", "--config", "spec.yaml", "--backend", "local", "--out", "local"], work,
                  {**_plain_env(), "RAY_ADDRESS": "", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work / "local"


def _plain_env() -> dict:
    return {**absolute_env(), "PYTHONUNBUFFERED": "1"}


def _same_results(a: Path, b: Path) -> None:
    """Every results CSV and every prediction file of run ``a`` equals run ``b``'s (to 1e-9)."""
    names = sorted(p.name for p in a.glob("results_*.csv"))
    assert names and names == sorted(p.name for p in b.glob("results_*.csv"))
    for name in names:
        pd.testing.assert_frame_equal(pd.read_csv(a / name), pd.read_csv(b / name), rtol=1e-9, atol=1e-12)
    preds = sorted(p.name for p in (a / "predictions").glob("*.parquet"))
    assert preds and preds == sorted(p.name for p in (b / "predictions").glob("*.parquet"))
    for name in preds:
        pd.testing.assert_frame_equal(pd.read_parquet(a / "predictions" / name),
                                      pd.read_parquet(b / "predictions" / name), rtol=1e-9, atol=1e-12)


def _train_args(cluster: LocalCluster, out: str) -> list[str]:
    return ["train", "--config", "spec.yaml", "--backend", "ray", "--address", cluster.address, "--out", out]


def test_two_nodes_run_steps_on_both_and_equal_a_local_run(clusters, work, local_run):
    cluster = clusters("pair")
    proc = _fleet(_train_args(cluster, "pair-run"), work, {**cluster.env, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ray (2 node(s), 2 CPU" in proc.stdout
    manifest = json.loads((work / "pair-run" / "manifest.json").read_text())
    steps = [t for t in manifest["tasks"] if t.get("phase")]
    assert {t["unit"] for t in steps} == {u["unit"] for u in manifest["units"]} and len(manifest["units"]) == N_UNITS
    nodes = {t["node_id"] for t in steps}
    assert None not in nodes and len(nodes) == 2, f"unit steps ran on {nodes}"
    _same_results(work / "pair-run", local_run)


def _run_and_lose_the_worker(cluster: LocalCluster, work: Path, out: str) -> tuple[int, str, float]:
    """Start the run, SIGKILL the worker node's process group once it has trained a unit (its actor is warm and
    at work: steps are in flight there); returns (exit code, output, seconds from the node's death to the end)."""
    proc = subprocess.Popen([sys.executable, "-m", "fleet.cli", *_train_args(cluster, out)], cwd=work,
                            env={**cluster.env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    worker_unit = threading.Event()
    worker = cluster.node_ids[1][:8]

    def read():
        for line in proc.stdout:
            lines.append(line)
            found = UNIT_LINE.search(line)
            if found and found.group(3) == worker:
                worker_unit.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert worker_unit.wait(timeout=240), "no unit finished on the worker node:\n" + "".join(lines)[-3000:]
        kill_node(cluster.procs[1])
        died = time.monotonic()
        try:
            rc = proc.wait(timeout=AFTER_DEATH_S + 60)
        except subprocess.TimeoutExpired:
            rc = None
        ended = time.monotonic() - died
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        reader.join(timeout=30)
    assert rc is not None, f"the run hung after its worker node died:\n{''.join(lines)[-4000:]}"
    return rc, "".join(lines), ended


def test_lost_node_never_hangs_the_run_and_resume_finishes_it(clusters, work, local_run):
    cluster = clusters("loss")
    out = "loss-run"
    rc, output, ended = _run_and_lose_the_worker(cluster, work, out)
    print(f"exit code {rc}, {ended:.1f} s after the worker node's death")  # shown with -s or on failure
    assert rc in (0, 3), output[-4000:]
    assert ended <= AFTER_DEATH_S, f"the run ended {ended:.0f} s after the node's death\n{output[-4000:]}"
    assert "lost" in output, output[-4000:]  # a lost step or the lost node was seen, and said so
    finished = [m.group(1) for m in UNIT_LINE.finditer(output) if m.group(2) != "FAILED"]
    assert len(finished) < N_UNITS or rc == 0
    if rc == 3:  # the lost units are named, with the node loss; --resume on the surviving head finishes them
        failed = [m.group(1) for m in UNIT_LINE.finditer(output) if m.group(2) == "FAILED"]
        assert failed and all(u in output.split("units failed:")[-1] for u in failed), output[-3000:]
        resumed = _fleet(["train", "--resume", out, "--address", cluster.address], work,
                         {**cluster.env, "PYTHONUNBUFFERED": "1"})
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        training = json.loads((work / out / "manifest.json").read_text())["training"]
        assert sorted(training["loaded"]) == sorted(finished)
        assert sorted(training["trained"]) == sorted(failed)
    else:
        assert len(set(finished)) == N_UNITS
    _same_results(work / out, local_run)


def test_resume_with_address_finishes_the_run_on_another_cluster(clusters, work, local_run):
    """The cluster a run started on is gone (driver and nodes killed); `--resume --address` names a new one and
    trains only the units without a saved result."""
    first = clusters("gone", workers=0)
    proc = subprocess.Popen([sys.executable, "-m", "fleet.cli", *_train_args(first, "moved")], cwd=work,
                            env={**first.env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(work.glob(".moved.partial-*/units/*/*.done.json"))) >= 3:
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -9, "the run ended before it could be killed"
    first.close()
    (staging,) = work.glob(".moved.partial-*")
    saved = sorted(f"{p.parent.name}/{p.name.removesuffix('.done.json')}" for p in staging.glob("units/*/*.done.json"))
    assert 3 <= len(saved) < N_UNITS

    other = clusters("other")
    bad = _fleet(["train", "--resume", str(staging), "--address", other.address, "--seed", "4"], work, other.env)
    assert bad.returncode == 2 and "--resume takes no other options but --address" in bad.stderr
    resumed = _fleet(["train", "--resume", str(staging), "--address", other.address], work,
                     {**other.env, "PYTHONUNBUFFERED": "1"})
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"on the Ray cluster at {other.address}" in resumed.stdout
    assert f"training the other {N_UNITS - len(saved)}" in resumed.stdout
    training = json.loads((work / "moved" / "manifest.json").read_text())["training"]
    assert training["loaded"] == saved
    assert sorted(training["trained"]) == sorted(set(_unit_ids(work / "moved")) - set(saved))
    _same_results(work / "moved", local_run)


def _unit_ids(run: Path) -> list[str]:
    return [u["unit"] for u in json.loads((run / "manifest.json").read_text())["units"]]
