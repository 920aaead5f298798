"""TrendExpert: finds a planted signal, finds none in noise, uses the asset id."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from fleet.errors import UnknownSymbolError
from fleet.models import TrendExpert


def _frame(n, rng, asset_ids=(3, 7)):
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "x3": rng.normal(size=n)})
    X["asset_id"] = rng.choice(asset_ids, size=n)
    return X


def _fit_score(X, y, split):
    model = TrendExpert(max_iter=100, min_samples_leaf=50).fit(X.iloc[:split], y[:split])
    return roc_auc_score(y[split:], model.predict_proba(X.iloc[split:])[:, 1]), model


def test_finds_planted_signal():
    rng = np.random.default_rng(1)
    X = _frame(8000, rng)
    y = (0.4 * X["x1"] + rng.normal(size=len(X)) > 0).astype(int).to_numpy()
    auc, model = _fit_score(X, y, 6000)
    assert auc > 0.6
    proba = model.predict_proba(X.iloc[:5])
    assert proba.shape == (5, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_finds_nothing_in_noise():
    rng = np.random.default_rng(2)
    X = _frame(8000, rng)
    y = rng.integers(0, 2, size=len(X))
    auc, _ = _fit_score(X, y, 6000)
    assert abs(auc - 0.5) < 0.04


def test_learns_asset_specific_rule_from_categorical_id():
    # The sign of the signal flips with the asset: without the asset id the pooled signal is zero.
    rng = np.random.default_rng(3)
    X = _frame(8000, rng)
    sign = np.where(X["asset_id"] == 3, 1.0, -1.0)
    y = (sign * X["x1"] + 0.5 * rng.normal(size=len(X)) > 0).astype(int).to_numpy()
    auc, _ = _fit_score(X, y, 6000)
    assert auc > 0.75
    blind = X.assign(asset_id=3)  # same rows, the asset identity removed
    auc_blind, _ = _fit_score(blind, y, 6000)
    assert auc_blind < 0.6


def test_unknown_asset_is_a_clear_error():
    rng = np.random.default_rng(4)
    X = _frame(500, rng)
    y = rng.integers(0, 2, size=len(X))
    model = TrendExpert(max_iter=5).fit(X, y)
    with pytest.raises(UnknownSymbolError, match=r"asset ids \[99\]"):
        model.predict_proba(X.assign(asset_id=99))


def test_estimator_contract():
    model = TrendExpert(max_iter=7, random_state=5)
    assert clone(model).get_params() == model.get_params()
    assert not [k for k in vars(model) if k.endswith("_")]  # nothing fitted in __init__
    rng = np.random.default_rng(0)
    X = _frame(300, rng)
    assert TrendExpert(max_iter=3).fit(X, rng.integers(0, 2, 300)) is not None
