"""TrendExpert: gradient boosting on per-bar features, aware of which asset a row belongs to.

Seed 000 ("asset-aware experts"): in a multi-asset unit the asset id is passed to
scikit-learn's :class:`~sklearn.ensemble.HistGradientBoostingClassifier` as a *native
categorical* feature, so trees can branch on the asset ("if asset is SOL and rsi > 70")
while sharing statistical strength across the unit's assets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier

from fleet.errors import UnknownSymbolError
from fleet.models._context import ASSET_ID, BAR_TIME
from fleet.models._io import PersistMixin


class TrendExpert(PersistMixin, ClassifierMixin, BaseEstimator):
    """P(up) from tabular features with the asset id as a categorical feature.

    Follows the scikit-learn estimator contract: ``__init__`` only stores parameters,
    ``fit`` returns ``self``, fitted attributes end in ``_``.

    Args:
        max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization:
            passed to :class:`~sklearn.ensemble.HistGradientBoostingClassifier`.
        random_state: seed of the booster (it only matters for tie-breaking; early stopping
            is off so no random validation split is drawn from a time series).

    Input ``X`` is a DataFrame of shape (n_samples, n_features + 1): numeric feature
    columns plus an integer ``asset_id`` column (a ``bar_time`` context column is ignored) (registry ids). The ids are re-encoded to
    0..n_assets-1 internally (HistGradientBoosting needs small non-negative categories)
    and the mapping is kept in ``asset_codes_``.

    Fitted attributes:
        estimator_: the fitted HistGradientBoostingClassifier.
        feature_names_: list of feature column names, in training order (asset_id last).
        asset_codes_: dict registry id -> category code.
        classes_: array([0, 1]).
    """

    def __init__(self, max_iter: int = 100, learning_rate: float = 0.05, max_leaf_nodes: int = 8,
                 min_samples_leaf: int = 1000, l2_regularization: float = 1.0, random_state: int = 0):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.random_state = random_state

    def _matrix(self, X: pd.DataFrame, *, fitting: bool) -> np.ndarray:
        if not isinstance(X, pd.DataFrame) or ASSET_ID not in X.columns:
            raise ValueError(f"TrendExpert expects a DataFrame with an '{ASSET_ID}' column, got "
                             f"{type(X).__name__} with columns {list(getattr(X, 'columns', []))}")
        ids = X[ASSET_ID].to_numpy(dtype=np.int64)
        if fitting:
            self.asset_codes_ = {int(a): i for i, a in enumerate(np.unique(ids))}
            self.feature_names_ = [c for c in X.columns if c not in (ASSET_ID, BAR_TIME)] + [ASSET_ID]
        else:
            missing = [c for c in self.feature_names_ if c not in X.columns]
            if missing:
                raise ValueError(f"TrendExpert: columns {missing} seen in fit are missing at predict time")
        unknown = sorted({int(a) for a in ids} - set(self.asset_codes_))
        if unknown:
            raise UnknownSymbolError(
                f"asset ids {unknown} were not in this model's training data; it knows ids "
                f"{sorted(self.asset_codes_)}")
        codes = np.vectorize(self.asset_codes_.__getitem__, otypes=[np.float64])(ids) if len(ids) else ids.astype(float)
        # Column by column: selecting a list of columns from a DataFrame costs ~0.5 ms per call
        # (label indexing), which a one-row serving request would pay on every prediction.
        return np.column_stack([X[c].to_numpy(dtype=np.float64) for c in self.feature_names_[:-1]] + [codes])

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> "TrendExpert":
        """Fit on (n_samples, n_features + asset_id) rows and binary labels y of shape (n_samples,)."""
        matrix = self._matrix(X, fitting=True)
        n_features = matrix.shape[1]
        self.estimator_ = HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            categorical_features=[n_features - 1],
            random_state=self.random_state,
        )
        self.estimator_.fit(matrix, np.asarray(y, dtype=np.int64), sample_weight=sample_weight)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, shape (n_samples, 2): column 1 is P(up)."""
        return self.estimator_.predict_proba(self._matrix(X, fitting=False))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Most likely class (0/1), shape (n_samples,)."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
