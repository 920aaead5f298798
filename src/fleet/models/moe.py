"""MixtureOfExpertsEnsemble: experts + gate, with the gate trained only on out-of-fold expert outputs.

fit(X, y) on one unit's training window (rows of several assets, context columns ``asset_id`` and
``bar_time``, see :mod:`fleet.models._context`):

1. Inner time split of the training window: the first ``1 - oof_fraction`` of its timestamps
   (minus ``purge_bars`` timestamps, the label horizon, so no inner-training label overlaps the
   inner validation block) fit a clone of every expert; those clones predict the last
   ``oof_fraction`` of timestamps. This (n_oof, E) matrix of out-of-fold P(up) is the only expert
   output the gate ever sees — never a prediction an expert made on its own training rows.
2. The gate is fitted on those rows (their fingerprint / asset / factor, the OOF matrix, labels).
3. Every expert is refitted on the full training window (``experts_``); at predict time
   P(up) = sum over the top-k experts of gate weight x expert P(up).

With one expert (or ``enabled=False`` in the config, see :func:`fleet.models.factory.build_model`)
there is no gate: weight 1.

Fitted attributes: expert_names_, experts_ (name -> fitted expert), gate_, oof_index_ (positions of X
used to fit the gate), oof_probs_ (n_oof, E), active_experts_ (experts with non-zero mean gate weight
on the OOF rows), classes_.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from fleet.models._context import BAR_TIME, require_context
from fleet.models._io import PersistMixin


class MixtureOfExpertsEnsemble(PersistMixin, ClassifierMixin, BaseEstimator):
    """Gated mixture of experts (see module docstring).

    Args:
        experts: list of (name, unfitted estimator) pairs; names unique.
        gate: unfitted gate (RuleGate / MLPGate), or None when there is a single expert.
        oof_fraction: share of the training window's timestamps used as the inner validation block.
        purge_bars: timestamps dropped between the inner training and validation blocks (label horizon).

    Raises:
        ValueError: in fit, on duplicate names, no experts, a missing gate with several experts, or an
            inner split that leaves either side empty.
    """

    def __init__(self, experts, gate=None, oof_fraction: float = 0.3, purge_bars: int = 0):
        self.experts = experts
        self.gate = gate
        self.oof_fraction = oof_fraction
        self.purge_bars = purge_bars

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> "MixtureOfExpertsEnsemble":
        require_context(X, "MixtureOfExpertsEnsemble")
        names = [n for n, _ in self.experts]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"MixtureOfExpertsEnsemble: experts={names}: expected unique names, at least one")
        if len(names) > 1 and self.gate is None:
            raise ValueError("MixtureOfExpertsEnsemble: a gate is required with more than one expert")
        if not 0.0 < self.oof_fraction < 1.0:
            raise ValueError(f"MixtureOfExpertsEnsemble: oof_fraction={self.oof_fraction}: expected 0 < f < 1")
        y = np.asarray(y, dtype=np.int64)
        self.expert_names_ = names
        self.gate_ = None
        self.oof_index_ = np.empty(0, dtype=np.int64)
        self.oof_probs_ = np.empty((0, len(names)))
        if len(names) > 1:
            times = X[BAR_TIME].to_numpy(np.int64)
            uniq = np.unique(times)
            cut = int(len(uniq) * (1.0 - self.oof_fraction))
            if cut - self.purge_bars < 1 or cut >= len(uniq):
                raise ValueError(f"MixtureOfExpertsEnsemble: {len(uniq)} timestamps are too few for an inner split "
                                 f"with oof_fraction={self.oof_fraction} and purge_bars={self.purge_bars}")
            inner_fit = np.flatnonzero(times < uniq[cut - self.purge_bars])
            inner_val = np.flatnonzero(times >= uniq[cut])
            sw = None if sample_weight is None else np.asarray(sample_weight)
            X_fit, X_val = X.iloc[inner_fit], X.iloc[inner_val]
            P = np.column_stack([
                clone(est).fit(X_fit, y[inner_fit], None if sw is None else sw[inner_fit]).predict_proba(X_val)[:, 1]
                for _, est in self.experts])
            self.oof_index_, self.oof_probs_ = inner_val, P
            self.gate_ = clone(self.gate).fit(X_val, P, y[inner_val], expert_names=names)
        self.experts_ = {n: clone(est).fit(X, y, sample_weight) for n, est in self.experts}
        if self.gate_ is not None:
            w = self.gate_.predict_weights(X.iloc[self.oof_index_])
            self.active_experts_ = [n for n, m in zip(names, w.mean(axis=0)) if m > 0]
        else:
            self.active_experts_ = list(names)
        self.classes_ = np.array([0, 1])
        return self

    def history_bars(self) -> int:
        """Longest per-asset history (bars) an expert reads for one prediction: a CNN's window, else 1."""
        return max([e.history_bars() for e in self.experts_.values() if hasattr(e, "history_bars")] + [1])

    def expert_probs(self, X: pd.DataFrame) -> np.ndarray:
        """Each expert's P(up), shape (n, E), columns in ``expert_names_`` order."""
        return np.column_stack([self.experts_[n].predict_proba(X)[:, 1] for n in self.expert_names_])

    def _weights(self, X: pd.DataFrame) -> np.ndarray:
        if self.gate_ is None:
            return np.ones((len(X), len(self.expert_names_)))
        return self.gate_.predict_weights(X)

    def gate_weights(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row gate weights, (n, E) DataFrame with columns ``expert_names_`` (top-k non-zero, rows sum to 1)."""
        return pd.DataFrame(self._weights(X), columns=self.expert_names_, index=X.index)

    def predict_details(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p_up (n,), expert P(up) (n, E), gate weights (n, E)) — one pass for telemetry."""
        P = self.expert_probs(X)
        W = self._weights(X)
        return np.clip((P * W).sum(axis=1), 0.0, 1.0), P, W

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, 2) probabilities; column 1 is P(up) = sum_e w_e(x) P_e(up | x)."""
        p = self.predict_details(X)[0]
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

