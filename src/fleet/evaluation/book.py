"""The fleet as one book: cross-sectional IC, a top-k dropout long book and a market-neutral long-short book.

A model trained on many assets is judged here the way a portfolio manager uses it: at each timestamp the assets
are ranked by their score (P(up)), not each asset timed alone against cash. Everything works on the out-of-sample
prediction rows (one row per (timestamp, symbol): fold, p_up, forward_return, return_1), laid out as
(timestamps x assets) matrices per fold.

* Cross-sectional IC (Qlib's definition, ``qlib.contrib.eva.alpha.calc_ic``): at each timestamp the Pearson
  (IC) and Spearman (Rank IC) correlation of the score with the h-bar forward return across the assets that have
  both then; then the mean, standard deviation, ICIR = mean / std, and a t-statistic of the mean with a
  Newey-West (1987) HAC standard error, because the ICs of neighbouring timestamps share h-1 bars of their
  forward returns.
* Books, one per fold (each opens flat at the fold's first bar and closes at its last), rebalanced every h bars
  from the fold's first timestamp. A rebalance at bar t uses the scores of the rows at t and its weights earn the
  1-bar returns from t on (``return_1`` of t is ``log(close[t+1] / close[t])``), so nothing after t is used.
  Weights stay constant between rebalances (the drift is neither traded nor charged, as in the fleet's
  equal-weight portfolio); an asset without a row at a bar earns 0 there. Costs are ``cost_bps`` per side on the
  turnover ``sum_i |w[t, i] - w[t-1, i]|`` (plus closing what is open at the fold's last bar), as
  :func:`fleet.evaluation.trading.book_pnl` charges a single asset's book.

  - Top-k dropout long book (Qlib ``TopkDropoutStrategy``, ``method_sell="bottom"``, ``method_buy="top"``):
    hold k assets at 1/k each; at a rebalance the held assets among the n_drop lowest of (held + the best
    n_drop + k - held not held) are sold and as many of the best not held bought. Judged against the equal-weight
    fleet benchmark (the mean simple return of the assets with a row at each bar): annualised excess return,
    information ratio and max drawdown of the summed excess curve as Qlib's ``risk_analysis`` (mode "sum").
  - Market-neutral long-short book: weights proportional to the cross-sectional rank of the score (average
    ranks for ties), demeaned to zero net exposure and scaled to gross exposure 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from fleet.errors import ConfigError, DataError
from fleet.evaluation.trading import trading_metrics

__all__ = ["FoldPanel", "book_weights", "cross_sectional_ic", "fold_panels", "hac_t", "ic_summary",
           "long_short_weights", "quintile_returns", "rebalance_rows", "scaled_book_size", "topk_dropout_step",
           "weighted_book"]

_NEEDED = ("timestamp", "symbol", "fold", "p_up", "forward_return", "return_1")


class FoldPanel:
    """One fold's rows as (T, N) matrices: ``score``, ``forward`` (h-bar forward log return) and ``ret1`` (1-bar
    forward log return), NaN where an asset has no row; ``stamps`` (T,) the fold's sorted timestamps and
    ``symbols`` (N,) the run's sorted symbols (the same columns in every fold)."""

    def __init__(self, fold: int, rows: pd.DataFrame, symbols: list[str], score: str = "p_up"):
        self.fold = int(fold)
        self.symbols = list(symbols)
        wide = rows.pivot(index="timestamp", columns="symbol", values=[score, "forward_return", "return_1"])
        wide = wide.sort_index()
        self.stamps = wide.index
        self.score, self.forward, self.ret1 = (
            wide[c].reindex(columns=self.symbols).to_numpy(dtype=np.float64)
            for c in (score, "forward_return", "return_1"))


def fold_panels(rows: pd.DataFrame, score: str = "p_up") -> list[FoldPanel]:
    """The rows of every fold as :class:`FoldPanel` s, in fold order.

    Raises:
        DataError: a missing column (named), or two rows of one (fold, timestamp, symbol).
    """
    missing = [c for c in (*_NEEDED, score) if c not in rows.columns]
    if missing:
        raise DataError(f"fleet book: prediction rows lack the column(s) {missing} (found {list(rows.columns)})")
    if rows.duplicated(["fold", "timestamp", "symbol"]).any():
        raise DataError("fleet book: expected one prediction row per (fold, timestamp, symbol), found duplicates")
    symbols = sorted(rows["symbol"].unique())
    return [FoldPanel(f, g, symbols, score) for f, g in rows.groupby("fold", sort=True)]


