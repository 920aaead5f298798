"""Meta-labelling (López de Prado, *Advances in Financial Machine Learning*, ch. 3.6): a secondary model that
learns when to act on the primary model's side.

The primary model (the unit's expert or mixture) sets the side: long when P(up) > threshold (and short below
1 - threshold with both sides). The secondary model is trained on the bars where the primary bets, with the
meta-label ``side * ret > 0`` (:func:`fleet.features.labels.meta_labels`: did the bet pay over its label
window?), from the unit's features plus the primary's logit P(up). At prediction time a bet is kept only where
the secondary's P(pays) is above ``min_proba``. Fitted on the training window's inner out-of-fold primary
predictions (:func:`fleet.training.policy_unit.oof_predictions`), never on rows the primary was fitted on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from fleet.features.labels import meta_labels
from fleet.models._context import feature_columns

__all__ = ["MetaLabeler", "primary_side"]

P_PRIMARY = "p_primary"


def primary_side(p, threshold: float, sides: str = "long") -> np.ndarray:
    """The primary's bet per bar, int8 (n,): 1 when p > threshold, -1 when sides = both and p < 1 - threshold."""
    p = np.asarray(p, dtype=np.float64)
    out = (p > threshold).astype(np.int8)
    if sides == "both":
        out[p < 1.0 - threshold] = -1
    return out


class MetaLabeler(ClassifierMixin, BaseEstimator):
    """Secondary classifier of meta-labelling: P(the primary's bet pays | features, primary P(up)).

    Args:
        threshold: the primary's entry level (its side, :func:`primary_side`). sides: ``long`` | ``both``.
        C: inverse L2 strength of the logistic regression. min_proba: a bet is kept where P(pays) > min_proba.

    Fitted attributes: features_ (input columns, ``p_primary`` last), model_ (LogisticRegression or None when the
    training bets had one outcome), base_rate_ (share of training bets that paid), n_bets_, classes_.
    """

    def __init__(self, threshold: float = 0.55, sides: str = "long", C: float = 1.0, min_proba: float = 0.5):
        self.threshold = threshold
        self.sides = sides
        self.C = C
        self.min_proba = min_proba

    def _design(self, X: pd.DataFrame, p_primary) -> np.ndarray:
        p = np.clip(np.asarray(p_primary, dtype=np.float64), 1e-6, 1 - 1e-6)
        cols = [X[c].to_numpy(dtype=np.float64) for c in self.features_[:-1]]
        return np.column_stack([*cols, np.log(p / (1 - p))]) if cols else np.log(p / (1 - p))[:, None]

    def fit(self, X: pd.DataFrame, p_primary, ret) -> "MetaLabeler":
        """Fit on rows (n, features) with the primary's out-of-fold P(up) (n,) and the label-window log return (n,).

        Raises:
            ValueError: shapes differ.
        """
        p = np.asarray(p_primary, dtype=np.float64)
        ret = np.asarray(ret, dtype=np.float64)
        if not (len(X) == p.size == ret.size):
            raise ValueError(f"MetaLabeler.fit: X has {len(X)} rows, p_primary {p.size}, ret {ret.size}")
        self.features_ = [*feature_columns(X), P_PRIMARY]
        y = meta_labels(primary_side(p, self.threshold, self.sides), ret)
        bet = np.isfinite(y)
        self.n_bets_ = int(bet.sum())
        self.base_rate_ = float(y[bet].mean()) if bet.any() else float("nan")
        self.model_ = None
        if len(np.unique(y[bet])) == 2:
            self.model_ = LogisticRegression(C=self.C, max_iter=1000).fit(self._design(X.loc[bet], p[bet]),
                                                                           y[bet].astype(int))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame, p_primary) -> np.ndarray:
        """(n, 2): column 1 is P(the bet pays); the training base rate when there was nothing to fit."""
        p = np.asarray(p_primary, dtype=np.float64)
        if self.model_ is None:
            q = np.full(p.size, 0.0 if not np.isfinite(self.base_rate_) else self.base_rate_)
        else:
            q = self.model_.predict_proba(self._design(X, p))[:, 1]
        return np.column_stack([1 - q, q])

    def allow(self, X: pd.DataFrame, p_primary) -> np.ndarray:
        """bool (n,): the secondary keeps the bet (P(pays) > min_proba)."""
        return self.predict_proba(X, p_primary)[:, 1] > self.min_proba
