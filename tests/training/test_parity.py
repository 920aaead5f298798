"""The local loop and Ray actors give identical results for the same seed."""

import json

import pandas as pd

from fleet.config import FleetConfig
from fleet.training.driver import run_fleet

BASE = dict(data={"days": 90}, synthetic={"n_clusters": 2, "assets_per_cluster": 2},
            validation={"folds": 2}, seed=3, model={"trend": {"max_iter": 40}})


def _run(tmp_path, backend, strategy):
    cfg = FleetConfig(**BASE, strategy=strategy, out=str(tmp_path / f"{backend}-{strategy}"),
                      resources={"backend": backend, "num_cpus": 1})
    return run_fleet(cfg, echo=lambda line: None)


def test_local_and_ray_are_identical(tmp_path, ray_session):
    for strategy in ("hierarchical", "islands"):
        local = _run(tmp_path, "local", strategy)
        remote = _run(tmp_path, "ray", strategy)
        pd.testing.assert_frame_equal(local.per_asset, remote.per_asset)
        for f in sorted((local.out / "predictions").glob("*.parquet")):
            pd.testing.assert_frame_equal(pd.read_parquet(f), pd.read_parquet(remote.out / "predictions" / f.name))
        units = json.loads((remote.out / "manifest.json").read_text())["units"]
        assert units and all(u["node_id"] for u in units)  # trained inside Ray actors
        assert local.units == remote.units
