"""Stage a run's bars into the per-symbol bar cache one asset at a time, keeping only a lean panel.

:func:`stage_bars` reads the input exactly as :func:`fleet.data.load.load_panel` does (same layouts,
rules, messages and warnings; a URI is read through pyarrow's filesystems), but writes each validated
asset to a :class:`~fleet.data.bars.BarCache` as soon as it is read and keeps only its ``close`` and
``volume``: what the driver's global steps use (fold cuts, history check, clustering, market factor,
dollar volume). A directory of per-symbol files is never held at once; a long-format file (or an
in-memory long DataFrame) is read once, split, and each asset dropped once written.
:func:`stage_synthetic` does the same for the built-in synthetic market as it is generated.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fleet.data.bars import BarCache
from fleet.data.load import (FRAME_NAME, _check_load_args, _common_columns, _frame_assets, _keep_symbols,
                             iter_assets)
from fleet.data.panel import Panel, infer_bar
from fleet.data.rules import _validated_frame
from fleet.data.synthetic import SyntheticMarket, synthetic_market
from fleet.data.uri import as_path
from fleet.errors import DataError

#: Columns a lean panel keeps (those the data has): the driver's global steps read nothing else.
LEAN_COLUMNS = ("close", "volume")


def lean_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``'s :data:`LEAN_COLUMNS` (those present), copied so the full frame can be freed."""
    return frame[[c for c in LEAN_COLUMNS if c in frame.columns]].copy()


def stage_bars(source, cache: BarCache, *, symbols=None) -> Panel:
    """Validate ``source`` into ``cache`` asset by asset; return the lean panel of its whole history.

    Args:
        source: a directory or file (local path or URI such as ``s3://bucket/prefix``), or a long
            DataFrame: the inputs of :func:`fleet.data.load.load_panel`.
        cache: where each validated asset is written (only the symbols kept by ``symbols``).
        symbols: keep only these symbols (a list, or one name as a str); None keeps all.

    Returns:
        The :class:`Panel` ``load_panel(source, symbols=symbols)`` would give (same symbols, sources,
        ``columns``, ``dropped_columns``, ``bar``, timestamps), but whose frames hold only ``close`` and
        ``volume`` (when the data has it): ``frame_columns``. Every asset's frame with all ``columns`` is
        in ``cache`` (:meth:`BarCache.reader`).

    Raises:
        DataError, UnknownSymbolError, ConfigError: as :func:`load_panel`, with the same messages; the
        checks come in the same order (every file's layout and columns, then the symbols asked for,
        then the values of the first failing symbol in sorted order).
    """
    wanted = _check_load_args(symbols, 0)
    if isinstance(source, pd.DataFrame):
        path, raws = Path(FRAME_NAME), iter(_frame_assets(source).values())
    else:
        path = as_path(source)
        raws = iter_assets(path)
    sources: dict[str, str] = {}
    lean: dict[str, pd.DataFrame] = {}
    columns_of: dict[str, tuple[str, ...]] = {}
    failed: dict[str, DataError] = {}
    for raw in raws:
        sources[raw.symbol] = str(raw.file)
        if wanted is not None and raw.symbol not in wanted:
            continue
        try:
            frame = _validated_frame(raw)
        except DataError as err:  # raised after every file is read, as load_panel orders its checks
            failed[raw.symbol] = err
            continue
        cache.write(raw.symbol, frame)
        columns_of[raw.symbol] = tuple(frame.columns)
        lean[raw.symbol] = lean_frame(frame)
    if wanted is not None:
        sources = _keep_symbols(sources, wanted, path)
    if failed:
        raise failed[min(failed)]
    return _lean_panel(lean, sources, columns_of, path)


def _lean_panel(lean: dict[str, pd.DataFrame], sources: dict[str, str], columns_of: dict[str, tuple[str, ...]],
                path) -> Panel:
    """The lean Panel of the staged assets: shared columns (and the loader's warning for dropped ones)."""
    shapes = {s: pd.DataFrame(columns=list(c)) for s, c in sorted(columns_of.items())}
    columns, dropped = _common_columns(shapes, path)
    held = tuple(c for c in LEAN_COLUMNS if c in columns)
    frames = {s: (f if tuple(f.columns) == held else f[list(held)]) for s, f in sorted(lean.items())}
    return Panel(frames=frames, sources={s: sources[s] for s in frames}, columns=columns, dropped_columns=dropped,
                 bar=infer_bar(frames), frame_columns=held)


def stage_synthetic(cache: BarCache, *, symbols=None, **params) -> SyntheticMarket:
    """The synthetic market of ``params`` (:func:`fleet.data.synthetic.synthetic_market`), each asset written
    to ``cache`` as it is generated; the returned market's panel is lean (close and volume).

    Args:
        cache: where the assets are written (only ``symbols``, when given; all otherwise).
        symbols: the assets the run keeps; the panel still holds every generated asset (lean), so that
            ``panel.subset(symbols)`` raises the usual error for an unknown one.

    Raises:
        ConfigError: a parameter is out of range (as :func:`synthetic_market`).
    """
    keep = None if symbols is None else set(symbols if not isinstance(symbols, str) else [symbols])

    def sink(symbol: str, frame: pd.DataFrame) -> pd.DataFrame:
        if keep is None or symbol in keep:
            cache.write(symbol, frame)
        return lean_frame(frame)

    return synthetic_market(**params, sink=sink)
