"""Shared fixtures: the real-data directory and one Ray session for the tests that need it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="module")
def ray_session():
    """A small local Ray (2 logical CPUs) shared by a test module, shut down afterwards."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    yield ray
    ray.shutdown()
