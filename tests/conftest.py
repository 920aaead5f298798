"""Shared fixtures: the real-data directory and one Ray session for the tests that need it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest

from fleet.models._openmp import torch_first

# This process trains CNN experts and MLP gates next to gradient boosting: load torch's OpenMP runtime before
# any test imports scikit-learn's, as every training process does (fleet/models/_openmp.py). `import fleet`
# no longer does it for everyone; without it the suite's HistGradientBoosting fits run 2-4x slower.
torch_first()

REPO = Path(__file__).resolve().parents[1]


def load_benchmark(name: str):
    """The module of ``benchmarks/<name>.py`` (the scripts are not a package), registered as ``bench_<name>``."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[f"bench_{name}"] = mod
    spec.loader.exec_module(mod)
    return mod


def data_dir() -> Path | None:
    """``FLEET_DATA_DIR`` or ``<repo>/../shared/data``; None when neither exists."""
    for candidate in (os.environ.get("FLEET_DATA_DIR"), REPO.parent / "shared" / "data"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = data_dir()
    if d is None:
        pytest.skip("real data not found: set FLEET_DATA_DIR or place the shared data at ../shared/data")
    return d


@pytest.fixture(scope="session")
def crypto_dir(shared_data) -> Path:
    d = shared_data / "crypto_1h"
    if not d.is_dir():
        pytest.skip(f"{d} not found")
    return d


#: The tests' local Ray: 2 logical CPUs, and 1 logical GPU so GPU placement can be checked on a CPU machine
#: (Ray only counts it; nothing runs on a GPU unless one is there).
RAY_INIT = dict(num_cpus=2, num_gpus=1, include_dashboard=False, logging_level="warning", log_to_driver=False)


def start_ray():
    """(Re)start the tests' local Ray with :data:`RAY_INIT`; the only ``ray.init`` of the test suite.

    A module calls it directly only when its workers must see something set after Ray started
    (e.g. credentials in the environment); every other module uses :func:`ray_session`.
    """
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(**RAY_INIT)
    return ray


@pytest.fixture(scope="session")
def ray_session():
    """The session's local Ray (:data:`RAY_INIT`), started on first use, shared by every module that
    needs Ray (training backends and Serve alike) and shut down when the session ends."""
    ray = start_ray()
    yield ray
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="session")
def served_runs(tmp_path_factory):
    """Two small trained runs (hierarchical and islands) plus the bars they were trained on.

    Returns {strategy: (run_dir, frames)}; frames: symbol -> (n_bars, k) bars exactly as training saw them.
    """
    from fleet.config import FleetConfig
    from fleet.training.driver import load_inputs, run_fleet

    out = {}
    root = tmp_path_factory.mktemp("served")
    for strategy in ("hierarchical", "islands"):
        config = FleetConfig.model_validate({"strategy": strategy, "out": str(root / strategy),
                                             "data": {"days": 90}, "validation": {"folds": 2}})
        summary = run_fleet(config, echo=lambda s: None)
        panel, _ = load_inputs(config, echo=lambda s: None)
        out[strategy] = (summary.out, panel.frames)
    return out


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now (all bound at once, so none repeats)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """One TCP port free on 127.0.0.1 right now."""
    return free_ports(1)[0]


def candles_of(frame, end=None, n=None) -> list[dict]:
    """JSON-ready candles of ``frame`` up to and including ``end`` (the last ``n`` of them if given)."""
    rows = frame if end is None else frame[frame.index <= end]
    if n is not None:
        rows = rows.iloc[-n:]
    return [{"timestamp": ts.isoformat(), **{k: float(v) for k, v in r.items()}}
            for ts, r in zip(rows.index, rows.to_dict("records"))]


def columns_of(frame, end=None, n=None) -> dict:
    """The same candles as :func:`candles_of`, in the columns layout (one array per field)."""
    rows = frame if end is None else frame[frame.index <= end]
    if n is not None:
        rows = rows.iloc[-n:]
    return {"timestamp": [ts.isoformat() for ts in rows.index], **{c: rows[c].astype(float).tolist() for c in rows.columns}}


def last_fold_predictions(run_dir, symbol, k=3):
    """k evenly spaced rows of the stored out-of-sample predictions of the last fold for ``symbol``."""
    import pandas as pd

    preds = pd.read_parquet(Path(run_dir) / "predictions" / f"{symbol}.parquet")
    last = preds[preds["fold"] == preds["fold"].max()].reset_index(drop=True)
    idx = [int(i) for i in np.linspace(0, len(last) - 1, k)]
    return last.iloc[idx]
