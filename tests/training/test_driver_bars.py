"""The driver coordinates, it does not carry the fleet's bars.

On a 50-asset synthetic fleet: the panel the driver keeps (and puts in the object store for the per-fold
market fits) holds close and volume only; the backends receive the run's BarReader, whose pickle (what the
Ray backend puts once per run) is a few kilobytes, far below the bars it gives access to; reading it gives
the generated bars; and the bar cache is gone when the run ends.
"""

from __future__ import annotations

import pickle

import pandas as pd
import pytest

from fleet.config import FleetConfig
from fleet.data.bars import BarReader
from fleet.data.synthetic import synthetic_market
from fleet.training import driver
from fleet.training.backends.local import LocalBackend

CONFIG = dict(data={"days": 100}, synthetic={"n_clusters": 5, "assets_per_cluster": 10}, validation={"folds": 2},
              seed=2, strategy="islands")


class _Stop(Exception):
    """Raised by the recording backend once the driver has handed it the units."""


class RecordingBackend(LocalBackend):
    """Runs the per-fold market fits in-process, records what the driver hands over, trains nothing."""

    seen: dict = {}

    def map(self, fn, items, shared):
        RecordingBackend.seen["map_shared"] = shared
        return super().map(fn, items, shared)

    def run(self, units, frames, on_result, *, sink=None, follow=None):
        RecordingBackend.seen.update(units=units, frames=frames, cache_files=sorted(
            p.name for p in driver.Path(frames.location).iterdir()))
        RecordingBackend.seen["read"] = {s: frames[s] for s in ("C0S0", "C4S9")}
        raise _Stop


def test_driver_holds_close_and_volume_and_hands_units_a_small_reader(tmp_path, monkeypatch):
    monkeypatch.setattr(driver, "make_backend", lambda resources, train_fn=None: RecordingBackend())
    config = FleetConfig.model_validate({**CONFIG, "out": str(tmp_path / "run")})
    with pytest.raises(_Stop):
        driver.run_fleet(config, echo=lambda line: None)
    seen = RecordingBackend.seen
    panel = seen["map_shared"]["panel"]
    assert len(panel.symbols) == 50
    assert panel.columns == ("open", "high", "low", "close", "volume")  # the data's columns, as before
    assert {tuple(f.columns) for f in panel.frames.values()} == {("close", "volume")}  # no open/high/low held

    reader = seen["frames"]
    assert isinstance(reader, BarReader) and len(reader) == 50
    assert len(seen["cache_files"]) == 50 and seen["units"]
    market = synthetic_market(n_clusters=5, assets_per_cluster=10, days=100, seed=2).panel
    for s, frame in seen["read"].items():
        pd.testing.assert_frame_equal(frame, market.frames[s], check_exact=True)
    put = len(pickle.dumps(reader, protocol=pickle.HIGHEST_PROTOCOL))
    bars = len(pickle.dumps(market.frames, protocol=pickle.HIGHEST_PROTOCOL))
    assert put < 8_000 and put * 100 < bars, (put, bars)
    assert not driver.Path(reader.location).exists()  # the bar cache is removed when the run ends
    assert not any(tmp_path.iterdir())  # an input-stage failure leaves nothing behind


def test_ray_graph_puts_the_reader_not_the_bars(tmp_path, monkeypatch):
    """GraphRun puts what the driver hands it: with the BarReader, a few kilobytes for 50 assets."""
    ray_graph = pytest.importorskip("fleet.training.backends.ray_graph")
    from fleet.data.bars import BarCache
    from fleet.data.stage import stage_synthetic

    cache = BarCache(tmp_path / "bars")
    reader = cache.reader(stage_synthetic(cache, n_clusters=5, assets_per_cluster=10, days=30, seed=1).panel)
    put = []
    monkeypatch.setattr(ray_graph.ray, "put", lambda obj: put.append(pickle.dumps(obj)) or "ref")
    ray_graph.GraphRun([], reader, on_result=None, sink=None, shape_of=lambda t: (1.0, 0.0), cpu_slots=1,
                       cluster_gpus=0.0, watch=object())  # no node to watch: Ray is not started here
    assert len(put) == 1 and isinstance(pickle.loads(put[0]), BarReader) and len(put[0]) < 8_000
