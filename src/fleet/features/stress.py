"""Stress features of one asset (the StressExpert's inputs), all causal.

* ``stress_drawdown``   log distance of the close below its running peak over ``window`` bars (<= 0).
* ``stress_volofvol``   std over ``window`` bars of the 24-bar rolling volatility, divided by its mean (unitless).
* ``stress_downside``   downside semivariance: mean of min(r, 0)^2 over ``window`` bars, as a share of the total
  second moment (0..1).
* ``stress_skew``       sample skewness of 1-bar log returns over ``window`` bars.
* ``stress_volume_shock`` log volume minus its ``window``-bar median (needs volume; left out otherwise).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

STRESS_PREFIX = "stress_"
STRESS_WINDOW = 168  # bars of every stress statistic (one week of hourly bars)
STRESS_VOL_WINDOW = 24  # bars of the rolling volatility whose dispersion is stress_volofvol


def stress_warmup(window: int = STRESS_WINDOW) -> int:
    """Bars a stress value needs to equal its value on a long history: the ``window`` of the
    vol-of-vol statistic over a ``STRESS_VOL_WINDOW``-bar rolling volatility."""
    return window + STRESS_VOL_WINDOW


def stress_features(frame: pd.DataFrame, *, window: int = STRESS_WINDOW) -> pd.DataFrame:
    """Stress features, shape (n_bars, 4 or 5), NaN during the warm-up (``window`` bars)."""
    logc = np.log(frame["close"].astype(np.float64))
    r = logc.diff()
    mp = max(24, window // 4)
    out = pd.DataFrame(index=frame.index)
    out["stress_drawdown"] = logc - logc.rolling(window, min_periods=mp).max()
    vol = r.rolling(STRESS_VOL_WINDOW, min_periods=STRESS_VOL_WINDOW).std()
    out["stress_volofvol"] = vol.rolling(window, min_periods=mp).std() / vol.rolling(window, min_periods=mp).mean()
    down = (r.clip(upper=0.0) ** 2).rolling(window, min_periods=mp).mean()
    total = (r ** 2).rolling(window, min_periods=mp).mean()
    out["stress_downside"] = (down / total.replace(0.0, np.nan)).fillna(0.5).where(total.notna())
    out["stress_skew"] = r.rolling(window, min_periods=mp).skew().fillna(0.0).where(total.notna())
    if "volume" in frame.columns:
        lv = np.log1p(frame["volume"].astype(np.float64).clip(lower=0.0))
        out["stress_volume_shock"] = lv - lv.rolling(window, min_periods=mp).median()
    return out
