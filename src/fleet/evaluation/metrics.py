"""Out-of-sample quality of a long-only P(up) signal: classification, ranking and trading metrics.

Precision / recall of the "up" class among signalled bars; ROC AUC as the Mann-Whitney
probability that a random up bar gets a higher P(up) than a random down bar (Hanley & McNeil
1982), pooled over a group's rows (``auc``) and per asset (``auc_per_asset``: the mean of each
asset's AUC within each fold, which carries no cross-sectional level).

Ranking: the information coefficient (IC, Pearson correlation of p_up with the forward
return) and the Rank IC (Spearman) over a group's rows, a per-asset *time-series* IC; ICIR =
mean / std (ddof=1) of the per-fold IC, left empty with fewer than :data:`ICIR_MIN_FOLDS` folds
(Grinold & Kahn, *Active Portfolio Management*, ch. 6, use per-period ICs the same way).

Trading: the equity curve is marked to market bar by bar (:func:`mark_to_market`): every
signal opens a 1/h tranche held h bars, the book holds the sum of the open tranches over each
bar, its P&L is the exact simple return of that book, and costs are charged on turnover
(|change of exposure|), so back-to-back signals that keep the position pay nothing extra. Every
trading figure comes from that one curve: the Sharpe ratio (against cash), the annualised return,
the maximum drawdown, and ``expectancy``, the net P&L per round trip (half the turnover). The
trading functions live in :mod:`fleet.evaluation.trading` and are re-exported here.

Uncertainty: with ``reps > 0`` :func:`summarise` adds the standard errors of the headline figures
from a stationary block bootstrap over timestamps (:mod:`fleet.evaluation.uncertainty`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from fleet.errors import ConfigError, DataError, describe_rows
from fleet.evaluation.metric_registry import RESULTS_LAYOUT, se_columns
from fleet.evaluation.trading import (_check_horizon, book_pnl, exposure, mark_to_market, portfolio_returns,
                                     segments_of, trading_metrics)
from fleet.evaluation.uncertainty import (CHUNK_CELLS, TimestampBootstrap, bootstrap_se, counted_aucs,
                                          counted_pearsons, weighted_mean_over_sd)

__all__ = ["ICIR_MIN_FOLDS", "SE_COLUMNS", "SUMMARY_COLUMNS", "asset_fold_aucs", "book_pnl", "exposure",
           "figure_draws", "icir", "information_coefficients", "mark_to_market", "per_asset_auc", "portfolio_returns",
           "segments_of", "signal_metrics", "summarise", "trading_metrics"]

#: Standard errors of the headline figures (stationary block bootstrap over timestamps; NaN without draws).
SE_COLUMNS = se_columns()
#: Columns of summarise() after the group keys: the results files' figures in file order (the metric registry).
SUMMARY_COLUMNS = RESULTS_LAYOUT
#: Fewer folds than this leave the ICIR empty: a ratio of mean to spread from 2-4 ICs is mostly noise.
ICIR_MIN_FOLDS = 5
_REQUIRED = ("p_up", "y", "forward_return", "return_1", "fold")


def _check_params(threshold, cost_bps) -> tuple[float, float]:
    try:
        threshold, cost_bps = float(threshold), float(cost_bps)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"threshold={threshold!r}, cost_bps={cost_bps!r}: expected numbers") from err
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold={threshold}: expected a probability in [0, 1] (go long when p_up > threshold)")
    if not (np.isfinite(cost_bps) and cost_bps >= 0.0):
        raise ConfigError(f"cost_bps={cost_bps}: expected a cost per side in basis points >= 0")
    return threshold, cost_bps


def _check_arrays(y_true, p_up, forward_return) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = {}
    for name, a in (("y_true", y_true), ("p_up", p_up), ("forward_return", forward_return)):
        try:
            arrays[name] = np.asarray(a, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise DataError(f"{name}: expected numbers ({err})") from err
        if arrays[name].ndim != 1:
            raise DataError(f"{name}: expected shape (n,), got {arrays[name].shape}")
    sizes = {k: v.size for k, v in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise DataError(f"signal_metrics: arrays differ in length: {sizes}")
    y, p, r = arrays["y_true"], arrays["p_up"], arrays["forward_return"]
    for name, bad, want in (("y_true", ~np.isin(y, (0.0, 1.0)), "0 or 1"),
                            ("p_up", ~(np.isfinite(p) & (p >= 0) & (p <= 1)), "a probability in [0, 1]"),
                            ("forward_return", ~np.isfinite(r), "a finite log return")):
        if bad.any():
            raise DataError(f"{name}: expected {want}, not so at {describe_rows(np.flatnonzero(bad))}")
    return y, p, r


def _check_signal(signal, n: int) -> np.ndarray:
    try:
        s = np.asarray(signal, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataError(f"signal: expected 0/1 values ({err})") from err
    if s.shape != (n,):
        raise DataError(f"signal: expected shape ({n},) like p_up, got {s.shape}")
    bad = ~np.isin(s, (0.0, 1.0))
    if bad.any():
        raise DataError(f"signal: expected 0 or 1, not so at {describe_rows(np.flatnonzero(bad))}")
    return s == 1.0


def _check_position(x: np.ndarray) -> None:
    """DataError naming the rows where a policy's position is not a signed fraction of capital in [-1, 1]."""
    bad = ~(np.isfinite(x) & (np.abs(x) <= 1.0))
    if bad.any():
        raise DataError(f"position: expected a signed fraction of capital in [-1, 1], not so at "
                        f"{describe_rows(np.flatnonzero(bad))}")


