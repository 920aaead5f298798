"""Bounded loopback load test of the fleet's Serve endpoint against a no-op Serve floor.

What it does, in one run (all traffic to 127.0.0.1, every phase bounded in requests and seconds):

1. trains a small run (synthetic market, ``--days`` days, 2 folds) unless ``--run-dir`` is given;
2. starts a local Ray and Serve on a free port with three applications, one replica each
   (``--num-cpus`` CPUs per replica):
   ``/noop`` — :mod:`fleet.serving.floor`, reads the body and returns a constant (the floor:
   proxy + routing + HTTP, no parsing, no model); ``/batched`` — the fleet app with
   ``@serve.batch``; ``/unbatched`` — the same app answering one request at a time;
3. sends POST /v1/predict requests (the same bodies to every target: each asset's
   ``recommended_bars`` candles, in the columns layout ``{"candles": {"timestamp": [...],
   "close": [...], ...}}`` — the fastest documented one; ``--layout rows`` sends a list of candle
   objects instead) open-loop at rising rates, and once closed-loop at ``--concurrency`` for the
   saturated throughput;
4. prints one table: target, offered rate, completed/s, p50 / p99 latency (ms, measured from the
   scheduled send time, so queueing counts), errors.

Usage::

    python benchmarks/serve_load.py                       # ~2 minutes on 2 cores
    python benchmarks/serve_load.py --rates 5,10,20 --duration 3

The client runs on the same machine as the server, so on a small machine the numbers include
CPU contention between the two.
"""

import argparse
import json
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(days: int) -> tuple[Path, dict]:
    from fleet.config import FleetConfig
    from fleet.training.driver import load_inputs, run_fleet

    out = Path(tempfile.mkdtemp(prefix="fleet-bench-")) / "run"
    config = FleetConfig.model_validate({"out": str(out), "data": {"days": days}, "validation": {"folds": 2}})
    run_fleet(config, echo=lambda s: None)
    panel, _ = load_inputs(config, echo=lambda s: None)
    return out, panel.frames


def _bodies(run_dir: Path, frames: dict, layout: str = "columns") -> list[bytes]:
    """One request body per asset: its last ``recommended_bars`` candles, as ``layout`` ('columns' or 'rows')."""
    from fleet.serving.predictor import FleetPredictor

    predictor = FleetPredictor(run_dir)
    bodies = []
    for symbol, info in sorted(predictor.assets.items()):
        rows = frames[symbol].iloc[-info.recommended_bars:]
        if layout == "columns":
            candles = {"timestamp": [ts.isoformat() for ts in rows.index],
                       **{k: rows[k].astype(float).tolist() for k in rows.columns}}
        else:
            candles = [{"timestamp": ts.isoformat(), **{k: float(v) for k, v in r.items()}}
                       for ts, r in zip(rows.index, rows.to_dict("records"))]
        bodies.append(json.dumps({"symbol": symbol, "candles": candles}).encode())
    return bodies


_local = threading.local()


def _send(url: str, body: bytes, scheduled: float) -> tuple[float, bool]:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    try:
        r = session.post(url, data=body, headers={"content-type": "application/json"}, timeout=30)
        ok = r.status_code == 200
    except requests.RequestException:
        ok = False
    return time.perf_counter() - scheduled, ok


def open_loop(url: str, bodies: list[bytes], rate: float, duration: float, max_requests: int) -> dict:
    """Send at ``rate`` req/s for ``duration`` s (at most ``max_requests``); latency from the scheduled time."""
    n = min(int(rate * duration), max_requests)
    futures = []
    with ThreadPoolExecutor(max_workers=64) as pool:
        t0 = time.perf_counter()
        for i in range(n):
            scheduled = t0 + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(_send, url, bodies[i % len(bodies)], scheduled))
        results = [f.result() for f in futures]
        elapsed = time.perf_counter() - t0
    return _summary(results, elapsed, offered=rate)


def closed_loop(url: str, bodies: list[bytes], concurrency: int, duration: float, max_requests: int) -> dict:
    """``concurrency`` clients back to back for ``duration`` s (at most ``max_requests`` in all)."""
    results, lock = [], threading.Lock()
    stop = time.perf_counter() + duration
    counter = iter(range(max_requests))

    def client():
        while time.perf_counter() < stop:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            res = _send(url, bodies[i % len(bodies)], time.perf_counter())
            with lock:
                results.append(res)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _summary(results, time.perf_counter() - t0, offered=None)


