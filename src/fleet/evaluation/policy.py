"""Trading policies applied to out-of-sample P(up): the threshold rule and forced daily entry.

Forced daily entry: the model often stays in cash for whole
days; the policy then trades anyway, once a day. Whether those forced trades earn their keep
is measured, not assumed: :func:`forced_entry_report` compares them with the natural ones and
advises switching the policy off when the forced trades' mean return is worse than the
natural trades' by more than :data:`DISABLE_DELTA` (the seed's rule) *and* that difference is
significant: Welch's t of the difference beyond :data:`ADVICE_T` in absolute value. A few dozen
trades per asset leave a difference of 0.005 well inside its noise.

The rule is causal: it decides at a fixed cut-off bar of the UTC day (default: the day's last
bar), from the bars up to and including it. An earlier version looked at the whole day (did
any bar pass the threshold? which bar had the highest p_up?); both answers need the day's later
bars, which overlap the forced trade's own label window, and on a pure random walk with a
mean-reverting p_up that rule's forced trades earned t = 10.6 (tests/test_policy.py).

The policy is meant for intraday bars; on daily bars every day has one bar, so every bar
that misses the threshold is forced and the policy degenerates to "always long".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fleet.errors import ConfigError, DataError
from fleet.evaluation.metric_registry import FORCED_LAYOUT

__all__ = ["ADVICE_T", "DISABLE_DELTA", "FORCED_COLUMNS", "apply_forced_daily_entry", "apply_policy",
           "forced_entry_report"]

# Seed 002: "Disable policy if return_delta < -0.005" (log-return units per trade).
DISABLE_DELTA = -0.005
#: Advice only when Welch's t of the delta exceeds this in absolute value.
ADVICE_T = 2.0
#: Columns of :func:`forced_entry_report`: symbol, the metric registry's forced-entry figures, advice.
FORCED_COLUMNS = ("symbol", *FORCED_LAYOUT, "advice")


def _check(predictions: pd.DataFrame, needed: tuple[str, ...]) -> None:
    if not isinstance(predictions, pd.DataFrame):
        raise DataError(f"predictions: expected a DataFrame, got {type(predictions).__name__}")
    missing = [c for c in needed if c not in predictions.columns]
    if missing:
        raise DataError(f"predictions: missing column(s) {', '.join(map(repr, missing))} "
                        f"(found: {', '.join(map(str, predictions.columns))})")


def _cutoff_offset(cutoff, bar, timestamps: pd.DatetimeIndex) -> pd.Timedelta:
    """The cut-off as an offset from UTC midnight: ``cutoff`` ("HH:MM" or a Timedelta), else the
    day's last bar slot, 1 day - bar (``bar`` given, else the smallest spacing of the timestamps)."""
    if cutoff is not None:
        try:
            off = pd.Timedelta(f"{cutoff}:00") if isinstance(cutoff, str) and cutoff.count(":") == 1 \
                else pd.Timedelta(cutoff)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"forced_entry_cutoff={cutoff!r}: expected a UTC time of day HH:MM") from err
        if not pd.Timedelta(0) <= off < pd.Timedelta(days=1):
            raise ConfigError(f"forced_entry_cutoff={cutoff!r}: expected a UTC time of day in 00:00 .. 23:59")
        return off
    if bar is None:
        steps = np.diff(np.unique(timestamps.as_unit("ns").asi8))
        bar = pd.Timedelta(int(steps.min()), unit="ns") if steps.size else pd.Timedelta(days=1)
    bar = pd.Timedelta(bar)
    if bar >= pd.Timedelta(days=1):
        return pd.Timedelta(0)
    return pd.Timedelta(days=1) - bar


