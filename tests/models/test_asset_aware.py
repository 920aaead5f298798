"""model.asset_aware (the asset-agnostic ablation): with the switch off no expert can tell assets apart.

The check: an asset-agnostic expert's predictions are invariant to permuting the asset ids, both
the ids it is fitted on and the ids it predicts for; the asset-aware one is not (the test can fail).
"""

from __future__ import annotations

import numpy as np
import pytest

from _moe_data import panel_rows, window_signal
from fleet.config import ModelConfig
from fleet.models import PatternExpert, SDEExpert, StressExpert, TrendExpert
from fleet.models.factory import build_expert

FAST_CNN = dict(epochs=2, lr=1e-2, patience=2, max_train_windows=1000, hidden=8, levels=2, window=16, random_state=0)


def _rows(n=600, seed=0):
    """Three assets; the label's sign flips with the asset, so asset identity carries information."""
    cols, _ = window_signal(n, n_assets=3, seed=seed)
    rng = np.random.default_rng(seed)
    X = panel_rows(n, assets=(3, 7, 11), **cols, stress_drawdown=rng.normal(size=3 * n),
                   sde_p_up=rng.uniform(size=3 * n))
    sign = np.select([X["asset_id"] == 3, X["asset_id"] == 7], [1.0, -1.0], 0.5)
    y = (sign * X["f_a"] + sign * X["stress_drawdown"] + 0.5 * rng.normal(size=len(X)) > 0).astype(int).to_numpy()
    return X, y


def _permuted(X):
    return X.assign(asset_id=X["asset_id"].map({3: 7, 7: 11, 11: 3}))


EXPERTS = {
    "trend": lambda aware: TrendExpert(max_iter=30, min_samples_leaf=20, asset_aware=aware),
    "stress": lambda aware: StressExpert(asset_aware=aware),
    "sde": lambda aware: SDEExpert(asset_aware=aware),
    "pattern": lambda aware: PatternExpert(asset_aware=aware, **FAST_CNN),
}


@pytest.mark.parametrize("name", list(EXPERTS))
def test_asset_agnostic_expert_is_invariant_to_permuted_asset_ids(name):
    X, y = _rows()
    blind = EXPERTS[name](False).fit(X, y)
    p = blind.predict_proba(X)
    np.testing.assert_allclose(blind.predict_proba(_permuted(X)), p, atol=1e-6)      # predicting
    np.testing.assert_allclose(EXPERTS[name](False).fit(_permuted(X), y).predict_proba(X), p, atol=1e-6)  # fitting
    aware = EXPERTS[name](True).fit(X, y)
    assert np.abs(aware.predict_proba(_permuted(X))[:, 1] - aware.predict_proba(X)[:, 1]).max() > 1e-3


def test_asset_agnostic_cnn_has_no_embedding_and_trend_no_categorical():
    X, y = _rows(300)
    assert PatternExpert(asset_aware=False, **FAST_CNN).fit(X, y).module_.asset_embedding is None
    assert PatternExpert(asset_aware=True, **FAST_CNN).fit(X, y).module_.asset_embedding is not None
    t = TrendExpert(max_iter=5, min_samples_leaf=20, asset_aware=False).fit(X, y)
    assert t.estimator_.is_categorical_ is None and t.estimator_.n_features_in_ == len(t.feature_names_)
    assert t.predict_proba(X.assign(asset_id=999)).shape == (len(X), 2)  # an unseen asset is fine: ids are unused


@pytest.mark.parametrize("name", ["trend", "stress", "sde", "pattern"])
def test_factory_passes_the_switch(name):
    cfg = ModelConfig(asset_aware=False, experts=[name])
    assert build_expert(name, cfg, seed=0).asset_aware is False
    assert build_expert(name, ModelConfig(experts=[name]), seed=0).asset_aware is True
