"""What every gate shares: top-k weights, expert logits, argument checks and the convex-mixture mix-in.

Kept apart from :mod:`fleet.models.gate` so that :mod:`fleet.models.gate_mlp` (torch) and the torch-free
gates both stand on it without importing each other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_EPS = 1e-6


def top_k_weights(probs: np.ndarray, k: int) -> np.ndarray:
    """Keep each row's k largest entries of ``probs`` (n, E), zero the rest, renormalise to sum 1.

    Raises:
        ValueError: k outside 1..E.
    """
    probs = np.asarray(probs, dtype=np.float64)
    n, e = probs.shape
    if not 1 <= k <= e:
        raise ValueError(f"top_k={k}: expected 1 <= top_k <= {e} (number of experts)")
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    out = np.zeros_like(probs)
    rows = np.arange(n)[:, None]
    kept = np.maximum(probs[rows, order], 1e-12)
    out[rows, order] = kept / kept.sum(axis=1, keepdims=True)
    return out


def expert_logits(P: np.ndarray) -> np.ndarray:
    """logit of P(up) (n, E), probabilities clipped to [1e-6, 1 - 1e-6]."""
    P = np.clip(np.asarray(P, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(P) - np.log1p(-P)


def _check_fit_args(who: str, X, P, y, expert_names) -> tuple[np.ndarray, np.ndarray]:
    P = np.asarray(P, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if not expert_names:
        raise ValueError(f"{who}.fit: expert_names (the ensemble's experts) is required")
    if P.ndim != 2 or len(P) != len(X) or len(y) != len(X) or P.shape[1] != len(expert_names):
        raise ValueError(f"{who}.fit: expert_probs {P.shape}, y {y.shape}, X {getattr(X, 'shape', None)}, "
                         f"{len(expert_names)} experts: expected (n, E), (n,), n rows")
    return P, y


class _ConvexGate:
    """Shared by gates whose output is the convex mixture sum_e w_e P_e."""

    def predict_mixture(self, X: pd.DataFrame, expert_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(p_up (n,) = sum_e w_e P_e clipped to [0, 1], weights (n, E))."""
        P = np.asarray(expert_probs, dtype=np.float64)
        W = self.predict_weights(X, P)
        return np.clip((P * W).sum(axis=1), 0.0, 1.0), W
