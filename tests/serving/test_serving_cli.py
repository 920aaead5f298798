"""`fleet serve RUN_DIR` as a user runs it: a subprocess that prints its URL, answers, and stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import free_port

requests = pytest.importorskip("requests")


def _listening_ips(port: int) -> set[str]:
    """The addresses that TCP sockets listening on ``port`` are bound to, whichever process owns them."""
    import psutil

    return {c.laddr.ip for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port}


@pytest.mark.slow
def test_fleet_serve_starts_answers_and_stops_on_ctrl_c(served_runs):
    """With no --host the proxy's socket is bound to 127.0.0.1 only; with --api-key-env every route but
    /healthz needs the bearer token; Ctrl-C stops it with exit 0."""
    run_dir, _ = served_runs["hierarchical"]
    port = free_port()
    env = {**os.environ, "RAY_ADDRESS": "", "FLEET_TEST_API_KEY": "k-5e1f0c"}
    proc = subprocess.Popen([sys.executable, "-m", "fleet.cli", "serve", str(run_dir), "--port", str(port),
                             "--num-cpus", "0.5", "--api-key-env", "FLEET_TEST_API_KEY"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        url = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                pytest.fail(f"fleet serve exited with {proc.returncode}")
            if " at http://" in line:
                url = line.rsplit(" at ", 1)[1].strip()
        assert url == f"http://127.0.0.1:{port}"
        assert requests.get(f"{url}/healthz", timeout=30).json()["status"] == "ok"
        assert _listening_ips(port) == {"127.0.0.1"}
        refused = requests.get(f"{url}/v1/models", timeout=30)
        assert refused.status_code == 401 and refused.json()["detail"][0]["type"] == "unauthorized"
        assert requests.get(f"{url}/v1/models", headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
        ok = requests.get(f"{url}/v1/models", headers={"Authorization": "Bearer k-5e1f0c"}, timeout=30)
        assert ok.status_code == 200 and ok.json()["units"], ok.text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        out, err = proc.stdout.read(), proc.stderr.read()
        assert "Shutting down Serve." in out
        # Ray's own lines (its token notice, Serve's INFO lines, the controller's shutdown report) stay off the
        # console: they are in the Ray log file the progress lines name.
        for noise in ("Token authentication", "graceful_shutdown", "(raylet)", "INFO"):
            assert noise not in out + err, (noise, out, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_fleet_serve_rejects_incomplete_run_directory(tmp_path):
    from click.testing import CliRunner

    from fleet.cli import main

    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "missing manifest.json" in result.output
