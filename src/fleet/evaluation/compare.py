"""Paired comparisons of two forecasts of the same rows, each figure's difference with its bootstrap standard error.

Two models scored on the same (asset, timestamp) rows share most of their noise (the same labels, the same market
moves), so the standard error of their difference is far smaller than either figure's. Both are scored on the same
stationary-bootstrap draws of timestamps (:class:`~fleet.evaluation.uncertainty.TimestampBootstrap`), so the draws of
the difference keep that pairing, the overlap of labels over h bars and the cross-asset correlation.
A difference within one standard error is reported as a tie.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fleet.errors import DataError
from fleet.evaluation.metrics import (figure_draws, information_coefficients, per_asset_auc, portfolio_returns,
                                      timestamp_bootstrap, trading_metrics)
from fleet.evaluation.uncertainty import TimestampBootstrap, bootstrap_se, weighted_auc

__all__ = ["COMPARED", "paired_table"]

#: The figures compared: pooled AUC, per-asset AUC, Rank IC (per-asset time series, pooled rows) and net Sharpe.
COMPARED = ("auc", "auc_per_asset", "rank_ic", "sharpe_net")
_KEYS = ["symbol", "timestamp"]
_NEEDED = ("symbol", "timestamp", "fold", "p_up", "y", "forward_return", "return_1")


def _aligned(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    for name, f in (("a", a), ("b", b)):
        missing = [c for c in _NEEDED if c not in f.columns]
        if missing:
            raise DataError(f"paired_table: rows {name} lack column(s) {missing} (found {list(f.columns)})")
    common = a[_KEYS].merge(b[_KEYS], on=_KEYS)
    if common.empty:
        raise DataError("paired_table: the two sets of rows share no (symbol, timestamp)")
    out = []
    for f in (a, b):
        f = common.merge(f, on=_KEYS, how="left").sort_values(_KEYS, kind="stable").reset_index(drop=True)
        out.append(f)
    return out[0], out[1]


def _signal(f: pd.DataFrame, threshold: float) -> np.ndarray:
    return f["signal"].to_numpy() if "signal" in f else (f["p_up"].to_numpy() > threshold).astype(np.int8)


def _draws(f: pd.DataFrame, boot: TimestampBootstrap, *, threshold: float, cost_bps: float, horizon: int,
           bars_per_year: float | None) -> tuple[dict, dict]:
    """(figures, draws) of one set of rows: the point estimates and their (reps,) bootstrap draws."""
    p, r = f["p_up"].to_numpy(np.float64), f["forward_return"].to_numpy(np.float64)
    pos = f["position"].to_numpy(np.float64) if "position" in f else None
    net = portfolio_returns(f, _signal(f, threshold), horizon=horizon, cost_bps=cost_bps, position=pos)["net"]
    draws = figure_draws(f, net.to_numpy(), boot, bars_per_year=bars_per_year)
    figures = {"auc": float(weighted_auc(f["y"].to_numpy(np.float64), p, np.ones(len(f)))),
               "auc_per_asset": per_asset_auc(f), "rank_ic": information_coefficients(p, r)[1],
               "sharpe_net": trading_metrics(net.to_numpy(), bars_per_year=bars_per_year)["sharpe"]}
    if not np.any(net.to_numpy()):  # a book that never trades earns exactly 0: Sharpe 0 for the comparison
        figures["sharpe_net"], draws["sharpe_net"] = 0.0, np.zeros(len(boot.counts))
    return figures, draws


def paired_table(a: pd.DataFrame, b: pd.DataFrame, *, threshold: float, cost_bps: float, horizon: int,
                 bars_per_year: float | None, reps: int = 500, seed: int = 0) -> pd.DataFrame:
    """Each figure of :data:`COMPARED` for forecasts ``a`` and ``b`` of the same rows, their difference a - b and
    its standard error by a paired stationary block bootstrap over timestamps.

    Args:
        a, b: prediction rows (``fleet.load_run(...).predictions`` or a copy with another ``p_up``), with symbol,
            timestamp, fold, p_up, y, forward_return (h-bar log return), return_1 (1-bar log return), optionally
            bar_number, signal (else ``p_up > threshold``) and position (a tuned policy's book). Only the
            (symbol, timestamp) rows both hold are compared.
        threshold, cost_bps, horizon: the fixed rule and its costs (bps per side), as in
            :func:`fleet.evaluation.metrics.summarise`. bars_per_year: for the Sharpe ratio (None: NaN).
        reps: bootstrap draws. seed: their seed.

    A book that never trades (a tuned policy that stayed flat) counts as net Sharpe 0, so the difference is the
    other side's Sharpe with its own standard error.

    Returns:
        DataFrame with one row per figure: ``figure``, ``a``, ``b``, ``diff`` (a - b), ``se`` (sample std of the
        paired draws of the difference), ``z`` (diff / se) and ``verdict``: ``tie`` when |diff| <= se, else
        ``a`` or ``b`` (the larger).

    Raises:
        DataError: missing columns, or no common rows.
    """
    a, b = _aligned(a, b)
    boot = timestamp_bootstrap(a, reps=reps, seed=seed)
    kw = dict(threshold=threshold, cost_bps=cost_bps, horizon=horizon, bars_per_year=bars_per_year)
    fa, da = _draws(a, boot, **kw)
    fb, db = _draws(b, boot, **kw)
    rows = []
    for k in COMPARED:
        diff = fa[k] - fb[k]
        se = bootstrap_se(da[k] - db[k])
        tie = not (np.isfinite(diff) and np.isfinite(se)) or abs(diff) <= se
        verdict = "tie" if tie else ("a" if diff > 0 else "b")
        rows.append({"figure": k, "a": fa[k], "b": fb[k], "diff": diff, "se": se,
                     "z": diff / se if se and np.isfinite(se) and se > 0 else float("nan"), "verdict": verdict})
    return pd.DataFrame(rows)
