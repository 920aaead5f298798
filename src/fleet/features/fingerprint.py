"""Data fingerprint: the market-regime state the gate routes on.

Per asset and bar, causally (the value at bar t uses bars <= t only):

* ``fp_vol30``   30-day realised volatility: standard deviation of 1-bar log returns over
  the last 30 days of bars, scaled to a *daily* volatility (fraction, 0.03 = 3 % a day) by
  ``sqrt(bars_per_day)``. Seed 003's thresholds (6 %, 3 %, 1 %, 0.5 %) are read as daily vol.
* ``fp_trend_r2`` R^2 of a least-squares line through the last ``trend_window`` log closes
  (0..1; 1 = a straight trend).
* ``fp_hurst``   Hurst exponent by the aggregated-variance (variance-time) estimator on the
  last ``hurst_window`` 1-bar log returns: Var(k-bar return) ~ k^(2H) Var(1-bar return), so
  ``H = log(Var_k / Var_1) / (2 log k)`` with non-overlapping k-bar sums (state estimator,
  updated every bar). Reference: Taqqu, Teverovsky & Willinger (1995), "Estimators for
  long-range dependence: an empirical study", Fractals 3(4); the variance-ratio form is Lo &
  MacKinlay (1988). 0.5 = random walk, > 0.5 trending, < 0.5 mean-reverting. Clipped to [0, 1].
  :func:`hurst_reference` is the textbook multi-scale fit used to check it.
* ``fp_spread``  Corwin & Schultz (2012, J. Finance 67(2)) high-low bid-ask spread estimator
  on consecutive bar pairs (t-1, t) — causal: the original pairs (t, t+1) — negative
  estimates set to 0, averaged over ``spread_window`` bars. Fraction of price. Needs
  high/low; used only when there is no bid/ask column (there never is in our data).
* ``fp_volume_z`` z-score of log volume against its trailing ``volume_window`` bars (unitless).

Close-only data (equities) gets ``fp_vol30``, ``fp_trend_r2`` and ``fp_hurst`` only; the
spread needs high/low and the volume z-score needs volume: they are left out, not invented.
Early bars use ``min_periods`` (a quarter of the window, at least 24 bars) so the warm-up is
short; before that the value is NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FINGERPRINT_PREFIX = "fp_"
FINGERPRINT_COLUMNS = ("fp_vol30", "fp_trend_r2", "fp_hurst", "fp_spread", "fp_volume_z")


def _min_periods(window: int) -> int:
    return int(min(window, max(24, window // 4)))


def bars_per_day(index: pd.DatetimeIndex) -> float:
    """Bars per calendar day from the median bar spacing (1h bars -> 24; daily bars -> 1)."""
    if len(index) < 2:
        return 1.0
    step = pd.Series(index).diff().median()
    return max(1.0, pd.Timedelta(days=1) / step)


def rolling_trend_r2(log_close: pd.Series, window: int) -> pd.Series:
    """R^2 (0..1) of a line fitted to the last ``window`` values of ``log_close`` (NaN warm-up)."""
    t = pd.Series(np.arange(len(log_close), dtype=np.float64), index=log_close.index)
    r = log_close.rolling(window, min_periods=_min_periods(window)).corr(t)
    return (r ** 2).clip(0.0, 1.0)


def rolling_hurst(returns: pd.Series, window: int, k: int = 8) -> pd.Series:
    """Aggregated-variance Hurst exponent over the last ``window`` 1-bar log returns.

    Var_k is the variance of non-overlapping k-bar sums in the window (approximated by the
    rolling variance of the k-bar sum sampled every bar, which has the same expectation).
    """
    mp = _min_periods(window)
    var1 = returns.rolling(window, min_periods=mp).var()
    agg = returns.rolling(k, min_periods=k).sum()
    vark = agg.rolling(window, min_periods=mp).var()
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.log(vark / var1) / (2.0 * np.log(k)) + 0.0
    return h.replace([np.inf, -np.inf], np.nan).clip(0.0, 1.0)


def hurst_reference(returns: np.ndarray, scales=(1, 2, 4, 8, 16, 32)) -> float:
    """Reference aggregated-variance Hurst estimate of one return sample (no rolling).

    Fits log Var(non-overlapping k-sums) = 2H log k + c over ``scales`` by least squares.

    Raises:
        ValueError: fewer than 4 blocks at the largest scale.
    """
    x = np.asarray(returns, dtype=np.float64)
    if len(x) // max(scales) < 4:
        raise ValueError(f"hurst_reference: {len(x)} returns; need >= {4 * max(scales)} for scales {scales}")
    logs, logv = [], []
    for k in scales:
        n = len(x) // k
        sums = x[: n * k].reshape(n, k).sum(axis=1)
        logs.append(np.log(k))
        logv.append(np.log(sums.var(ddof=1)))
    slope = np.polyfit(logs, logv, 1)[0]
    return float(slope / 2.0)


def corwin_schultz_spread(high: pd.Series, low: pd.Series, window: int) -> pd.Series:
    """Causal Corwin–Schultz spread (fraction of price), averaged over ``window`` bars."""
    lh = np.log(high / low) ** 2
    beta = lh + lh.shift(1)
    hh = pd.concat([high, high.shift(1)], axis=1).max(axis=1, skipna=False)
    ll = pd.concat([low, low.shift(1)], axis=1).min(axis=1, skipna=False)
    gamma = np.log(hh / ll) ** 2
    den = 3.0 - 2.0 * np.sqrt(2.0)
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / den - np.sqrt(gamma / den)
    spread = (2.0 * (np.exp(alpha) - 1.0) / (1.0 + np.exp(alpha))).clip(lower=0.0)
    return spread.rolling(window, min_periods=_min_periods(window)).mean()


VOL_DAYS, TREND_WINDOW, HURST_WINDOW, HURST_K, SPREAD_WINDOW, VOLUME_WINDOW = 30, 168, 720, 8, 24, 168


def fingerprint_warmup(bar: pd.Timedelta, *, vol_days: int = VOL_DAYS, hurst_window: int = HURST_WINDOW,
                       k: int = HURST_K) -> int:
    """Bars a fingerprint value needs to equal its value on a long history, for bars of length ``bar``:
    the longest window, the ``vol_days`` realised volatility (+ 1 bar for the first return) or the Hurst
    estimator's ``hurst_window`` variance of ``k``-bar sums (+ ``k``); the other windows are shorter."""
    bpd = max(1.0, pd.Timedelta(days=1) / bar)
    return max(int(round(vol_days * bpd)) + 1, hurst_window + k)


