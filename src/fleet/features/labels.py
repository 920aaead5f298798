"""Prediction targets: forward log returns over a horizon and the up/down label.

These are the only features that look into the future by design; the purged walk-forward
splits (``fleet.evaluation.splits``, AFML ch. 7) drop training rows whose label window
(t, t + horizon] reaches a test block.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fleet.errors import ConfigError, DataError, describe_rows

__all__ = ["binary_label", "forward_log_return"]


def forward_log_return(close: pd.Series, horizon: int) -> pd.Series:
    """Log return from bar t to bar t + horizon: log(close_{t+h} / close_t).

    Args:
        close: shape (n,), one asset's close prices (> 0), in bar order.
        horizon: h, in bars, >= 1.

    Returns:
        float64 Series of shape (n,), same index, named ``"forward_return"``, in log-return
        units; the last h values are NaN (their future is not in the data), as is any value
        whose close_t or close_{t+h} is NaN.

    Raises:
        ConfigError: horizon is not an integer >= 1.
        DataError: close has infinite, zero or negative values (rows named), or is not numeric.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ConfigError(
            f"forward_log_return: horizon={horizon!r} is invalid; expected an integer >= 1 (bars)"
        )
    if not isinstance(close, pd.Series):
        close = pd.Series(close)
    try:
        x = close.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataError(
            f"forward_log_return: close {close.name!r} is not numeric (dtype {close.dtype})"
        ) from err
    bad = np.isinf(x) | (x <= 0.0)
    if bad.any():
        raise DataError(
            f"forward_log_return: close {close.name!r} has invalid values at "
            f"{describe_rows(np.flatnonzero(bad).tolist())}; expected finite prices > 0"
        )
    log_close = np.log(x)
    out = np.full(x.shape[0], np.nan)
    h = int(horizon)
    out[:-h] = log_close[h:] - log_close[:-h]
    return pd.Series(out, index=close.index, name="forward_return", dtype=np.float64)


def binary_label(forward_return: pd.Series) -> pd.Series:
    """Up/down label of a forward return: 1.0 where > 0, 0.0 where <= 0, NaN where NaN.

    A zero return counts as "not up" (0.0), so the label answers "would a long position
    have gained?".

    Args:
        forward_return: shape (n,), forward log returns (e.g. from ``forward_log_return``).

    Returns:
        float64 Series of shape (n,), same index, named ``"label"``.
    """
    if not isinstance(forward_return, pd.Series):
        forward_return = pd.Series(forward_return)
    x = forward_return.to_numpy(dtype=np.float64)
    out = np.where(np.isnan(x), np.nan, (x > 0.0).astype(np.float64))
    return pd.Series(out, index=forward_return.index, name="label", dtype=np.float64)
