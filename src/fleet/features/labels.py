"""Prediction targets: forward log returns over a horizon and the up/down label.

These are the only features that look into the future by design; the purged walk-forward
splits (``fleet.evaluation.splits``, AFML ch. 7) drop training rows whose label window
(t, t + horizon] reaches a test block.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fleet.errors import ConfigError, DataError, describe_rows

__all__ = ["barrier_volatility", "binary_label", "forward_log_return", "make_labels", "meta_labels", "triple_barrier"]


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


def barrier_volatility(close: pd.Series, horizon: int, span: int = 100) -> pd.Series:
    """Causal width unit of the triple barrier: EWM standard deviation (span ``span``) of the h-bar log
    return ending at each bar (AFML snippet 3.1 uses daily returns the same way), shape (n,), NaN at the start."""
    lc = np.log(pd.Series(close, dtype=np.float64))
    return lc.diff(int(horizon)).ewm(span=int(span), min_periods=int(span) // 2).std().rename("barrier_vol")


def triple_barrier(close: pd.Series, *, horizon: int, profit_take: float = 1.0, stop_loss: float = 1.0,
                   vol: pd.Series | None = None, vol_span: int = 100) -> pd.DataFrame:
    """Triple-barrier labels (López de Prado, *Advances in Financial Machine Learning*, ch. 3.4 - 3.5).

    For the bar t, with ``s = vol[t]`` (the width unit, known at t) and the path ``R_j = log(close[t+j] /
    close[t])``, j = 1..h: the upper (profit-take) barrier is ``R_j >= profit_take * s``, the lower (stop-loss)
    ``R_j <= -stop_loss * s``, the vertical barrier is j = h. The first barrier touched ends the label:
    ``label = 1`` when the return at that bar is > 0 (the upper barrier, or a vertical close above the entry),
    else 0 (AFML's sign label, binary as :func:`binary_label`).

    Args:
        close: shape (n,), one asset's close prices (> 0) in bar order.
        horizon: h, bars to the vertical barrier (>= 1).
        profit_take, stop_loss: barrier widths in units of ``vol`` (> 0).
        vol: shape (n,), the width unit per bar (log-return units); None: :func:`barrier_volatility`.
        vol_span: EWM span of the default ``vol``.

    Returns:
        DataFrame (n,) on ``close``'s index with columns ``label`` (float 0/1, NaN when the path is not
        complete or vol is NaN), ``ret`` (log return at the touch), ``end`` (bars from t to the touch, 1..h;
        -1 when undefined) and ``barrier`` ("pt", "sl", "vertical" or "").

    Raises:
        ConfigError: horizon < 1 or non-positive widths. DataError: bad prices (see :func:`forward_log_return`).
    """
    forward_log_return(close, horizon)  # validates horizon and prices
    if not (profit_take > 0 and stop_loss > 0):
        raise ConfigError(f"triple_barrier: profit_take={profit_take}, stop_loss={stop_loss}: expected widths > 0")
    close = pd.Series(close)
    h, n = int(horizon), len(close)
    lc = np.log(close.to_numpy(dtype=np.float64))
    s = (barrier_volatility(close, h, vol_span) if vol is None else pd.Series(vol)).to_numpy(dtype=np.float64)
    path = np.full((n, h), np.nan)
    for j in range(1, h + 1):
        path[: n - j, j - 1] = lc[j:] - lc[: n - j]
    up = path >= (profit_take * s)[:, None]
    dn = path <= (-stop_loss * s)[:, None]
    touched = up | dn
    first = np.where(touched.any(axis=1), touched.argmax(axis=1), h - 1)
    ok = np.isfinite(path[:, h - 1]) & np.isfinite(s)
    ret = path[np.arange(n), first]
    hit_up, hit_dn = up[np.arange(n), first], dn[np.arange(n), first]
    barrier = np.where(hit_up, "pt", np.where(hit_dn, "sl", "vertical"))
    return pd.DataFrame({"label": np.where(ok, (ret > 0).astype(np.float64), np.nan), "ret": np.where(ok, ret, np.nan),
                         "end": np.where(ok, first + 1, -1).astype(np.int64), "barrier": np.where(ok, barrier, "")},
                        index=close.index)


def make_labels(close: pd.Series, horizon: int, method: str = "fixed_horizon", *, profit_take: float = 1.0,
                stop_loss: float = 1.0, vol_span: int = 100) -> tuple[pd.Series, pd.Series]:
    """The training label and the bar where it ends: ``(y (n,) float 0/1/NaN, end (n,) timestamps, NaT if none)``.

    ``fixed_horizon``: :func:`binary_label` of the h-bar forward return, ending h bars later; ``triple_barrier``:
    :func:`triple_barrier`, ending at the bar its first barrier is touched (what purging must respect).
    """
    index = close.index
    if method == "fixed_horizon":
        y = binary_label(forward_log_return(close, horizon))
        steps = np.full(len(close), int(horizon))
    elif method == "triple_barrier":
        tb = triple_barrier(close, horizon=horizon, profit_take=profit_take, stop_loss=stop_loss, vol_span=vol_span)
        y, steps = tb["label"].rename("label"), tb["end"].to_numpy()
    else:
        raise ConfigError(f"labels.method={method!r}: expected 'fixed_horizon' or 'triple_barrier'")
    pos = np.arange(len(close)) + steps
    ok = y.notna().to_numpy() & (steps > 0) & (pos < len(close))
    end = pd.Series(pd.NaT, index=index, dtype=index.dtype if isinstance(index, pd.DatetimeIndex) else "datetime64[ns]")
    end[ok] = index[pos[ok]]
    return y, end


def meta_labels(side, ret) -> np.ndarray:
    """Meta-labels (AFML ch. 3.6): 1.0 where the primary model's bet ``side`` (+1 long, -1 short) earned
    ``side * ret > 0`` over its label (e.g. the triple-barrier ``ret``), 0.0 where it did not, NaN where there is
    no bet (side 0) or no return. A secondary classifier trained on them learns when to act on the primary's side.

    Args:
        side: shape (n,), the primary side per bar. ret: shape (n,), the log return of the label window.
    """
    side = np.asarray(side, dtype=np.float64)
    ret = np.asarray(ret, dtype=np.float64)
    if side.shape != ret.shape:
        raise DataError(f"meta_labels: side {side.shape} and ret {ret.shape} differ in shape")
    out = (side * ret > 0).astype(np.float64)
    out[(side == 0) | ~np.isfinite(ret)] = np.nan
    return out
