"""Marked-to-market trading of a long-only signal: exposure, the P&L curve, and its Sharpe, return and drawdown.

Every signal opens a 1/h tranche held h bars, the exposure over each bar is the sum of the open
tranches, and the book holds that fraction x of its capital in the asset over the bar (the rest in
cash earning 0). The bar's P&L is the exact simple return of such a book, ``x (e^r - 1)`` for the
asset's 1-bar log return r, and costs are charged on turnover (|change of exposure|), so
back-to-back signals that keep the position pay nothing extra. The curve compounds the per-bar
simple returns (``log1p``); the Sharpe ratio (against cash, on simple returns as
``empyrical.sharpe_ratio`` expects), the annualised return and the maximum drawdown are read from it
(:func:`trading_metrics`). :mod:`fleet.evaluation.metrics` re-exports these functions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fleet.errors import ConfigError, DataError

__all__ = ["book_pnl", "exposure", "mark_to_market", "portfolio_returns", "segments_of", "trading_metrics"]


def _check_horizon(horizon) -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ConfigError(f"horizon={horizon!r}: expected an integer number of bars >= 1")
    return int(horizon)


def segments_of(bar_number) -> np.ndarray:
    """Segment id per row: rows whose ``bar_number`` follows the previous row's by exactly 1 are
    in the same segment (consecutive bars of the asset's data), any other step starts a new one.

    Args:
        bar_number: shape (n,), position of each row's bar in the asset's data, in time order.

    Returns:
        int64 array of shape (n,), 0 for the first segment, increasing by one at each break.
    """
    b = np.asarray(bar_number, dtype=np.int64)
    if b.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate(([0], np.cumsum(np.diff(b) != 1))).astype(np.int64)


def exposure(signal, *, horizon: int, segment=None) -> np.ndarray:
    """Long exposure over each bar of the 1/h-tranche book.

    A signal at row t opens a tranche of 1/h of the capital held over the next h bars, (t, t+h];
    the exposure over the bar (t, t+1] is ``x[t] = sum_{j=0..h-1} signal[t-j] / h``, counting only
    rows t-j of the same segment as t. So tranches never overlap to more than full capital
    (x <= 1), and a position is never carried across a gap between segments: a tranche opened
    in the last h-1 rows of a segment is closed at the segment's end.

    Args:
        signal: shape (n,), 0/1 (or bool) signal per row, in time order (one asset).
        horizon: h, the holding period in bars (>= 1).
        segment: shape (n,), segment id per row (:func:`segments_of`); None: one segment.

    Returns:
        float64 array of shape (n,), the exposure in [0, 1] (fraction of capital).

    Raises:
        ConfigError: horizon not an integer >= 1.
    """
    h = _check_horizon(horizon)
    s = np.asarray(signal, dtype=np.float64)
    n = s.size
    seg = np.zeros(n, dtype=np.int64) if segment is None else np.asarray(segment, dtype=np.int64)
    if seg.shape != (n,):
        raise DataError(f"segment: expected shape ({n},) like signal, got {seg.shape}")
    idx = np.arange(n)
    new = np.ones(n, dtype=bool)
    new[1:] = seg[1:] != seg[:-1]
    seg_start = np.maximum.accumulate(np.where(new, idx, 0))
    cum = np.concatenate(([0.0], np.cumsum(s)))
    lo = np.maximum(seg_start, idx - h + 1)
    return (cum[idx + 1] - cum[lo]) / h


def mark_to_market(return_1, signal, *, horizon: int, cost_bps: float,
                   segment=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-bar P&L of the 1/h-tranche book, marked to market, gross and net of costs, as simple returns.

    With the exposure ``x`` of :func:`exposure` (tranches of 1/h opened at every signal and held h
    bars) and the 1-bar log return ``r[t] = log(close[t+1] / close[t])`` of the bar (t, t+1]:

        gross[t] = x[t] * (exp(r[t]) - 1)
        net[t]   = gross[t] - c * (|x[t] - x[t-1]| + end[t] * |x[t]|),   c = cost_bps / 1e4

    Costs are charged on **turnover**, the change of exposure (netting): a signal on the bar a
    tranche expires keeps the position and pays nothing, so back-to-back signals never pay a
    round trip per tranche. ``x[t-1] = 0`` at the first row of a segment (the position is opened
    there) and ``end[t] = 1`` on its last row (what is still open is closed there and pays its
    exit). ``x (e^r - 1)`` is the exact simple return over the bar of a book that holds a fraction
    x in the asset and the rest in cash (earning 0); the log-return shortcut ``x r`` is biased low
    for 0 < x < 1 (the log growth of the book is ``log(1 + x (e^r - 1)) >= x r``).

    Unlike booking each trade's h-bar return at its entry bar, the series has the variance of a
    held position, so the Sharpe ratio read from it is not inflated by up to sqrt(h).

    Args:
        return_1: shape (n,), 1-bar forward log returns of one asset, in time order.
        signal: shape (n,), 0/1 (or bool) signal per row.
        horizon: h, the holding period in bars (>= 1).
        cost_bps: cost per side, basis points, charged on each unit of turnover.
        segment: shape (n,), segment id per row (:func:`segments_of`); None: one contiguous segment.

    Returns:
        ``(gross, net)``, each float64 of shape (n,), per-bar P&L as simple returns of the book's capital.

    Raises:
        ConfigError: horizon < 1. DataError: shapes differ.
    """
    r = np.asarray(return_1, dtype=np.float64)
    s = np.asarray(signal, dtype=np.float64)
    if r.shape != s.shape or r.ndim != 1:
        raise DataError(f"mark_to_market: return_1 and signal must both have shape (n,), got {r.shape} and {s.shape}")
    x = exposure(s, horizon=horizon, segment=segment)
    gross, net, _ = book_pnl(r, x, cost_bps=cost_bps, segment=segment)
    return gross, net


def book_pnl(return_1, position, *, cost_bps: float, segment=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bar P&L of any position path, gross and net of costs on turnover, and the turnover itself.

    ``gross[t] = x[t] (exp(r[t]) - 1)``, the simple return of a book holding the signed fraction x[t] of its
    capital in the asset over the bar (t, t+1] (the rest in cash at 0);
    ``turnover[t] = |x[t] - x[t-1]| + end[t] |x[t]|`` (``x[t-1] = 0`` at a segment's first row, ``end[t] = 1``
    at its last: the book opens flat and closes what is open);
    ``net[t] = gross[t] - cost_bps / 1e4 * turnover[t]``. :func:`mark_to_market` is this with the 1/h tranche
    book's exposure; a cost-aware policy (:mod:`fleet.evaluation.costaware`) passes its own positions.

    Args:
        return_1: shape (n,), 1-bar forward log returns, in time order (one asset).
        position: shape (n,), signed fraction of capital held over each bar, in [-1, 1].
        cost_bps: cost per side, basis points. segment: shape (n,) segment ids, or None (one segment).

    Returns:
        ``(gross, net, turnover)``, each float64 (n,): simple returns of the book's capital per bar, and turnover
        as a fraction of capital per bar.
    """
    r = np.asarray(return_1, dtype=np.float64)
    x = np.asarray(position, dtype=np.float64)
    if r.shape != x.shape or r.ndim != 1:
        raise DataError(f"book_pnl: return_1 and position must both have shape (n,), got {r.shape} and {x.shape}")
    n = x.size
    seg = np.zeros(n, dtype=np.int64) if segment is None else np.asarray(segment, dtype=np.int64)
    first = np.ones(n, dtype=bool)
    first[1:] = seg[1:] != seg[:-1]
    last = np.ones(n, dtype=bool)
    last[:-1] = seg[1:] != seg[:-1]
    prev = np.where(first, 0.0, np.concatenate(([0.0], x[:-1])))
    turnover = np.abs(x - prev) + np.where(last, np.abs(x), 0.0)
    gross = x * np.expm1(r)
    net = gross - float(cost_bps) / 1e4 * turnover
    return gross, net, turnover


def trading_metrics(bar_returns, *, bars_per_year: float | None) -> dict:
    """Sharpe ratio, annualised return and max drawdown of a per-bar P&L series.

    Args:
        bar_returns: shape (n,), per-bar simple returns of the book (:func:`mark_to_market`, :func:`book_pnl`),
            in time order; a value of -1 or below is ruin (the equity stays at 0).
        bars_per_year: bars in a year (8760 for hourly 24/7 crypto, 252 for daily equities;
            ``Panel.bars_per_year``). None leaves the annualised figures NaN.

    Returns:
        dict with
        * "sharpe": mean / sample std (ddof=1) of the per-bar simple returns * sqrt(bars_per_year), against
          cash (risk-free rate 0; ``empyrical.sharpe_ratio``'s definition); NaN with < 2 bars or zero std;
        * "ann_return": ``exp(mean(log1p(returns)) * bars_per_year) - 1``, the compound annual growth of the
          curve as a simple return (0.10 = +10 % a year);
        * "max_dd": largest fall of the equity ``prod(1 + returns)`` from its running peak, as a simple return
          in [0, 1] (0.30 = a 30 % loss from the peak; the curve starts at 1, which counts as a peak).
        NaN everywhere for an empty curve.

    Raises:
        ConfigError: bars_per_year not > 0.
    """
    x = np.asarray(bar_returns, dtype=np.float64)
    if bars_per_year is not None and not (np.isfinite(bars_per_year) and bars_per_year > 0):
        raise ConfigError(f"bars_per_year={bars_per_year!r}: expected a number of bars per year > 0")
    nan = float("nan")
    if x.size == 0:
        return {"sharpe": nan, "ann_return": nan, "max_dd": nan}
    with np.errstate(divide="ignore"):
        growth = np.log1p(np.maximum(x, -1.0))  # -inf at ruin: the equity is 0 from then on
    equity = np.concatenate(([0.0], np.cumsum(growth)))
    with np.errstate(invalid="ignore"):
        max_dd = float(-np.expm1(-(np.maximum.accumulate(equity) - equity).max()))
    if bars_per_year is None:
        return {"sharpe": nan, "ann_return": nan, "max_dd": max_dd}
    ann = float(np.expm1(growth.mean() * bars_per_year))
    sd = float(x.std(ddof=1)) if x.size > 1 else 0.0
    sharpe = float(x.mean() / sd * np.sqrt(bars_per_year)) if sd > 0 else nan
    return {"sharpe": sharpe, "ann_return": ann, "max_dd": max_dd}


def portfolio_returns(g: pd.DataFrame, signal: np.ndarray, *, horizon: int,
                      cost_bps: float, position: np.ndarray | None = None) -> pd.DataFrame:
    """Per-timestamp P&L of the equal-weight portfolio of the assets in ``g``.

    Each asset trades its own 1/h-tranche book (:func:`mark_to_market`, its rows in time order,
    segments from ``bar_number`` when present, else one segment per asset); the portfolio's P&L at
    a timestamp is the mean of those books' simple returns over the assets with a row then (capital split
    equally among them and rebalanced every bar; one asset -> its own curve).

    Args:
        g: rows of one or several assets: symbol, timestamp, return_1, optionally bar_number.
        signal: shape (len(g),), 0/1 signal per row of ``g``.
        position: shape (len(g),), signed position per row (a cost-aware policy's book, see
            :func:`book_pnl`); None: the 1/h tranche book of ``signal``.

    Returns:
        DataFrame indexed by timestamp (sorted) with float columns gross, net (simple returns), exposure
        (mean |exposure| of the assets with a row), turnover (mean |change of exposure| of those assets),
        net_total and turnover_total (the sums of their net P&L and of their turnover).
    """
    # Plain arrays throughout: timestamps as int64 nanoseconds (to_numpy() on a tz-aware column builds one
    # Timestamp object per row), one stable sort by (symbol, time), and the per-timestamp means as bincounts
    # (a pandas group-by on the concatenated books dominates a large fleet's table time).
    n = len(g)
    stamps = pd.DatetimeIndex(g["timestamp"])
    t = stamps.as_unit("ns").asi8
    codes, _ = pd.factorize(g["symbol"].to_numpy())
    order = np.lexsort((t, codes))
    r = g["return_1"].to_numpy(dtype=np.float64)[order]
    s = np.asarray(signal, dtype=np.float64)[order]
    x_all = None if position is None else np.asarray(position, dtype=np.float64)[order]
    b = g["bar_number"].to_numpy(dtype=np.int64)[order] if "bar_number" in g.columns else None
    gross, net, expo, turn = (np.empty(n) for _ in range(4))
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, n]):
        if hi <= lo:
            continue
        seg = segments_of(b[lo:hi]) if b is not None else None
        x = x_all[lo:hi] if x_all is not None else exposure(s[lo:hi], horizon=horizon, segment=seg)
        gross[lo:hi], net[lo:hi], turn[lo:hi] = book_pnl(r[lo:hi], x, cost_bps=cost_bps, segment=seg)
        expo[lo:hi] = np.abs(x)
    uniq, inv = np.unique(t[order], return_inverse=True)
    count = np.bincount(inv, minlength=len(uniq)).astype(np.float64)

    def total(v: np.ndarray) -> np.ndarray:
        return np.bincount(inv, weights=v, minlength=len(uniq))

    index = pd.DatetimeIndex(uniq.astype("datetime64[ns]"), name="t")
    if stamps.tz is not None:
        index = index.tz_localize("UTC").tz_convert(stamps.tz)
    index = index.as_unit(stamps.unit)
    net_total, turn_total = total(net), total(turn)
    return pd.DataFrame({"gross": total(gross) / count, "net": net_total / count, "exposure": total(expo) / count,
                         "turnover": turn_total / count, "net_total": net_total, "turnover_total": turn_total},
                        index=index)
