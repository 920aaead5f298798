"""Purged walk-forward cross-validation over timestamps.

López de Prado, *Advances in Financial Machine Learning* (2018), ch. 7 ("Cross-Validation in
Finance"): purging (sec. 7.4.1) drops training rows whose label window overlaps the test
period; the embargo (sec. 7.4.2) drops a further margin for serial correlation. The shape
follows skfolio's ``model_selection/_walk_forward.py`` (a scikit-learn ``BaseCrossValidator``
with purge / embargo sizes), but blocks are cut by *time*, not by row count, so irregular
spacing and multi-asset panels (repeated timestamps) split correctly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator

from fleet.errors import ConfigError, DataError

__all__ = ["Fold", "PurgedWalkForward"]


@dataclass(frozen=True)
class Fold:
    """Boundaries of one walk-forward fold (see ``PurgedWalkForward`` for the rules).

    Attributes:
        index: 0-based fold number.
        train_start: first timeline timestamp (inclusive); the window expands from it.
        train_end: exclusive: training rows have ``train_start <= ts < train_end``.
        test_start: inclusive start of the test block.
        test_end: exclusive end of the test block (for the last fold: ``t_last + bar``, so the
            block includes ``t_last``).
    """

    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp

    def to_dict(self) -> dict:
        """JSON-ready dict: ``{"index": int, "train_start": ISO-8601 str, ...}``."""
        return {
            "index": int(self.index),
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Fold":
        """Inverse of ``to_dict``. Raises DataError naming the missing / bad field."""
        try:
            return cls(index=int(d["index"]), **{k: pd.Timestamp(d[k]) for k in
                                                 ("train_start", "train_end", "test_start", "test_end")})
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"fold: malformed dict ({err!r}); expected the keys written by Fold.to_dict") from err


def _timestamps_of(X) -> pd.DatetimeIndex:
    """The row timestamps of X: a DatetimeIndex, or a frame / series with a DatetimeIndex, a
    "timestamp" index level, or a "timestamp" column."""
    if isinstance(X, pd.DatetimeIndex):
        ts = X
    elif isinstance(X, (pd.DataFrame, pd.Series)) and isinstance(X.index, pd.DatetimeIndex):
        ts = X.index
    elif isinstance(X, pd.DataFrame) and "timestamp" in X.columns:
        ts = X["timestamp"]
    elif isinstance(X, (pd.DataFrame, pd.Series)) and "timestamp" in (X.index.names or []):
        ts = X.index.get_level_values("timestamp")
    elif isinstance(X, (pd.Series, np.ndarray, list, tuple)):
        ts = X
    else:
        raise DataError(f"PurgedWalkForward: cannot find timestamps in {type(X).__name__}; expected a "
                        "DataFrame with a DatetimeIndex or a 'timestamp' column")
    return _as_datetime_index(ts)


def _as_datetime_index(timestamps) -> pd.DatetimeIndex:
    if not isinstance(timestamps, (pd.Series, pd.Index)):
        timestamps = pd.Series(list(timestamps) if not isinstance(timestamps, np.ndarray) else timestamps)
        if len(timestamps) and timestamps.dtype == object and all(isinstance(v, pd.Timestamp) for v in timestamps):
            timestamps = pd.Series(pd.DatetimeIndex(timestamps.tolist()))
    if len(timestamps) and not pd.api.types.is_datetime64_any_dtype(timestamps.dtype):
        raise DataError(f"PurgedWalkForward: 'timestamp' values must be datetimes, got dtype {timestamps.dtype}")
    idx = pd.DatetimeIndex(timestamps)
    if idx.hasnans:
        raise DataError(f"PurgedWalkForward: 'timestamp' holds {int(idx.isna().sum())} NaT values")
    return idx


def _int_param(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name}={value!r}: expected an integer >= {minimum}")
    return int(value)


class PurgedWalkForward(BaseCrossValidator):
    """Expanding-window walk-forward splits with purging and embargo, cut by time.

    Rules (h = ``horizon``, e = ``embargo_bars``, b = ``bar``; all boundaries are timestamps):

    * Timeline: ``t0 = min(ts)``, ``t_last = max(ts) - holdout``. Rows with ``ts > t_last`` are
      the hold-out: in no fold, neither train nor test.
    * The span ``[t0, t_last]`` is cut into ``n_folds + 1`` blocks of equal *duration* (not row
      count): edge_j = t0 + j * (t_last - t0) / (n_folds + 1), floored to a whole number of bars
      from t0 (so blocks are equal to within one bar and boundaries fall on bar times).
      Fold k (0-based) tests block k + 1: ``test_start = edge_{k+1}``, ``test_end = edge_{k+2}``
      (exclusive); the last fold's block also includes ``t_last`` (``test_end = t_last + b``).
    * Training window expands from t0: ``train_start = t0``.
    * Purge (AFML 7.4.1): a row at t has label window ``(t, t + h*b]``; a training row is kept only
      if ``t + h*b < test_start``. Embargo (AFML 7.4.2): a further e*b is dropped, so
      ``train_end = test_start - (h + e) * b`` and training rows are ``t0 <= t < train_end``.
      (A walk-forward fold has no training data after its test block, so the embargo sits
      before it, as skfolio's ``purged_size``: a margin for serial correlation beyond the label.)
    * Test rows: ``test_start <= t < test_end`` and ``t + h*b <= t_last``: a test label never
      reaches into the hold-out (nor past the data), so the row at ``t_last`` is never tested.

    Look-ahead warning: these positions only prevent leakage if *everything fitted* (scalers,
    fracdiff order, clusters, market factor, model) uses the training rows of the fold alone,
    and if the features at t use data up to t only. Labels must be the forward return over
    exactly h bars; a longer label needs a larger ``horizon``. Timestamps are compared as
    given: for irregular data the label window is measured in time (h * b), so a row whose h-th
    next bar lies further away than h * b should be dropped by the caller (label end < test_start).

    Args:
        n_folds: number of test blocks (>= 1).
        horizon: label horizon in bars (>= 1).
        embargo_bars: extra bars dropped before each test block (>= 0).
        bar: bar length (``Panel.bar``), > 0.
        holdout: final span kept out of every fold (>= 0).

    Raises (from ``folds`` / ``split``):
        ConfigError: a parameter out of range, naming it.
        DataError: no timestamps / NaT / non-datetime timestamps; holdout leaving no timeline;
            a fold with an empty training window or an empty test block ("data too short").
    """

    def __init__(self, n_folds: int = 5, *, horizon: int = 4, embargo_bars: int = 8,
                 bar: pd.Timedelta = pd.Timedelta(hours=1), holdout: pd.Timedelta = pd.Timedelta(0)):
        self.n_folds = n_folds
        self.horizon = horizon
        self.embargo_bars = embargo_bars
        self.bar = bar
        self.holdout = holdout

    def _params(self) -> tuple[int, int, int, pd.Timedelta, pd.Timedelta]:
        n = _int_param(self.n_folds, "n_folds", 1)
        h = _int_param(self.horizon, "horizon", 1)
        e = _int_param(self.embargo_bars, "embargo_bars", 0)
        try:
            bar, holdout = pd.Timedelta(self.bar), pd.Timedelta(self.holdout)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"bar={self.bar!r}, holdout={self.holdout!r}: expected time spans "
                              "(pd.Timedelta or e.g. '1h')") from err
        if not bar > pd.Timedelta(0):
            raise ConfigError(f"bar={bar}: expected a positive bar length")
        if holdout < pd.Timedelta(0):
            raise ConfigError(f"holdout={holdout}: expected a span >= 0")
        return n, h, e, bar, holdout

    def timeline(self, timestamps) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(t0, t_last)``: first timestamp and last timestamp before the hold-out.

        Test labels may not reach past ``t_last`` (pass it as the label limit when building
        test rows). Raises DataError if there are no timestamps or the hold-out leaves nothing.
        """
        *_, holdout = self._params()
        ts = _as_datetime_index(timestamps)
        if len(ts) == 0:
            raise DataError("PurgedWalkForward: no timestamps to split")
        t0, t_last = ts.min(), ts.max() - holdout
        if t_last <= t0:
            raise DataError(f"PurgedWalkForward: holdout={holdout} leaves no timeline before it "
                            f"(data spans {t0} .. {ts.max()}); use a smaller holdout or more data")
        return t0, t_last

    def _folds_and_masks(self, timestamps):
        n, h, e, bar, _ = self._params()
        ts = _as_datetime_index(timestamps)
        t0, t_last = self.timeline(ts)
        span_ns = (t_last - t0).value
        # Edges fall on whole bars from t0, so boundaries read as bar times (10:00, not 10:17:36).
        bar_ns = bar.value
        edges = [t0 + pd.Timedelta((span_ns * j // (n + 1)) // bar_ns * bar_ns, unit="ns") for j in range(n + 2)]
        label_ok = ts + h * bar <= t_last
        fix = ("the data is too short for the folds: use fewer n_folds, smaller horizon/embargo_bars, "
               "or more history")
        out = []
        for k in range(n):
            test_start = edges[k + 1]
            test_end = edges[k + 2] if k < n - 1 else t_last + bar
            train_end = test_start - (h + e) * bar
            fold = Fold(index=k, train_start=t0, train_end=train_end, test_start=test_start, test_end=test_end)
            train = np.asarray(ts < train_end)
            test = np.asarray((ts >= test_start) & (ts < test_end) & label_ok)
            if not train.any():
                raise DataError(f"PurgedWalkForward: fold {k} has no training rows (training window "
                                f"[{t0}, {train_end}) after purging {h} + embargo {e} bars before test_start "
                                f"{test_start}); {fix}")
            if not test.any():
                raise DataError(f"PurgedWalkForward: fold {k} has an empty test block [{test_start}, {test_end}) "
                                f"(after dropping rows whose {h}-bar label reaches past {t_last}); {fix}")
            out.append((fold, train, test))
        return out

    def folds(self, timestamps) -> list[Fold]:
        """The folds for these timestamps (any order, repeats allowed).

        Args:
            timestamps: DatetimeIndex / Series / array of datetimes, shape (n_rows,).

        Returns:
            list of ``n_folds`` Fold, in time order.
        """
        return [fold for fold, _, _ in self._folds_and_masks(timestamps)]

    def split(self, X, y=None, groups=None):
        """Yield ``(train_positions, test_positions)`` per fold.

        Args:
            X: DataFrame (or Series) with a DatetimeIndex, a "timestamp" index level or a
                "timestamp" column; shape (n_rows, ...). Rows need not be sorted and may repeat
                timestamps (multi-asset panels): every row of a timestamp goes the same way.
            y, groups: ignored (scikit-learn API).

        Yields:
            two int64 ndarrays of row positions into X (ascending), for fold 0, 1, ...
        """
        ts = _timestamps_of(X)
        for _, train, test in self._folds_and_masks(ts):
            yield np.flatnonzero(train).astype(np.int64), np.flatnonzero(test).astype(np.int64)

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of folds (``n_folds``); X, y, groups are ignored."""
        return self._params()[0]