def scaled_book_size(n_assets: int, k: int | None = None, n_drop: int | None = None) -> tuple[int, int]:
    """``(k, n_drop)`` of the top-k book: given values, else ``k = max(1, n / 5)`` and ``n_drop = max(1, k / 5)``
    (Qlib's CSI300 benchmark holds 50 of 300 and drops 5), k at most ``n_assets``.

    Raises:
        ConfigError: k < 1 or n_drop < 0 (named), or k above the number of assets.
    """
    if k is not None and int(k) < 1:
        raise ConfigError(f"evaluation.book_k={k!r}: expected the number of assets held, an integer >= 1")
    if n_drop is not None and int(n_drop) < 0:
        raise ConfigError(f"evaluation.book_drop={n_drop!r}: expected the assets swapped per rebalance, >= 0")
    if k is not None and int(k) > n_assets:
        raise ConfigError(f"evaluation.book_k={k}: the fleet has only {n_assets} assets")
    k = max(1, n_assets // 5) if k is None else int(k)
    return k, (max(1, k // 5) if n_drop is None else int(n_drop))


def _corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of a and b (both (T, N), NaN outside the common mask); NaN without
    spread."""
    n = np.isfinite(a).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        da = a - np.nanmean(a, axis=1, keepdims=True)
        db = b - np.nanmean(b, axis=1, keepdims=True)
        num = np.nansum(da * db, axis=1)
        den = np.sqrt(np.nansum(da * da, axis=1) * np.nansum(db * db, axis=1))
        r = num / den
    flat = (np.nanmax(a, axis=1, initial=-np.inf) == np.nanmin(a, axis=1, initial=np.inf)) | (
        np.nanmax(b, axis=1, initial=-np.inf) == np.nanmin(b, axis=1, initial=np.inf))
    return np.where((n >= 2) & ~flat & (den > 0), r, np.nan)


def cross_sectional_ic(panel: FoldPanel, min_assets: int = 3) -> pd.DataFrame:
    """IC and Rank IC of the score with the forward return across the assets at each timestamp of a fold.

    Args:
        panel: the fold's matrices. min_assets: timestamps with fewer assets having both a score and a forward
            return get NaN (two points always correlate to +-1).

    Returns:
        DataFrame indexed by the fold's timestamps with ``ic`` (Pearson), ``rank_ic`` (Spearman: Pearson of the
        average ranks) and ``n`` (assets used), as ``scipy.stats.pearsonr`` / ``spearmanr`` of each row.
    """
    ok = np.isfinite(panel.score) & np.isfinite(panel.forward)
    s = np.where(ok, panel.score, np.nan)
    f = np.where(ok, panel.forward, np.nan)
    ic = _corr_rows(s, f)
    rank_ic = _corr_rows(rankdata(s, axis=1, nan_policy="omit"), rankdata(f, axis=1, nan_policy="omit"))
    n = ok.sum(axis=1)
    few = n < int(min_assets)
    return pd.DataFrame({"ic": np.where(few, np.nan, ic), "rank_ic": np.where(few, np.nan, rank_ic), "n": n},
                        index=panel.stamps)


def newey_west_lags(n: int, horizon: int = 1) -> int:
    """Lags of the HAC variance: the larger of ``horizon - 1`` (the overlap of h-bar forward returns) and Newey &
    West's (1994) rule of thumb ``floor(4 (n / 100)^(2/9))``."""
    return int(max(int(horizon) - 1, np.floor(4.0 * (max(n, 1) / 100.0) ** (2.0 / 9.0))))


def hac_t(x, horizon: int = 1) -> float:
    """t-statistic of the mean of a series with a Newey-West (1987) HAC standard error (Bartlett kernel, lags
    :func:`newey_west_lags`): ``statsmodels`` OLS on a constant with ``cov_type="HAC"``. NaN with fewer than 3
    finite values or no spread."""
    import statsmodels.api as sm

    v = np.asarray(x, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 3 or np.ptp(v) == 0:
        return float("nan")
    fit = sm.OLS(v, np.ones(v.size)).fit(cov_type="HAC", cov_kwds={"maxlags": newey_west_lags(v.size, horizon)})
    return float(fit.tvalues[0])


def ic_summary(ics, horizon: int = 1) -> dict:
    """Mean, sample std (ddof=1), ICIR = mean / std (per timestamp, not annualised, as Qlib reports it), HAC
    t-statistic (:func:`hac_t`) and count of a series of per-timestamp ICs (NaN entries left out)."""
    v = np.asarray(ics, dtype=np.float64)
    v = v[np.isfinite(v)]
    mean = float(v.mean()) if v.size else float("nan")
    sd = float(v.std(ddof=1)) if v.size > 1 else float("nan")
    return {"mean": mean, "std": sd, "ir": mean / sd if sd and np.isfinite(sd) and sd > 0 else float("nan"),
            "t": hac_t(v, horizon), "n": int(v.size)}


def quintile_returns(panel: FoldPanel) -> np.ndarray:
    """Qlib's group return: at each timestamp with at least 5 assets, the assets sorted by score (best first) cut
    into 5 groups of ``n // 5`` (the lowest ``n % 5`` left out), the mean forward return of each group; (T, 5)
    with column 0 the lowest-score quintile (Qlib's Group5) and column 4 the highest (Group1), NaN rows where
    fewer than 5 assets."""
    ok = np.isfinite(panel.score) & np.isfinite(panel.forward)
    out = np.full((len(panel.stamps), 5), np.nan)
    for t in np.flatnonzero(ok.sum(axis=1) >= 5):
        idx = np.flatnonzero(ok[t])
        order = idx[np.argsort(-panel.score[t, idx], kind="stable")]
        m = order.size // 5
        for g in range(5):
            out[t, 4 - g] = panel.forward[t, order[g * m:(g + 1) * m]].mean()
    return out


def topk_dropout_step(score: np.ndarray, held: np.ndarray, k: int, n_drop: int) -> np.ndarray:
    """One rebalance of Qlib's ``TopkDropoutStrategy``: the new held set.

    ``last`` = held, ``today`` = the ``n_drop + k - len(last)`` best-scored assets not held (only assets with a
    score can be bought), ``comb`` = last and today sorted by score (best first; an asset without a score ranks
    last); ``sell`` = the held assets among the last ``n_drop`` of comb; ``buy`` = the first
    ``len(sell) + k - len(last)`` of today. Ties rank by symbol order.

    Args:
        score: (N,) the scores at the rebalance, NaN where an asset has no row. held: (N,) bool.

    Returns:
        (N,) bool, the assets held after the rebalance.
    """
    s = np.where(np.isfinite(score), score, -np.inf)
    order = np.argsort(-s, kind="stable")
    pos = np.empty_like(order)
    pos[order] = np.arange(order.size)
    last = np.flatnonzero(held)
    candidates = order[~held[order] & np.isfinite(score[order])]
    today = candidates[:max(0, n_drop + k - last.size)]
    comb = np.concatenate([last, today])
    comb = comb[np.argsort(pos[comb], kind="stable")]
    bottom = comb[max(0, comb.size - n_drop):] if n_drop > 0 else comb[:0]
    sell = last[np.isin(last, bottom)]
    buy = today[:max(0, sell.size + k - last.size)]
    out = held.copy()
    out[sell] = False
    out[buy] = True
    return out


def long_short_weights(score: np.ndarray) -> np.ndarray:
    """(N,) weights of the market-neutral book at one rebalance: the cross-sectional rank of the score (average
    ranks for ties) minus its mean, scaled so ``sum |w| = 1``; 0 for an asset without a score, and all 0 with
    fewer than 2 scores or all scores tied."""
    w = np.zeros(score.size)
    ok = np.isfinite(score)
    if ok.sum() < 2:
        return w
    r = rankdata(score[ok])
    r = r - r.mean()
    gross = np.abs(r).sum()
    if gross > 0:
        w[ok] = r / gross
    return w


def rebalance_rows(n_stamps: int, horizon: int) -> np.ndarray:
    """Positions of the rebalances among a fold's T timestamps: 0, h, 2h, ..."""
    return np.arange(0, n_stamps, int(horizon))


def book_weights(panel: FoldPanel, kind: str, *, horizon: int, k: int = 1, n_drop: int = 0) -> np.ndarray:
    """(T, N) weights held over each bar of the fold: ``kind="topk"`` (1/k on each held asset) or
    ``"long_short"``, set at each rebalance (:func:`rebalance_rows`) from that timestamp's scores and held to
    the next one."""
    T, N = panel.score.shape
    W = np.zeros((T, N))
    held = np.zeros(N, dtype=bool)
    reb = rebalance_rows(T, horizon)
    for i, t in enumerate(reb):
        if kind == "topk":
            held = topk_dropout_step(panel.score[t], held, k, n_drop)
            w = held / float(k)
        elif kind == "long_short":
            w = long_short_weights(panel.score[t])
        else:
            raise ConfigError(f"book kind={kind!r}: expected 'topk' or 'long_short'")
        W[t:reb[i + 1] if i + 1 < reb.size else T] = w
    return W


def weighted_book(W: np.ndarray, ret1: np.ndarray, cost_bps: float) -> dict[str, np.ndarray]:
    """Per-bar P&L of a weight path over one fold.

    ``gross[t] = sum_i W[t, i] (exp(r[t, i]) - 1)`` (a missing return counts 0); ``turnover[t] =
    sum_i |W[t, i] - W[t-1, i]|`` with ``W[-1] = 0``, plus ``sum_i |W[T-1, i]|`` at the last bar (the book is
    closed); ``net = gross - cost_bps / 1e4 * turnover``.

    Returns:
        {"gross", "net", "turnover"}: (T,) arrays, simple returns and fractions of capital.
    """
    simple = np.where(np.isfinite(ret1), np.expm1(np.nan_to_num(ret1)), 0.0)
    gross = (W * simple).sum(axis=1)
    prev = np.vstack([np.zeros((1, W.shape[1])), W[:-1]])
    turnover = np.abs(W - prev).sum(axis=1)
    if turnover.size:
        turnover[-1] += np.abs(W[-1]).sum()
    return {"gross": gross, "net": gross - float(cost_bps) / 1e4 * turnover, "turnover": turnover}


def benchmark_returns(panel: FoldPanel) -> np.ndarray:
    """(T,) the equal-weight fleet benchmark: the mean simple return of the assets with a return at each bar (0
    where none), uncharged."""
    ok = np.isfinite(panel.ret1)
    simple = np.where(ok, np.expm1(np.nan_to_num(panel.ret1)), 0.0)
    return simple.sum(axis=1) / np.maximum(ok.sum(axis=1), 1)


def excess_metrics(excess, bars_per_year: float) -> dict:
    """Qlib's ``risk_analysis`` (mode "sum") of a per-bar excess return series: ``excess_ann_return = mean *
    bars_per_year``, ``information_ratio = mean / std * sqrt(bars_per_year)`` (std ddof=1), and
    ``excess_max_dd`` = the largest fall of the summed excess curve from its running peak (a positive
    number)."""
    x = np.asarray(excess, dtype=np.float64)
    if x.size < 2:
        return {"excess_ann_return": float("nan"), "information_ratio": float("nan"), "excess_max_dd": float("nan")}
    sd = float(x.std(ddof=1))
    curve = np.concatenate(([0.0], np.cumsum(x)))
    return {"excess_ann_return": float(x.mean() * bars_per_year),
            "information_ratio": float(x.mean() / sd * np.sqrt(bars_per_year)) if sd > 0 else float("nan"),
            "excess_max_dd": float((np.maximum.accumulate(curve) - curve).max())}


def beta(y, x) -> float:
    """OLS slope of y on x (with an intercept): ``cov(x, y) / var(x)``; NaN without spread in x."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan")
    return float(np.cov(x, y, ddof=1)[0, 1] / np.var(x, ddof=1))


def net_metrics(net, bars_per_year: float, horizon: int) -> dict:
    """Sharpe ratio, annualised return and max drawdown of a per-bar net curve (:func:`trading_metrics`) and
    the HAC t-statistic of its mean (:func:`hac_t`)."""
    m = trading_metrics(net, bars_per_year=bars_per_year)
    return {"sharpe_net": m["sharpe"], "sharpe_net_t": hac_t(net, horizon), "ann_return_net": m["ann_return"],
            "max_dd_net": m["max_dd"]}
