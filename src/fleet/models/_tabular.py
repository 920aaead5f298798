"""A logistic-regression expert over a chosen family of feature columns (shared by Stress and SDE)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from fleet.models._context import ASSET_ID, feature_columns, require_context
from fleet.models._io import PersistMixin



def asset_onehot(X: pd.DataFrame, codes: dict[int, int]) -> np.ndarray:
    """One-hot (n, len(codes)) of the rows' ``asset_id`` by ``codes`` (registry id -> column); an id not in
    ``codes`` gets an all-zero row (the pooled intercept)."""
    ids = X[ASSET_ID].to_numpy(dtype=np.int64)
    onehot = np.zeros((len(X), len(codes)))
    for a, j in codes.items():
        onehot[ids == a, j] = 1.0
    return onehot

class _PrefixLogit(PersistMixin, ClassifierMixin, BaseEstimator):
    """Logistic regression on the columns of X whose names start with ``_prefixes``.

    Subclasses set ``_prefixes`` and the constructor parameters. X: DataFrame (n, n_features + context);
    the asset id enters as one-hot columns (asset-aware intercepts); unknown assets get
    the all-zero one-hot (the pooled intercept). With ``asset_aware = False`` (a subclass parameter;
    absent means True) there are no one-hot columns: one intercept for every asset.

    Fitted attributes: ``estimator_``, ``columns_`` (feature columns used), ``asset_codes_``, ``classes_``.
    """

    _prefixes: tuple[str, ...] = ()
    _name = "expert"

    def _design(self, X: pd.DataFrame, *, fitting: bool) -> np.ndarray:
        require_context(X, type(self).__name__, (ASSET_ID,))
        if fitting:
            self.columns_ = feature_columns(X, self._prefixes)
            if not self.columns_:
                raise ValueError(f"{type(self).__name__}: X has no columns starting with {self._prefixes}; "
                                 f"enable the '{self._name}' feature group (it has columns {list(X.columns)})")
            self.asset_codes_ = {int(a): i for i, a in enumerate(np.unique(X[ASSET_ID].to_numpy()))}
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise ValueError(f"{type(self).__name__}: columns {missing} seen in fit are missing at predict time")
        num = X[self.columns_].to_numpy(dtype=np.float64)
        if not getattr(self, "asset_aware", True):
            return num
        return np.column_stack([num, asset_onehot(X, self.asset_codes_)])

    def fit(self, X: pd.DataFrame, y, sample_weight=None):
        """Fit on rows X (n, features + context) and labels y (n,) in {0, 1}; returns self."""
        Z = self._design(X, fitting=True)
        self.estimator_ = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=500)
        self.estimator_.fit(Z, np.asarray(y, dtype=np.int64), sample_weight=sample_weight)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, 2) class probabilities; column 1 is P(up)."""
        return self.estimator_.predict_proba(self._design(X, fitting=False))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

