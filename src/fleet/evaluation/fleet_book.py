"""``results_book.csv`` and the books' per-bar curves from a run's out-of-sample prediction rows.

The figures are :mod:`fleet.evaluation.book`'s, per fold and over all folds (the folds' per-timestamp ICs and
per-bar curves one after the other). One row per (book, fold):

* ``score``: the cross-sectional IC and Rank IC of the score (``cs_*``) and the mean forward return of each score
  quintile (``group_q1`` lowest .. ``group_q5`` highest, Qlib's group return), log returns over h bars;
* ``topk``: the top-k dropout long book, net of costs, and its excess over the benchmark;
* ``long_short``: the market-neutral book, net of costs, and its beta to the benchmark;
* ``benchmark``: the equal-weight fleet (no costs).
Columns a book does not have are NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fleet.errors import ConfigError
from fleet.evaluation.book import (FoldPanel, benchmark_returns, beta, book_weights, cross_sectional_ic,
                                   excess_metrics, fold_panels, hac_t, ic_summary, net_metrics, quintile_returns,
                                   scaled_book_size, weighted_book)

__all__ = ["BOOK_COLUMNS", "BOOKS", "CS_IC_COLUMNS", "book_tables"]

#: The rows of results_book.csv per fold, in order.
BOOKS = ("score", "topk", "long_short", "benchmark")
#: The cross-sectional IC columns (also on the ALL rows of results_per_fold.csv).
CS_IC_COLUMNS = ["cs_ic", "cs_ic_std", "cs_icir", "cs_ic_t", "cs_rank_ic", "cs_rank_ic_std", "cs_rank_icir",
                 "cs_rank_ic_t"]
GROUP_COLUMNS = [f"group_q{i}" for i in range(1, 6)]
BOOK_COLUMNS = ["book", "fold", "bars", "assets", "k", "n_drop", *CS_IC_COLUMNS, *GROUP_COLUMNS, "sharpe_net",
                "sharpe_net_t", "ann_return_net", "max_dd_net", "turnover", "excess_ann_return", "information_ratio",
                "excess_max_dd", "excess_t", "beta"]


def _fold_series(panel: FoldPanel, *, horizon: int, cost_bps: float, k: int, n_drop: int) -> dict:
    ic = cross_sectional_ic(panel)
    out = {"ic": ic["ic"].to_numpy(), "rank_ic": ic["rank_ic"].to_numpy(), "groups": quintile_returns(panel),
           "benchmark": benchmark_returns(panel)}
    for kind in ("topk", "long_short"):
        W = book_weights(panel, kind, horizon=horizon, k=k, n_drop=n_drop)
        pnl = weighted_book(W, panel.ret1, cost_bps)
        out[kind], out[f"{kind}_turnover"] = pnl["net"], pnl["turnover"]
    return out


def _rows(fold, s: dict, *, horizon: int, bars_per_year: float, k: int, n_drop: int, assets: int) -> list[dict]:
    base = {"fold": fold, "bars": int(s["benchmark"].size), "assets": assets}
    ic, ric = ic_summary(s["ic"], horizon), ic_summary(s["rank_ic"], horizon)
    with np.errstate(invalid="ignore"):
        groups = np.nanmean(s["groups"], axis=0) if np.isfinite(s["groups"]).any() else np.full(5, np.nan)
    score = {**base, "book": "score", "cs_ic": ic["mean"], "cs_ic_std": ic["std"], "cs_icir": ic["ir"],
             "cs_ic_t": ic["t"], "cs_rank_ic": ric["mean"], "cs_rank_ic_std": ric["std"], "cs_rank_icir": ric["ir"],
             "cs_rank_ic_t": ric["t"], **dict(zip(GROUP_COLUMNS, groups))}
    bench = s["benchmark"]
    excess = s["topk"] - bench
    topk = {**base, "book": "topk", "k": k, "n_drop": n_drop, **net_metrics(s["topk"], bars_per_year, horizon),
            "turnover": float(s["topk_turnover"].mean()), **excess_metrics(excess, bars_per_year),
            "excess_t": hac_t(excess, horizon), "beta": beta(s["topk"], bench)}
    ls = {**base, "book": "long_short", **net_metrics(s["long_short"], bars_per_year, horizon),
          "turnover": float(s["long_short_turnover"].mean()), "beta": beta(s["long_short"], bench)}
    bm = {**base, "book": "benchmark", **net_metrics(bench, bars_per_year, horizon), "turnover": 0.0, "beta": 1.0}
    return [score, topk, ls, bm]


def book_tables(rows: pd.DataFrame, *, horizon: int, cost_bps: float, bars_per_year: float,
                k: int | None = None, n_drop: int | None = None,
                score: str = "p_up") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fleet books of a run's out-of-sample rows.

    Args:
        rows: one row per (timestamp, symbol): timestamp, symbol, fold, the ``score`` column (p_up),
            forward_return (log, h bars), return_1 (log, 1 bar).
        horizon: h, bars between rebalances (the label horizon). cost_bps: cost per side, basis points.
        bars_per_year: for annualising. k, n_drop: the top-k book's size and swaps per rebalance; None:
            :func:`~fleet.evaluation.book.scaled_book_size` of the fleet.

    Returns:
        (table, curves): ``table`` with :data:`BOOK_COLUMNS`, the :data:`BOOKS` rows of every fold then of
        ``fold = "all"``; ``curves`` one row per (fold, timestamp) with the per-bar net simple returns
        ``topk``, ``long_short`` and ``benchmark``.

    Raises:
        ConfigError: horizon < 1, bad k / n_drop, bars_per_year not > 0. DataError: missing columns.
    """
    if int(horizon) < 1:
        raise ConfigError(f"horizon={horizon!r}: expected a number of bars >= 1")
    if not (bars_per_year and np.isfinite(bars_per_year) and bars_per_year > 0):
        raise ConfigError(f"bars_per_year={bars_per_year!r}: expected a number of bars per year > 0")
    panels = fold_panels(rows, score)
    n_assets = len(panels[0].symbols) if panels else 0
    k, n_drop = scaled_book_size(n_assets, k, n_drop)
    kw = {"horizon": int(horizon), "bars_per_year": float(bars_per_year), "k": k, "n_drop": n_drop}
    table, series, curves = [], [], []
    for p in panels:
        s = _fold_series(p, horizon=int(horizon), cost_bps=cost_bps, k=k, n_drop=n_drop)
        series.append(s)
        table += _rows(p.fold, s, assets=int(np.isfinite(p.score).any(axis=0).sum()), **kw)
        curves.append(pd.DataFrame({"fold": p.fold, "timestamp": p.stamps, "topk": s["topk"],
                                    "long_short": s["long_short"], "benchmark": s["benchmark"]}))
    if series:
        joined = {key: np.concatenate([s[key] for s in series]) for key in series[0]}
        table += _rows("all", joined, assets=n_assets, **kw)
    out = pd.DataFrame(table).reindex(columns=BOOK_COLUMNS)
    out[["k", "n_drop"]] = out[["k", "n_drop"]].astype("Int64")
    curves_frame = (pd.concat(curves, ignore_index=True) if curves
                    else pd.DataFrame(columns=["fold", "timestamp", "topk", "long_short", "benchmark"]))
    return out, curves_frame
