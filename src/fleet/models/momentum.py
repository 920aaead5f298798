"""MomentumExpert: P(up) from the asset's and the market factor's log returns over the return horizons.

A logistic regression (L2, scikit-learn) on

* ``ret_{h}``         the asset's log return over h bars (base features, scaled per asset on the training window);
* ``market_factor``   the market factor of the bar (one-bar return of the dominant cluster, standardised);
* ``factor_ret_{h}``  the factor summed over h bars (:mod:`fleet.features.factor_returns`);

plus one-hot asset ids (per-asset intercepts). Its sign per horizon is learnt, so it expresses
time-series momentum (Moskowitz, Ooi & Pedersen 2012) or short-term reversal (Lehmann 1990) and how an
asset follows or leads the market, as linear terms. Why it is in the mixture: the trend expert
(gradient boosting on the technical features) sees neither the factor's past returns nor a smooth linear
score, which this expert adds.
"""

from __future__ import annotations

from fleet.features.factor_returns import FACTOR_COLUMN, FACTOR_RETURN_PREFIX
from fleet.models._tabular import _PrefixLogit


class MomentumExpert(_PrefixLogit):
    """L2 logistic regression on own and market-factor returns (scikit-learn contract).

    Args:
        C: inverse L2 regularisation strength (features are standardised per asset).
        class_weight: None (default) or 'balanced'.
        asset_aware: per-asset intercepts (one-hot asset ids); False leaves them out.

    Raises:
        ValueError: in ``fit`` when X has none of the columns (``ret_*``, ``market_factor``, ``factor_ret_*``).
    """

    _prefixes = ("ret_", FACTOR_COLUMN, FACTOR_RETURN_PREFIX)
    _name = "factor"

    def __init__(self, C: float = 0.1, class_weight: str | None = None, asset_aware: bool = True):
        self.C = C
        self.class_weight = class_weight
        self.asset_aware = asset_aware
