"""Small synthetic design matrices with the unit context columns (asset_id, bar_time) for expert tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

HOUR = 3600 * 10**9


class ColumnExpert(ClassifierMixin, BaseEstimator):
    """A fake expert whose P(up) is the column ``column`` of X (nothing is learned)."""

    def __init__(self, column: str = "pa"):
        self.column = column

    def fit(self, X, y, sample_weight=None):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p = X[self.column].to_numpy(np.float64)
        return np.column_stack([1 - p, p])


def panel_rows(n_per_asset: int, assets=(3, 7), seed: int = 0, **columns) -> pd.DataFrame:
    """Rows sorted by (time, asset): context columns plus the given per-row arrays (len n_per_asset * len(assets)),
    laid out asset-major (asset a's rows are columns[a_index * n : (a_index + 1) * n], in time order)."""
    ids = np.repeat(np.asarray(assets), n_per_asset)
    t = np.tile(np.arange(n_per_asset, dtype=np.int64) * HOUR, len(assets))
    X = pd.DataFrame(dict(columns))
    X["asset_id"] = ids
    X["bar_time"] = t
    return X


def time_split(X: pd.DataFrame, frac: float = 0.7) -> np.ndarray:
    """Boolean mask of rows in the first ``frac`` of the timestamps (a time-ordered train split)."""
    uniq = np.unique(X["bar_time"])
    return (X["bar_time"] < uniq[int(len(uniq) * frac)]).to_numpy()


def window_signal(n_per_asset: int, n_assets: int = 2, lookback: int = 5, seed: int = 0):
    """A feature ``f_a`` and labels y = 1 when the mean of the last ``lookback`` values of f_a is > 0
    (per asset), plus an unrelated channel ``ffd_log_close``. Returns (columns dict, y)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n_per_asset * n_assets)
    y = np.concatenate([(pd.Series(a[i * n_per_asset:(i + 1) * n_per_asset]).rolling(lookback, min_periods=1).mean()
                         > 0).astype(int).to_numpy() for i in range(n_assets)])
    return {"f_a": a, "ffd_log_close": rng.normal(size=len(a))}, y
