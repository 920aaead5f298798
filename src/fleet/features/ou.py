"""Rolling Ornstein–Uhlenbeck / drift-diffusion fit of log prices (the SDE expert's state).

Model: dX = theta (mu - X) dt + sigma dW for X = log close, one bar = dt = 1. Its exact
discretisation is the Gaussian AR(1) ``X[t+1] = a + b X[t] + e``, ``b = exp(-theta)``,
``mu = a / (1 - b)``, ``e ~ N(0, s2)`` with ``s2 = sigma^2 (1 - b^2) / (2 theta)``. The
conditional maximum-likelihood estimate of (a, b, s2) is ordinary least squares of X[t+1] on
X[t] over the last ``window`` bars (rolling, so the value at bar t uses bars <= t).

Horizon-h forecast in closed form (h bars ahead, given X[t] = x):
  mean  m = mu + (x - mu) b^h,   variance v = s2 (1 - b^(2h)) / (1 - b^2),
  P(up) = P(X[t+h] > x) = Phi((m - x) / sqrt(v)).
When b >= 1 (no mean reversion in the window) the model falls back to a drift-diffusion
(Brownian motion with drift): m = x + h * mean(dX), v = h * var(dX).
``theta = -log(b)`` per bar (0 when b >= 1) is exposed as a feature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtr

SDE_PREFIX = "sde_"
SDE_COLUMNS = ("sde_p_up", "sde_theta", "sde_z")


def ou_warmup(window: int) -> int:
    """Bars a rolling OU value needs to equal its value on a long history: ``window`` regressions
    of X[t] on X[t-1], so ``window + 1`` log closes."""
    return window + 1


def rolling_ou(log_close: pd.Series, *, window: int = 168, horizon: int = 4) -> pd.DataFrame:
    """Rolling OU fit; returns (n_bars, 3) with ``sde_p_up`` (0..1), ``sde_theta`` (1/bar) and
    ``sde_z`` ((x - mu) / stationary sd, 0 when not mean-reverting). NaN for the first ``window`` bars."""
    x = log_close.astype(np.float64)
    x0 = x.shift(1)  # regressor X[t-1]; response X[t]
    mp = window
    mx0 = x0.rolling(window, min_periods=mp).mean()
    mx1 = x.rolling(window, min_periods=mp).mean()
    cov = x0.rolling(window, min_periods=mp).cov(x)
    var0 = x0.rolling(window, min_periods=mp).var()
    b = (cov / var0.replace(0.0, np.nan)).to_numpy()
    a = (mx1 - b * mx0).to_numpy()
    # residual variance of the AR(1) fit (MLE up to ddof)
    var1 = x.rolling(window, min_periods=mp).var().to_numpy()
    s2 = np.maximum(var1 - b * cov.to_numpy(), 1e-18)
    dx = x.diff()
    drift = dx.rolling(window, min_periods=mp).mean().to_numpy()
    dvar = np.maximum(dx.rolling(window, min_periods=mp).var().to_numpy(), 1e-18)
    xv = x.to_numpy()
    h = float(horizon)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        reverting = (b > 0) & (b < 1)
        bs = np.where(reverting, b, 0.5)
        mu = a / (1.0 - bs)
        bh = bs ** h
        m_ou = mu + (xv - mu) * bh
        v_ou = s2 * (1.0 - bh ** 2) / (1.0 - bs ** 2)
        m_bm = xv + h * drift
        v_bm = h * dvar
        m = np.where(reverting, m_ou, m_bm)
        v = np.where(reverting, v_ou, v_bm)
        p = ndtr((m - xv) / np.sqrt(np.maximum(v, 1e-18)))
        theta = np.where(reverting, -np.log(bs), 0.0)
        z = np.where(reverting, (xv - mu) / np.sqrt(s2 / np.maximum(1.0 - bs ** 2, 1e-12)), 0.0)
    valid = np.isfinite(b) & np.isfinite(a)
    out = pd.DataFrame({"sde_p_up": np.where(valid, p, np.nan), "sde_theta": np.where(valid, theta, np.nan),
                        "sde_z": np.where(valid, np.clip(z, -10, 10), np.nan)}, index=log_close.index)
    return out
