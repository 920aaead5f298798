"""Local paths and object-store URIs for the data layer, opened through pyarrow filesystems.

The conventions are those of ``--out`` (:mod:`fleet.store.location`): a location is a local path
(``file://`` stripped) or a URI ``s3://bucket/prefix`` / ``gs://bucket/prefix`` opened with
:func:`pyarrow.fs.FileSystem.from_uri`. An S3-compatible server is named in the URI's query
(``?endpoint_override=HOST:PORT&scheme=http``) or by ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``, which
pyarrow honours; credentials come from the standard AWS environment / configuration. Credentials written
into a URI (``s3://KEY:SECRET@bucket/...``) never appear in messages (:func:`display_location`).

Kept in ``fleet.data`` (the lowest layer, which may not import :mod:`fleet.store`) so the loader and the
bar cache can read and write URIs.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from fleet.errors import DataError

#: URI schemes read and written through pyarrow filesystems (``gcs`` is pyarrow's alias of ``gs``).
URI_SCHEMES = ("s3", "gs", "gcs")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def is_uri(location) -> bool:
    """True for ``scheme://...`` other than ``file://`` (which is read as a local path)."""
    m = _SCHEME.match(str(location))
    return bool(m) and m.group(1).lower() != "file"


def local_path(location) -> Path:
    """A local location as a :class:`~pathlib.Path` (``file://`` stripped)."""
    s = str(location)
    return Path(urlsplit(s).path) if s.lower().startswith("file://") else Path(location)


def display_location(location) -> str:
    """``location`` as printed: for a URI, without any ``user:secret@`` part."""
    s = str(location)
    if not is_uri(s):
        return s
    parts = urlsplit(s)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def join_location(location, name: str) -> str:
    """``location/name`` for a local path or a URI (the URI's query string stays at the end)."""
    if not is_uri(location):
        return str(local_path(location) / name)
    parts = urlsplit(str(location))
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + name))


def open_location(location, what: str = "--data"):
    """(pyarrow filesystem, path inside it) of a local path or a URI.

    A local path is made absolute (``LocalFileSystem`` paths are); a URI's path is ``bucket/prefix``.

    Raises:
        DataError: unsupported URI scheme, or a URI pyarrow cannot open (bad query, no credentials).
    """
    from pyarrow import fs as pafs

    if not is_uri(location):
        return pafs.LocalFileSystem(), str(local_path(location).absolute())
    return open_uri(str(location), what, DataError)


def open_uri(location: str, what: str, error: type[Exception]):
    """(pyarrow filesystem, ``bucket/prefix``) of an object-store URI; shared with ``--out``
    (:mod:`fleet.store.location`).

    Raises:
        ``error`` (a :class:`~fleet.errors.FleetError` class), naming ``what`` and the URI without credentials:
            unsupported scheme, or a URI pyarrow cannot open (bad query, no credentials).
    """
    from pyarrow import fs as pafs

    scheme = _SCHEME.match(location).group(1).lower()
    shown = display_location(location)
    if scheme not in URI_SCHEMES:
        raise error(f"{what} {shown}: unsupported URI scheme {scheme}://; expected a local path, "
                    "s3://bucket/prefix or gs://bucket/prefix")
    try:
        fs, path = pafs.FileSystem.from_uri(location)
    except Exception as err:  # ArrowInvalid (bad query parameter, ...) or OSError (no credentials, ...)
        raise error(f"{what} {shown}: pyarrow cannot open this URI ({' '.join(str(err).split())}); expected "
                    f"{scheme}://bucket/prefix, optionally with ?endpoint_override=HOST:PORT&scheme=http "
                    "for an S3-compatible server") from None
    return fs, path.rstrip("/")


class RemotePath:
    """A file or prefix of an object store, with the few :class:`~pathlib.Path` methods the loader uses.

    ``str()`` is the URI without credentials (for messages and ``Panel.sources``); ``open()`` gives a
    seekable pyarrow input file, which pyarrow and pandas read like a local file.

    Args:
        location: ``s3://bucket/key`` (query string and credentials allowed).
        fs, path: the opened filesystem and the path inside it (opened from ``location`` when omitted).
    """

    def __init__(self, location: str, fs=None, path: str | None = None, kind=None):
        self.location = str(location)
        if fs is None:
            fs, path = open_location(self.location)
        self.fs, self.path, self._kind = fs, path, kind

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rpartition("/")[2]

    @property
    def suffix(self) -> str:
        return Path(self.name).suffix

    @property
    def stem(self) -> str:
        return Path(self.name).stem

    def _type(self):
        return self._kind if self._kind is not None else self.fs.get_file_info(self.path).type

    def exists(self) -> bool:
        from pyarrow import fs as pafs

        return self._type() != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        from pyarrow import fs as pafs

        return self._type() == pafs.FileType.Directory

    def is_file(self) -> bool:
        from pyarrow import fs as pafs

        return self._type() == pafs.FileType.File

    def iterdir(self):
        """The entries directly under this prefix (files and sub-prefixes), as RemotePaths."""
        from pyarrow import fs as pafs

        for info in self.fs.get_file_info(pafs.FileSelector(self.path, allow_not_found=True)):
            yield RemotePath(join_location(self.location, info.base_name), self.fs, info.path, info.type)

    def open(self):
        """A seekable pyarrow input file (a context manager)."""
        return self.fs.open_input_file(self.path)

    def __lt__(self, other: "RemotePath") -> bool:
        return self.path < other.path

    def __str__(self) -> str:
        return display_location(self.location)

    __repr__ = __str__


def as_path(location):
    """A :class:`RemotePath` for a URI, else ``Path(location)``."""
    return RemotePath(str(location)) if is_uri(location) else Path(location)
