"""Columns every expert receives besides the features, and the per-asset window store of the CNN experts.

Rows of a unit's design matrix ``X`` (n_rows, n_features + 2) carry two context columns:

* ``asset_id``  registry id of the row's asset (int);
* ``bar_time``  the row's bar timestamp as int64 nanoseconds since the epoch (UTC).

Tabular experts drop ``bar_time``; the convolutional experts use (asset_id, bar_time) to cut
each row's trailing window out of a :class:`WindowStore`.

Windows and look-ahead: the window of a row at time t holds that asset's last ``length`` bars
with time <= t among the bars the store knows — bars of the training period (past data) and
earlier rows of the same X — never a later bar. Bars the unit's dataset dropped (the purge /
embargo gap between training and test, warm-up rows) are simply absent, so a window may span
such a gap; at serving time the store holds the model's last training bars.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ASSET_ID = "asset_id"
BAR_TIME = "bar_time"
CONTEXT_COLUMNS = (ASSET_ID, BAR_TIME)


def feature_columns(X: pd.DataFrame, prefixes: tuple[str, ...] | None = None) -> list[str]:
    """Numeric feature columns of X (context columns removed), optionally only those with a prefix."""
    cols = [c for c in X.columns if c not in CONTEXT_COLUMNS]
    if prefixes is not None:
        cols = [c for c in cols if c.startswith(prefixes)]
    return cols


def require_context(X, who: str, columns=CONTEXT_COLUMNS) -> None:
    """Raise ValueError naming ``who`` unless X is a DataFrame holding ``columns``."""
    if not isinstance(X, pd.DataFrame) or any(c not in X.columns for c in columns):
        raise ValueError(f"{who} expects a DataFrame with columns {list(columns)}, got {type(X).__name__} with "
                         f"columns {list(getattr(X, 'columns', []))}")


class WindowStore:
    """Per-asset time-ordered feature arrays, from which trailing windows are cut.

    Args:
        features: names of the feature columns (channels), in order.
    """

    def __init__(self, features: list[str]):
        self.features = list(features)
        self.times: dict[int, np.ndarray] = {}
        self.values: dict[int, np.ndarray] = {}

    def add(self, X: pd.DataFrame) -> "WindowStore":
        """Merge X's rows (a later add wins on equal (asset, time)); returns self."""
        ids = X[ASSET_ID].to_numpy(dtype=np.int64)
        times = X[BAR_TIME].to_numpy(dtype=np.int64)
        vals = X[self.features].to_numpy(dtype=np.float32)
        for a in np.unique(ids):
            m = ids == a
            t, v = times[m], vals[m]
            if a in self.times:
                t = np.concatenate([self.times[a], t])
                v = np.concatenate([self.values[a], v])
            order = np.argsort(t, kind="stable")
            t, v = t[order], v[order]
            keep = np.ones(len(t), bool)
            keep[:-1] = t[1:] != t[:-1]  # keep the last (newest add) of duplicated times
            self.times[int(a)], self.values[int(a)] = t[keep], v[keep]
        return self

    def tail(self, length: int) -> "WindowStore":
        """A copy keeping each asset's last ``length`` bars (what a fitted model carries)."""
        out = WindowStore(self.features)
        for a in self.times:
            out.times[a], out.values[a] = self.times[a][-length:].copy(), self.values[a][-length:].copy()
        return out

    def windows(self, asset_ids: np.ndarray, times: np.ndarray, length: int) -> np.ndarray:
        """Trailing windows, shape (n_rows, n_channels, length), float32.

        Window of row i = the asset's last ``length`` bars with time <= times[i], oldest first;
        zero-padded on the left when fewer exist (standardised features: 0 is the mean).
        """
        n, c = len(asset_ids), len(self.features)
        out = np.zeros((n, c, length), dtype=np.float32)
        for a in np.unique(asset_ids):
            rows = np.flatnonzero(asset_ids == a)
            if int(a) not in self.times:
                continue
            t, v = self.times[int(a)], self.values[int(a)]
            end = np.searchsorted(t, times[rows], side="right")  # bars with time <= row time
            offsets = np.arange(-length, 0)
            idx = end[:, None] + offsets[None, :]  # (r, length)
            valid = idx >= 0
            gathered = v[np.clip(idx, 0, None)]  # (r, length, c)
            gathered[~valid] = 0.0
            out[rows] = np.transpose(gathered, (0, 2, 1))
        return out
