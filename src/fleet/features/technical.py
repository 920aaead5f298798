"""Causal technical features of one asset's bars: log returns, volatility, RSI, range, volume.

Every value at bar t uses only rows <= t; warm-up rows are left NaN (never filled), and
``warmup_bars`` says how many there are. Features whose input columns the data lacks
(close-only equities have no high/low/volume) are left out and named, not invented.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from fleet.errors import ConfigError, DataError, describe_rows

__all__ = ["FEATURE_REQUIREMENTS", "technical_arrays", "technical_features", "warmup_bars"]

#: Feature (or feature family: ``ret`` -> ret_1, ret_4, ...) -> panel columns it needs.
FEATURE_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "ret": ("close",),
    "vol": ("close",),
    "rsi": ("close",),
    "hl_range": ("high", "low"),
    "volume_z": ("volume",),
}

# Value RSI takes when a window has neither gains nor losses (a flat price): neutral.
_RSI_FLAT = 50.0


def _positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(
            f"technical_features: {name}={value!r} is invalid; expected an integer >= {minimum} (bars)"
        )
    return int(value)


def _check_params(
    return_horizons: Iterable[int], vol_window: int, rsi_window: int, volume_window: int
) -> tuple[tuple[int, ...], int, int, int]:
    horizons = tuple(return_horizons) if not isinstance(return_horizons, (int, np.integer)) \
        else (return_horizons,)
    if not horizons:
        raise ConfigError(
            "technical_features: return_horizons=() is empty; expected one or more horizons in bars, "
            "e.g. (1, 4, 12, 24)"
        )
    horizons = tuple(_positive_int("return_horizons", h) for h in horizons)
    if len(set(horizons)) != len(horizons):
        raise ConfigError(
            f"technical_features: return_horizons={horizons!r} repeats a horizon; "
            "expected distinct horizons in bars"
        )
    # A standard deviation needs at least two returns.
    return (
        horizons,
        _positive_int("vol_window", vol_window, 2),
        _positive_int("rsi_window", rsi_window, 1),
        _positive_int("volume_window", volume_window, 2),
    )


def warmup_bars(
    *,
    return_horizons: Sequence[int] = (1, 4, 12, 24),
    vol_window: int = 24,
    rsi_window: int = 14,
    volume_window: int = 168,
    columns: Iterable[str] | None = None,
) -> int:
    """Number of leading rows of ``technical_features`` output that hold a NaN.

    ret_h needs h bars of history, vol_w and rsi_n need w (n) 1-bar returns (so w, n bars),
    volume_z needs volume_window rows (first value at row volume_window - 1), hl_range none.

    Args:
        return_horizons, vol_window, rsi_window, volume_window: as for ``technical_features``.
        columns: the frame's columns; None means all of close/high/low/volume are present
            (the longest warm-up). With close-only data volume_z is left out and the
            warm-up is shorter.

    Returns:
        int, in bars: rows ``[0, warmup)`` have a NaN in some feature, rows from ``warmup`` on
        have none (given at least ``warmup + 1`` rows of NaN-free input).

    Raises:
        ConfigError: a parameter is not a positive integer (windows >= 2 for std).
    """
    horizons, vol_window, rsi_window, volume_window = _check_params(
        return_horizons, vol_window, rsi_window, volume_window
    )
    need = [max(horizons), vol_window, rsi_window]
    present = None if columns is None else {str(c).lower() for c in columns}
    if present is None or set(FEATURE_REQUIREMENTS["volume_z"]) <= present:
        need.append(volume_window - 1)
    return max(need)


def _wilder_rsi(close: np.ndarray, n: int) -> np.ndarray:
    """Wilder's RSI: averages seeded by the simple mean of the first n changes, then
    avg_t = avg_{t-1} + (x_t - avg_{t-1}) / n (an EMA with alpha = 1/n)."""
    out = np.full(close.shape[0], np.nan)
    if close.shape[0] <= n:
        return out
    change = np.diff(close)
    gain = np.clip(change, 0.0, None)
    loss = np.clip(-change, 0.0, None)

    def smooth(x: np.ndarray) -> np.ndarray:
        seeded = np.concatenate(([x[:n].mean()], x[n:]))
        return pd.Series(seeded).ewm(alpha=1.0 / n, adjust=False).mean().to_numpy()

    up, down = smooth(gain), smooth(loss)
    total = up + down
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi = np.where(total > 0.0, 100.0 * (up / total), _RSI_FLAT)
    out[n:] = rsi
    return out


def technical_features(
    frame: pd.DataFrame,
    *,
    return_horizons: Sequence[int] = (1, 4, 12, 24),
    vol_window: int = 24,
    rsi_window: int = 14,
    volume_window: int = 168,
    last: int | None = None,
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Causal technical features of one asset.

    Columns of the output, in this order (all float64):

    - ``ret_{h}`` for each h in return_horizons: log(close_t / close_{t-h}), log-return over h bars.
    - ``vol_{w}``: sample std (ddof=1) of the 1-bar log returns of the last w bars
      (rows t-w+1..t), in log-return units per bar (not annualised).
    - ``rsi_{n}``: Wilder's Relative Strength Index in [0, 100] (J. W. Wilder, *New Concepts
      in Technical Trading Systems*, 1978): average gain and loss of close-to-close changes,
      seeded by their simple mean over the first n changes and then smoothed with alpha=1/n;
      RSI = 100 * avg_gain / (avg_gain + avg_loss); 100 for a series that only rises, 0 for
      one that only falls, 50 where the window has no change at all.
    - ``hl_range``: log(high / low) of the bar (needs high, low).
    - ``volume_z``: (log1p(volume_t) - mean) / std, mean and sample std of log1p(volume) over
      the last volume_window bars including t (needs volume); 0 where that std is 0.

    Strictly causal: the value at t uses rows <= t only. Warm-up rows are NaN (see
    ``warmup_bars``); nothing is forward- or back-filled.

    Args:
        frame: shape (n_bars, n_columns), one asset's bars indexed by UTC timestamps; column
            ``close`` required, ``high``, ``low``, ``volume`` optional (lower-case names as in
            ``fleet.data.Panel``). Values must be NaN-free, prices > 0.
        return_horizons: horizons h in bars (distinct, >= 1).
        vol_window: volatility window in bars (>= 2).
        rsi_window: RSI period n in bars (>= 1), 14 as in Wilder.
        volume_window: volume z-score window in bars (>= 2); 168 = one week of hourly bars.
        last: compute only the last ``last`` rows (>= 1; more than n_bars means all). Serving
            needs the newest bar only: the windowed features then read just their windows
            (``ret_h`` h + 1 bars, ``vol_w`` w + 1, ``volume_z`` volume_window), while Wilder's RSI,
            which is recursive, still runs over every bar, so each value equals the full
            computation's (to rounding of the rolling sums, ~1e-15 relative).
            ``None`` (training): every row. The input is validated in full either way.

    Returns:
        (features, left_out): features is a DataFrame of shape (n_bars, n_features) with the
        frame's index (with ``last``: (min(last, n_bars), n_features) on the index's tail);
        left_out names the features skipped because their columns are missing,
        e.g. ("hl_range", "volume_z") for close-only data.

    Raises:
        DataError: no ``close`` column, or close (high/low/volume) values that are not finite
            or not positive (volume: negative), naming the column and rows.
        ConfigError: invalid window / horizon parameters.
    """
    out, left_out = technical_arrays(
        {str(c): frame[c] for c in frame.columns}, return_horizons=return_horizons, vol_window=vol_window,
        rsi_window=rsi_window, volume_window=volume_window, last=last)
    n = len(frame)
    start = n - (len(next(iter(out.values()))) if out else n)
    return pd.DataFrame(out, index=frame.index[start:], dtype=np.float64), left_out


