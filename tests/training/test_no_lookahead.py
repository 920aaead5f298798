"""Nothing fitted may see data after its fold's training window.

Each test fits on a fold, then rewrites every bar from the end of the training window on
(prices scaled by random noise) and fits again: everything fitted — FFD order, feature
scaling, clusters, linkage, factor loadings and the factor values before the window's end,
the model's training rows — must be identical.
"""

import numpy as np
import pandas as pd
import pytest

from _lookahead import _fold, _perturb_after
from fleet.config import FleetConfig
from fleet.data.synthetic import synthetic_market
from fleet.features.spec import FeatureSpec
from fleet.market.fold import fit_fold_market
from fleet.training.dataset import build_unit_dataset


@pytest.fixture(scope="module")
def market():
    return synthetic_market(n_clusters=2, assets_per_cluster=2, days=120, seed=11)


def test_ffd_order_scaler_and_training_rows_ignore_the_future(market):
    panel = market.panel
    fold, end = _fold(panel)
    cfg = FleetConfig()
    assets = {s: i for i, s in enumerate(panel.symbols)}
    kw = dict(assets=assets, fold=fold, timeline_end=end, factor=None, features=FeatureSpec.from_config(cfg))
    before = build_unit_dataset(frames=panel.frames, **kw)
    after = build_unit_dataset(frames=_perturb_after(panel, fold.train_end).frames, **kw)
    assert before.preprocessors == after.preprocessors
    pd.testing.assert_frame_equal(before.X_train, after.X_train)
    np.testing.assert_array_equal(before.y_train, after.y_train)
    # and the perturbation did reach the test rows, so the check above is not vacuous
    assert not before.X_test.equals(after.X_test)


def test_training_labels_never_reach_the_test_block(market):
    panel = market.panel
    cfg = FleetConfig()
    assets = {s: i for i, s in enumerate(panel.symbols)}
    for k in range(3):
        fold, end = _fold(panel, k)
        ds = build_unit_dataset(assets=assets, frames=panel.frames, fold=fold, timeline_end=end, factor=None,
                                features=FeatureSpec.from_config(cfg))
        bar = panel.bar
        assert (ds.train_meta["timestamp"] + 4 * bar < fold.test_start).all()
        assert (ds.train_meta["timestamp"] < fold.train_end).all()
        assert (ds.train_meta["timestamp"] + 4 * bar < fold.train_end).all()  # labels end inside the window
        assert ds.test_meta["timestamp"].between(fold.test_start, fold.test_end, inclusive="left").all()
        assert (ds.test_meta["timestamp"] + 4 * bar <= end).all()


def test_clusters_and_factor_ignore_the_future(market):
    panel = market.panel
    fold, _ = _fold(panel)
    cfg = FleetConfig(market={"clusters": 2})
    before = fit_fold_market(panel, fold, cfg)
    late = _perturb_after(panel, fold.train_end, seed=3)
    after = fit_fold_market(late, fold, cfg)
    assert before.clusters.cluster_map == after.clusters.cluster_map
    np.testing.assert_allclose(before.clusters.linkage, after.clusters.linkage)
    assert before.explained_variance == after.explained_variance
    early = before.factor.index < fold.train_end
    pd.testing.assert_series_equal(before.factor[early], after.factor[early])
    assert not np.allclose(before.factor[~early].fillna(0), after.factor[~early].fillna(0))


def test_planted_clusters_and_factor_are_recovered():
    m = synthetic_market(n_clusters=3, assets_per_cluster=3, days=240, seed=5)
    panel = m.panel
    fold, _ = _fold(panel, k=2)
    cfg = FleetConfig()
    fm = fit_fold_market(panel, fold, cfg)
    found = {frozenset(v) for v in fm.clusters.members.values()}
    planted = {}
    for s, c in m.clusters.items():
        planted.setdefault(c, set()).add(s)
    assert found == {frozenset(v) for v in planted.values()}
    assert set(fm.clusters.members[fm.clusters.dominant_cluster]) == planted[0]
    both = pd.concat([fm.factor, m.factor], axis=1).dropna()
    assert both.corr().iloc[0, 1] > 0.9