def signal_metrics(y_true, p_up, forward_return, *, threshold: float = 0.55, cost_bps: float = 10.0,
                   signal=None) -> dict:
    """Classification quality of the signal ``p_up > threshold`` (the P&L is the curve's, :func:`summarise`).

    Args:
        y_true: shape (n,), 1 where the forward return is > 0 else 0.
        p_up: shape (n,), predicted P(up) in [0, 1].
        forward_return: shape (n,), forward log return over the label horizon (log-return units).
        threshold: go long when ``p_up > threshold`` (strict).
        cost_bps: transaction cost per side, basis points (validated here, charged by the curve).
        signal: optional shape (n,) 0/1 signal after a trading policy (e.g. forced daily entry,
            :mod:`fleet.evaluation.policy`); replaces ``p_up > threshold`` when given.

    Returns:
        dict with
        * "precision": TP / signals (NaN when nothing is signalled);
        * "recall": TP / #(y_true == 1) (NaN when there are no positives);
        * "auc": ``sklearn.metrics.roc_auc_score(y_true, p_up)`` (NaN when only one class);
        * "signals": number of signalled bars (int); "n": number of bars (int).
        NaN cases are silent (no warnings).

    Raises:
        ConfigError: threshold outside [0, 1], cost_bps negative / non-finite.
        DataError: arrays not 1-D or of different lengths; y_true not 0/1; p_up outside [0, 1] or
            NaN; forward_return non-finite; signal not 0/1 (rows named).
    """
    threshold, cost_bps = _check_params(threshold, cost_bps)
    y, p, r = _check_arrays(y_true, p_up, forward_return)
    signal = p > threshold if signal is None else _check_signal(signal, p.size)
    signals = int(signal.sum())
    positives = int((y == 1.0).sum())
    hits = int((signal & (y == 1.0)).sum())
    precision = hits / signals if signals else float("nan")
    recall = hits / positives if positives else float("nan")
    auc = float(roc_auc_score(y, p)) if 0 < positives < y.size else float("nan")
    return {"precision": float(precision), "recall": float(recall), "auc": auc, "signals": signals, "n": int(y.size)}


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    # A constant input has no correlation; testing the range (not the centred sum) keeps float
    # noise of a constant forecast from giving an IC of ~1e-17 instead of NaN.
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def information_coefficients(p_up, forward_return) -> tuple[float, float]:
    """IC and Rank IC of a forecast with the realised forward return.

    Args:
        p_up: shape (n,), the forecast (P(up) in [0, 1]).
        forward_return: shape (n,), forward log return over the label horizon.

    Returns:
        ``(ic, rank_ic)``: the Pearson correlation of the two, and the Spearman correlation (the
        Pearson correlation of their ranks, ties given their average rank). NaN, silently, with
        fewer than 2 bars or when either input is constant.
    """
    p = np.asarray(p_up, dtype=np.float64)
    r = np.asarray(forward_return, dtype=np.float64)
    if p.shape != r.shape or p.ndim != 1:
        raise DataError(f"information_coefficients: expected two arrays of shape (n,), got {p.shape} and {r.shape}")
    return _pearson(p, r), _pearson(rankdata(p), rankdata(r))