def _checked(data: Mapping[str, np.ndarray], column: str, *, allow_zero: bool = False) -> np.ndarray:
    """``data[column]`` as float64; DataError naming the rows that are not finite and > 0 (>= 0 with
    ``allow_zero``)."""
    x = np.asarray(data[column], dtype=np.float64)
    bad = ~np.isfinite(x) | ((x < 0.0) if allow_zero else (x <= 0.0))
    if bad.any():
        expected = "finite and >= 0" if allow_zero else "finite and > 0"
        raise DataError(
            f"technical_features: column '{column}' has invalid values at "
            f"{describe_rows(np.flatnonzero(bad).tolist())}; expected {expected}"
        )
    return x


def _column_names(data: Mapping[str, np.ndarray]) -> set[str]:
    """The column names of ``data`` as strings; DataError when ``close`` is not one of them."""
    columns = {str(c) for c in data}
    if "close" not in columns:
        raise DataError(
            "technical_features: missing required column 'close' "
            f"(found: {', '.join(sorted(columns)) or 'none'})"
        )
    return columns


def _tail(x: np.ndarray, start: int, window: int) -> np.ndarray:
    """The part of ``x`` (n,) that rows [start, n) of a ``window``-bar rolling feature read."""
    return x[max(0, start - (window - 1)):]


