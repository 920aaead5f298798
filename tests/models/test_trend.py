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


# ---------------------------------------------------------------- early stopping, learners, many assets
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.metrics import log_loss  # noqa: E402

from _moe_data import HOUR, panel_rows, time_split  # noqa: E402
from fleet.models.trend import HGB_MAX_CATEGORIES, encode_assets, time_tail_split  # noqa: E402

LEARNERS = ["hgb", pytest.param("lightgbm", marks=pytest.mark.skipif(
    __import__("importlib").util.find_spec("lightgbm") is None, reason="lightgbm not installed"))]
ES = dict(early_stopping=True, max_iter=300, min_samples_leaf=50, learning_rate=0.1, n_iter_no_change=10,
          purge_bars=4)


def _timed(signal: float, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=2 * n), rng.normal(size=2 * n)
    y = (signal * x1 + rng.normal(size=2 * n) > 0).astype(int)
    return panel_rows(n, x1=x1, x2=x2), y


@pytest.mark.parametrize("learner", LEARNERS)
def test_early_stopping_finds_planted_signal_and_nothing_in_noise(learner):
    X, y = _timed(0.5)
    train = time_split(X)
    m = TrendExpert(learner=learner, **ES).fit(X[train], y[train])
    assert roc_auc_score(y[~train], m.predict_proba(X[~train])[:, 1]) > 0.6
    assert 1 <= m.best_iter_ <= 300 and m.n_iter_ == m.best_iter_ and len(m.val_loss_) >= m.best_iter_
    X, y = _timed(0.0, seed=1)
    m = TrendExpert(learner=learner, **ES).fit(X[train], y[train])
    assert abs(roc_auc_score(y[~train], m.predict_proba(X[~train])[:, 1]) - 0.5) < 0.04
    assert m.best_iter_ < 60  # noise: the tail's log-loss stops improving early


def test_validation_tail_is_strictly_later_and_purged():
    times = np.repeat(np.arange(100), 3)[np.random.default_rng(0).permutation(300)]  # 3 assets, shuffled rows
    fit, val = time_tail_split(times, 0.2, purge=4)
    assert set(times[val]) == set(range(80, 100))          # the last 20 % of the distinct timestamps
    assert set(times[fit]) == set(range(0, 76))            # everything at least 4 timestamps before it
    assert not (fit & val).any() and times[fit].max() + 4 < times[val].min()
    assert time_tail_split(np.arange(10), 0.2, purge=4) is None  # too few timestamps: no early stopping


def test_early_stopping_iteration_count_matches_an_independent_head_fit():
    X, y = _timed(0.4, n=2000, seed=3)
    m = TrendExpert(**ES).fit(X, y)
    fit, val = time_tail_split(X["bar_time"].to_numpy(), 0.2, purge=4)
    Z = X[["x1", "x2"]].to_numpy()
    codes = X["asset_id"].map({3: 0, 7: 1}).to_numpy(float)
    head = HistGradientBoostingClassifier(max_iter=len(m.val_loss_), learning_rate=0.1, max_leaf_nodes=8,
                                          min_samples_leaf=50, l2_regularization=1.0, early_stopping=False,
                                          categorical_features=[2]).fit(np.column_stack([Z, codes])[fit], y[fit])
    losses = [log_loss(y[val], p[:, 1]) for p in head.staged_predict_proba(np.column_stack([Z, codes])[val])]
    np.testing.assert_allclose(m.val_loss_, losses, rtol=1e-6)
    assert m.best_iter_ == int(np.argmin(losses)) + 1 and m.estimator_.n_iter_ == m.best_iter_


def test_rows_in_the_purge_gap_and_after_do_not_steer_early_stopping():
    X, y = _timed(0.4, n=2000, seed=4)
    base = TrendExpert(**ES).fit(X, y)
    fit, val = time_tail_split(X["bar_time"].to_numpy(), 0.2, purge=4)
    gap = ~fit & ~val
    assert gap.sum() == 4 * 2  # 4 timestamps x 2 assets
    y2, X2 = y.copy(), X.copy()
    y2[gap] = 1 - y2[gap]
    X2.loc[gap, "x1"] = 50.0
    other = TrendExpert(**ES).fit(X2, y2)
    np.testing.assert_array_equal(base.val_loss_, other.val_loss_)
    assert base.best_iter_ == other.best_iter_


def test_early_stopping_needs_bar_time_and_bad_learner_is_named():
    X, y = _timed(0.4, n=200)
    with pytest.raises(ValueError, match="bar_time"):
        TrendExpert(early_stopping=True).fit(X.drop(columns="bar_time"), y)
    with pytest.raises(ValueError, match="learner='xgb'"):
        TrendExpert(learner="xgb").fit(X, y)


def test_lightgbm_config_refused_up_front_when_not_installed(monkeypatch):
    import importlib.util

    from fleet.config import build_config
    from fleet.errors import ConfigError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lightgbm" else real(name, *a))
    with pytest.raises(ConfigError, match=r"model.trend.*lightgbm"):
        build_config({"model": {"trend": {"learner": "lightgbm"}}})


def test_asset_encoding_pools_the_rarest_assets_above_255():
    rng = np.random.default_rng(5)
    ids = np.concatenate([np.full(rng.integers(5, 50), a) for a in range(1000, 1300)])  # 300 assets, uneven rows
    codes = encode_assets(ids, HGB_MAX_CATEGORIES)
    assert set(codes.values()) == set(range(255))
    counts = pd.Series(ids).value_counts()
    pooled = sorted(a for a, c in codes.items() if c == 254)
    assert len(pooled) == 300 - 254
    # independently: the pooled ones are the 46 with the fewest rows (ties: larger id pooled first)
    ranked = sorted(counts.index, key=lambda a: (-counts[a], a))
    assert pooled == sorted(ranked[254:])
    assert encode_assets(ids[:100], HGB_MAX_CATEGORIES) == {a: i for i, a in enumerate(np.unique(ids[:100]))}


@pytest.mark.parametrize("learner", LEARNERS)
def test_three_hundred_assets_train_and_keep_asset_specific_rules(learner):
    # 300 assets; the signal's sign flips with the asset for the 10 biggest ones (they keep their own level)
    rng = np.random.default_rng(6)
    n_rows = {a: (400 if a < 10 else 60) for a in range(300)}
    ids = np.concatenate([np.full(n, a) for a, n in n_rows.items()])
    x1 = rng.normal(size=len(ids))
    sign = np.where(ids < 10, np.where(ids % 2 == 0, 1.0, -1.0), 1.0)
    y = (sign * x1 + 0.5 * rng.normal(size=len(ids)) > 0).astype(int)
    X = pd.DataFrame({"x1": x1, "x2": rng.normal(size=len(ids)), "asset_id": ids})
    m = TrendExpert(learner=learner, max_iter=60, min_samples_leaf=20).fit(X, y)
    big = ids < 10
    assert roc_auc_score(y[big], m.predict_proba(X[big])[:, 1]) > 0.8  # sign flip learnt per asset
    assert m.predict_proba(X).shape == (len(X), 2)
