"""Per-row bar facts of prediction rows (the 1-bar forward return and the bar number), shared by the unit,
its policy fit and the hold-out."""

from __future__ import annotations

import numpy as np
import pandas as pd


def bar_columns(rows: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    """The 1-bar forward log return and the bar number of prediction rows, from the asset's bars.

    Args:
        rows: (n, ...) with ``timestamp`` and ``symbol``; every timestamp is a bar of its asset that
            has a next bar (true of test rows: their h-bar label needs h next bars).
        frames: symbol -> bars (UTC index, ``close``).

    Returns:
        ``(return_1, bar_number)``, each shape (n,): ``log(close[next bar] / close[bar])`` (float64,
        the return over the bar after the row's timestamp: what the position held over that bar
        earns) and the position of the row's bar in the asset's bars (int64; consecutive rows of an
        asset with consecutive bar numbers are consecutive bars, whatever the clock says).
    """
    r1 = np.full(len(rows), np.nan)
    pos = np.full(len(rows), -1, dtype=np.int64)
    symbols = rows["symbol"].to_numpy()
    times = pd.DatetimeIndex(rows["timestamp"])
    for symbol in pd.unique(symbols):
        mask = symbols == symbol
        frame = frames[symbol]
        i = frame.index.get_indexer(times[mask])
        log_close = np.log(frame["close"].to_numpy(dtype=np.float64))
        nxt = np.minimum(i + 1, len(log_close) - 1)
        r = log_close[nxt] - log_close[i]
        r[(i < 0) | (i + 1 >= len(log_close))] = np.nan
        r1[mask], pos[mask] = r, i
    return r1, pos
