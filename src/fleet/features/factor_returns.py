"""The market factor's multi-bar returns at one asset's bars (the momentum expert's cross-asset inputs), causal.

The base features already hold the asset's own log returns over the ``return_horizons`` (``ret_h``) and the
market factor of the bar (``market_factor``, the standardised one-bar return of the dominant cluster's first
principal component, :mod:`fleet.market.factor`). This family adds the factor summed over the same
horizons, so a linear model can weigh the asset's move against the market's over 4, 12, 24 bars
(time-series and cross-sectional momentum / short-term reversal: Moskowitz, Ooi & Pedersen 2012,
"Time series momentum"; Lehmann 1990, "Fads, martingales, and market efficiency"):

* ``factor_ret_{h}``  sum of ``market_factor`` over the asset's last ``h`` bars, for every ``h > 1`` of the
  return horizons (h = 1 is ``market_factor`` itself). Units: factor standard deviations (summed).

The factor comes from the run (fitted on each fold's training window, stored with the model for serving), not
from the request's bars: the pipeline puts it into the asset's frame as a ``market_factor`` column before the
families are computed (:func:`fleet.features.pipeline.asset_feature_arrays`). Gaps in the factor are 0 there,
as for the base feature.
"""

from __future__ import annotations

import pandas as pd

from fleet.errors import DataError

FACTOR_RETURN_PREFIX = "factor_ret_"
FACTOR_COLUMN = "market_factor"  # the base feature's name too (fleet.features.pipeline.FACTOR)


def factor_return_horizons(return_horizons) -> tuple[int, ...]:
    """The horizons (bars) of the family's columns: the return horizons above one bar, sorted, distinct."""
    return tuple(sorted({int(h) for h in return_horizons if int(h) > 1}))


def factor_return_warmup(return_horizons) -> int:
    """Bars a value needs to equal its value on a long history: the longest horizon (1 without one above 1)."""
    return max(factor_return_horizons(return_horizons), default=1)


def factor_returns(frame: pd.DataFrame, return_horizons) -> pd.DataFrame:
    """``factor_ret_{h}`` for one asset, shape (n_bars, number of horizons > 1), NaN for the first h - 1 bars.

    Args:
        frame: (n_bars, k) the asset's bars with a ``market_factor`` column (the run's factor at these bars).
        return_horizons: the feature config's return horizons, bars.

    Raises:
        DataError: ``frame`` has no ``market_factor`` column (the run has no market factor).
    """
    if FACTOR_COLUMN not in frame.columns:
        raise DataError("feature family 'factor' (the momentum expert's input): no market factor at this asset's "
                        "bars; it needs the run's market factor (market.factor_method), which this call did not pass")
    f = frame[FACTOR_COLUMN].astype("float64")
    return pd.DataFrame({f"{FACTOR_RETURN_PREFIX}{h}": f.rolling(h, min_periods=h).sum()
                         for h in factor_return_horizons(return_horizons)}, index=frame.index)
