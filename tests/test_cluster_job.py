"""`fleet train` submitted as a Ray job to a two-node Ray cluster on this machine.

Nothing leaves the machine: the jobs API listens on 127.0.0.1, and Ray's nodes use this host's own
address (Ray replaces a loopback node IP with it).

The cluster is two `ray start --block` processes (head and worker), each with its own temp dir and
ports and exactly 1 CPU, so two concurrent unit actors must land on different nodes. Only those
two processes (and their process groups) are stopped afterwards (helpers in _ray_cluster.py): `ray stop`
would kill every Ray on the machine, including other users' sessions.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import free_ports
from _ray_cluster import ray_start as _ray_start
from _ray_cluster import stop as _stop
from _ray_cluster import wait_for as _wait_for

pytestmark = pytest.mark.slow

JOB_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def two_node_cluster():
    """Yields (jobs client, temp root, GCS address, env for Ray clients). Head and worker: 1 CPU each."""
    pytest.importorskip("ray.job_submission")
    # Short root: Ray's Unix socket paths live under the temp dir and must stay < 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="fk8s-", dir="/tmp"))
    gcs_port, dashboard_port, client_port = free_ports(3)
    # Ray 2.60 turns token authentication on for `ray start` when a token exists (~/.ray/auth_token);
    # give this cluster a token of its own, leaving that file alone
    # (the nodes and the job's driver read RAY_AUTH_TOKEN; the client sends it as a bearer header).
    token = secrets.token_hex(32)
    env = {**os.environ, "RAY_ADDRESS": "", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": token}
    headers = {"Authorization": f"Bearer {token}"}
    procs: list[subprocess.Popen] = []
    try:
        procs.append(_ray_start(["--head", f"--port={gcs_port}", "--include-dashboard=true",
                                 "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
                                 f"--ray-client-server-port={client_port}"],
                                root / "head", env, root / "head.log"))
        url = f"http://127.0.0.1:{dashboard_port}"
        _wait_for(lambda: _dashboard_up(url, headers), 90, "the head's dashboard", root)
        procs.append(_ray_start([f"--address=127.0.0.1:{gcs_port}"], root / "worker", env, root / "worker.log"))
        from ray.job_submission import JobSubmissionClient

        client = JobSubmissionClient(url, headers=headers)
        _wait_for(lambda: _alive_nodes(url, headers) == 2, 90, "two alive nodes", root)
        yield client, root, f"127.0.0.1:{gcs_port}", env
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _dashboard_up(url: str, headers: dict) -> bool:
    import requests

    try:
        return requests.get(f"{url}/api/version", headers=headers, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _alive_nodes(url: str, headers: dict) -> int:
    # The jobs API has no node listing; ask the dashboard's node summary.
    import requests

    resp = requests.get(f"{url}/nodes?view=summary", timeout=5, headers=headers)
    if resp.status_code != 200:
        return 0
    return sum(1 for n in resp.json()["data"]["summary"] if n["raylet"]["state"] == "ALIVE")


SPEC = """\
# Small fleet spec shipped in the job's working_dir (like k8s/rayjob-train.yaml does).
name: cluster-test
strategy: islands
seed: 3
data: {days: 90}
synthetic: {n_clusters: 2, assets_per_cluster: 2}
validation: {folds: 2}
model: {trend: {max_iter: 40}}
resources: {backend: ray, num_cpus: 1}
"""


def test_fleet_train_job_uses_both_nodes(two_node_cluster, tmp_path):
    from ray.job_submission import JobStatus

    client, root, _, _ = two_node_cluster
    work = tmp_path / "job"
    work.mkdir()
    (work / "spec.yaml").write_text(SPEC)
    out = root / "run"  # both "nodes" share this machine's disk; on a real cluster: shared storage
    job_id = client.submit_job(
        entrypoint=f"{sys.executable} -m fleet.cli train --config spec.yaml --out {out}",
        runtime_env={"working_dir": str(work)},
    )
    deadline = time.monotonic() + JOB_TIMEOUT_S
    status = client.get_job_status(job_id)
    while status not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED} and time.monotonic() < deadline:
        time.sleep(2.0)
        status = client.get_job_status(job_id)
    logs = client.get_job_logs(job_id)
    if status != JobStatus.SUCCEEDED:
        client.stop_job(job_id)
        pytest.fail(f"job {job_id} ended {status}:\n{logs[-4000:]}")

    # The job's driver joined the job's cluster (not a Ray of its own): 2 nodes, 2 CPU.
    assert "ray (2 node(s), 2 CPU" in logs
    manifest = json.loads((out / "manifest.json").read_text())
    units = manifest["units"]
    assert len(units) == 4 * 2  # islands: 4 assets x 2 folds
    nodes = {u["node_id"] for u in units}
    assert None not in nodes and len(nodes) == 2, f"units ran on {nodes}"
    # Complete artifacts, as on one machine.
    for name in ("results_per_asset.csv", "results_per_cluster.csv", "clusters.json", "asset_registry.json",
                 "market_factor.parquet", "models/index.json"):
        assert (out / name).is_file(), name
    assert len(list((out / "predictions").glob("*.parquet"))) == 4
    assert not list(out.parent.glob(f".{out.name}.partial-*"))


def test_fleet_train_address_joins_a_running_cluster(two_node_cluster, tmp_path):
    """`fleet train --backend ray --address HOST:PORT` from outside the cluster (no RAY_ADDRESS)."""
    _, root, gcs_address, env = two_node_cluster
    out = tmp_path / "run"
    # 96 days: seed 3's synthetic market needs at least 91 for 2 folds (the up-front history check refuses 90).
    proc = subprocess.run(
        [sys.executable, "-m", "fleet.cli", "train", "--backend", "ray", "--address", gcs_address,
         "--num-cpus", "1", "--strategy", "hierarchical", "--days", "96", "--folds", "2", "--seed", "3",
         "--out", str(out)],
        env={**env, "RAY_ADDRESS": ""}, capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "ray (2 node(s), 2 CPU" in proc.stdout
    units = json.loads((out / "manifest.json").read_text())["units"]
    assert len({u["node_id"] for u in units}) == 2, units
