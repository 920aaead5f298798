"""Serving under load and faults (slow): sustained loopback load, a replica killed mid-load, queue limit -> 503.

One Ray (2 logical CPUs) and one Serve instance for the module, on 127.0.0.1, with three applications:

* ``/fleet``: the hierarchical run, 2 replicas of 0.5 CPU, no queue limit;
* ``/limited``: the same run, 1 replica, ``max_ongoing_requests=1``, ``max_queued_requests=2``, unbatched;
* ``/noop``: 2 replicas of 0.25 CPU (all three apps fit in the 2 logical CPUs) that read the body and
  answer a constant: the floor of what Ray Serve's proxy and this client reach on the machine, measured
  in the same run as the fleet's load.

Throughput is judged against that floor, not as an absolute figure, because the floor moves with the host;
the absolute figures live in ``benchmarks/serve_load.py``.

Rates: 100 req/s for 60 s by default. Bodies are each asset's ``required_bars`` candles in the columns layout
(the fast one). ``FLEET_LOAD_RATE``, ``FLEET_LOAD_SECONDS`` and
``FLEET_KILL_RATE`` set them (e.g. ``FLEET_LOAD_RATE=50`` on a machine busy with other work).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import columns_of, free_port

ray = pytest.importorskip("ray")
requests = pytest.importorskip("requests")

pytestmark = pytest.mark.slow

RATE = float(os.environ.get("FLEET_LOAD_RATE", "100"))
SECONDS = float(os.environ.get("FLEET_LOAD_SECONDS", "60"))
#: Offered rate while one of the two replicas is killed (the survivor carries it alone for a while).
#: Unset: 100 req/s, or half the no-op floor's completed rate when the machine cannot carry 100. Every request
#: queued on the killed replica is lost, so a saturated service loses more than the goal allows whatever its
#: code: 34 of 3,000 at 100 offered against a floor of ~59 done/s in CI on 2026-12-02, and 24 of 1,770 at 80 % of
#: the floor (the fleet itself carries ~90 % of it, so that rate still queued ~1 s of requests per replica).
KILL_RATE = os.environ.get("FLEET_KILL_RATE")


@pytest.fixture(scope="module")
def server(served_runs, ray_session):
    from ray import serve

    from fleet.serving.app import build_app
    from fleet.serving.floor import noop_app
    from fleet.serving.predictor import FleetPredictor

    run_dir, frames = served_runs["hierarchical"]
    predictor = FleetPredictor(run_dir)
    bodies = [json.dumps({"symbol": s, "candles": columns_of(frames[s], n=info.required_bars)}).encode()
              for s, info in sorted(predictor.assets.items())]
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(build_app(run_dir, replicas=2, num_cpus=0.5), name="fleet", route_prefix="/fleet")
        serve.run(build_app(run_dir, replicas=1, num_cpus=0.25, batching=False, max_ongoing_requests=1,
                            max_queued_requests=2), name="limited", route_prefix="/limited")
        serve.run(noop_app(replicas=2, num_cpus=0.25), name="noop", route_prefix="/noop")
        base = f"http://127.0.0.1:{port}"
        # The floor, once, at the offered rate, for a quarter of the load's time (its rate is what matters).
        floor = open_loop(f"{base}/noop/v1/predict", bodies, RATE, max(10.0, SECONDS / 4))
        print(f"\nno-op floor {RATE:g} req/s: {floor}")
        yield {"base": base, "bodies": bodies, "floor": floor}
    finally:
        serve.shutdown()


_local = threading.local()


def _post(url: str, body: bytes, timeout: float = 60) -> tuple[int, float]:
    """(HTTP status or 0 on a connection error / timeout, seconds)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    t0 = time.perf_counter()
    try:
        status = session.post(url, data=body, headers={"content-type": "application/json"}, timeout=timeout).status_code
    except requests.RequestException:
        status = 0
    return status, time.perf_counter() - t0