def icir(ics, min_periods: int = ICIR_MIN_FOLDS) -> float:
    """Information ratio of the IC: mean / sample std (ddof=1) of per-period ICs.

    Args:
        ics: shape (n_periods,), one IC per period (fleet uses one per walk-forward fold); NaN
            entries (periods without an IC) are left out.
        min_periods: fewer finite ICs than this give NaN (default :data:`ICIR_MIN_FOLDS`).

    Returns:
        The ICIR (unitless); NaN with fewer than ``min_periods`` (and at least 2) finite ICs or when they are
        all equal.
    """
    v = np.asarray(ics, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < max(2, int(min_periods)):
        return float("nan")
    sd = float(v.std(ddof=1))
    return float(v.mean() / sd) if sd > 0 else float("nan")


def asset_fold_aucs(frame: pd.DataFrame, score: str = "p_up", *, by: tuple[str, ...] = ("fold", "symbol"),
                    label: str = "y") -> pd.DataFrame:
    """ROC AUC of ``frame[score]`` for ``frame[label]`` inside each (fold, asset) group.

    Pooling the rows of several assets into one AUC mixes each asset's level (which assets drifted up over the
    block) with timing skill; within one asset and one fold only timing counts.

    Args:
        frame: (n, ...) rows with the ``by`` columns, ``label`` (0/1) and ``score`` (P(up) or any score).
        score, label: column names. by: the group keys (default fold and symbol).

    Returns:
        DataFrame with the ``by`` columns, ``auc`` (the grouped Mann-Whitney statistic of
        :func:`fleet.models.criteria.group_aucs`, equal to ``sklearn.metrics.roc_auc_score`` per group; NaN for a
        group with one class only) and ``n`` (rows), one row per group, sorted by the keys.

    Raises:
        DataError: a missing column (named).
    """
    from fleet.models.criteria import group_aucs

    keys = list(by)
    missing = [c for c in (*keys, label, score) if c not in frame.columns]
    if missing:
        raise DataError(f"asset_fold_aucs: missing column(s) {missing} (found {list(frame.columns)})")
    grouped = frame.groupby(keys, sort=True)
    codes = grouped.ngroup().to_numpy()
    auc = group_aucs(frame[label].to_numpy(), frame[score].to_numpy(), codes)[0] if len(frame) else np.zeros(0)
    out = grouped.size().reset_index(name="n")
    out.insert(len(keys), "auc", auc)
    return out[[*keys, "auc", "n"]]


def per_asset_auc(frame: pd.DataFrame, score: str = "p_up", *, by: tuple[str, ...] = ("fold", "symbol"),
                  label: str = "y") -> float:
    """The per-asset AUC: the mean of :func:`asset_fold_aucs` over its (fold, asset) groups with both classes.

    Unlike the pooled AUC it carries no cross-sectional level: a forecast that only knows which asset drifts up
    scores 0.5 here. NaN when no group has both classes.
    """
    aucs = asset_fold_aucs(frame, score, by=by, label=label)["auc"].to_numpy()
    aucs = aucs[np.isfinite(aucs)]
    return float(aucs.mean()) if aucs.size else float("nan")


def _group_row(g: pd.DataFrame, signal: np.ndarray, *, threshold: float, cost_bps: float, horizon: int,
               bars_per_year: float | None, reps: int, seed: int) -> dict:
    """All metrics of one group of predictions (rows of one or several assets)."""
    y, p, r = g["y"].to_numpy(), g["p_up"].to_numpy(), g["forward_return"].to_numpy()
    m = signal_metrics(y, p, r, threshold=threshold, cost_bps=cost_bps, signal=signal)
    m["auc_per_asset"] = per_asset_auc(g)
    m["ic"], m["rank_ic"] = information_coefficients(p, r)
    fold_ics = [information_coefficients(f["p_up"].to_numpy(), f["forward_return"].to_numpy())[0]
                for _, f in g.groupby("fold", sort=True)]
    m["icir"] = icir(fold_ics)
    position = g["position"].to_numpy(dtype=np.float64) if "position" in g.columns else None
    bars = portfolio_returns(g, signal, horizon=horizon, cost_bps=cost_bps, position=position)
    for suffix, col in (("", "gross"), ("_net", "net")):
        tm = trading_metrics(bars[col].to_numpy(), bars_per_year=bars_per_year)
        for k, v in tm.items():
            m[k + suffix] = v
    m["exposure"] = float(bars["exposure"].mean()) if len(bars) else float("nan")
    m["turnover"] = float(bars["turnover"].mean()) if len(bars) else float("nan")
    m["round_trips"] = float(bars["turnover_total"].sum() / 2.0)
    m["expectancy"] = float(bars["net_total"].sum() / m["round_trips"]) if m["round_trips"] > 0 else float("nan")
    m.update(_standard_errors(g, bars, reps=reps, seed=seed, bars_per_year=bars_per_year))
    return m


#: At most this many (draw, score block) cells of the bootstrap's class counts are held at once (memory and speed).
_CELLS = CHUNK_CELLS


def figure_draws(g: pd.DataFrame, net: np.ndarray, boot: TimestampBootstrap, *,
                 bars_per_year: float | None) -> dict[str, np.ndarray]:
    """Bootstrap draws of the headline figures of one group of prediction rows.

    Args:
        g: (n, ...) rows with fold, symbol, y, p_up, forward_return, in the order ``boot`` was built on.
        net: (T,) the group's per-timestamp net P&L (:func:`portfolio_returns`), indexed by the same sorted
            distinct timestamps as ``boot``.
        boot: the draws over the rows' timestamps. bars_per_year: annualises the Sharpe ratio (None: NaN).

    Returns:
        {"auc", "auc_per_asset", "ic", "rank_ic", "sharpe_net"} -> (reps,) draws, from the draws' counts per
        timestamp (:func:`~fleet.evaluation.uncertainty.counted_aucs`, ``counted_pearsons``: the rows' weights are
        never built); at most :data:`_CELLS` (draw, score block) cells are held at once.
    """
    y, p, r = (g[c].to_numpy(np.float64) for c in ("y", "p_up", "forward_return"))
    rp, rr = rankdata(p), rankdata(r)
    groups = g.groupby(["fold", "symbol"], sort=False).ngroup().to_numpy()
    out = {}
    out["auc"], out["auc_per_asset"] = counted_aucs(y, p, groups, boot.counts, boot.inverse, cells=_CELLS)
    out["ic"], out["rank_ic"] = counted_pearsons([(p, r), (rp, rr)], boot.counts, boot.inverse)
    scale = float(np.sqrt(bars_per_year)) if bars_per_year else float("nan")
    out["sharpe_net"] = weighted_mean_over_sd(np.asarray(net, dtype=np.float64), boot.counts) * scale
    return out


def timestamp_bootstrap(g: pd.DataFrame, *, reps: int, seed: int) -> TimestampBootstrap:
    """The stationary bootstrap over the timestamps of rows ``g``; the block length comes from the per-timestamp
    mean forward return (its h-bar overlap sets the dependence)."""
    stamps = pd.DatetimeIndex(g["timestamp"]).as_unit("ns").asi8
    return TimestampBootstrap(stamps, reps=reps, series=g["forward_return"].to_numpy(np.float64), seed=seed)


def _standard_errors(g: pd.DataFrame, bars: pd.DataFrame, *, reps: int, seed: int,
                     bars_per_year: float | None) -> dict:
    """:data:`SE_COLUMNS` of one group: the spread of :func:`figure_draws` (NaN with reps = 0)."""
    if reps < 2 or len(g) < 2 or len(bars) < 2:
        return dict.fromkeys(SE_COLUMNS, float("nan"))
    draws = figure_draws(g, bars["net"].to_numpy(), timestamp_bootstrap(g, reps=reps, seed=seed),
                         bars_per_year=bars_per_year)
    return {f"{k}_se": bootstrap_se(v) for k, v in draws.items()}


def _checked_signal(predictions: pd.DataFrame, keys: list[str], threshold: float) -> np.ndarray:
    """The (n,) bool signal of :func:`summarise`'s rows, after checking every column it reads once over the whole
    frame, so that rows are named by their position in ``predictions``.

    Raises:
        DataError: a missing column (named, with the columns found) or bad values (rows named).
    """
    missing = [c for c in (*keys, *_REQUIRED, "timestamp") if c not in predictions.columns]
    if missing:
        raise DataError(f"predictions: missing column(s) {', '.join(map(repr, missing))} "
                        f"(found: {', '.join(map(str, predictions.columns))})")
    try:
        _, p, _ = _check_arrays(predictions["y"].to_numpy(), predictions["p_up"].to_numpy(),
                                predictions["forward_return"].to_numpy())
        r1 = predictions["return_1"].to_numpy(dtype=np.float64)
        if not np.isfinite(r1).all():
            raise DataError(f"return_1: expected a finite log return, not so at "
                            f"{describe_rows(np.flatnonzero(~np.isfinite(r1)))}")
        if "position" in predictions.columns:
            _check_position(predictions["position"].to_numpy(dtype=np.float64))
        if "signal" in predictions.columns:
            return _check_signal(predictions["signal"].to_numpy(), len(predictions))
        return p > threshold
    except DataError as err:
        raise DataError(f"predictions: {err}") from err


def summarise(predictions: pd.DataFrame, by: str | list[str], *, threshold: float = 0.55,
              cost_bps: float = 10.0, horizon: int = 1, bars_per_year: float | None = None, reps: int = 0,
              seed: int = 0) -> pd.DataFrame:
    """All metrics per group of out-of-fold predictions (e.g. per asset, per cluster, per fold).

    The signal is the ``signal`` column when there is one (the signal after the trading policy,
    e.g. forced daily entry), else ``p_up > threshold``. With a ``position`` column (a cost-aware
    policy's book, :mod:`fleet.evaluation.costaware`) the curve is that position marked to market
    (:func:`book_pnl`) and ``signal`` marks the bars where a position is opened or flipped. Either way
    ``expectancy`` is the curve's net P&L per round trip, so it has the sign of the net curve.

    Args:
        predictions: one row per (symbol, timestamp) prediction with columns symbol, timestamp,
            fold, p_up, y (0/1), forward_return (log return over ``horizon`` bars), optionally
            signal (0/1), and anything else (ignored).
        by: column name(s) to group by, e.g. "symbol", ["cluster", "symbol"], "fold"; ``[]`` gives
            one overall row.
        threshold, cost_bps: as in ``signal_metrics``.
        horizon: label horizon h in bars, the holding period of each tranche (:func:`mark_to_market`).
        bars_per_year: for annualising (:func:`trading_metrics`); None leaves sharpe and ann_return NaN.
        reps: stationary block bootstrap draws over each group's timestamps behind :data:`SE_COLUMNS`
            (0: those columns are NaN). seed: the draws' seed.

    Returns:
        DataFrame with one row per group, sorted by the group keys: the ``by`` columns, then
        :data:`SUMMARY_COLUMNS`, each defined once in :mod:`fleet.evaluation.metric_registry`. Computed by:
        ``signal_metrics`` (precision, recall, auc, signals, n), :func:`per_asset_auc`,
        :func:`information_coefficients` over the group's pooled rows (ic, rank_ic), :func:`icir` of the
        group's per-fold ICs, :func:`trading_metrics` of the equal-weight portfolio of the group's assets
        (:func:`portfolio_returns`, each asset marked to market bar by bar) without and with costs
        (sharpe, ann_return, max_dd and their ``_net``), that portfolio's exposure and turnover, round_trips
        (total turnover / 2), expectancy (``sum(net) / round_trips``), folds, and the bootstrap standard
        errors :data:`SE_COLUMNS`. A flat table (group keys are columns, RangeIndex), ready for CSV.

    Raises:
        DataError: missing columns (named, with the columns found) or bad values (see
            ``signal_metrics``; rows are positions in ``predictions``).
        ConfigError: bad threshold / cost_bps / horizon / bars_per_year.
    """
    threshold, cost_bps = _check_params(threshold, cost_bps)
    _check_horizon(horizon)
    trading_metrics([], bars_per_year=bars_per_year)  # validates bars_per_year
    keys = [by] if isinstance(by, str) else list(by)
    if not isinstance(predictions, pd.DataFrame):
        raise DataError(f"predictions: expected a DataFrame, got {type(predictions).__name__}")
    frame = predictions.assign(_signal=_checked_signal(predictions, keys, threshold))
    columns = [*keys, *SUMMARY_COLUMNS]
    groups = frame.groupby(keys, sort=True, dropna=False) if keys else [((), frame)]
    rows = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        m = _group_row(g, g["_signal"].to_numpy(), threshold=threshold, cost_bps=cost_bps, horizon=horizon,
                       bars_per_year=bars_per_year, reps=int(reps), seed=seed)
        m["folds"] = int(g["fold"].nunique())
        rows.append([*key, *(m[c] for c in SUMMARY_COLUMNS)])
    out = pd.DataFrame(rows, columns=columns)
    if not rows:
        out = out.astype({"signals": np.int64, "n": np.int64, "folds": np.int64})
    return out
