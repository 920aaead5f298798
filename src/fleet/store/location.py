"""Where a run directory lives: a local path or an object-store URI, both through a pyarrow filesystem.

``--out`` is a local path or a URI (``s3://bucket/prefix``, ``gs://bucket/prefix``) opened with
:func:`pyarrow.fs.FileSystem.from_uri`; a local path is opened with
:class:`pyarrow.fs.LocalFileSystem`. :class:`Storage` has one code path for both: the two ways
they differ are capabilities fixed when it opens — a local filesystem has directories (parents
are created before a write) and an atomic rename (an ``atomic`` write goes to a temporary file,
is fsync'ed and renamed into place); on an object store every PUT is atomic already.

Endpoint and credentials: the URI's query may name the endpoint of an S3-compatible server
(``s3://bucket/runs/r1?endpoint_override=127.0.0.1:9000&scheme=http``; pyarrow also honours
``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_S3``); credentials come from the standard AWS environment /
configuration (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, profiles, instance roles).
Credentials written into the URI (``s3://KEY:SECRET@bucket/...``) are dropped from everything
recorded or printed (:func:`display_location`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from fleet.data.uri import (display_location, is_uri, join_location, local_path,  # noqa: F401 (re-exported)
                            open_uri)
from fleet.errors import ConfigError, RunDirectoryError

def default_out() -> Path:
    """``runs/<UTC timestamp>`` under the current directory."""
    return Path("runs") / pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")


def location_name(location: str | Path) -> str:
    """The last path segment: the run's name (for a URI, without its query string)."""
    if not is_uri(location):
        return local_path(location).name
    return urlsplit(str(location)).path.rstrip("/").rpartition("/")[2]


def require_local(run_dir: str | Path, command: str) -> None:
    """Refuse an object-store URI where only a local run directory can be read.

    Raises:
        RunDirectoryError: ``run_dir`` is a URI; the message says to download the run first.
    """
    if is_uri(run_dir):
        shown = display_location(run_dir)
        raise RunDirectoryError(f"{command} {shown}: runs are read from a local directory only; download it "
                                f"first, e.g. `aws s3 sync {shown.split('?')[0]} ./run` (or `gcloud storage "
                                "rsync -r` for gs://), then pass ./run")


def one_line(err: BaseException) -> str:
    """An exception's message on one line (pyarrow's S3 errors span several)."""
    return " ".join(str(err).split())


def _open_uri(location: str):
    """(pyarrow filesystem, root key) of an object-store URI.

    Raises:
        ConfigError: unsupported scheme, a URI pyarrow rejects, or the bucket itself instead of a prefix.
    """
    fs, root = open_uri(location, "--out", ConfigError)
    if "/" not in root:
        scheme = location.split("://", 1)[0].lower()
        raise ConfigError(f"--out {display_location(location)}: give a prefix inside the bucket "
                          f"({scheme}://{root}/NAME), not the bucket itself")
    return fs, root


