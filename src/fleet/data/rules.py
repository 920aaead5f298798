"""The loader's rules for one asset's rows: timestamp parsing and value validation.

Used by :func:`fleet.data.load.load_panel` and :func:`fleet.data.inspect.inspect_data`; every rule a
file can break is a :class:`~fleet.errors.DataError` naming the file, symbol, column and 0-based rows.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fleet.data.panel import CANONICAL_COLUMNS, PRICE_COLUMNS
from fleet.errors import DataError, FleetWarning, describe_rows

TIMESTAMP_HINT = "expected datetimes or ISO-8601 strings such as '2024-01-31T13:00:00Z'"
# A trailing UTC designator or offset marks an ISO-8601 string as tz-aware.
_TZ_SUFFIX = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
# Parquet/pandas default resolution; one unit for every asset keeps later joins simple.
TIME_UNIT = "us"


@dataclass
class _RawAsset:
    """One symbol's rows as read, before value validation."""

    symbol: str
    file: Path
    frame: pd.DataFrame  # canonical lower-case columns, RangeIndex
    timestamps: pd.DatetimeIndex  # parsed, UTC
    rows: np.ndarray  # 0-based data rows of the file (for messages)


def _parse_timestamps(column: pd.Series, file: Path) -> pd.DatetimeIndex:
    """Parse a timestamp column into a UTC DatetimeIndex (rules: :mod:`fleet.data.load`)."""
    dtype = column.dtype
    naive = 0
    if isinstance(dtype, pd.DatetimeTZDtype):
        parsed = pd.DatetimeIndex(column).tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(dtype):
        parsed = pd.DatetimeIndex(column)
        naive = len(parsed)
    elif pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        raise DataError(
            f"{file}: column 'timestamp' holds numbers (dtype {dtype}); {TIMESTAMP_HINT}"
            " (convert epoch numbers with pd.to_datetime(..., unit=...))"
        )
    else:
        try:
            parsed = pd.DatetimeIndex(pd.to_datetime(column, errors="coerce", format="ISO8601"))
        except (ValueError, TypeError):
            # Mixed offsets (or aware mixed with naive): pandas needs utc=True to combine them.
            parsed = pd.DatetimeIndex(
                pd.to_datetime(column, errors="coerce", format="ISO8601", utc=True)
            )
            text = column.astype(str).str.strip()
            naive = int((~text.str.contains(_TZ_SUFFIX) & column.notna()).sum())
        else:
            if parsed.tz is None:
                naive = int(column.notna().sum())
    bad = parsed.isna()
    if bad.any():
        rows = np.flatnonzero(bad)
        examples = ", ".join(repr(v) for v in column.iloc[rows[:3]].tolist())
        raise DataError(
            f"{file}: column 'timestamp' has {len(rows)} missing or unparseable values in "
            f"{describe_rows(rows)}, e.g. {examples}; {TIMESTAMP_HINT}"
        )
    if parsed.tz is None:
        parsed = parsed.tz_localize("UTC")
    else:
        parsed = parsed.tz_convert("UTC")
    if naive:
        warnings.warn(
            f"{file}: {naive} timestamp{'s have' if naive != 1 else ' has'} no time zone; "
            "read as UTC",
            FleetWarning,
            stacklevel=5,
        )
    return parsed.as_unit(TIME_UNIT).rename("timestamp")


def _as_float(column: pd.Series, where: str, name: str, rows: np.ndarray) -> np.ndarray:
    """The column as a float64 array; non-numeric text is an error, missing values become NaN."""
    if pd.api.types.is_bool_dtype(column.dtype):
        raise DataError(f"{where}: column {name!r} holds booleans; expected numbers")
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    numbers = pd.to_numeric(column, errors="coerce")
    non_numeric = (numbers.isna() & column.notna()).to_numpy()
    if non_numeric.any():
        positions = np.flatnonzero(non_numeric)
        examples = ", ".join(repr(v) for v in column.iloc[positions[:3]].tolist())
        raise DataError(
            f"{where}: column {name!r} has non-numeric values in {describe_rows(rows[positions])}, "
            f"e.g. {examples}; expected numbers"
        )
    return numbers.to_numpy(dtype="float64", na_value=np.nan)


def _fail_rows(where: str, rule: str, bad: np.ndarray, rows: np.ndarray, values=None) -> None:
    """Raise a DataError for the rows where ``bad`` is True, if any."""
    if not bad.any():
        return
    positions = np.flatnonzero(bad)
    example = ""
    if values is not None:
        example = ", e.g. " + ", ".join(repr(float(v)) for v in values[positions[:3]])
    raise DataError(f"{where}: {rule} in {describe_rows(rows[positions])}{example}")


def value_rules(values: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """The value rules of :func:`load_panel` and, for each, the rows that break it.

    Args:
        values: column name -> float64 array of shape (n_rows,) (NaN for missing values), for
            the OHLCV columns present.

    Returns:
        ``[(rule, bad)]`` in checking order: ``rule`` a sentence for messages, ``bad`` a bool
        array of shape (n_rows,). Used by the loader (first broken rule is an error) and by
        :func:`fleet.data.inspect.inspect_data` (bad rows are counted).
    """
    rules: list[tuple[str, np.ndarray]] = []
    with np.errstate(invalid="ignore"):
        for name in PRICE_COLUMNS:
            if name in values:
                v = values[name]
                rules.append((f"column {name!r} is missing, not finite or <= 0 (expected prices > 0)",
                              ~(np.isfinite(v) & (v > 0))))
        if "volume" in values:
            v = values["volume"]
            rules.append(("column 'volume' is missing, not finite or < 0 (expected volumes >= 0)",
                          ~(np.isfinite(v) & (v >= 0))))
        body = [values[c] for c in ("open", "close") if c in values]
        if "high" in values and "low" in values:
            rules.append(("column 'high' is below column 'low'", values["high"] < values["low"]))
        if "high" in values and body:
            top = np.maximum.reduce(body) if len(body) > 1 else body[0]
            names = "max(open, close)" if len(body) > 1 else ("open" if "open" in values else "close")
            rules.append((f"column 'high' is below {names}", values["high"] < top))
        if "low" in values and body:
            floor = np.minimum.reduce(body) if len(body) > 1 else body[0]
            names = "min(open, close)" if len(body) > 1 else ("open" if "open" in values else "close")
            rules.append((f"column 'low' is above {names}", values["low"] > floor))
    return rules


def _validated_frame(raw: _RawAsset) -> pd.DataFrame:
    """Check one symbol's values (rules: :mod:`fleet.data.load`) and build its float64 frame."""
    where = f"{raw.file} (symbol {raw.symbol})"
    rows = raw.rows
    values = {
        name: _as_float(raw.frame[name], where, name, rows)
        for name in CANONICAL_COLUMNS
        if name in raw.frame.columns
    }
    for rule, bad in value_rules(values):
        name = rule.split("'")[1]
        shown = values.get(name) if "missing" in rule else None
        _fail_rows(where, rule, bad, rows, shown)

    timestamps = raw.timestamps
    duplicated = timestamps.duplicated(keep=False)
    if duplicated.any():
        positions = np.flatnonzero(duplicated)
        shown = ", ".join(str(t) for t in timestamps[positions[:2]])
        raise DataError(
            f"{where}: duplicate timestamps in {describe_rows(rows[positions])} (e.g. {shown}); "
            "expected one bar per timestamp"
        )
    frame = pd.DataFrame(values, index=timestamps)
    if not timestamps.is_monotonic_increasing:
        frame = frame.iloc[np.argsort(timestamps.asi8, kind="stable")]
    return frame
