"""The per-symbol bar cache: validated bars written once, each asset read back only where it is used.

Layout (hive-partitioned on ``symbol``, one file per asset)::

    <root>/symbol=<SYMBOL>/part-0.parquet     timestamp (timestamp[us, UTC]) + the asset's columns (float64)

``<root>`` is a local directory or any URI pyarrow's filesystems open (``s3://bucket/prefix``, see
:mod:`fleet.data.uri`). ``<SYMBOL>`` is percent-encoded (``urllib.parse.quote``), as pyarrow's hive
partitioning does, so a symbol such as ``BTC/USDT`` stays one path segment.

:class:`BarCache` writes validated frames (:mod:`fleet.data.stage` stages a run's input into it, one asset
at a time); :class:`BarReader` is the small, picklable ``Mapping[str, DataFrame]`` the training steps and the
hold-out read: a Ray actor receives the reader, not the bars, and reads only its unit's assets.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from urllib.parse import quote

import pandas as pd

from fleet.data.panel import Panel
from fleet.data.uri import display_location, open_location

#: File of one asset inside its ``symbol=<SYMBOL>`` directory.
BAR_FILE = "part-0.parquet"
#: Bytes of frames a :class:`BarReader` keeps after reading them (least recently used dropped first): enough
#: for a unit's assets to be read once for its ``prepare`` and again for its ``assemble`` step, bounded so a
#: long-lived reader (a Ray actor's, the driver's hold-out) never grows with the fleet.
CACHE_BYTES = 64 * 2**20


def symbol_dir(symbol: str) -> str:
    """``symbol=<SYMBOL>`` with the symbol percent-encoded (one path segment whatever its characters)."""
    return "symbol=" + quote(str(symbol), safe="")


class BarCache:
    """Writes validated asset frames into the cache layout (see the module docstring) at ``location``.

    Args:
        location: local directory or URI of the cache root (created as needed).

    Raises:
        DataError: the URI's scheme is not supported or pyarrow cannot open it.
    """

    def __init__(self, location):
        self.location = str(location)
        self._fs, self._root = open_location(self.location, what="bar cache")

    def path_of(self, symbol: str) -> str:
        """The filesystem path of ``symbol``'s file."""
        return f"{self._root}/{symbol_dir(symbol)}/{BAR_FILE}"

    def write(self, symbol: str, frame: pd.DataFrame) -> None:
        """Write one validated asset frame (as :class:`~fleet.data.panel.Panel` holds it: a UTC DatetimeIndex
        named ``timestamp``, float64 columns); an earlier file of the symbol is replaced."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from pyarrow import fs as pafs

        columns = {"timestamp": pa.array(frame.index)}
        columns.update({str(c): pa.array(frame[c].to_numpy()) for c in frame.columns})
        path = self.path_of(symbol)
        if isinstance(self._fs, pafs.LocalFileSystem):
            self._fs.create_dir(path.rpartition("/")[0], recursive=True)
        pq.write_table(pa.table(columns), path, filesystem=self._fs)

    def clear(self) -> None:
        """Delete the cache root and everything under it (nothing happens when it is missing)."""
        from pyarrow import fs as pafs

        if self._fs.get_file_info(self._root).type == pafs.FileType.Directory:
            self._fs.delete_dir(self._root)

    def reader(self, panel: Panel, cache_bytes: int = CACHE_BYTES) -> "BarReader":
        """A :class:`BarReader` of ``panel``'s assets over its window (each asset from its first bar there),
        with ``panel.columns``."""
        starts = {s: (f.index[0] if len(f) else None) for s, f in panel.frames.items()}
        return BarReader(self.location, starts, panel.columns, cache_bytes=cache_bytes)

    def __repr__(self) -> str:
        return f"BarCache({display_location(self.location)})"


class BarReader(Mapping):
    """symbol -> that asset's validated bars, read from the bar cache when first asked for.

    A frame equals the one :func:`fleet.data.load.load_panel` gives for the same data and window
    (``Panel.frames[symbol]``): float64 ``columns``, a UTC ``DatetimeIndex`` named ``timestamp`` in
    microseconds, no ``freq``. Each read opens the asset's own file with the pyarrow dataset API, projecting
    ``columns`` and pushing ``timestamp >= start`` down to the scan. Read frames are kept up to
    ``cache_bytes`` (least recently used dropped first). Pickles to its arguments only (no frame, no open
    filesystem): a Ray actor gets a few hundred bytes plus the symbol list and reads what its unit needs.

    Args:
        location: the cache root (local directory or URI, as given to :class:`BarCache`).
        starts: symbol -> first timestamp to read (None: from the asset's first bar).
        columns: the columns of every frame, in OHLCV order (the panel's ``columns``).
        cache_bytes: bytes of frames kept after reading.

    Raises:
        KeyError: ``reader[symbol]`` for a symbol not in ``starts``.
        OSError: the asset's file cannot be read (e.g. the cache was removed, or an object store is unreachable).
    """

    def __init__(self, location, starts: Mapping[str, pd.Timestamp | None], columns, cache_bytes: int = CACHE_BYTES):
        self.location = str(location)
        self.starts = dict(sorted(starts.items()))
        self.columns = tuple(columns)
        self.cache_bytes = int(cache_bytes)
        self._open()

    def _open(self) -> None:
        self._cache: OrderedDict[str, pd.DataFrame] = OrderedDict()
        self._held = 0
        self._fs, self._root = open_location(self.location, what="bar cache")
        self.reads = 0

    def __getstate__(self) -> dict:
        return {"location": self.location, "starts": self.starts, "columns": self.columns,
                "cache_bytes": self.cache_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._open()

    def __len__(self) -> int:
        return len(self.starts)

    def __iter__(self) -> Iterator[str]:
        return iter(self.starts)

    def __contains__(self, symbol) -> bool:
        return symbol in self.starts

    def __getitem__(self, symbol: str) -> pd.DataFrame:
        if symbol not in self.starts:
            raise KeyError(symbol)
        frame = self._cache.get(symbol)
        if frame is not None:
            self._cache.move_to_end(symbol)
            return frame
        frame = self._read(symbol)
        size = int(frame.memory_usage(index=True).sum())
        self._cache[symbol] = frame
        self._held += size
        while self._held > self.cache_bytes and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._held -= int(old.memory_usage(index=True).sum())
        if self._held > self.cache_bytes:  # a single frame above the budget is returned, not kept
            self._cache.clear()
            self._held = 0
        return frame

    def _read(self, symbol: str) -> pd.DataFrame:
        import pyarrow as pa
        import pyarrow.dataset as ds

        self.reads += 1
        path = f"{self._root}/{symbol_dir(symbol)}/{BAR_FILE}"
        start = self.starts[symbol]
        where = None
        if start is not None:
            where = ds.field("timestamp") >= pa.scalar(pd.Timestamp(start).as_unit("us"),
                                                       type=pa.timestamp("us", tz="UTC"))
        table = ds.dataset(path, filesystem=self._fs, format="parquet").to_table(
            columns=["timestamp", *self.columns], filter=where)
        index = pd.DatetimeIndex(table.column("timestamp").to_pandas(), name="timestamp")
        index = index.tz_convert("UTC").as_unit("us")
        # Built like the loader builds a validated frame: a dict of float64 columns on the timestamps.
        return pd.DataFrame({c: table.column(c).to_numpy().astype("float64", copy=False) for c in self.columns},
                            index=index)

    def __repr__(self) -> str:
        return (f"BarReader({display_location(self.location)}, {len(self.starts)} symbols, "
                f"columns={self.columns})")
