"""Ray placement with logical GPUs: a unit whose experts include a CNN reserves a GPU; a GBM-only unit does not.

Ray only counts GPUs here (``ray.init(num_gpus=1)`` on a machine without one): the CNN still trains on CPU,
which is what a real GPU-less cluster does too.
"""

from __future__ import annotations

import pytest

from fleet.config import FleetConfig
from fleet.training.backends.ray_backend import RayBackend
from fleet.market.fold import fit_fold_market
from fleet.training.driver import load_inputs
from fleet.evaluation.splits import PurgedWalkForward
from fleet.features.spec import FeatureSpec
from fleet.training.plan import plan_fold


@pytest.fixture(scope="module")
def ray_gpu(ray_session):
    """The session's Ray, which counts one logical GPU (conftest.RAY_INIT)."""
    assert ray_session.cluster_resources().get("GPU", 0) >= 1
    return ray_session


def _units(experts):
    cfg = FleetConfig.model_validate({
        "data": {"days": 90}, "validation": {"folds": 1}, "strategy": "global", "synthetic": {"n_clusters": 1,
                                                                                             "assets_per_cluster": 2},
        "model": {"experts": experts, "pattern": {"epochs": 1, "max_train_windows": 256, "hidden": 4, "levels": 1}},
        "resources": {"backend": "ray", "cnn_num_gpus": 0.5}})
    panel, _ = load_inputs(cfg, echo=lambda s: None)
    import pandas as pd

    ts = pd.DatetimeIndex(sorted(set().union(*(f.index for f in panel.frames.values()))))
    fold = PurgedWalkForward(1, horizon=4, embargo_bars=8, bar=panel.bar).folds(ts)[0]
    fm = fit_fold_market(panel, fold, cfg)
    units = plan_fold(config=cfg, features=FeatureSpec.from_config(cfg), fold=fold, timeline_end=ts.max(),
                      asset_ids={s: i for i, s in enumerate(panel.symbols)}, cluster_of=fm.clusters.cluster_map,
                      factor=fm.factor, is_final=False)
    return units, panel.frames


@pytest.mark.slow
def test_cnn_unit_lands_with_a_gpu_reservation_and_gbm_unit_without(ray_gpu):
    backend = RayBackend(num_cpus=1)
    cnn_units, frames = _units(["trend", "pattern"])
    gbm_units, _ = _units(["trend", "stress"])
    cnn = backend.run(cnn_units, frames, on_result=lambda r: None)[0]
    gbm = backend.run(gbm_units, frames, on_result=lambda r: None)[0]
    assert cnn.resources.get("GPU") == pytest.approx(0.5)
    assert "GPU" not in gbm.resources or gbm.resources["GPU"] == 0
    assert cnn.resources.get("CPU") == pytest.approx(1.0)
