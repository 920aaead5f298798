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
        manifest = json.loads((remote.out / "manifest.json").read_text())
        units = manifest["units"]
        assert units and all(u["node_id"] for u in units)  # trained inside Ray actors
        # the output tasks ran on the warm step actors (the same processes), not in fresh Ray workers
        outputs = [t for t in manifest["run_tasks"] if t["phase"] in ("outputs", "pooled")]
        assert outputs and {t["pid"] for t in outputs} <= {t["pid"] for t in manifest["tasks"]}
        # the market fits ran on the warm actors that Ray started while the bars loaded, which then trained
        markets = [t for t in manifest["run_tasks"] if t["phase"] == "market"]
        assert markets and {t["pid"] for t in markets} <= {t["pid"] for t in manifest["tasks"]}
        assert local.units == remote.units
