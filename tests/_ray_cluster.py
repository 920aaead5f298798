"""Ray clusters of `ray start` nodes on this machine, for the slow cluster tests.

Each node is one `ray start --block` process started in its own session (process group), with its own temp dir
and ports, so a test can stop exactly its nodes (or SIGKILL one node's whole group to lose it) and never touches
other Ray instances on the machine (`ray stop` would kill them all).

Ray 2.60 turns token authentication on for `ray start` when a token exists (~/.ray/auth_token); a cluster
started here gets a token of its own (:func:`cluster_env`: the nodes and every client read ``RAY_AUTH_TOKEN``),
leaving that file alone.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import free_ports


def absolute_env() -> dict:
    """This process's environment with PYTHONPATH made absolute: nodes, their workers and the clients run in
    other directories, and must import the same fleet as the tests."""
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    return env


def cluster_env() -> dict:
    """Environment for the nodes and clients of one new cluster: its own auth token, no inherited RAY_ADDRESS."""
    return {**absolute_env(), "RAY_ADDRESS": "", "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32)}


def ray_start(args: list[str], temp_dir: Path, env: dict, log: Path, num_cpus: int = 1) -> subprocess.Popen:
    """One `ray start --block` node with ``num_cpus`` CPUs, no GPU, its own ports, in a new session."""
    ray_bin = Path(sys.executable).with_name("ray")
    node_ports = free_ports(6)
    cmd = [str(ray_bin), "start", "--block", "--disable-usage-stats", f"--num-cpus={num_cpus}", "--num-gpus=0",
           f"--temp-dir={temp_dir}",
           f"--node-manager-port={node_ports[0]}", f"--object-manager-port={node_ports[1]}",
           f"--dashboard-agent-listen-port={node_ports[2]}", f"--dashboard-agent-grpc-port={node_ports[3]}",
           f"--metrics-export-port={node_ports[4]}", f"--runtime-env-agent-port={node_ports[5]}",
           "--object-store-memory=100000000", *args]
    with open(log, "ab") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the `ray start --block` process (it tears its node down), then its whole session group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    kill_node(proc)
    if proc.poll() is None:
        proc.wait(timeout=10)


def kill_node(proc: subprocess.Popen) -> None:
    """SIGKILL the node's whole process group (raylet, object store, its workers): the node is lost at once."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group we created with start_new_session: only our processes
    except ProcessLookupError:
        pass


def wait_for(predicate, timeout: float, what: str, root: Path) -> None:
    """Poll ``predicate`` each second for ``timeout`` s; fail the test with the nodes' logs when it never holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1.0)
    logs = "".join(p.read_text(errors="replace")[-2000:] for p in sorted(root.glob("*.log")))
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{logs}")


def _tail(log: Path, chars: int = 6000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else f"(no log at {log})"


def alive_nodes(address: str, env: dict) -> list[str]:
    """Ids of the cluster's alive nodes, asked from the GCS (``ray.nodes()``) by a separate client process."""
    code = ("import ray; ray.init(address=%r, logging_level='error', log_to_driver=False); "
            "print(' '.join(n['NodeID'] for n in ray.nodes() if n['Alive']))" % address)
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return []
    return proc.stdout.split() if proc.returncode == 0 else []


class LocalCluster:
    """A head (and optionally workers) started with :func:`ray_start`; :meth:`close` stops them all.

    Attributes:
        address: the head's GCS address ``127.0.0.1:PORT`` (what ``fleet train --address`` takes).
        node_ids: the Ray node ids, head first, in the order the nodes were started.
        env: environment of its clients (:func:`cluster_env`).
        procs: the `ray start` processes, head first.
    """

    def __init__(self, root: Path, name: str):
        self.root, self.name = root, name
        self.env = cluster_env()
        self.procs: list[subprocess.Popen] = []
        self.address = ""
        self.node_ids: list[str] = []

    def start(self, workers: int = 1, node_ip: str = "127.0.0.1") -> "LocalCluster":
        """Start the head and ``workers`` worker nodes (1 CPU each) and wait until all are alive."""
        ip = [f"--node-ip-address={node_ip}"]

        def head(attempt: int) -> subprocess.Popen:
            gcs_port, client_port = free_ports(2)
            self.address = f"127.0.0.1:{gcs_port}"
            return ray_start(["--head", f"--port={gcs_port}", "--include-dashboard=false",
                              f"--ray-client-server-port={client_port}", *ip],
                             self.root / f"{self.name}-head{attempt or ''}", self.env,
                             self.root / f"{self.name}-head.log")

        self._start_node(head, f"the head of {self.name}", self.root / f"{self.name}-head.log")
        for k in range(1, workers + 1):
            log = self.root / f"{self.name}-w{k}.log"
            self._start_node(lambda attempt, k=k, log=log: ray_start(
                [f"--address={self.address}", *ip], self.root / f"{self.name}-w{k}{attempt or ''}", self.env, log),
                f"worker {k} of {self.name}", log)
        return self

    def _start_node(self, launch, what: str, log: Path, tries: int = 3, timeout: float = 90) -> None:
        """``launch(attempt)`` one node and wait until the GCS lists it alive; record its id.

        A `ray start` that exits before its node is alive is launched again (fresh ports, fresh temp dir), at most
        ``tries`` times: :func:`free_ports` releases its ports before the node binds them, so another process can
        take one in between. A node still starting after ``timeout`` s fails the test at once, with its log.
        """
        for attempt in range(tries):
            proc = launch(attempt)
            self.procs.append(proc)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proc.poll() is None:
                new = self._new_nodes()
                if new:
                    self.node_ids += new
                    return
                time.sleep(1.0)
            if proc.poll() is None:
                pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{_tail(log)}")
            kill_node(proc)
            self.procs.remove(proc)
        pytest.fail(f"`ray start` for {what} exited {tries} times (rc {proc.returncode}); its log ends:\n{_tail(log)}")

    def _new_nodes(self) -> list[str]:
        return [n for n in alive_nodes(self.address, self.env) if n not in self.node_ids]

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)
