"""A cluster with token authentication, reached from a shell without its token: one clear line, no long retries.

Starts a real ``ray start --head --block`` with ``RAY_AUTH_MODE=token`` on a free port, in its own process group
and temp dir (so no other Ray on the machine is touched), and runs ``fleet train --address`` against it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fleet.training.backends.ray_auth import check_cluster_token

REPO = Path(__file__).resolve().parents[2]


def test_plain_addresses_only_are_probed():
    for address in (None, "", "auto", "local", "ray://head:10001"):
        check_cluster_token(address)  # nothing to probe: left to ray.init


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"no Ray GCS on port {port} after {seconds} s")


@pytest.fixture
def token_cluster():
    pytest.importorskip("ray")
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    root = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's unix socket paths are limited
    port = _free_port()
    env = {**os.environ, "HOME": str(root / "head"), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    (root / "head").mkdir()
    proc = subprocess.Popen([ray_bin, "start", "--head", "--block", f"--port={port}", "--num-cpus=1",
                             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={root / 'ray'}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_port(port, proc)
        yield f"127.0.0.1:{port}", root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group only
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_train_against_a_token_cluster_without_the_token_says_how_to_supply_it(token_cluster, tmp_path):
    address, root = token_cluster
    home = root / "client"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(home), PYTHONPATH=str(REPO / "src"))
    t0 = time.time()
    out = subprocess.run([sys.executable, "-m", "fleet.cli", "train", "--backend", "ray", "--address", address,
                          "--days", "60", "--folds", "1", "--out", str(tmp_path / "run")],
                         env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    took = time.time() - t0
    assert out.returncode == 2, out.stdout + out.stderr
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, out.stderr
    assert "requires an authentication token" in lines[0] and "RAY_AUTH_MODE=token" in lines[0]
    assert "~/.ray/auth_token" in lines[0] and ("Unauthenticated" in lines[0] or "UNAUTHENTICATED" in lines[0])
    assert took < 60, f"refused after {took:.0f} s"
