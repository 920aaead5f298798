"""Trading policies applied to out-of-sample P(up): the threshold rule and forced daily entry.

Forced daily entry (seed 002, "QFC System v3.1"): the model often stays in cash for whole
days; the policy then takes its best guess of the day anyway. Whether those forced trades
earn their keep is measured, not assumed: :func:`forced_entry_report` compares them with the
natural ones and advises switching the policy off when the forced trades' mean return is
worse than the natural trades' by more than :data:`DISABLE_DELTA` (the seed's rule).

The policy is meant for intraday bars; on daily bars every day has one bar, so every bar
that misses the threshold is forced and the policy degenerates to "always long".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fleet.errors import ConfigError, DataError

__all__ = ["DISABLE_DELTA", "FORCED_COLUMNS", "apply_forced_daily_entry", "apply_policy", "forced_entry_report"]

# Seed 002: "Disable policy if return_delta < -0.005" (log-return units per trade).
DISABLE_DELTA = -0.005
FORCED_COLUMNS = ("asset", "days", "forced_days", "natural_trades", "forced_trades", "natural_mean_return",
                  "forced_mean_return", "natural_win_rate", "forced_win_rate", "delta", "advice")


def _check(predictions: pd.DataFrame, needed: tuple[str, ...]) -> None:
    if not isinstance(predictions, pd.DataFrame):
        raise DataError(f"predictions: expected a DataFrame, got {type(predictions).__name__}")
    missing = [c for c in needed if c not in predictions.columns]
    if missing:
        raise DataError(f"predictions: missing column(s) {', '.join(map(repr, missing))} "
                        f"(found: {', '.join(map(str, predictions.columns))})")


def apply_forced_daily_entry(predictions: pd.DataFrame, *, threshold: float) -> pd.DataFrame:
    """Signals with forced daily entry: at least one long per asset and UTC day.

    Rule, per asset and UTC calendar day (``timestamp.floor("D")`` in UTC): bars with
    ``p_up > threshold`` are natural signals; when a day has none, its bar with the highest p_up
    (the earliest one on ties) gets ``signal = 1`` and ``forced_entry = True``.

    Args:
        predictions: one row per (symbol, timestamp) with columns symbol, timestamp (tz-aware
            UTC), p_up in [0, 1]; other columns are kept.
        threshold: natural signal when ``p_up > threshold`` (strict).

    Returns:
        A copy with ``signal`` (int8 0/1, overwritten) and ``forced_entry`` (bool) columns, same
        row order and index.

    Raises:
        DataError: missing columns. ConfigError: threshold outside [0, 1].
    """
    _check(predictions, ("symbol", "timestamp", "p_up"))
    if not 0.0 <= float(threshold) <= 1.0:
        raise ConfigError(f"threshold={threshold}: expected a probability in [0, 1]")
    index = predictions.index
    out = predictions.reset_index(drop=True)  # unique row labels for idxmax
    natural = out["p_up"].to_numpy() > threshold
    day = pd.DatetimeIndex(out["timestamp"]).tz_convert("UTC").floor("D")
    keys = [out["symbol"].to_numpy(), day]
    has_natural = pd.Series(natural, index=out.index).groupby(keys).transform("any").to_numpy()
    forced = np.zeros(len(out), dtype=bool)
    if len(out) and not has_natural.all():
        quiet = out.loc[~has_natural]
        quiet_day = day[~has_natural]
        # idxmax gives the first row label of the maximum: the earliest bar in time order.
        ordered = quiet.assign(_day=quiet_day).sort_values("timestamp", kind="stable")
        best = ordered.groupby(["symbol", "_day"], sort=False)["p_up"].idxmax()
        forced = out.index.isin(best.to_numpy())
    out["signal"] = (natural | forced).astype(np.int8)
    out["forced_entry"] = forced
    out.index = index
    return out


def apply_policy(predictions: pd.DataFrame, *, threshold: float, forced_entry: bool) -> pd.DataFrame:
    """The configured policy: ``p_up > threshold``, plus forced daily entry when ``forced_entry``.

    Returns a copy with ``signal`` (int8) and ``forced_entry`` (bool, all False without the
    policy) columns; see :func:`apply_forced_daily_entry`.
    """
    if forced_entry:
        return apply_forced_daily_entry(predictions, threshold=threshold)
    _check(predictions, ("p_up",))
    out = predictions.copy()
    out["signal"] = (out["p_up"].to_numpy() > threshold).astype(np.int8)
    out["forced_entry"] = False
    return out


def forced_entry_report(predictions: pd.DataFrame) -> pd.DataFrame:
    """Natural vs forced trades per asset (seed 002's "performance comparison").

    Args:
        predictions: rows after :func:`apply_forced_daily_entry`: symbol, timestamp, signal,
            forced_entry, forward_return (log return over the label horizon).

    Returns:
        One row per asset (sorted) with columns :data:`FORCED_COLUMNS`: days (UTC days with
        predictions), forced_days (= forced_trades, one per quiet day), natural_trades,
        forced_trades, natural/forced_mean_return (mean gross forward log return per trade),
        natural/forced_win_rate (share of trades with forward return > 0), delta =
        forced_mean_return - natural_mean_return (NaN when either side has no trade), advice:
        ``"disable forced entry"`` when delta < :data:`DISABLE_DELTA` (-0.005), else ``""``.

    Raises:
        DataError: missing columns.
    """
    _check(predictions, ("symbol", "timestamp", "signal", "forced_entry", "forward_return"))
    rows = []
    for symbol, g in predictions.groupby("symbol", sort=True):
        forced = g["forced_entry"].to_numpy(dtype=bool)
        signal = g["signal"].to_numpy() == 1
        r = g["forward_return"].to_numpy(dtype=np.float64)
        nat, frc = r[signal & ~forced], r[forced]
        nan = float("nan")
        nat_mean = float(nat.mean()) if nat.size else nan
        frc_mean = float(frc.mean()) if frc.size else nan
        delta = frc_mean - nat_mean
        days = int(pd.DatetimeIndex(g["timestamp"]).tz_convert("UTC").floor("D").nunique())
        rows.append([symbol, days, int(frc.size), int(nat.size), int(frc.size), nat_mean, frc_mean,
                     float((nat > 0).mean()) if nat.size else nan, float((frc > 0).mean()) if frc.size else nan,
                     delta, "disable forced entry" if delta < DISABLE_DELTA else ""])
    return pd.DataFrame(rows, columns=list(FORCED_COLUMNS))
