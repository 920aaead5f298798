"""StressExpert: P(up) from stress features, with no hand-set caution.

Inputs are the ``stress_*`` columns of :mod:`fleet.features.stress` (drawdown from the running
peak, volatility of volatility, downside semivariance share, return skew, volume shock),
standardised per asset on the training window, plus one-hot asset ids.

Seed 002's fix is kept: ``class_weight='balanced'`` (the data decides the risk), no manual
``{0: 2, 1: 1}`` bias and no "physics override" that boosts this expert when theta is small.
"""

from __future__ import annotations

from fleet.features.stress import STRESS_PREFIX
from fleet.models._tabular import _PrefixLogit


class StressExpert(_PrefixLogit):
    """Balanced logistic regression on ``stress_*`` features (scikit-learn contract).

    Args:
        C: inverse L2 regularisation strength of the logistic regression.
        class_weight: 'balanced' (default) or None; a dict is refused — no hand-set bias.
        asset_aware: per-asset intercepts (one-hot asset ids); False leaves them out.

    Raises:
        ValueError: in ``fit`` when X has no ``stress_*`` column or class_weight is a dict.
    """

    _prefixes = (STRESS_PREFIX,)
    _name = "stress"

    def __init__(self, C: float = 0.1, class_weight: str | None = "balanced", asset_aware: bool = True):
        self.C = C
        self.class_weight = class_weight
        self.asset_aware = asset_aware

    def fit(self, X, y, sample_weight=None):
        if isinstance(self.class_weight, dict):
            raise ValueError(f"StressExpert: class_weight={self.class_weight!r}; a hand-set class bias is not "
                             "allowed, use 'balanced' or None")
        return super().fit(X, y, sample_weight)
