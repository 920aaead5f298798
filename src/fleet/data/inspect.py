"""``fleet data inspect``: what a data directory holds, per symbol, before training on it.

Reads files the way :func:`fleet.data.load.load_panel` does (same layouts, column matching,
timestamp parsing) and applies the loader's value rules (:func:`fleet.data.load.value_rules`),
but counts the rows that break them instead of stopping at the first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fleet.data.load import CANONICAL_COLUMNS, SUPPORTED_SUFFIXES, _read_assets, value_rules
from fleet.data.panel import infer_bar
from fleet.errors import DataError

__all__ = ["INSPECT_COLUMNS", "inspect_data"]

INSPECT_COLUMNS = ("symbol", "file", "first", "last", "bars", "coverage", "gaps", "longest_gap", "bad_rows",
                   "problem")


def _files(path: Path) -> list[Path]:
    if not path.exists():
        raise DataError(f"{path}: not found; expected a data directory or file")
    if path.is_file():
        return [path]
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES)
    if not files:
        raise DataError(f"{path}: directory holds no *.parquet, *.pq or *.csv file")
    return files


def _valid_timestamps(raw) -> tuple[pd.DatetimeIndex, int, str]:
    """One symbol's rows as read (a ``_RawAsset``) -> (the sorted timestamps of the rows that break no
    loader rule, the number of rows that break one, the rules broken with their row counts, "; "-joined)."""
    values = {c: pd.to_numeric(raw.frame[c], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
              for c in CANONICAL_COLUMNS if c in raw.frame.columns}
    bad = np.zeros(len(raw.frame), dtype=bool)
    problems = []
    for rule, broken in value_rules(values):
        if broken.any():
            problems.append(f"{rule} ({int(broken.sum())} rows)")
        bad |= broken
    duplicated = raw.timestamps.duplicated(keep=False)
    if duplicated.any():
        problems.append(f"duplicate timestamps ({int(duplicated.sum())} rows)")
    bad |= duplicated
    return raw.timestamps[~bad].sort_values(), int(bad.sum()), "; ".join(problems)


def _coverage(ts: pd.DatetimeIndex, bar: pd.Timedelta | None) -> dict:
    """``coverage``, ``gaps`` and ``longest_gap`` (in bars) of the sorted non-empty timestamps ``ts`` at one
    bar per ``bar`` (see :func:`inspect_data`); full coverage and no gap when ``bar`` is None or one bar."""
    if bar is None or len(ts) < 2:
        return dict(coverage=1.0, gaps=0, longest_gap=0)
    steps = np.diff(ts.as_unit("ns").asi8) / pd.Timedelta(bar).value  # in bars
    holes = steps[steps > 1.0 + 1e-9]
    expected = (ts[-1] - ts[0]) / bar + 1
    return dict(coverage=len(ts) / expected, gaps=int(holes.size),
                longest_gap=int(round(holes.max() - 1)) if holes.size else 0)


def inspect_data(path, bar: pd.Timedelta | None = None) -> pd.DataFrame:
    """Per-symbol coverage, first/last timestamp, bars, gaps and bad rows of a data directory.

    Args:
        path: a directory of per-symbol files or one file (layouts of ``load_panel``).
        bar: the expected bar length; default: inferred over all symbols (``infer_bar``).

    Returns:
        One row per symbol (and one per unreadable file), sorted by symbol, columns
        :data:`INSPECT_COLUMNS`:
        * first, last: first and last valid timestamp (UTC); bars: rows with a valid timestamp
          and no broken value rule;
        * coverage: bars / bars expected between first and last at one per ``bar`` (1.0 = no
          hole; weekday markets show their weekends as holes);
        * gaps: number of holes (consecutive bars more than one ``bar`` apart); longest_gap: the
          missing bars in the longest hole;
        * bad_rows: rows breaking a loader rule (a value rule, or a duplicated timestamp);
        * problem: the first rule broken, or why the file cannot be read ("" when clean).

    Raises:
        DataError: the path does not exist or holds no data file.
    """
    path = Path(path)
    rows: list[dict] = []
    frames: dict[str, pd.DatetimeIndex] = {}
    for file in _files(path):
        try:
            assets = _read_assets(file)
        except DataError as err:
            rows.append({"symbol": "", "file": file.name, "bad_rows": np.nan, "problem": str(err)})
            continue
        for symbol, raw in sorted(assets.items()):
            ts, bad_rows, problems = _valid_timestamps(raw)
            frames[symbol] = ts
            rows.append({"symbol": symbol, "file": file.name, "bars": len(ts), "bad_rows": bad_rows,
                         "problem": problems})
    usable = {s: pd.DataFrame(index=ts) for s, ts in frames.items() if len(ts) > 1}
    if bar is None and usable:
        bar = infer_bar(usable)
    for row in rows:
        ts = frames.get(row["symbol"]) if row["symbol"] else None
        if ts is None or not len(ts):
            continue
        row["first"], row["last"] = ts[0], ts[-1]
        row.update(_coverage(ts, bar))
    out = pd.DataFrame(rows, columns=list(INSPECT_COLUMNS))
    out = out.astype({"gaps": "Int64", "longest_gap": "Int64", "bars": "Int64", "bad_rows": "Int64"})
    return out.sort_values(["symbol", "file"], kind="stable").reset_index(drop=True)
