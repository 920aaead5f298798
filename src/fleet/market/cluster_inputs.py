"""What the correlation clustering correlates: raw returns, residual returns, or FFD log prices.

Ward on ``1 - |corr|`` of raw hourly crypto returns sees mostly the market: every pair co-moves with
BTC, so one cluster takes almost everything and the rest are singletons. Two variants, both fitted on
the fold's training window only:

* ``residual``: the returns after removing the market factor — the first principal component of all
  assets' standardised returns (:class:`fleet.market.factor.MarketFactor`, fitted on the same window) —
  by an OLS regression per asset, ``r_i = a_i + b_i f + e_i`` (the market model of Sharpe 1963); the
  clustering then groups assets whose *idiosyncratic* moves are alike. Removing a common factor makes
  the groups' residuals negatively correlated with one another, so this variant clusters on the signed
  distance ``(1 - corr) / 2`` (``cluster_assets(signed=True)``), not on ``1 - |corr|``.
* ``ffd``: the fractionally differentiated log price (AFML ch. 5, FFD with the
  per-asset order d from the ADF search on the window): stationary but with memory, so the correlation
  also sees slower co-movement than 1-bar returns do.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fleet.errors import ConfigError
from fleet.market.factor import MarketFactor

__all__ = ["CLUSTER_INPUTS", "clustering_input", "ffd_levels", "residual_returns"]

CLUSTER_INPUTS = ("returns", "residual", "ffd")


def residual_returns(returns: pd.DataFrame) -> pd.DataFrame:
    """Returns less the market factor's part, per asset: ``e_i = r_i - a_i - b_i f`` (OLS on the rows where both exist).

    Args:
        returns: (n_timestamps, n_assets) aligned log returns of the training window (NaN allowed).

    Returns:
        (n_timestamps, n_assets) residual returns, NaN where the asset or the factor has no value.
    """
    if returns.shape[1] < 2:
        return returns.copy()
    factor = MarketFactor(method="pca").fit(returns)
    f = factor.transform(returns).reindex(returns.index)
    out = {}
    for col in returns.columns:
        r = returns[col]
        ok = r.notna() & f.notna()
        x, y = f[ok].to_numpy(), r[ok].to_numpy()
        b = float(np.cov(x, y, ddof=0)[0, 1] / np.var(x)) if ok.sum() > 2 and np.var(x) > 0 else 0.0
        a = float(y.mean() - b * x.mean()) if ok.any() else 0.0
        out[col] = r - a - b * f
    return pd.DataFrame(out, index=returns.index)


def ffd_levels(closes: dict[str, pd.Series], *, start: pd.Timestamp, end: pd.Timestamp, index: pd.DatetimeIndex,
               max_d: float, step: float, threshold: float, max_width: int) -> pd.DataFrame:
    """FFD log prices of each asset over ``[start, end)`` on ``index``, each at the d its ADF search picks there.

    Args:
        closes: symbol -> close prices (UTC index). start, end: the training window. index: the aligned grid.
        max_d, step, threshold, max_width: the FFD order search (:func:`fleet.features.fracdiff.choose_d`).

    Returns:
        (len(index), n_assets) FFD values, NaN in the warm-up and where the asset has no bar.
    """
    from fleet.features.fracdiff import choose_d, frac_diff_ffd

    out = {}
    for s, c in closes.items():
        lp = np.log(c[c.index < end])
        d = choose_d(lp, max_d=max_d, step=step, threshold=threshold, max_width=max_width).d
        x = frac_diff_ffd(lp, d, threshold=threshold, max_width=max_width)
        out[s] = x[x.index >= start].reindex(index)
    return pd.DataFrame(out, index=index)


def clustering_input(kind: str, returns: pd.DataFrame, closes: dict[str, pd.Series] | None = None, *,
                     end: pd.Timestamp | None = None, features=None) -> pd.DataFrame:
    """The (n_timestamps, n_assets) table whose correlations are clustered.

    Args:
        kind: ``returns`` | ``residual`` | ``ffd``.
        returns: aligned log returns of the training window (what ``returns`` clusters on as is).
        closes, end, features: for ``ffd``: the assets' closes, the window's end and the
            :class:`fleet.config.FeatureConfig` of the FFD search.

    Raises:
        ConfigError: unknown kind, or ``ffd`` without closes / end / features.
    """
    if kind == "returns":
        return returns
    if kind == "residual":
        return residual_returns(returns)
    if kind == "ffd":
        if closes is None or end is None or features is None:
            raise ConfigError("cluster_on='ffd' needs the assets' closes, the window end and the FFD settings")
        return ffd_levels({s: closes[s] for s in returns.columns}, start=returns.index[0], end=end,
                          index=returns.index, max_d=features.max_d, step=features.d_step,
                          threshold=features.ffd_threshold, max_width=features.ffd_max_width)
    raise ConfigError(f"cluster_on={kind!r}: expected one of {', '.join(CLUSTER_INPUTS)}")