def _log_returns(log_close: np.ndarray, horizons: Sequence[int], start: int) -> dict[str, np.ndarray]:
    """``ret_{h}`` for each h of ``horizons`` over rows [start, n) of the log closes (n,):
    log_close[t] - log_close[t - h], NaN where t < h; arrays of shape (n - start,)."""
    n = log_close.shape[0]
    k = n - start
    out: dict[str, np.ndarray] = {}
    rows = np.arange(start, n)
    for h in horizons:
        r = np.full(k, np.nan)
        ok = rows >= h
        r[ok] = log_close[rows[ok]] - log_close[rows[ok] - h]
        out[f"ret_{h}"] = r
    return out


def _volume_z(volume: np.ndarray, window: int, start: int) -> np.ndarray:
    """``volume_z`` over rows [start, n) of ``volume`` (n,): z-score of log1p(volume_t) against the mean
    and sample std of the last ``window`` bars including t; 0 where that std is 0, NaN in the warm-up."""
    k = volume.shape[0] - start
    lv = _tail(np.log1p(volume), start, window)
    roll = pd.Series(lv).rolling(window, min_periods=window)
    mean, std, lv = roll.mean().to_numpy()[-k:], roll.std().to_numpy()[-k:], lv[-k:]
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(std > 0.0, (lv - mean) / std, 0.0)
    return np.where(np.isnan(std), np.nan, z)


def technical_arrays(
    columns: Mapping[str, np.ndarray],
    *,
    return_horizons: Sequence[int] = (1, 4, 12, 24),
    vol_window: int = 24,
    rsi_window: int = 14,
    volume_window: int = 168,
    last: int | None = None,
) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """The computation behind :func:`technical_features`, on plain arrays (no DataFrame per call).

    Args:
        columns: column name -> values of shape (n_bars,) (``close`` required; ``high``, ``low``,
            ``volume`` optional), oldest bar first.
        return_horizons, vol_window, rsi_window, volume_window, last: as for :func:`technical_features`.

    Returns:
        (features, left_out): feature name -> float64 array of shape (min(last, n_bars),) (all n_bars
        when ``last`` is None), in the column order documented at :func:`technical_features`.

    Raises:
        DataError, ConfigError: as :func:`technical_features`.
    """
    horizons, vol_window, rsi_window, volume_window = _check_params(
        return_horizons, vol_window, rsi_window, volume_window
    )
    data = columns
    columns = _column_names(data)

    def values(column: str, *, allow_zero: bool = False) -> np.ndarray:
        return _checked(data, column, allow_zero=allow_zero)

    close = values("close")
    n = close.shape[0]
    if last is not None:
        last = _positive_int("last", last)
    k = n if last is None else min(last, n)  # rows computed: t in [start, n)
    start = n - k

    log_close = np.log(close)
    out = _log_returns(log_close, horizons, start)
    ret_1 = np.concatenate(([np.nan], np.diff(log_close)))
    out[f"vol_{vol_window}"] = (pd.Series(_tail(ret_1, start, vol_window)).rolling(vol_window, min_periods=vol_window)
                                .std().to_numpy()[-k:])
    out[f"rsi_{rsi_window}"] = _wilder_rsi(close, rsi_window)[start:]  # recursive: always every bar

    left_out: list[str] = []
    if set(FEATURE_REQUIREMENTS["hl_range"]) <= columns:
        out["hl_range"] = np.log(values("high")[start:] / values("low")[start:])
    else:
        left_out.append("hl_range")
    if set(FEATURE_REQUIREMENTS["volume_z"]) <= columns:
        out["volume_z"] = _volume_z(values("volume", allow_zero=True), volume_window, start)
    else:
        left_out.append("volume_z")
    return out, tuple(left_out)
