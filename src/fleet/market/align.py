"""Put the closes of many assets on one UTC timeline and turn them into 1-bar log returns.

Assets do not share one calendar (listings, delistings, exchange outages: AVAXUSDT ends two
months before the other crypto files), so correlation and factor code needs one common grid
with a clear, documented gap policy (design note: /work/shared/seeds/001_054801aa6e4d274f.txt).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fleet.errors import ConfigError, DataError, describe_rows

__all__ = ["align_log_returns"]


def _as_utc(value, field: str) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{field}={value!r}: expected a timestamp (e.g. '2024-01-01' or a pd.Timestamp)") from err
    if ts is pd.NaT:
        raise ConfigError(f"{field}={value!r}: expected a timestamp, got NaT")
    # A naive bound is read as UTC: every timeline in fleet is UTC.
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


def _validated_close(symbol: str, close: pd.Series) -> pd.Series:
    if not isinstance(close, pd.Series):
        raise DataError(f"asset {symbol!r}: expected a pd.Series of closes, got {type(close).__name__}")
    if not isinstance(close.index, pd.DatetimeIndex):
        raise DataError(f"asset {symbol!r}: the close series must be indexed by timestamps "
                        f"(DatetimeIndex), got {type(close.index).__name__}")
    if close.index.tz is None:
        raise DataError(f"asset {symbol!r}: timestamps are timezone-naive; expected tz-aware UTC timestamps")
    if close.index.hasnans:
        raise DataError(f"asset {symbol!r}: the timestamp index holds NaT")
    values = pd.to_numeric(close, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values <= 0)
    if bad.any():
        raise DataError(f"asset {symbol!r}: close must be finite and > 0, "
                        f"not so at {describe_rows(np.flatnonzero(bad))}")
    index = close.index.tz_convert("UTC").as_unit("ns")
    out = pd.Series(values, index=index)
    if index.has_duplicates:
        dup = np.flatnonzero(index.duplicated(keep=False))
        raise DataError(f"asset {symbol!r}: duplicate timestamps at {describe_rows(dup)}")
    return out.sort_index()


def _fill_on_grid(obs_ns: np.ndarray, close: np.ndarray, grid_ns: np.ndarray, bar_ns: int,
                  max_ffill: int) -> tuple[np.ndarray, np.ndarray]:
    """Closes of one asset on the grid plus a mask of returns that span a long gap.

    A gap between consecutive observations a < b is ``round((b - a) / bar) - 1`` missing bars;
    grid rows inside it get close_a only when that count is <= max_ffill (the whole gap or
    nothing, so a long outage is never half-bridged with stale prices).
    """
    n_obs = obs_ns.size
    prev = np.searchsorted(obs_ns, grid_ns, side="right") - 1      # last observation <= t
    missing = np.rint(np.diff(obs_ns) / bar_ns).astype(np.int64) - 1  # gap after observation j
    short_gap = np.append(missing <= max_ffill, False)                # nothing after the last bar
    safe_prev = np.clip(prev, 0, n_obs - 1)
    is_obs = (prev >= 0) & (obs_ns[safe_prev] == grid_ns)
    valid = (prev >= 0) & (is_obs | short_gap[safe_prev])
    filled = np.where(valid, close[safe_prev], np.nan)
    # The return that ends on an observation after a long gap is a multi-bar move even when
    # the grid itself has no rows inside the gap (all assets missing): not a 1-bar return.
    long_before = np.zeros(grid_ns.size, dtype=bool)
    has_prev_obs = is_obs & (prev >= 1)
    long_before[has_prev_obs] = ~short_gap[prev[has_prev_obs] - 1]
    return filled, long_before


def _checked_args(bar, max_ffill, min_overlap, start, end):
    """(bar as a Timedelta, start, end as UTC Timestamps or None) of :func:`align_log_returns`; ConfigError
    naming the argument when one is out of range."""
    bar = pd.Timedelta(bar)
    if not bar > pd.Timedelta(0):
        raise ConfigError(f"bar={bar}: expected a positive bar length (e.g. pd.Timedelta(hours=1))")
    if isinstance(max_ffill, bool) or not isinstance(max_ffill, (int, np.integer)) or max_ffill < 0:
        raise ConfigError(f"max_ffill={max_ffill!r}: expected an integer number of bars >= 0")
    if not 0.0 <= float(min_overlap) <= 1.0:
        raise ConfigError(f"min_overlap={min_overlap!r}: expected a fraction in [0, 1]")
    start_ts, end_ts = _as_utc(start, "start"), _as_utc(end, "end")
    if start_ts is not None and end_ts is not None and end_ts <= start_ts:
        raise ConfigError(f"start={start_ts}, end={end_ts}: end must be after start (the window is [start, end))")
    return bar, start_ts, end_ts


def _in_window(s: pd.Series, start_ts, end_ts) -> pd.Series:
    """The rows of ``s`` inside ``[start_ts, end_ts)`` (None: that side open)."""
    keep = np.ones(len(s), dtype=bool)
    if start_ts is not None:
        keep &= s.index >= start_ts
    if end_ts is not None:
        keep &= s.index < end_ts
    return s[keep]


def _grid_returns(series: dict[str, pd.Series], symbols: list[str], grid: pd.DatetimeIndex, *, bar_ns: int,
                  max_ffill: int, min_overlap: float) -> tuple[np.ndarray, list[str]]:
    """Steps 2-3 of :func:`align_log_returns`: each symbol's closes filled onto the ``grid`` (n,) and
    turned into 1-bar log returns, shape (n, len(symbols)) in ``symbols`` order (NaN where there is no
    value); and the symbols covering less than ``min_overlap`` of the grid, each as "SYMBOL (x% of n rows)"
    (their column stays NaN)."""
    grid_ns = grid.asi8
    out = np.full((len(grid), len(symbols)), np.nan)
    short = []
    for j, symbol in enumerate(symbols):
        s = series[symbol]
        if len(s) == 0:
            short.append(f"{symbol} (0.0% of {len(grid)} rows)")
            continue
        filled, long_before = _fill_on_grid(s.index.asi8, s.to_numpy(), grid_ns, bar_ns, max_ffill)
        overlap = float(np.isfinite(filled).mean())
        if overlap < min_overlap:
            short.append(f"{symbol} ({overlap:.1%} of {len(grid)} rows)")
            continue
        logp = np.log(filled)
        ret = np.full(len(grid), np.nan)
        ret[1:] = logp[1:] - logp[:-1]
        ret[long_before] = np.nan
        out[:, j] = ret
    return out, short


def _grid_of(series: dict[str, pd.Series], grid, start_ts, end_ts) -> pd.DatetimeIndex:
    """Step 1 of :func:`align_log_returns`: the union of the assets' timestamps (already inside the window), or the
    given ``grid`` inside the window, checked to hold every asset's bars (DataError naming the asset if not)."""
    if grid is None:
        out = pd.DatetimeIndex([], tz="UTC").as_unit("ns")
        for s in series.values():
            out = out.union(s.index)
        return out
    out = _in_window(pd.Series(0, index=pd.DatetimeIndex(grid).tz_convert("UTC").as_unit("ns")), start_ts, end_ts).index
    for symbol, s in series.items():
        off = ~s.index.isin(out)
        if off.any():
            raise DataError(f"align_log_returns: asset {symbol!r} has {int(off.sum())} timestamp(s) not on the "
                            f"given grid (first {s.index[off][0]}); expected the grid to hold every bar")
    return out


