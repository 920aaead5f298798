"""Out-of-sample quality of a long-only P(up) signal: classification and trading metrics.

Precision / recall of the "up" class among signalled bars; ROC AUC as the Mann-Whitney
probability that a random up bar gets a higher P(up) than a random down bar (Hanley & McNeil
1982); expectancy in the trader's sense: the mean net outcome per trade, here the forward
log return minus a round-trip cost.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from fleet.errors import ConfigError, DataError, describe_rows

__all__ = ["METRIC_COLUMNS", "signal_metrics", "summarise"]

METRIC_COLUMNS = ("precision", "recall", "auc", "expectancy", "trades", "n")
_REQUIRED = ("p_up", "y", "forward_return", "fold")


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


def signal_metrics(y_true, p_up, forward_return, *, threshold: float = 0.55, cost_bps: float = 10.0) -> dict:
    """Classification and trading quality of the signal ``p_up > threshold``.

    Each signalled bar is one long trade held over the label horizon, paying ``cost_bps`` per
    side (a round trip per trade).

    Args:
        y_true: shape (n,), 1 where the forward return is > 0 else 0.
        p_up: shape (n,), predicted P(up) in [0, 1].
        forward_return: shape (n,), forward log return over the label horizon (log-return units).
        threshold: go long when ``p_up > threshold`` (strict).
        cost_bps: transaction cost per side, basis points (1 bp = 1e-4).

    Returns:
        dict with
        * "precision": TP / trades (NaN when there are no trades);
        * "recall": TP / #(y_true == 1) (NaN when there are no positives);
        * "auc": ``sklearn.metrics.roc_auc_score(y_true, p_up)`` (NaN when only one class);
        * "expectancy": mean forward log return of the signalled bars - 2 * cost_bps / 1e4, i.e.
          net log return per trade (NaN with no trades);
        * "trades": number of signalled bars (int); "n": number of bars (int).
        NaN cases are silent (no warnings).

    Raises:
        ConfigError: threshold outside [0, 1], cost_bps negative / non-finite.
        DataError: arrays not 1-D or of different lengths; y_true not 0/1; p_up outside [0, 1] or
            NaN; forward_return non-finite (rows named).
    """
    threshold, cost_bps = _check_params(threshold, cost_bps)
    y, p, r = _check_arrays(y_true, p_up, forward_return)
    signal = p > threshold
    trades = int(signal.sum())
    positives = int((y == 1.0).sum())
    hits = int((signal & (y == 1.0)).sum())
    precision = hits / trades if trades else float("nan")
    recall = hits / positives if positives else float("nan")
    auc = float(roc_auc_score(y, p)) if 0 < positives < y.size else float("nan")
    expectancy = float(r[signal].mean() - 2.0 * cost_bps / 1e4) if trades else float("nan")
    return {"precision": float(precision), "recall": float(recall), "auc": auc, "expectancy": expectancy,
            "trades": trades, "n": int(y.size)}


def summarise(predictions: pd.DataFrame, by: str | list[str], *, threshold: float = 0.55,
              cost_bps: float = 10.0) -> pd.DataFrame:
    """``signal_metrics`` per group of out-of-fold predictions (e.g. per asset, per cluster).

    Args:
        predictions: one row per (symbol, timestamp) prediction with columns symbol, timestamp,
            fold, p_up, y (0/1), forward_return (log return) and anything else (ignored).
        by: column name(s) to group by, e.g. "symbol", ["cluster", "symbol"], "fold"; ``[]`` gives
            one overall row.
        threshold, cost_bps: as in ``signal_metrics``.

    Returns:
        DataFrame with one row per group, sorted by the group keys, and columns: the ``by``
        columns, then precision, recall, auc, expectancy, trades, n, and folds (number of distinct
        folds in the group). A flat table (group keys are columns, RangeIndex), ready for CSV.

    Raises:
        DataError: missing columns (named, with the columns found) or bad values (see
            ``signal_metrics``; rows are positions in ``predictions``).
        ConfigError: bad threshold / cost_bps.
    """
    threshold, cost_bps = _check_params(threshold, cost_bps)
    keys = [by] if isinstance(by, str) else list(by)
    if not isinstance(predictions, pd.DataFrame):
        raise DataError(f"predictions: expected a DataFrame, got {type(predictions).__name__}")
    missing = [c for c in (*keys, *_REQUIRED) if c not in predictions.columns]
    if missing:
        raise DataError(f"predictions: missing column(s) {', '.join(map(repr, missing))} "
                        f"(found: {', '.join(map(str, predictions.columns))})")
    try:
        # Validated once over the whole frame so rows are named by their position in `predictions`.
        _check_arrays(predictions["y"].to_numpy(), predictions["p_up"].to_numpy(),
                      predictions["forward_return"].to_numpy())
    except DataError as err:
        raise DataError(f"predictions: {err}") from err
    columns = [*keys, *METRIC_COLUMNS, "folds"]
    groups = predictions.groupby(keys, sort=True, dropna=False) if keys else [((), predictions)]
    rows = []
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        m = signal_metrics(g["y"].to_numpy(), g["p_up"].to_numpy(), g["forward_return"].to_numpy(),
                           threshold=threshold, cost_bps=cost_bps)
        rows.append([*key, *(m[c] for c in METRIC_COLUMNS), int(g["fold"].nunique())])
    out = pd.DataFrame(rows, columns=columns)
    if not rows:
        out = out.astype({"trades": np.int64, "n": np.int64, "folds": np.int64})
    return out
