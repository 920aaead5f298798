"""Ray-free micro-benchmark of one replica's work per request: parsing, features, model, batching.

Trains a small run (synthetic market, 90 days, 2 folds; ~5 s) unless ``--run-dir`` is given, builds
each asset's request of ``recommended_bars`` candles in both layouts, and prints the median over
``--repeat`` calls (milliseconds, one thread, as in a replica) of:

* parsing a body: rows layout through ``json.loads`` + ``model_validate`` (FastAPI's own path) and
  ``model_validate_json`` (what the routes do); columns layout through ``model_validate_json``;
* ``FleetPredictor.design_row`` (validation + features of the last bar) and ``predict_each`` of one
  request (what an unbatched replica does per request) and of a batch of ``--batch`` requests
  (per request: what ``@serve.batch`` does).

Wall-clock timings on a shared machine are noisy: compare runs made one after the other, or
before/after a change with ``PYTHONPATH`` pointing at either source tree.

Usage::

    python benchmarks/serve_micro.py
    python benchmarks/serve_micro.py --run-dir runs/demo --repeat 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path


def _median_ms(fn, repeat: int) -> float:
    times = []
    for i in range(repeat):
        t = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-dir", help="a run directory (default: train a small synthetic one)")
    ap.add_argument("--repeat", type=int, default=100, help="calls per measurement")
    ap.add_argument("--batch", type=int, default=16, help="requests per batch")
    args = ap.parse_args()

    from fleet.config import FleetConfig
    from fleet.serving.predictor import FleetPredictor
    from fleet.serving.schema import PredictRequest
    from fleet.training.driver import load_inputs, run_fleet

    if args.run_dir:
        run_dir = Path(args.run_dir)
        config = FleetConfig.model_validate(json.loads((run_dir / "manifest.json").read_text())["config"])
    else:
        import tempfile

        run_dir = Path(tempfile.mkdtemp(prefix="fleet-micro-")) / "run"
        config = FleetConfig.model_validate({"out": str(run_dir), "data": {"days": 90}, "validation": {"folds": 2}})
        run_fleet(config, echo=lambda s: None)
    frames = load_inputs(config, echo=lambda s: None)[0].frames

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)  # as in a replica (after every library is loaded)
    predictor = FleetPredictor(run_dir)
    rows, cols = [], []
    for symbol, info in sorted(predictor.assets.items()):
        bars = frames[symbol].iloc[-info.recommended_bars:]
        rows.append(json.dumps({"symbol": symbol, "candles": [
            {"timestamp": ts.isoformat(), **{k: float(v) for k, v in r.items()}}
            for ts, r in zip(bars.index, bars.to_dict("records"))]}).encode())
        cols.append(json.dumps({"symbol": symbol, "candles": {
            "timestamp": [ts.isoformat() for ts in bars.index],
            **{k: bars[k].astype(float).tolist() for k in bars.columns}}}).encode())
    n = len(rows)
    r = args.repeat
    print(f"run {run_dir}: {n} assets, {len(PredictRequest.model_validate_json(rows[0]).candles)} candles per request; "
          f"body {len(rows[0]) / 1024:.0f} KiB (rows) / {len(cols[0]) / 1024:.0f} KiB (columns)")
    print(f"{'step':<44} {'median ms':>9}")
    print(f"{'parse rows: json.loads + model_validate':<44} "
          f"{_median_ms(lambda i: PredictRequest.model_validate(json.loads(rows[i % n])), r):>9.2f}")
    print(f"{'parse rows: model_validate_json':<44} "
          f"{_median_ms(lambda i: PredictRequest.model_validate_json(rows[i % n]), r):>9.2f}")
    print(f"{'parse columns: model_validate_json':<44} "
          f"{_median_ms(lambda i: PredictRequest.model_validate_json(cols[i % n]), r):>9.2f}")
    for layout, bodies in (("rows", rows), ("columns", cols)):
        reqs = [PredictRequest.model_validate_json(b) for b in bodies]
        batch = [reqs[i % n] for i in range(args.batch)]
        print(f"{'design_row (' + layout + ')':<44} {_median_ms(lambda i: predictor.design_row(reqs[i % n]), r):>9.2f}")
        print(f"{'predict_each, 1 request (' + layout + ')':<44} "
              f"{_median_ms(lambda i: predictor.predict_each([reqs[i % n]]), r):>9.2f}")
        per = _median_ms(lambda i: predictor.predict_each(batch), max(5, r // args.batch)) / args.batch
        print(f"{f'predict_each, batch of {args.batch}, per request ({layout})':<44} {per:>9.2f}")


if __name__ == "__main__":
    main()