class Storage:
    """Files under one root — a local directory or an object-store prefix — through a pyarrow filesystem.

    Picklable: a Ray actor receives the location and opens the filesystem itself (credentials and
    endpoint come from the URI and the worker's environment).

    Args:
        location: local path, or URI (``s3://bucket/prefix?endpoint_override=...``).

    Attributes:
        remote: True for an object store (no directories, no rename; completion is marked by a file).
        root: the local directory as given (a Path), or the ``bucket/prefix`` key (a str).

    Raises:
        ConfigError: the URI's scheme is not supported or pyarrow rejects the URI.
    """

    def __init__(self, location: str | Path):
        from pyarrow import fs as pafs

        self.location = str(location)
        self.remote = is_uri(location)
        if self.remote:
            self._fs, self.root = _open_uri(self.location)
            self._base = self.root
        else:
            self._fs, self.root = pafs.LocalFileSystem(), local_path(location)
            self._base = str(self.root.absolute())
        # Capabilities: a local filesystem has directories and an atomic rename; an object store neither.
        self._has_dirs = not self.remote

    def __getstate__(self):
        # A worker (Ray actor, task) may run in another directory: a local location travels as an absolute path.
        return {"location": self.location if self.remote else self._base}

    def __setstate__(self, state):
        self.__init__(state["location"])

    @property
    def fs(self):
        """The pyarrow filesystem."""
        return self._fs

    def describe(self, relative: str = "") -> str:
        """Where ``relative`` is, for messages (a local path as given; a URI without credentials)."""
        if not self.remote:
            return str(self.root / relative) if relative else str(self.root)
        return display_location(join_location(self.location, relative) if relative else self.location)

    def key(self, relative: str = "") -> str:
        """The filesystem path of ``relative`` (absolute locally, ``bucket/prefix/...`` remotely)."""
        return f"{self._base}/{relative}" if relative else self._base

    def _info(self, relative: str):
        return self._fs.get_file_info(self.key(relative))

    def write_bytes(self, relative: str, data: bytes, *, atomic: bool = False) -> None:
        """Write ``data`` at ``relative`` (parents created where the filesystem has directories).

        ``atomic``: where the filesystem can rename (local), a temporary file in the same directory is
        written, fsync'ed and renamed into place; an object PUT is atomic anyway.
        """
        self.write_chunks(relative, [data], atomic=atomic)

    def write_chunks(self, relative: str, chunks: Iterable[bytes], *, atomic: bool = False) -> None:
        """:meth:`write_bytes` of the bytes ``chunks`` yields, written as they come (the whole never in memory).
        When ``chunks`` raises, what was written is deleted (an object store has completed its upload by then)
        and the error is raised: no half-written file stays."""
        key = self.key(relative)
        if self._has_dirs:
            self._fs.create_dir(key.rpartition("/")[0], recursive=True)
        target = f"{key.rpartition('/')[0]}/.{key.rpartition('/')[2]}.tmp-{uuid.uuid4().hex[:8]}" \
            if atomic and self._has_dirs else key
        try:
            with self._fs.open_output_stream(target) as out:
                for chunk in chunks:
                    out.write(chunk)
        except BaseException:
            try:
                self._fs.delete_file(target)
            except OSError:
                pass
            raise
        if target != key:
            _fsync(target)
            self._fs.move(target, key)

    def read_bytes(self, relative: str) -> bytes:
        """The content at ``relative``; OSError (FileNotFoundError when missing)."""
        with self._fs.open_input_stream(self.key(relative)) as fh:
            return fh.read()

    def exists(self) -> bool:
        """The root is a directory (locally) / the prefix holds something (object store)."""
        from pyarrow import fs as pafs

        return self._info("").type == pafs.FileType.Directory

    def is_file(self, relative: str) -> bool:
        from pyarrow import fs as pafs

        return self._info(relative).type == pafs.FileType.File

    def delete(self, relative: str) -> None:
        """Delete one file; nothing happens when it is missing."""
        if self.is_file(relative):
            self._fs.delete_file(self.key(relative))

    def delete_tree(self, relative: str = "") -> None:
        """Delete ``relative`` (default: the whole root) and everything under it; missing is fine."""
        from pyarrow import fs as pafs

        if self._info(relative).type == pafs.FileType.Directory:
            self._fs.delete_dir(self.key(relative))

    def list_names(self, relative: str = "") -> list[str]:
        """Names directly under ``relative`` (default: the root); empty when it does not exist."""
        from pyarrow import fs as pafs

        infos = self._fs.get_file_info(pafs.FileSelector(self.key(relative), allow_not_found=True))
        return sorted(i.base_name for i in infos)

    def check_writable(self) -> list[str]:
        """For a URI: the bucket exists and an object can be written under the prefix.

        Returns:
            The names already under the prefix (the caller decides whether they are allowed).

        Raises:
            ConfigError: unreachable endpoint / refused credentials, missing bucket, or a failed write.
        """
        from pyarrow import fs as pafs

        shown = display_location(self.location)
        bucket = self.root.split("/", 1)[0]
        try:
            if self._fs.get_file_info(bucket).type == pafs.FileType.NotFound:
                raise ConfigError(f"--out {shown}: bucket {bucket!r} does not exist (or is not visible with these "
                                  "credentials); create it first, or choose another --out")
            existing = self.list_names()
        except OSError as err:
            raise ConfigError(f"--out {shown}: cannot reach the object store ({one_line(err)}); check the endpoint "
                              "(?endpoint_override=HOST:PORT&scheme=http, or AWS_ENDPOINT_URL) and the credentials "
                              "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)") from None
        return existing

    def probe_write(self) -> None:
        """Write and delete one empty object under the root.

        Raises:
            ConfigError: the write failed (permissions).
        """
        probe = f".fleet-write-check-{uuid.uuid4().hex[:8]}"
        try:
            self.write_bytes(probe, b"")
            self.delete(probe)
        except OSError as err:
            raise ConfigError(f"--out {display_location(self.location)}: cannot write there ({one_line(err)}); "
                              "check the credentials' permissions on the bucket") from None


def _fsync(path: str) -> None:
    """Flush a just-written local file to disk (before it is renamed into place)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
