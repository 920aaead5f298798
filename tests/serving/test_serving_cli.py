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


@pytest.mark.slow
def test_fleet_serve_starts_answers_and_stops_on_ctrl_c(served_runs):
    run_dir, _ = served_runs["hierarchical"]
    port = free_port()
    env = {**os.environ, "RAY_ADDRESS": ""}
    proc = subprocess.Popen([sys.executable, "-m", "fleet.cli", "serve", str(run_dir), "--port", str(port),
                             "--num-cpus", "0.5"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
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
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert "Shutting down Serve." in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_fleet_serve_rejects_incomplete_run_directory(tmp_path):
    from click.testing import CliRunner

    from fleet.cli import main

    result = CliRunner().invoke(main, ["serve", str(tmp_path)])
    assert result.exit_code == 2 and "missing manifest.json" in result.output
