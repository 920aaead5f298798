"""Read bar files into a validated :class:`~fleet.data.panel.Panel`.

Two layouts are accepted: a directory with one file per symbol, or one long-format file
with a ``symbol`` column. Every rule a file can break is reported as a
:class:`~fleet.errors.DataError` naming the file, the symbol, the column and the offending
0-based data rows, so the user can fix the file without reading this code.

Timestamps: tz-aware datetimes are converted to UTC; naive datetimes and ISO-8601
strings without an offset are read as UTC with a :class:`FleetWarning` naming the file;
strings are parsed strictly as ISO-8601 (``pd.to_datetime(format="ISO8601")``), because
guessing formats such as ``01/02/2024`` silently swaps days and months.

Validation, per symbol (row numbers in messages are 0-based data rows of the file):
  * the file has at least one data row;
  * no missing or unparseable timestamp, no numeric timestamps (epoch numbers have no
    unit we could trust), no duplicate timestamp;
  * prices (open/high/low/close, those present) numeric, finite and > 0;
    volume numeric, finite and >= 0;
  * high >= low, high >= max(open, close) and low <= min(open, close) (with whichever
    of open/close are present).
Unsorted rows are sorted by time (order is not a value change); nothing else is altered,
nothing is written anywhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fleet.data.panel import CANONICAL_COLUMNS, Panel, _as_symbol_list, infer_bar
from fleet.data.rules import value_rules  # noqa: F401 (value_rules: API)
from fleet.data.rules import _parse_timestamps, _RawAsset, _validated_frame
from fleet.data.uri import RemotePath, as_path
from fleet.errors import ConfigError, DataError, FleetWarning, UnknownSymbolError, describe_rows

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv",)
SUPPORTED_SUFFIXES = PARQUET_SUFFIXES + CSV_SUFFIXES
REQUIRED_COLUMNS = ("timestamp", "close")
KNOWN_COLUMNS = ("timestamp", "symbol") + CANONICAL_COLUMNS

LAYOUT_HINT = (
    "expected a directory holding one file per symbol (*.parquet, *.pq, *.csv) "
    "or one long-format parquet/CSV file with a 'symbol' column"
)
def load_panel(path, *, symbols=None, days=None, min_bars: int = 0) -> Panel:
    """Load and validate bar files (or a long DataFrame) into a :class:`Panel`.

    Layouts:
      * a pandas DataFrame in long format: columns ``timestamp``, ``symbol``, ``close`` and
        optionally ``open``, ``high``, ``low``, ``volume`` (``timestamp`` / ``symbol`` may also be
        index levels, e.g. a Qlib-style (datetime, instrument) MultiIndex named timestamp/symbol);
        it is validated by the same rules as a long-format file and named ``<DataFrame>`` in
        messages;
      * a directory: every ``*.parquet``, ``*.pq`` and ``*.csv`` file in it (not recursive;
        other files and hidden files are ignored) holds one symbol. The symbol is the single
        value of the file's ``symbol`` column if it has one, else the file stem upper-cased
        (``btcusdt.csv`` -> ``BTCUSDT``);
      * one file: with a ``symbol`` column it is long format (one row per symbol and bar,
        split by symbol); without one it holds one symbol named after its stem.

    Columns are matched case-insensitively and ignoring surrounding spaces. Required:
    ``timestamp``, ``close``; optional: ``open``, ``high``, ``low``, ``volume``; others are
    ignored. Optional columns present in some files but not all are left out of the panel
    (``Panel.dropped_columns``, with a :class:`FleetWarning`) so every asset shares one schema.

    Timestamps are read and every symbol's rows validated by the rules in this module's docstring
    (unsorted rows are sorted by time; nothing else is altered, nothing is written anywhere). Values
    are validated only for the symbols kept by ``symbols``; the layout and required columns of every
    file are always checked.

    Args:
        path: directory or file (str or Path).
        symbols: keep only these symbols (a list, or one name as a str); None keeps all.
        days: keep the last ``days`` calendar days of each asset (:meth:`Panel.last_days`).
        min_bars: after ``days``, every asset must have at least this many bars.

    Returns:
        A Panel: float64 frames indexed by UTC timestamps (microsecond unit), columns in
        OHLCV order, ``sources`` = the file of each symbol, ``bar`` inferred by
        :func:`fleet.data.panel.infer_bar`.

    Raises:
        DataError: path not found, empty directory, unsupported extension, unreadable file,
            missing required column, a rule above broken, two files giving the same symbol,
            every kept asset having a single bar (no bar length can be inferred), or an
            asset with fewer than ``min_bars`` bars.
        UnknownSymbolError: a requested symbol is not in the data (lists the available ones).
        ConfigError: ``min_bars`` < 0, ``days`` <= 0 or ``symbols`` empty.
    """
    wanted = _check_load_args(symbols, min_bars)
    if isinstance(path, pd.DataFrame):
        assets = _frame_assets(path)
        path = Path(FRAME_NAME)
    else:
        path = as_path(path)
        assets = _read_assets(path)
    if wanted is not None:
        assets = _keep_symbols(assets, wanted, path)
    panel = _validated_panel(assets, path)
    if days is not None:
        panel = panel.last_days(days)
    _check_min_bars(panel, min_bars, days)
    return panel


def _validated_panel(assets: dict[str, _RawAsset], path: Path) -> Panel:
    """The Panel of ``assets`` (symbol -> rows as read) after value validation: the optional columns
    that not every asset has are dropped (with a FleetWarning), the bar length inferred.
    DataError for a broken rule or when no bar length can be inferred."""
    frames = {symbol: _validated_frame(raw) for symbol, raw in sorted(assets.items())}
    columns, dropped = _common_columns(frames, path)
    frames = {s: f[list(columns)] if tuple(f.columns) != columns else f for s, f in frames.items()}
    return Panel(
        frames=frames,
        sources={s: str(raw.file) for s, raw in assets.items()},
        columns=columns,
        dropped_columns=dropped,
        bar=infer_bar(frames),
    )


def _check_load_args(symbols, min_bars) -> list[str] | None:
    """The requested symbols (None: all); ConfigError for a bad ``min_bars`` or an empty symbol list."""
    if isinstance(min_bars, bool) or not isinstance(min_bars, (int, np.integer)) or min_bars < 0:
        raise ConfigError(f"min_bars={min_bars!r} must be an integer >= 0")
    wanted = None if symbols is None else _as_symbol_list(symbols)
    if wanted is not None and not wanted:
        raise ConfigError("symbols is empty; pass None to load every symbol or name at least one")
    return wanted


def _keep_symbols(assets: dict[str, _RawAsset], wanted: list[str], path: Path) -> dict[str, _RawAsset]:
    """``assets`` restricted to ``wanted`` (sorted); UnknownSymbolError listing the available ones."""
    unknown = [s for s in wanted if s not in assets]
    if unknown:
        raise UnknownSymbolError(
            f"{path}: unknown symbol(s) {', '.join(map(repr, unknown))}; "
            f"available: {', '.join(sorted(assets))}"
        )
    return {s: assets[s] for s in sorted(wanted)}


#: How an in-memory DataFrame is named in messages and in ``Panel.sources``.
FRAME_NAME = "<DataFrame>"


def _frame_assets(frame: pd.DataFrame) -> dict[str, _RawAsset]:
    """Split a long DataFrame into its symbols, with the column rules of a long-format file."""
    label = Path(FRAME_NAME)
    index_names = [n for n in frame.index.names if n is not None and _key(n) in ("timestamp", "symbol")]
    if index_names:
        frame = frame.reset_index(level=index_names)
    names = [str(c) for c in frame.columns]
    mapping = _match_columns(names, label)
    if "symbol" not in mapping:
        raise DataError(f"{FRAME_NAME}: missing column 'symbol' (found: {', '.join(names)}); expected a long "
                        "DataFrame with one row per symbol and bar: timestamp, symbol, open, high, low, close, "
                        "volume (open/high/low/volume optional)")
    table = frame[list(mapping.values())].reset_index(drop=True)
    table.columns = [_key(c) for c in table.columns]
    return _split_long(label, table)


def _read_assets(path: Path) -> dict[str, _RawAsset]:
    """Resolve the layout and read every file: symbol -> raw rows (values not yet checked)."""
    return {raw.symbol: raw for raw in iter_assets(path)}


def iter_assets(path) -> Iterator[_RawAsset]:
    """Each symbol's raw rows (values not yet checked), in the order :func:`load_panel` reads them.

    A directory is read one file at a time, so a caller that writes and drops each asset
    (:func:`fleet.data.stage.stage_bars`) never holds the whole fleet; a long-format file is read
    once and split (its row numbers in messages are the file's). ``path`` is a :class:`~pathlib.Path`
    or a :class:`~fleet.data.uri.RemotePath`.

    Raises:
        DataError: as :func:`load_panel` for the layout, the files and their required columns, and
            two files giving the same symbol (raised when the second is read).
    """
    if not _exists(path):
        raise DataError(f"{path}: not found; {LAYOUT_HINT}")
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES
        )
        if not files:
            raise DataError(f"{path}: directory holds no *.parquet, *.pq or *.csv file; {LAYOUT_HINT}")
        seen: dict[str, object] = {}
        for file in files:
            raw = _read_single_symbol(file)
            if raw.symbol in seen:
                raise DataError(
                    f"{file}: symbol {raw.symbol!r} is also given by {seen[raw.symbol]}; "
                    "expected one file per symbol"
                )
            seen[raw.symbol] = file
            yield raw
        return
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; {LAYOUT_HINT}")
    frame, names = _read_table(path)
    if "symbol" not in frame.columns:
        yield _read_single_symbol(path, (frame, names))
        return
    assets = _split_long(path, frame)
    del frame  # the split copies are all that is left; each is dropped once the caller is done with it
    while assets:
        yield assets.pop(next(iter(assets)))


def _exists(path) -> bool:
    """``path.exists()``; for an object store, an unreachable endpoint or refused credentials is a DataError."""
    if not isinstance(path, RemotePath):
        return path.exists()
    try:
        return path.exists()
    except OSError as err:
        raise DataError(f"{path}: cannot reach the object store ({' '.join(str(err).split())}); check the endpoint "
                        "(?endpoint_override=HOST:PORT&scheme=http, or AWS_ENDPOINT_URL) and the credentials "
                        "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)") from None


def _read_table(file: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read the known columns of one file, renamed to lower case.

    Returns the frame and the file's original column names (for messages).
    """
    suffix = file.suffix.lower()
    source = file.open() if isinstance(file, RemotePath) else _LocalFile(file)
    try:
        with source as fh:
            if suffix in PARQUET_SUFFIXES:
                names = [str(n) for n in pq.read_schema(fh).names]
                mapping = _match_columns(names, file)
                # Reading only the needed columns keeps wide files fast; ignore_metadata keeps a
                # stored pandas index as a plain column instead of silently becoming the index.
                table = pq.read_table(fh, columns=list(mapping.values()))
                frame = table.to_pandas(ignore_metadata=True)
            else:
                names = [str(n) for n in pd.read_csv(fh, nrows=0).columns]
                mapping = _match_columns(names, file)
                dtype = {mapping["symbol"]: str} if "symbol" in mapping else None
                frame = pd.read_csv(_rewound(fh), usecols=list(mapping.values()), dtype=dtype)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{file}: the file is empty (no header, no rows); {LAYOUT_HINT}") from exc
    except (OSError, ValueError, pa.ArrowException) as exc:
        kind = "parquet" if suffix in PARQUET_SUFFIXES else "CSV"
        raise DataError(f"{file}: cannot be read as {kind}: {exc}") from exc
    frame.columns = [_key(c) for c in frame.columns]
    return frame, names


class _LocalFile:
    """A local file as the readers take it: the path itself (no stream is opened)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        return None


def _rewound(fh):
    """``fh`` again from its start: a local path as it is, an open remote file seeked back to byte 0."""
    if not isinstance(fh, Path):
        fh.seek(0)
    return fh


def _key(name) -> str:
    return str(name).strip().lower()


def _match_columns(names: list[str], file: Path) -> dict[str, str]:
    """Map canonical column name -> the file's own spelling; check the required ones."""
    mapping: dict[str, str] = {}
    for name in names:
        key = _key(name)
        if key in KNOWN_COLUMNS:
            if key in mapping:
                raise DataError(
                    f"{file}: columns {mapping[key]!r} and {name!r} both match {key!r} "
                    "(names are case-insensitive); keep only one"
                )
            mapping[key] = name
    missing = [c for c in REQUIRED_COLUMNS if c not in mapping]
    if missing:
        what = " and ".join(repr(c) for c in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise DataError(
            f"{file}: missing required {noun} {what} (found: {', '.join(names) or 'no columns'}); "
            "expected timestamp and close, optionally open, high, low, volume, symbol "
            "(case-insensitive)"
        )
    return mapping


def _read_single_symbol(file: Path, table=None) -> _RawAsset:
    """Read a one-symbol file: the symbol comes from its 'symbol' column or its stem."""
    frame, _ = table if table is not None else _read_table(file)
    if len(frame) == 0:
        raise DataError(f"{file}: no data rows; expected at least one bar")
    rows = np.arange(len(frame))
    if "symbol" in frame.columns:
        symbols = _clean_symbols(frame["symbol"], file)
        distinct = pd.unique(symbols)
        if len(distinct) != 1:
            shown = ", ".join(map(str, distinct[:5])) + (", ..." if len(distinct) > 5 else "")
            raise DataError(
                f"{file}: column 'symbol' holds {len(distinct)} different values ({shown}); "
                "a file in a directory must hold exactly one symbol (pass a long-format file "
                "itself, not its directory, to load several symbols from one file)"
            )
        symbol = str(distinct[0])
        frame = frame.drop(columns="symbol")
    else:
        symbol = file.stem.strip().upper()
    return _RawAsset(symbol, file, frame, _parse_timestamps(frame["timestamp"], file), rows)


def _split_long(file: Path, frame: pd.DataFrame) -> dict[str, _RawAsset]:
    """Split a long-format file (one row per symbol and bar) into its symbols."""
    if len(frame) == 0:
        raise DataError(f"{file}: no data rows; expected at least one bar")
    symbols = _clean_symbols(frame["symbol"], file)
    # Parse once for the whole file: per-symbol parsing would multiply the cost.
    timestamps = _parse_timestamps(frame["timestamp"], file)
    values = frame.drop(columns="symbol")
    assets = {}
    for symbol, rows in sorted(pd.Series(symbols).groupby(symbols, sort=True).indices.items()):
        assets[str(symbol)] = _RawAsset(
            str(symbol), file, values.iloc[rows].reset_index(drop=True), timestamps[rows], rows
        )
    return assets


def _clean_symbols(column: pd.Series, file: Path) -> np.ndarray:
    """The 'symbol' column as stripped str values; missing or blank names are errors."""
    missing = column.isna().to_numpy()
    text = column.astype(str).str.strip().to_numpy(dtype=object)
    blank = missing | (text == "")
    if blank.any():
        raise DataError(
            f"{file}: column 'symbol' is missing or blank in {describe_rows(np.flatnonzero(blank))}; "
            "expected a symbol name on every row"
        )
    return text


def _common_columns(frames: dict[str, pd.DataFrame], path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Columns all frames share (OHLCV order) and optional ones only some frames have."""
    present = [set(f.columns) for f in frames.values()]
    shared = set.intersection(*present) if present else {"close"}
    anywhere = set.union(*present) if present else {"close"}
    columns = tuple(c for c in CANONICAL_COLUMNS if c in shared)
    dropped = tuple(c for c in CANONICAL_COLUMNS if c in anywhere and c not in shared)
    if dropped:
        lacking = sorted(s for s, f in frames.items() if not set(dropped) <= set(f.columns))
        warnings.warn(
            f"{path}: optional columns {', '.join(dropped)} are missing for "
            f"{', '.join(lacking)}; left out for every symbol so all share one schema",
            FleetWarning,
            stacklevel=3,
        )
    return columns, dropped


def _check_min_bars(panel: Panel, min_bars: int, days) -> None:
    short = [s for s in panel.symbols if len(panel.frames[s]) < min_bars]
    if not short:
        return
    window = f" in the last {days} days" if days is not None else ""
    details = "; ".join(
        f"{s} ({panel.sources.get(s, '?')}) has {len(panel.frames[s])} bars" for s in short
    )
    raise DataError(
        f"{details}{window}, but at least {min_bars} bars are needed per asset "
        "(try a larger --days or fewer folds)"
    )
