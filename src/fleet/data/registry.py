"""Stable symbol -> integer id mapping for embeddings and categorical features.

Design: /work/shared/seeds/004 ("Asset ID Embedding Strategy"): ids 0..n-1 assigned in
sorted symbol order, stored as JSON with ``metadata``, ``symbol_to_id`` and
``id_to_symbol``; new symbols get new ids and a version bump, existing ids never change,
so a trained ``nn.Embedding(len(registry), dim)`` keeps meaning the same assets.

The file also keeps a ``history``: which symbols each version added, in id order. Ids are only
ever appended, so the symbols in id order must be exactly the versions' additions one after the
other; a file whose ids were changed by hand (renumbered) breaks that and is refused on load.

A registry shared by runs (``fleet train --registry PATH``) is read and extended through
:func:`sync_registry`, under a file lock (``PATH.lock``), so two runs extending it at once cannot
lose or reuse an id.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from fleet.data.registry_checks import _check_not_renumbered, _checked_history, _int_id
from fleet.errors import ConfigError, DataError, UnknownSymbolError

# How many known symbols an error message lists before eliding.
_LIST_LIMIT = 20


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _symbol_list(symbols, what: str) -> list[str]:
    if isinstance(symbols, str):
        symbols = [symbols]
    if not isinstance(symbols, Iterable):
        raise ConfigError(f"{what}: expected a list of symbol names, got {type(symbols).__name__}")
    out = list(symbols)
    bad = [s for s in out if not isinstance(s, str) or not s.strip()]
    if bad:
        raise ConfigError(f"{what}: symbols must be non-empty strings, got {bad[:5]!r}")
    return out


class AssetRegistry:
    """symbol -> integer id (0..n-1) for embeddings and categorical features.

    Immutable: :meth:`extend` returns a new registry. Two registries are equal when they
    map the same symbols to the same ids (``version``, ``created`` and ``source`` are
    provenance and do not take part).

    Args:
        symbol_to_id: mapping whose ids are exactly 0..n-1, each used once.
        version: 1 for a new registry, +1 each time :meth:`extend` adds symbols.
        created: ISO-8601 UTC time of this version; defaults to now.
        source: free text saying where the symbols came from (e.g. a data path).

    Raises:
        ConfigError: a symbol is not a non-empty str, an id is not an int, ids are not
            exactly 0..n-1 (names the duplicates / gaps), or version < 1.
    """

    def __init__(
        self,
        symbol_to_id: Mapping[str, int],
        *,
        version: int = 1,
        created: str | None = None,
        source: str = "",
        history: list[dict] | None = None,
    ) -> None:
        if not isinstance(symbol_to_id, Mapping):
            raise ConfigError(
                f"AssetRegistry: symbol_to_id must be a mapping, got {type(symbol_to_id).__name__}"
            )
        bad_symbols = [s for s in symbol_to_id if not isinstance(s, str) or not s.strip()]
        if bad_symbols:
            raise ConfigError(f"AssetRegistry: symbols must be non-empty strings, got {bad_symbols[:5]!r}")
        ids = {s: _int_id(i) for s, i in symbol_to_id.items()}
        not_int = [f"{s}={symbol_to_id[s]!r}" for s, i in ids.items() if i is None]
        if not_int:
            raise ConfigError(f"AssetRegistry: ids must be integers, got {', '.join(not_int[:5])}")
        n = len(ids)
        by_id: dict[int, list[str]] = {}
        for s, i in ids.items():
            by_id.setdefault(i, []).append(s)
        duplicates = {i: ss for i, ss in by_id.items() if len(ss) > 1}
        if duplicates:
            shown = "; ".join(f"id {i}: {', '.join(ss)}" for i, ss in sorted(duplicates.items())[:5])
            raise ConfigError(f"AssetRegistry: ids must be unique, but {shown}")
        if set(by_id) != set(range(n)):
            outside = sorted(i for i in by_id if not 0 <= i < n)
            gaps = sorted(set(range(n)) - set(by_id))
            raise ConfigError(
                f"AssetRegistry: ids must be exactly 0..{n - 1} for {n} symbols; "
                f"out of range: {outside[:5]}, missing: {gaps[:5]}"
            )
        if _int_id(version) is None or version < 1:
            raise ConfigError(f"AssetRegistry: version={version!r} must be an integer >= 1")
        self._symbols = [by_id[i][0] for i in range(n)]
        self._symbol_to_id = {s: i for i, s in enumerate(self._symbols)}
        self._version = int(version)
        self._created = _now() if created is None else str(created)
        self._source = str(source)
        if history is None:  # a registry without a recorded history: all of it counts as its current version
            history = [{"version": self._version, "added": list(self._symbols), "created": self._created}]
        self._history = [dict(h) for h in history]

    @classmethod
    def from_symbols(cls, symbols, *, source: str = "") -> AssetRegistry:
        """Version-1 registry with ids assigned in sorted symbol order (duplicates ignored).

        Raises:
            ConfigError: a symbol is not a non-empty str.
        """
        unique = sorted(set(_symbol_list(symbols, "AssetRegistry.from_symbols")))
        return cls({s: i for i, s in enumerate(unique)}, version=1, source=source)

    def extend(self, symbols, *, source: str | None = None) -> AssetRegistry:
        """New registry that also knows ``symbols``.

        Symbols not yet known are appended, sorted among themselves, with ids len(self)..;
        existing ids never change. The version goes up by one (and ``created`` is renewed)
        only if something new was added; otherwise the result equals ``self`` with the same
        version and created time.

        Args:
            symbols: names to add (known ones are ignored).
            source: provenance of the new version; None keeps the current source.

        Raises:
            ConfigError: a symbol is not a non-empty str.
        """
        new = sorted(set(_symbol_list(symbols, "AssetRegistry.extend")) - set(self._symbol_to_id))
        source = self._source if source is None else source
        if not new:
            return AssetRegistry(
                self._symbol_to_id, version=self._version, created=self._created, source=source,
                history=self._history,
            )
        mapping = dict(self._symbol_to_id)
        mapping.update({s: len(self) + k for k, s in enumerate(new)})
        created = _now()
        history = [*self._history, {"version": self._version + 1, "added": new, "created": created}]
        return AssetRegistry(mapping, version=self._version + 1, created=created, source=source, history=history)

    def _unknown(self, symbols: list[str]) -> UnknownSymbolError:
        known = self._symbols[:_LIST_LIMIT]
        listed = ", ".join(known) + (", ..." if len(self) > _LIST_LIMIT else "")
        hints = []
        for s in symbols[:3]:
            close = difflib.get_close_matches(str(s), self._symbols, n=1)
            if close:
                hints.append(f"{s!r} -> did you mean {close[0]!r}?")
        names = ", ".join(repr(str(s)) for s in symbols[:10]) + (", ..." if len(symbols) > 10 else "")
        noun = "symbol" if len(symbols) == 1 else "symbols"
        return UnknownSymbolError(
            f"unknown {noun} {names}: the registry (version {self._version}, {len(self)} symbols) "
            f"knows {listed or 'nothing'}; extend it with registry.extend([{names}])"
            " to add new symbols" + (f" ({'; '.join(hints)})" if hints else "")
        )

    def id_of(self, symbol: str) -> int:
        """Integer id of ``symbol``.

        Raises:
            UnknownSymbolError: ``symbol`` is not in the registry; the message lists the known
                symbols, the registry version and how to extend it.
        """
        try:
            return self._symbol_to_id[symbol]
        except (KeyError, TypeError):
            raise self._unknown([symbol]) from None

    def ids_of(self, symbols) -> np.ndarray:
        """Ids of many symbols, e.g. the symbol column of a long panel.

        Args:
            symbols: iterable / array / Series of names, shape (n,).

        Returns:
            int64 ndarray of shape (n,).

        Raises:
            UnknownSymbolError: names every unknown symbol (at most 10 shown).
        """
        if isinstance(symbols, str):
            symbols = [symbols]
        values = np.asarray(list(symbols) if not hasattr(symbols, "__array__") else symbols, dtype=object)
        if values.ndim != 1:
            values = values.reshape(-1)
        # factorize hashes each distinct name once: fast for 10^6 rows of a few symbols.
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        unknown = [u for u in uniques if not isinstance(u, str) or u not in self._symbol_to_id]
        if unknown:
            raise self._unknown(unknown)
        lookup = np.array([self._symbol_to_id[u] for u in uniques], dtype=np.int64)
        return lookup[codes] if len(codes) else np.empty(0, dtype=np.int64)

    def symbol_of(self, asset_id: int) -> str:
        """Symbol of integer id ``asset_id``.

        Raises:
            UnknownSymbolError: the id is not in 0..len-1.
        """
        i = _int_id(asset_id)
        if i is None or not 0 <= i < len(self):
            raise UnknownSymbolError(
                f"unknown asset id {asset_id!r}: the registry (version {self._version}) "
                f"has ids 0..{len(self) - 1}"
            )
        return self._symbols[i]

    @property
    def symbols(self) -> list[str]:
        """Symbols in id order (index = id)."""
        return list(self._symbols)

    @property
    def version(self) -> int:
        return self._version

    @property
    def created(self) -> str:
        return self._created

    @property
    def source(self) -> str:
        return self._source

    @property
    def history(self) -> list[dict]:
        """One entry per version: ``{"version", "added": [symbols, in id order], "created"}``."""
        return [dict(h, added=list(h.get("added", []))) for h in self._history]

    def __len__(self) -> int:
        return len(self._symbols)

    def __contains__(self, symbol) -> bool:
        try:
            return symbol in self._symbol_to_id
        except TypeError:
            return False

    def __eq__(self, other) -> bool:
        if not isinstance(other, AssetRegistry):
            return NotImplemented
        return self._symbols == other._symbols

    def __hash__(self) -> int:
        return hash(tuple(self._symbols))

    def __repr__(self) -> str:
        shown = ", ".join(self._symbols[:5]) + (", ..." if len(self) > 5 else "")
        return f"AssetRegistry(version={self._version}, {len(self)} symbols: {shown})"

    def to_dict(self) -> dict:
        """JSON-ready dict in the layout of the design note.

        ``{"metadata": {"created", "version", "total_symbols", "source"},
        "symbol_to_id": {symbol: id}, "id_to_symbol": {"0": symbol, ...}}`` (JSON keys are
        strings, hence the string ids).
        """
        return {
            "metadata": {
                "created": self._created,
                "version": self._version,
                "total_symbols": len(self),
                "source": self._source,
            },
            "symbol_to_id": dict(self._symbol_to_id),
            "id_to_symbol": {str(i): s for i, s in enumerate(self._symbols)},
            "history": self.history,
        }

    @classmethod
    def from_dict(cls, d, *, where: str = "asset registry") -> AssetRegistry:
        """Rebuild a registry from :meth:`to_dict` output.

        Args:
            d: the dict.
            where: what to name in error messages (``load`` passes the file path).

        Raises:
            DataError: ``d`` is not in the to_dict layout, its ids are invalid, or
                ``id_to_symbol`` / ``total_symbols`` disagree with ``symbol_to_id``.
        """
        if not isinstance(d, Mapping):
            raise DataError(f"{where}: expected a JSON object, got {type(d).__name__}")
        mapping = d.get("symbol_to_id")
        if not isinstance(mapping, Mapping):
            raise DataError(
                f"{where}: missing or invalid 'symbol_to_id' (expected an object symbol -> id); "
                f"found keys: {', '.join(map(str, d)) or 'none'}"
            )
        meta = d.get("metadata", {})
        if not isinstance(meta, Mapping):
            raise DataError(f"{where}: 'metadata' must be an object, got {type(meta).__name__}")
        history = d.get("history")
        try:
            registry = cls(
                mapping,
                version=meta.get("version", 1),
                created=meta.get("created"),
                source=meta.get("source", "") or "",
                history=None if history is None else _checked_history(history, where),
            )
        except ConfigError as exc:
            raise DataError(f"{where}: {exc}") from None
        if history is not None:
            _check_not_renumbered(registry, where)
        total = meta.get("total_symbols")
        if total is not None and total != len(registry):
            raise DataError(
                f"{where}: metadata.total_symbols={total!r} but symbol_to_id has {len(registry)} symbols"
            )
        inverse = d.get("id_to_symbol")
        if inverse is not None:
            expected = {str(i): s for i, s in enumerate(registry.symbols)}
            if not isinstance(inverse, Mapping) or {str(k): v for k, v in inverse.items()} != expected:
                raise DataError(f"{where}: 'id_to_symbol' is not the inverse of 'symbol_to_id'")
        return registry

    def save(self, path) -> Path:
        """Write the registry as JSON to ``path`` atomically (temp file, then ``os.replace``).

        A crash mid-write leaves the previous file intact, never a half-written one. Parent
        directories are created.

        Returns:
            The path written, as a Path.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        umask = os.umask(0)
        os.umask(umask)
        try:
            os.fchmod(fd, 0o666 & ~umask)  # as open() would create it (mkstemp makes it 0600): runs of others read it
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_dict(), fh, indent=2)
                fh.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path) -> AssetRegistry:
        """Read a registry written by :meth:`save`.

        Raises:
            DataError: the file is missing, is not valid JSON or not in the to_dict layout;
                the message names the file.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"{path}: asset registry file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read the asset registry: {exc}") from None
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}: asset registry is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                f"{exc.msg})"
            ) from None
        return cls.from_dict(d, where=str(path))


def sync_registry(path, symbols, *, source: str = "", timeout: float = 600.0) -> tuple[AssetRegistry, int | None]:
    """Read the shared registry at ``path``, extend it with ``symbols`` and write it back, under a lock.

    The file is created (version 1, ids in sorted symbol order) when it does not exist; symbols it
    does not know get appended ids and the version goes up by one; known ids never change. The
    write is atomic (:meth:`AssetRegistry.save`) and the read-extend-write happens while holding
    ``PATH.lock`` (``filelock.FileLock``), so two runs extending the same file at once both keep
    their ids.

    Args:
        path: the registry JSON file.
        symbols: the symbols of this run.
        source: provenance recorded when the registry is created or extended.
        timeout: seconds to wait for the lock.

    Returns:
        (registry, previous_version): the registry after extension, and the version the file had
        (None when it was created now).

    Raises:
        DataError: the file is not valid JSON, not a registry, or renumbered (names the file).
        ConfigError: the lock is not obtained within ``timeout`` seconds, or the file's directory
            cannot be written (names the path).
    """
    from filelock import FileLock, Timeout

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path) + ".lock", timeout=timeout)
        with lock:
            previous = AssetRegistry.load(path) if path.exists() else None
            registry = (AssetRegistry.from_symbols(symbols, source=source) if previous is None
                        else previous.extend(symbols, source=source))
            if previous is None or registry.version != previous.version:
                registry.save(path)
    except Timeout:
        raise ConfigError(f"{path}: asset registry is locked by another run ({path}.lock) for more than "
                          f"{timeout:g} s") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the asset registry ({exc.strerror or exc}); --registry must "
                          "be a file in a writable directory") from None
    return registry, None if previous is None else previous.version