def fingerprint(frame: pd.DataFrame, *, vol_days: int = VOL_DAYS, trend_window: int = TREND_WINDOW,
                hurst_window: int = HURST_WINDOW, spread_window: int = SPREAD_WINDOW,
                volume_window: int = VOLUME_WINDOW) -> pd.DataFrame:
    """Fingerprint of one asset's bars, shape (n_bars, 3..5), columns from :data:`FINGERPRINT_COLUMNS`.

    Args:
        frame: (n_bars, k) bars of one asset, UTC index, ``close`` (+ high/low/volume).
        vol_days: realised-volatility window, calendar days (converted to bars).
        trend_window, hurst_window, spread_window, volume_window: windows in bars.

    Raises:
        ValueError: ``frame`` has no ``close`` column.
    """
    if "close" not in frame.columns:
        raise ValueError(f"fingerprint: expected a 'close' column, got {list(frame.columns)}")
    close = frame["close"].astype(np.float64)
    logc = np.log(close)
    r = logc.diff()
    bpd = bars_per_day(frame.index)
    vw = max(2, int(round(vol_days * bpd)))
    out = pd.DataFrame(index=frame.index)
    out["fp_vol30"] = r.rolling(vw, min_periods=_min_periods(vw)).std() * np.sqrt(bpd)
    out["fp_trend_r2"] = rolling_trend_r2(logc, trend_window)
    out["fp_hurst"] = rolling_hurst(r, hurst_window, HURST_K)
    if {"high", "low"} <= set(frame.columns):
        out["fp_spread"] = corwin_schultz_spread(frame["high"].astype(float), frame["low"].astype(float), spread_window)
    if "volume" in frame.columns:
        lv = np.log1p(frame["volume"].astype(np.float64).clip(lower=0.0))
        mp = _min_periods(volume_window)
        mu = lv.rolling(volume_window, min_periods=mp).mean()
        sd = lv.rolling(volume_window, min_periods=mp).std().replace(0.0, np.nan)
        out["fp_volume_z"] = ((lv - mu) / sd).fillna(0.0).where(mu.notna())
    return out