def open_loop(url: str, bodies: list[bytes], rate: float, seconds: float, during=None) -> dict:
    """Send ``rate`` req/s for ``seconds`` (bounded: rate x seconds requests); ``during(elapsed)`` is
    called between sends. Returns n, statuses, completed/s, p50 / p99 latency (ms, from the send)."""
    n = int(rate * seconds)
    futures = []
    with ThreadPoolExecutor(max_workers=64) as pool:
        t0 = time.perf_counter()
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(_post, url, bodies[i % len(bodies)]))
            if during is not None:
                during(time.perf_counter() - t0)
        results = [f.result() for f in futures]
        elapsed = time.perf_counter() - t0
    lat = np.array([s for code, s in results if code == 200]) * 1e3
    statuses: dict[int, int] = {}
    for code, _ in results:
        statuses[code] = statuses.get(code, 0) + 1
    return {"n": n, "ok": int(len(lat)), "statuses": statuses, "done_per_s": len(lat) / elapsed,
            "p50_ms": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "p99_ms": float(np.percentile(lat, 99)) if len(lat) else float("nan")}


def _replicas():
    """Names of the live FleetIngress replica actors of the ``fleet`` application."""
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["namespace"] == "serve" and "fleet#FleetIngress" in a["name"])


def _running(app: str = "fleet") -> int:
    from ray import serve

    dep = serve.status().applications[app].deployments["FleetIngress"]
    return dep.replica_states.get("RUNNING", 0)


def test_sustained_load_has_no_errors(server):
    floor = server["floor"]
    stats = open_loop(f"{server['base']}/fleet/v1/predict", server["bodies"], RATE, SECONDS)
    print(f"\nload {RATE:g} req/s x {SECONDS:g} s: {stats}")
    assert floor["statuses"] == {200: floor["n"]} and stats["statuses"] == {200: stats["n"]}
    # Kept up with what this machine's Serve can carry at all: most of the floor's completed rate, and no
    # growing queue (a backlog would push p99 towards the run length; the client holds at most 64 in flight).
    assert stats["done_per_s"] >= 0.7 * min(RATE, floor["done_per_s"]), (stats, floor)
    assert stats["p99_ms"] < max(3000.0, 3 * floor["p99_ms"]), (stats, floor)


def test_killed_replica_keeps_99_percent_and_comes_back(server):
    before = _replicas()
    assert len(before) == 2 and _running() == 2
    victim = ray.get_actor(before[0], namespace="serve")
    pid = ray.get(victim.__ray_call__.remote(lambda self: os.getpid()), timeout=60)
    killed = []

    def kill_once(elapsed):
        if elapsed >= 5 and not killed:
            os.kill(pid, signal.SIGKILL)  # the replica's worker process, started by this test's Ray
            killed.append(time.monotonic())

    floor = server["floor"]["done_per_s"]
    rate = float(KILL_RATE) if KILL_RATE else min(100.0, round(0.5 * floor))
    seconds = 30.0
    stats = open_loop(f"{server['base']}/fleet/v1/predict", server["bodies"], rate, seconds, during=kill_once)
    print(f"\nreplica killed at 5 s of {rate:g} req/s x {seconds:g} s: {stats}")
    assert killed
    assert stats["ok"] >= 0.99 * stats["n"], stats["statuses"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (_running() == 2 and before[0] not in _replicas()):
        time.sleep(0.5)
    after = _replicas()
    assert _running() == 2 and len(after) == 2 and before[0] not in after, after
    assert requests.post(f"{server['base']}/fleet/v1/predict", data=server["bodies"][0],
                         headers={"content-type": "application/json"}, timeout=60).status_code == 200


def test_requests_beyond_the_queue_limit_get_503_quickly(server):
    url = f"{server['base']}/limited/v1/predict/batch"
    items = [json.loads(b) for b in server["bodies"]] * 4  # one slow request: every asset 4 times
    body = json.dumps({"requests": items}).encode()
    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(lambda _: _post(url, body), range(24)))
    codes = [c for c, _ in results]
    rejected = [s for c, s in results if c == 503]
    served = [s for c, s in results if c == 200]
    print(f"\n24 concurrent requests, limit 1 ongoing + 2 queued: {codes.count(200)} x 200 "
          f"(max {max(served, default=0):.2f} s), {len(rejected)} x 503 (max {max(rejected, default=0):.2f} s)")
    assert set(codes) <= {200, 503}, codes
    assert len(served) >= 1 and len(rejected) >= 10
    assert max(rejected) < 2.0 and max(rejected) < max(served)
