"""MarketFactor: planted factor recovery, sign, no look-ahead, mean / weighted_mean by hand, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from fleet.errors import ConfigError, DataError
from fleet.market.factor import MarketFactor


def planted(n=2000, seed=0, sign=1.0):
    """Four assets r_i = vol_i * (b_i * f + noise): one planted factor f, different scales."""
    rng = np.random.default_rng(seed)
    f = rng.standard_normal(n)
    betas, vols = np.array([1.0, 0.8, 1.2, 0.6]), np.array([0.01, 0.02, 0.03, 0.015])
    x = vols * (sign * betas * f[:, None] + 0.5 * rng.standard_normal((n, 4)))
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC", name="timestamp")
    return pd.DataFrame(x, index=idx, columns=["BTC", "ETH", "SOL", "BNB"]), pd.Series(f, index=idx)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pca_recovers_planted_factor_with_positive_sign(seed):
    returns, f = planted(seed=seed)
    model = MarketFactor("pca")
    assert model.fit(returns) is model
    out = model.transform(returns)
    assert out.name == "market_factor" and out.index.equals(returns.index)
    assert np.corrcoef(out, f)[0, 1] > 0.9            # positive: sign fixed so the factor rises with the assets
    assert (model.loadings_ > 0).all() and model.loadings_.sum() > 0
    assert out.mean() == pytest.approx(0.0, abs=1e-12) and out.std(ddof=0) == pytest.approx(1.0)
    assert 0.7 < model.explained_variance_ratio_ <= 1.0


def test_pca_sign_when_assets_fall_with_factor():
    returns, f = planted(sign=-1.0)
    out = MarketFactor("pca").fit_transform(returns)
    assert np.corrcoef(out, f)[0, 1] < -0.9           # tracks the assets, not the planted f
    assert np.corrcoef(out, returns.mean(axis=1))[0, 1] > 0.9


def test_transform_uses_only_fitted_statistics():
    returns, _ = planted()
    model = MarketFactor("pca").fit(returns.iloc[:1000])
    before = model.transform(returns)
    future = returns.copy()
    future.iloc[1500:] = future.iloc[1500:] * 10.0 + 0.05
    future.iloc[1700:, 1] = np.nan
    after = model.transform(future)
    pd.testing.assert_series_equal(before.iloc[:1500], after.iloc[:1500])
    # refitting on the same prefix of the perturbed data gives the same model
    refit = MarketFactor("pca").fit(future.iloc[:1000])
    pd.testing.assert_series_equal(refit.loadings_, model.loadings_)


def _z(x):
    return (x - x.mean()) / x.std(ddof=0)


def test_mean_by_hand():
    rng = np.random.default_rng(3)
    a = rng.standard_normal(50) * 0.01
    b = 0.5 * a + rng.standard_normal(50) * 0.02
    df = pd.DataFrame({"A": a, "B": b})
    model = MarketFactor("mean").fit(df)
    raw = (_z(a) + _z(b)) / 2
    np.testing.assert_allclose(model.transform(df).to_numpy(), _z(raw))
    rho = np.corrcoef(a, b)[0, 1]
    # share of variance along u = (1, 1)/sqrt(2) of two standardised series: (1 + rho) / 2
    assert model.explained_variance_ratio_ == pytest.approx((1 + rho) / 2)
    assert model.explained_variance_ratio_ <= MarketFactor("pca").fit(df).explained_variance_ratio_ + 1e-12


def test_weighted_mean_by_hand():
    rng = np.random.default_rng(4)
    a = rng.standard_normal(60) * 0.01
    b = 0.3 * a + rng.standard_normal(60) * 0.01
    df = pd.DataFrame({"A": a, "B": b})
    model = MarketFactor("weighted_mean").fit(df, weights=pd.Series({"B": 1.0, "A": 3.0}))
    np.testing.assert_allclose(model.loadings_.to_numpy(), [0.75, 0.25])
    raw = 0.75 * _z(a) + 0.25 * _z(b)
    np.testing.assert_allclose(model.transform(df).to_numpy(), _z(raw))
    rho = np.corrcoef(a, b)[0, 1]
    # u = (3, 1)/sqrt(10): u'Cu = (9 + 1 + 6 rho) / 10, trace(C) = 2
    assert model.explained_variance_ratio_ == pytest.approx((10 + 6 * rho) / 20)


def test_missing_asset_contributes_zero_and_all_missing_is_nan():
    df = pd.DataFrame({"A": [0.01, -0.02, 0.03, 0.0], "B": [0.02, 0.0, 0.01, -0.01]})
    model = MarketFactor("mean").fit(df)
    za = (0.01 - df["A"].mean()) / df["A"].std(ddof=0)
    test = pd.DataFrame({"B": [np.nan, np.nan], "A": [0.01, np.nan]})   # column order may differ
    out = model.transform(test)
    assert out.iloc[0] == pytest.approx((0.5 * za - model.factor_mean_) / model.factor_std_)
    assert np.isnan(out.iloc[1])


def test_rows_with_nan_dropped_for_fit():
    df = pd.DataFrame({"A": [0.01, np.nan, 0.03, 0.0, -0.01], "B": [0.02, 0.0, np.nan, -0.01, 0.01]})
    model = MarketFactor("mean").fit(df)
    assert model.n_samples_fit_ == 3
    assert model.mean_["A"] == pytest.approx(0.0)      # mean of 0.01, 0.0, -0.01


def test_errors():
    returns, _ = planted(n=20)
    with pytest.raises(ConfigError, match="method='median'.*valid: pca, mean, weighted_mean"):
        MarketFactor("median").fit(returns)
    with pytest.raises(ConfigError, match="method='weighted_mean' needs weights"):
        MarketFactor("weighted_mean").fit(returns)
    with pytest.raises(DataError, match="weights have no value for BNB"):
        MarketFactor("weighted_mean").fit(returns, weights=pd.Series({"BTC": 1.0, "ETH": 1.0, "SOL": 1.0}))
    with pytest.raises(DataError, match="1 complete rows"):
        MarketFactor().fit(returns.iloc[:1])
    with pytest.raises(DataError, match="constant returns for FLAT"):
        MarketFactor().fit(returns.assign(FLAT=0.0))
    with pytest.raises(NotFittedError):
        MarketFactor().transform(returns)
    model = MarketFactor().fit(returns)
    with pytest.raises(DataError, match="missing: BNB; unexpected: XRP"):
        model.transform(returns.rename(columns={"BNB": "XRP"}))
