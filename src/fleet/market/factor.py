"""The market factor: one standardised series summarising the dominant cluster's returns.

Follower assets receive it as a feature ("majors lead, alts follow"). It is fitted on
each fold's training window only and then applied to train and test timestamps alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted

from fleet.errors import ConfigError, DataError

__all__ = ["FACTOR_METHODS", "MarketFactor"]

FACTOR_METHODS = ("pca", "mean", "weighted_mean")


class MarketFactor(BaseEstimator):
    """Market factor of the dominant cluster, scikit-learn style.

    Fitting (on the fold's training window only — fitting on test rows is look-ahead):

    1. rows with any NaN are dropped; each asset is standardised, ``z = (r - mean_) / scale_``
       (population std, ddof=0);
    2. a loading vector ``w`` is chosen:
       * ``"pca"``: the first principal component of ``z`` (Pearson 1901; sklearn ``PCA``), i.e.
         the unit vector maximising ``var(z @ w)``; sign fixed so ``sum(w) > 0`` (the factor
         rises when the cluster rises);
       * ``"mean"``: equal weights ``1 / n_assets``;
       * ``"weighted_mean"``: ``weights`` (e.g. dollar volume) normalised to sum to 1;
    3. the raw factor ``f = z @ w`` is standardised with its own training mean and std
       (``factor_mean_``, ``factor_std_``), so the output has mean 0 and std 1 on the training rows.

    ``explained_variance_ratio_`` is the share of the total variance of ``z`` captured by the
    direction ``u = w / ||w||``: ``u' C u / trace(C)`` with ``C`` the (ddof=0) covariance of ``z``
    (``trace(C) = n_assets``). For "pca" it equals ``PCA.explained_variance_ratio_[0]``, the
    largest value any direction can reach, so mean / weighted_mean never exceed it.

    Args:
        method: "pca" (default), "mean" or "weighted_mean".

    Attributes (after ``fit``):
        feature_names_in_: ndarray of the asset columns, in fit order.
        n_features_in_: number of assets.
        mean_, scale_: pd.Series asset -> training mean / std of its returns (log-return units).
        loadings_: pd.Series asset -> weight on the standardised returns.
        explained_variance_ratio_: float in [0, 1].
        factor_mean_, factor_std_: floats, training mean / std of the raw factor.
        n_samples_fit_: complete rows used for fitting.
    """

    def __init__(self, method: str = "pca"):
        self.method = method

    def fit(self, returns: pd.DataFrame, weights: pd.Series | None = None, y=None) -> "MarketFactor":
        """Fit standardisation, loadings and factor scaling.

        Args:
            returns: (n_train_timestamps, n_dominant_assets) log returns of the dominant cluster on
                the fold's training window. Rows with any NaN are dropped for fitting.
            weights: asset -> non-negative weight (e.g. mean dollar volume); required for
                "weighted_mean", ignored otherwise.
            y: ignored (scikit-learn API).

        Returns:
            self.

        Raises:
            ConfigError: unknown method (lists the valid ones); weighted_mean without weights.
            DataError: not a DataFrame / no columns / duplicate columns; fewer than 2 complete
                rows; an asset with constant returns; weights missing an asset, negative,
                non-finite or summing to 0; a factor with zero variance.
        """
        self._check_fit_input(returns, weights)
        x = returns.to_numpy(dtype=np.float64)
        x = x[np.isfinite(x).all(axis=1)]
        if x.shape[0] < 2:
            raise DataError(f"MarketFactor.fit: {x.shape[0]} complete rows (no NaN in any of "
                            f"{returns.shape[1]} assets); need at least 2 — use a longer training window")
        cols = returns.columns
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        flat = [str(c) for c, s in zip(cols, scale) if not s > 0]
        if flat:
            raise DataError(f"MarketFactor.fit: constant returns for {', '.join(flat)} on the training rows; "
                            "cannot standardise")
        z = (x - mean) / scale
        w = self._loadings(z, cols, weights)

        cov = np.cov(z, rowvar=False, ddof=0).reshape(len(cols), len(cols))
        u = w / np.linalg.norm(w)
        evr = float(u @ cov @ u / np.trace(cov))
        raw = z @ w
        f_std = float(raw.std())
        if not f_std > 0:
            raise DataError("MarketFactor.fit: the factor is constant on the training rows; cannot standardise it")

        self.feature_names_in_ = np.asarray(cols, dtype=object)
        self.n_features_in_ = len(cols)
        self.mean_ = pd.Series(mean, index=cols)
        self.scale_ = pd.Series(scale, index=cols)
        self.loadings_ = pd.Series(w, index=cols, name="loading")
        self.explained_variance_ratio_ = min(max(evr, 0.0), 1.0)
        self.factor_mean_ = float(raw.mean())
        self.factor_std_ = f_std
        self.n_samples_fit_ = int(x.shape[0])
        return self

    def _check_fit_input(self, returns, weights) -> None:
        """ConfigError for an unknown method or weighted_mean without weights; DataError unless
        ``returns`` is a DataFrame with at least one column and no duplicate column."""
        if self.method not in FACTOR_METHODS:
            raise ConfigError(f"method={self.method!r}: unknown market factor method; "
                              f"valid: {', '.join(FACTOR_METHODS)}")
        if self.method == "weighted_mean" and weights is None:
            raise ConfigError("method='weighted_mean' needs weights (e.g. dollar volume per symbol); got None")
        if not isinstance(returns, pd.DataFrame) or returns.shape[1] == 0:
            raise DataError("MarketFactor.fit: expected a DataFrame of returns with one column per asset")
        if returns.columns.has_duplicates:
            dup = sorted(set(returns.columns[returns.columns.duplicated()]))
            raise DataError(f"MarketFactor.fit: duplicate asset columns {dup}")

    def _loadings(self, z: np.ndarray, cols: pd.Index, weights) -> np.ndarray:
        """The loading vector ``w`` (n_assets,) of step 2 (see the class docstring) on the standardised
        training returns ``z`` (n_rows, n_assets)."""
        if self.method == "pca":
            pca = PCA(n_components=1, svd_solver="full").fit(z)
            w = pca.components_[0].copy()
            # The singular vector's sign is arbitrary; make "up" mean the cluster went up.
            s = w.sum()
            if s < 0 or (s == 0 and w[np.argmax(np.abs(w))] < 0):
                w = -w
        elif self.method == "mean":
            w = np.full(len(cols), 1.0 / len(cols))
        else:
            w = self._normalised_weights(weights, cols)
        return w

    @staticmethod
    def _normalised_weights(weights, cols) -> np.ndarray:
        wts = pd.Series(weights, dtype=np.float64)
        missing = [str(c) for c in cols if c not in wts.index]
        if missing:
            raise DataError(f"MarketFactor.fit: weights have no value for {', '.join(missing)}; "
                            "expected one weight per asset column")
        w = wts.loc[list(cols)].to_numpy()
        if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise DataError("MarketFactor.fit: weights must be finite, >= 0 and not all 0 (e.g. dollar volume)")
        return w / w.sum()

    def transform(self, returns: pd.DataFrame) -> pd.Series:
        """Market factor at any timestamps (train and test), using only fitted statistics.

        ``f_t = (sum_j loadings_j * z_{t,j} - factor_mean_) / factor_std_`` with
        ``z = (r - mean_) / scale_``; an asset missing at t (NaN) contributes 0; a row with every
        asset missing gives NaN.

        Args:
            returns: (n_timestamps, n_assets) log returns with the fitted columns (any order).

        Returns:
            pd.Series named "market_factor", same index as ``returns``, standardised units.

        Raises:
            sklearn NotFittedError: called before ``fit``.
            DataError: columns differ from the fitted ones (names the missing / extra assets).
        """
        check_is_fitted(self, "loadings_")
        if not isinstance(returns, pd.DataFrame):
            raise DataError("MarketFactor.transform: expected a DataFrame of returns")
        fitted = list(self.loadings_.index)
        missing = [str(c) for c in fitted if c not in returns.columns]
        extra = [str(c) for c in returns.columns if c not in self.loadings_.index]
        if missing or extra:
            raise DataError(f"MarketFactor.transform: columns must be the fitted assets {', '.join(map(str, fitted))}; "
                            f"missing: {', '.join(missing) or '-'}; unexpected: {', '.join(extra) or '-'}")
        x = returns[fitted].to_numpy(dtype=np.float64)
        z = (x - self.mean_.to_numpy()) / self.scale_.to_numpy()
        present = np.isfinite(z)
        raw = np.where(present, z, 0.0) @ self.loadings_.to_numpy()
        out = (raw - self.factor_mean_) / self.factor_std_
        out[~present.any(axis=1)] = np.nan
        return pd.Series(out, index=returns.index, name="market_factor")

    def fit_transform(self, returns: pd.DataFrame, weights: pd.Series | None = None, y=None) -> pd.Series:
        """``fit(returns, weights).transform(returns)``."""
        return self.fit(returns, weights).transform(returns)