def align_log_returns(closes: Mapping[str, pd.Series], *, bar: pd.Timedelta, max_ffill: int = 3,
                      start=None, end=None, min_overlap: float = 0.5,
                      grid: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    """1-bar log returns of many assets on one common UTC timeline.

    Method ("automatic alignment"):

    1. The grid is the sorted union of every asset's timestamps within ``[start, end)``
       (``end`` exclusive; ``None`` leaves that side open). Naive ``start``/``end`` are read as UTC.
    2. Each close series is reindexed onto the grid. A gap between two consecutive bars of an
       asset, ``round(dt / bar) - 1`` missing bars long, is forward-filled with the last close
       when it is at most ``max_ffill`` bars; a longer gap stays NaN over its whole length.
       Nothing is filled before an asset's first bar or after its last bar in the window.
    3. Returns are ``log(close_t / close_{t-1})`` between consecutive grid rows (log-return
       units). A filled gap gives zero returns followed by the whole move on the next real bar;
       the return ending on the first bar after a long gap is NaN (it is not a 1-bar return),
       as is the first grid row.

    Args:
        closes: symbol -> close prices (float, > 0), indexed by a tz-aware DatetimeIndex
            (e.g. ``{s: panel.frames[s]["close"] for s in panel.symbols}``).
        bar: bar length (``Panel.bar``), used to measure gaps in bars.
        max_ffill: longest gap forward-filled, in bars (>= 0).
        start, end: optional window ``[start, end)``; the grid only holds timestamps inside it.
        min_overlap: every asset must have a (possibly filled) close on at least this fraction
            of grid rows, in [0, 1].
        grid: step 1's timeline when already known (sorted, unique, UTC; e.g. a larger fleet's union): a
            column depends only on the grid and its own closes, so each asset gets the column it would get
            aligned beside all of that fleet. It must hold every bar of every asset inside the window.

    Returns:
        DataFrame of shape (n_timestamps, n_assets): float64 1-bar log returns, index the grid
        (UTC DatetimeIndex named "timestamp"), columns the symbols sorted. NaN where an asset
        has no value.

    Raises:
        ConfigError: ``bar`` <= 0, ``max_ffill`` < 0, ``min_overlap`` outside [0, 1], bad
            ``start``/``end``.
        DataError: no assets; an asset that is not a Series on a tz-aware DatetimeIndex, has
            duplicate timestamps or non-finite / non-positive closes; an empty window; an asset
            covering less than ``min_overlap`` of the grid (named with its overlap); a ``grid`` that misses
            an asset's timestamp.
    """
    bar, start_ts, end_ts = _checked_args(bar, max_ffill, min_overlap, start, end)
    if len(closes) == 0:
        raise DataError("align_log_returns: no assets given; expected at least one close series")
    symbols = sorted(closes)
    series = {symbol: _in_window(_validated_close(symbol, closes[symbol]), start_ts, end_ts) for symbol in symbols}
    grid = _grid_of(series, grid, start_ts, end_ts)
    if len(grid) == 0:
        raise DataError(f"align_log_returns: no bars inside the window [{start_ts}, {end_ts}) "
                        f"for any of {', '.join(symbols)}")
    out, short = _grid_returns(series, symbols, grid, bar_ns=bar.value, max_ffill=max_ffill,
                               min_overlap=min_overlap)
    if short:
        raise DataError(f"align_log_returns: too little overlap with the other assets: {'; '.join(short)} "
                        f"have a value on fewer than min_overlap={min_overlap:.0%} of the aligned timestamps "
                        f"({grid[0]} .. {grid[-1]}); drop those assets or shorten the window (--days)")
    return pd.DataFrame(out, index=grid.rename("timestamp"), columns=pd.Index(symbols, name="symbol"))