def apply_forced_daily_entry(predictions: pd.DataFrame, *, threshold: float, cutoff=None,
                             bar: pd.Timedelta | None = None) -> pd.DataFrame:
    """Signals with forced daily entry, decided causally at a cut-off bar.

    Rule, per asset and UTC calendar day (``timestamp.floor("D")`` in UTC): bars with
    ``p_up > threshold`` are natural signals (at any time of the day). The cut-off bar is the
    bar at ``day + cutoff``. If no natural signal has fired on that day at or before the cut-off
    bar, the cut-off bar itself gets ``signal = 1`` and ``forced_entry = True``. The decision
    uses only bars up to the cut-off (its own p_up included), so it can be taken in real time.
    A day without a bar at the cut-off time (a data gap, or a day cut by the start or end of
    the test span) gets no forced trade: the rule never trades an earlier or later bar instead.

    Args:
        predictions: one row per (symbol, timestamp) with columns symbol, timestamp (tz-aware
            UTC), p_up in [0, 1]; other columns are kept.
        threshold: natural signal when ``p_up > threshold`` (strict).
        cutoff: UTC time of day of the cut-off bar, "HH:MM" (or a Timedelta after midnight);
            None: the day's last bar slot, ``1 day - bar`` (23:00 for hourly bars, 00:00, the only
            bar, for daily bars).
        bar: bar length; None: the smallest spacing of the timestamps (only used without ``cutoff``).

    Returns:
        A copy with ``signal`` (int8 0/1, overwritten) and ``forced_entry`` (bool) columns, same
        row order and index.

    Raises:
        DataError: missing columns. ConfigError: threshold outside [0, 1]; a cut-off that is not a
        time of day.
    """
    _check(predictions, ("symbol", "timestamp", "p_up"))
    if not 0.0 <= float(threshold) <= 1.0:
        raise ConfigError(f"threshold={threshold}: expected a probability in [0, 1]")
    ts = pd.DatetimeIndex(predictions["timestamp"]).tz_convert("UTC")
    offset = _cutoff_offset(cutoff, bar, ts)
    natural = predictions["p_up"].to_numpy() > threshold
    day = ts.floor("D")
    at_or_before = np.asarray(ts - day <= offset)
    is_cutoff = np.asarray(ts - day == offset)
    keys = [predictions["symbol"].to_numpy(), day]
    fired = pd.Series(natural & at_or_before).groupby(keys).transform("any").to_numpy()
    forced = is_cutoff & ~fired
    out = predictions.copy()
    out["signal"] = (natural | forced).astype(np.int8)
    out["forced_entry"] = forced
    return out


def apply_policy(predictions: pd.DataFrame, *, threshold: float, forced_entry: bool, cutoff=None,
                 bar: pd.Timedelta | None = None) -> pd.DataFrame:
    """The configured policy: ``p_up > threshold``, plus forced daily entry when ``forced_entry``.

    Returns a copy with ``signal`` (int8) and ``forced_entry`` (bool, all False without the
    policy) columns; see :func:`apply_forced_daily_entry` (``cutoff``, ``bar``).
    """
    if forced_entry:
        return apply_forced_daily_entry(predictions, threshold=threshold, cutoff=cutoff, bar=bar)
    _check(predictions, ("p_up",))
    out = predictions.copy()
    out["signal"] = (out["p_up"].to_numpy() > threshold).astype(np.int8)
    out["forced_entry"] = False
    return out


def _welch_t(a: np.ndarray, b: np.ndarray) -> float:
    """Welch's t of mean(a) - mean(b) (scipy); NaN with fewer than two values on a side or no spread at all."""
    from scipy import stats

    if a.size < 2 or b.size < 2 or (a.std() == 0 and b.std() == 0):
        return float("nan")
    return float(stats.ttest_ind(a, b, equal_var=False).statistic)


def forced_entry_report(predictions: pd.DataFrame) -> pd.DataFrame:
    """Natural vs forced trades per asset (the natural-versus-forced performance comparison).

    Args:
        predictions: rows after :func:`apply_forced_daily_entry`: symbol, timestamp, signal,
            forced_entry, forward_return (log return over the label horizon).

    Returns:
        One row per asset (sorted) with columns :data:`FORCED_COLUMNS`: days (UTC days with
        predictions), forced_days (= forced_trades, at most one per day), natural_trades,
        forced_trades, natural/forced_mean_return (mean gross forward log return per trade),
        natural/forced_win_rate (share of trades with forward return > 0), delta =
        forced_mean_return - natural_mean_return (NaN when either side has no trade), delta_t: Welch's t of
        that difference (``scipy.stats.ttest_ind(forced, natural, equal_var=False)``; Welch 1947; NaN with
        fewer than two trades on a side or no spread), advice: ``"disable forced entry"`` when delta <
        :data:`DISABLE_DELTA` and ``|delta_t| >`` :data:`ADVICE_T`, else ``""`` (no advice: the difference is
        not told apart from noise, or not large enough).

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
        delta_t = _welch_t(frc, nat)
        advise = delta < DISABLE_DELTA and abs(delta_t) > ADVICE_T  # NaN compares False: no advice
        days = int(pd.DatetimeIndex(g["timestamp"]).tz_convert("UTC").floor("D").nunique())
        rows.append([symbol, days, int(frc.size), int(nat.size), int(frc.size), nat_mean, frc_mean,
                     float((nat > 0).mean()) if nat.size else nan, float((frc > 0).mean()) if frc.size else nan,
                     delta, delta_t, "disable forced entry" if advise else ""])
    return pd.DataFrame(rows, columns=list(FORCED_COLUMNS))