def _summary(results, elapsed, offered) -> dict:
    lat = np.array([r[0] for r in results if r[1]]) * 1e3
    errors = sum(1 for r in results if not r[1])
    return {"offered": offered, "rps": len(lat) / elapsed if elapsed else 0.0,
            "p50": float(np.percentile(lat, 50)) if len(lat) else float("nan"),
            "p99": float(np.percentile(lat, 99)) if len(lat) else float("nan"), "errors": errors, "n": len(results)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", help="serve this run instead of training a small one")
    ap.add_argument("--days", type=int, default=90, help="days of synthetic data for the run it trains")
    ap.add_argument("--rates", default="5,10,20,40", help="offered request rates, req/s (comma-separated)")
    ap.add_argument("--duration", type=float, default=4.0, help="seconds per rate")
    ap.add_argument("--max-requests", type=int, default=400, help="cap per phase")
    ap.add_argument("--concurrency", type=int, default=16, help="clients of the closed-loop phase")
    ap.add_argument("--num-cpus", type=float, default=0.5, help="CPUs per replica")
    ap.add_argument("--layout", choices=("columns", "rows"), default="columns",
                    help="candles layout of the request bodies (columns: the faster one)")
    ap.add_argument("--batch-wait-ms", type=float, default=None,
                    help="@serve.batch batch_wait_timeout_s of the batched app, in ms (default: the app's)")
    ap.add_argument("--batch-size", type=int, default=16,
                    help="predictions per POST /v1/predict/batch body in the batch-endpoint phase")
    args = ap.parse_args()

    import ray
    from ray import serve

    from fleet.serving.app import build_app
    from fleet.serving.floor import noop_app

    if args.run_dir:
        from fleet.training.driver import load_inputs
        from fleet.config import FleetConfig

        run_dir = Path(args.run_dir)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        panel, _ = load_inputs(FleetConfig.model_validate(manifest["config"]), echo=lambda s: None)
        frames = panel.frames
    else:
        run_dir, frames = _train(args.days)
    bodies = _bodies(run_dir, frames, args.layout)
    print(f"run {run_dir}; {len(bodies)} request bodies ({args.layout} layout) of "
          f"{np.mean([len(b) for b in bodies]) / 1024:.0f} KiB")

    ray.init(num_cpus=2, include_dashboard=False, logging_level="error", log_to_driver=False)
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    targets = {"noop": noop_app(num_cpus=args.num_cpus),
               "batched": build_app(run_dir, num_cpus=args.num_cpus, batching=True,
                                    **({} if args.batch_wait_ms is None else
                                       {"batch_wait_timeout_s": args.batch_wait_ms / 1e3})),
               "unbatched": build_app(run_dir, num_cpus=args.num_cpus, batching=False)}
    rows = []
    try:
        for name, app in targets.items():
            serve.run(app, name=name, route_prefix=f"/{name}")
        for name in targets:
            url = f"http://127.0.0.1:{port}/{name}/v1/predict"
            for body in bodies:  # warm-up, and a check that every body is answered
                r = requests.post(url, data=body, headers={"content-type": "application/json"}, timeout=60)
                r.raise_for_status()
            for rate in [float(x) for x in args.rates.split(",")]:
                rows.append((name, open_loop(url, bodies, rate, args.duration, args.max_requests)))
            rows.append((name, closed_loop(url, bodies, args.concurrency, args.duration, args.max_requests)))
        # Client-side batching: one POST /v1/predict/batch carries --batch-size predictions.
        batch_url = f"http://127.0.0.1:{port}/unbatched/v1/predict/batch"
        batch_bodies = [b'{"requests": [' + b",".join(bodies[(i + j) % len(bodies)] for j in range(args.batch_size)) + b"]}"
                        for i in range(len(bodies))]
        requests.post(batch_url, data=batch_bodies[0], headers={"content-type": "application/json"},
                      timeout=60).raise_for_status()
        r = closed_loop(batch_url, batch_bodies, args.concurrency, args.duration, args.max_requests)
        rows.append((f"batch x{args.batch_size}", {**r, "per_request": args.batch_size}))
    finally:
        serve.shutdown()
        ray.shutdown()

    print(f"\n{'target':<10} {'offered/s':>9} {'done/s':>7} {'pred/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'n':>5}")
    for name, r in rows:
        offered = f"{r['offered']:g}" if r["offered"] is not None else f"c={args.concurrency}"
        preds = r["rps"] * r.get("per_request", 1)
        print(f"{name:<10} {offered:>9} {r['rps']:>7.1f} {preds:>7.1f} {r['p50']:>8.1f} {r['p99']:>8.1f} "
              f"{r['errors']:>6} {r['n']:>5}")


if __name__ == "__main__":
    main()
