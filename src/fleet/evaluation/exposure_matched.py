"""Timing skill of each asset's book: its net Sharpe against a constant position at its mean exposure.

A long/flat book that is long 20 % of the time earns part of its Sharpe ratio from the asset's drift alone. The
exposure-matched benchmark holds the book's mean position ``mean(x)`` on every bar of the same rows (opened at
each segment's first bar and closed at its last, costs on that turnover as the book's, :func:`book_pnl`); the
difference of the two net Sharpe ratios is what the timing added. Its standard error comes from the stationary
block bootstrap over timestamps (:class:`~fleet.evaluation.uncertainty.TimestampBootstrap`, the block length from
the forward return as every standard error of the results tables), both curves scored on the same draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fleet.errors import DataError
from fleet.evaluation.trading import book_pnl, exposure, segments_of, trading_metrics
from fleet.evaluation.uncertainty import TimestampBootstrap, bootstrap_se, weighted_mean_over_sd

__all__ = ["MATCHED_COLUMNS", "asset_timing", "exposure_matched"]

#: Columns added beside each asset's net Sharpe in results_per_asset.csv.
MATCHED_COLUMNS = ["sharpe_net_matched", "timing_sharpe", "timing_sharpe_se"]


def asset_timing(g: pd.DataFrame, *, horizon: int, cost_bps: float, bars_per_year: float | None, reps: int,
                 seed: int) -> dict:
    """The exposure-matched figures of one asset's rows.

    Args:
        g: one asset's rows: timestamp (one row each), return_1 (log, 1 bar), forward_return, and ``position``
            (a cost-aware policy's signed position) or ``signal`` (0/1, the 1/h tranche book of
            :func:`~fleet.evaluation.trading.exposure`); bar_number (optional) splits segments.
        horizon: h in bars. cost_bps: per side. bars_per_year: annualises (None: NaN Sharpe ratios).
        reps: bootstrap draws (< 2: no standard error). seed: the draws' seed.

    Returns:
        {"sharpe_net_matched": net Sharpe of the constant position at the book's mean position,
        "timing_sharpe": the book's net Sharpe minus that, "timing_sharpe_se": its bootstrap standard error}.

    Raises:
        DataError: neither position nor signal, or a timestamp twice.
    """
    if "position" not in g and "signal" not in g:
        raise DataError("exposure-matched benchmark: the rows need a position or a signal column")
    g = g.sort_values("timestamp", kind="stable")
    stamps = pd.DatetimeIndex(g["timestamp"]).as_unit("ns").asi8
    if np.any(np.diff(stamps) == 0):
        raise DataError("exposure-matched benchmark: one asset's rows repeat a timestamp")
    seg = segments_of(g["bar_number"].to_numpy()) if "bar_number" in g else None
    r = g["return_1"].to_numpy(np.float64)
    x = (g["position"].to_numpy(np.float64) if "position" in g
         else exposure(g["signal"].to_numpy(np.float64), horizon=horizon, segment=seg))
    book = book_pnl(r, x, cost_bps=cost_bps, segment=seg)[1]
    const = book_pnl(r, np.full(r.size, x.mean() if x.size else 0.0), cost_bps=cost_bps, segment=seg)[1]
    s_book = trading_metrics(book, bars_per_year=bars_per_year)["sharpe"]
    s_const = trading_metrics(const, bars_per_year=bars_per_year)["sharpe"]
    se = float("nan")
    if reps >= 2 and r.size >= 2 and bars_per_year:
        boot = TimestampBootstrap(stamps, reps=reps, series=g["forward_return"].to_numpy(np.float64), seed=seed)
        draws = weighted_mean_over_sd(book, boot.counts) - weighted_mean_over_sd(const, boot.counts)
        se = bootstrap_se(draws * np.sqrt(bars_per_year))
    return {"sharpe_net_matched": s_const, "timing_sharpe": s_book - s_const, "timing_sharpe_se": se}


def exposure_matched(rows: pd.DataFrame, *, horizon: int, cost_bps: float, bars_per_year: float | None,
                     reps: int = 0, seed: int = 0) -> pd.DataFrame:
    """:func:`asset_timing` of every asset of ``rows`` (a ``symbol`` column): a frame with ``asset`` and
    :data:`MATCHED_COLUMNS`, one row per asset, sorted."""
    out = [{"symbol": s, **asset_timing(g, horizon=horizon, cost_bps=cost_bps, bars_per_year=bars_per_year,
                                       reps=reps, seed=seed)}
           for s, g in rows.groupby("symbol", sort=True)]
    return pd.DataFrame(out, columns=["symbol", *MATCHED_COLUMNS])
