"""The run directory: a local directory renamed into place at the end, or an object-store prefix.

``--out`` is a local path or a URI (``s3://bucket/prefix``, ``gs://bucket/prefix``) read through
pyarrow filesystems (:func:`pyarrow.fs.FileSystem.from_uri`).

**Local paths** are written under a temporary name and renamed into place at the end, so a
crash, an interrupt or a rejected input never leaves something at ``--out`` that looks like a
complete run, and an existing run is never overwritten. The staging directory
``<parent>/.<name>.partial-<id>/`` holds

* ``run.json`` — written when training starts: the final path, the resolved configuration, the
  planned unit ids and the data files' SHA-256, so ``fleet train --resume`` re-plans the same run
  and refuses one whose data changed;
* ``units/<unit id>.pkl`` + ``units/<unit id>.done.json`` — each unit's pickled result, written as
  the unit finishes (temporary file + ``os.replace``), then a marker with the pickle's SHA-256 and
  size. A unit is complete only when the marker exists, the sizes and checksum match and the
  pickle loads as that unit's result; anything else is trained again.

After the final rename the ``units/`` directory is removed (models and predictions are in their
usual places).

**Object stores** (S3, GCS) have no atomic rename of a directory (pyarrow's ``S3FileSystem.move``
copies single objects only and fails on a prefix), so a URI run is written in place, with the
same layout as the staging directory above, and completion is marked by ``manifest.json``, which
is written last: a prefix without ``manifest.json`` is not a complete run (readers must check
it), and ``fleet train --resume URI`` finishes it. Every object PUT is atomic (a reader sees the
whole object or none), so a unit result stays complete-or-absent as locally: the pickle first,
then its ``.done.json`` marker. A run refuses to start at a prefix that already holds objects
(never overwrite, never mix two runs); two runs started at the same instant on the same prefix
are not detected. The prefix is checked up front — filesystem created, bucket present, a probe
object written and deleted — so a bad URI, a missing bucket or an unreachable endpoint stops the
run before any training, with a :class:`~fleet.errors.ConfigError` naming the URI.

Endpoint and credentials: the URI's query may name the endpoint of an S3-compatible server
(``s3://bucket/runs/r1?endpoint_override=127.0.0.1:9000&scheme=http``; pyarrow also honours
``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_S3``); credentials come from the standard AWS environment / configuration
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, profiles, instance roles). Credentials written
into the URI (``s3://KEY:SECRET@bucket/...``) are dropped from everything recorded or printed
(:func:`display_location`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import shutil
import socket
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd

from fleet.errors import ConfigError, RunDirectoryError

STATE_FILE = "run.json"
UNITS_DIR = "units"
MANIFEST = "manifest.json"
#: URI schemes written through pyarrow filesystems (``gcs`` is pyarrow's alias of ``gs``).
URI_SCHEMES = ("s3", "gs", "gcs")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def default_out() -> Path:
    """``runs/<UTC timestamp>`` under the current directory."""
    return Path("runs") / pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")


def is_uri(location: str | Path) -> bool:
    """True for ``scheme://...`` other than ``file://`` (which is read as a local path)."""
    m = _SCHEME.match(str(location))
    return bool(m) and m.group(1).lower() != "file"


def _local_path(location: str | Path) -> Path:
    s = str(location)
    return Path(urlsplit(s).path) if s.lower().startswith("file://") else Path(location)


def display_location(location: str | Path) -> str:
    """``location`` as recorded and printed: for a URI, without any ``user:secret@`` part."""
    s = str(location)
    if not is_uri(s):
        return s
    parts = urlsplit(s)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def join_location(location: str | Path, name: str) -> str:
    """``location/name`` for a local path or a URI (the URI's query string stays at the end)."""
    if not is_uri(location):
        return str(_local_path(location) / name)
    parts = urlsplit(str(location))
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + name))


def location_name(location: str | Path) -> str:
    """The last path segment: the run's name (for a URI, without its query string)."""
    if not is_uri(location):
        return _local_path(location).name
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


class Storage:
    """Files under one root: a local directory, or an object-store prefix through a pyarrow filesystem.

    Picklable: a Ray actor receives the location and opens the filesystem itself (credentials and
    endpoint come from the URI and the worker's environment).

    Args:
        location: local path, or URI (``s3://bucket/prefix?endpoint_override=...``).

    Raises:
        ConfigError: the URI's scheme is not supported or pyarrow rejects the URI.
    """

    def __init__(self, location: str | Path):
        self.location = str(location)
        self.remote = is_uri(location)
        self._fs = None
        if self.remote:
            self._open()
        else:
            self.root = _local_path(location)

    def _open(self) -> None:
        scheme = _SCHEME.match(self.location).group(1).lower()
        shown = display_location(self.location)
        if scheme not in URI_SCHEMES:
            raise ConfigError(f"--out {shown}: unsupported URI scheme {scheme}://; expected a local path, "
                              "s3://bucket/prefix or gs://bucket/prefix")
        from pyarrow import fs as pafs

        try:
            self._fs, root = pafs.FileSystem.from_uri(self.location)
        except Exception as err:  # ArrowInvalid (bad query parameter, ...) or OSError (no credentials, ...)
            raise ConfigError(f"--out {shown}: pyarrow cannot open this URI ({err}); expected "
                              f"{scheme}://bucket/prefix, optionally with ?endpoint_override=HOST:PORT&scheme=http "
                              "for an S3-compatible server") from None
        self.root = root.rstrip("/")
        if "/" not in self.root:
            raise ConfigError(f"--out {shown}: give a prefix inside the bucket ({scheme}://{self.root}/NAME), "
                              "not the bucket itself")

    def __getstate__(self):
        return {"location": self.location}

    def __setstate__(self, state):
        self.__init__(state["location"])

    @property
    def fs(self):
        return self._fs

    def describe(self, relative: str = "") -> str:
        """Where ``relative`` is, for messages (a URI without credentials)."""
        if not self.remote:
            return str(self.root / relative) if relative else str(self.root)
        return display_location(join_location(self.location, relative)) if relative else display_location(self.location)

    def _key(self, relative: str) -> str:
        return f"{self.root}/{relative}" if relative else self.root

    def write_bytes(self, relative: str, data: bytes, *, atomic: bool = False) -> None:
        """Write ``data`` at ``relative`` (parents created). ``atomic`` locally: temporary file, fsync,
        ``os.replace``; an object PUT is atomic anyway."""
        if self.remote:
            out = self._fs.open_output_stream(self._key(relative))
            out.write(data)
            out.close()
            return
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if atomic:
            _write_atomic(path, data)
        else:
            path.write_bytes(data)

    def read_bytes(self, relative: str) -> bytes:
        """The content at ``relative``; OSError (FileNotFoundError locally) when it is missing."""
        if self.remote:
            with self._fs.open_input_stream(self._key(relative)) as fh:
                return fh.read()
        return (self.root / relative).read_bytes()

    def is_file(self, relative: str) -> bool:
        if self.remote:
            from pyarrow import fs as pafs

            return self._fs.get_file_info(self._key(relative)).type == pafs.FileType.File
        return (self.root / relative).is_file()

    def delete(self, relative: str) -> None:
        """Delete one file; nothing happens when it is missing."""
        if self.remote:
            if self.is_file(relative):
                self._fs.delete_file(self._key(relative))
            return
        (self.root / relative).unlink(missing_ok=True)

    def delete_tree(self, relative: str = "") -> None:
        """Delete ``relative`` (default: the whole root) and everything under it; missing is fine."""
        if self.remote:
            from pyarrow import fs as pafs

            key = self._key(relative)
            if self._fs.get_file_info(key).type == pafs.FileType.Directory:
                self._fs.delete_dir(key)
            return
        shutil.rmtree(self.root / relative if relative else self.root, ignore_errors=True)

    def list_names(self) -> list[str]:
        """Names directly under the root (empty when the root does not exist)."""
        if self.remote:
            from pyarrow import fs as pafs

            infos = self._fs.get_file_info(pafs.FileSelector(self.root, allow_not_found=True))
            return sorted(i.base_name for i in infos)
        return sorted(p.name for p in self.root.iterdir()) if self.root.is_dir() else []

    def check_writable_prefix(self) -> None:
        """For a URI: the bucket exists, the prefix is empty and an object can be written there.

        Raises:
            ConfigError: unreachable endpoint / refused credentials, missing bucket, objects already
                under the prefix (a complete run, an interrupted one, or anything else), or a failed write.
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
            raise ConfigError(f"--out {shown}: cannot reach the object store ({_one_line(err)}); check the endpoint "
                              "(?endpoint_override=HOST:PORT&scheme=http, or AWS_ENDPOINT_URL) and the credentials "
                              "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)") from None
        if MANIFEST in existing:
            raise ConfigError(f"--out {shown}: a complete run is already there (it has a {MANIFEST}); runs are "
                              "never overwritten, choose another --out")
        if STATE_FILE in existing:
            raise ConfigError(f"--out {shown}: an interrupted run is there (it has a {STATE_FILE}); finish it with "
                              f"`fleet train --resume {shown}`, or choose another --out")
        if existing:
            raise ConfigError(f"--out {shown}: the prefix already holds objects ({', '.join(existing[:5])}"
                              f"{', ...' if len(existing) > 5 else ''}); runs are never written over other data, "
                              "choose an empty prefix")
        probe = f".fleet-write-check-{uuid.uuid4().hex[:8]}"
        try:
            self.write_bytes(probe, b"")
            self.delete(probe)
        except OSError as err:
            raise ConfigError(f"--out {shown}: cannot write there ({_one_line(err)}); check the credentials' "
                              "permissions on the bucket") from None


class UnitStore:
    """Where units' results are saved as they finish: ``units/`` of the run's staging area.

    Small and picklable: on Ray with a URI ``--out`` each actor gets one and writes its own unit's
    result (:meth:`save`), so results reach shared storage without passing through the driver.
    """

    def __init__(self, storage: Storage):
        self.storage = storage

    def save(self, unit_id: str, result: Any) -> None:
        """Write one unit's result, then its completeness marker (pickle SHA-256 and size, and which
        host / process / Ray node wrote it). Locally both are atomic file replacements; on an object
        store each is one atomic PUT, so the marker never exists without the whole pickle."""
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        self.storage.write_bytes(f"{UNITS_DIR}/{unit_id}.pkl", data, atomic=True)
        marker = {"unit": unit_id, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                  "written_by": {"host": socket.gethostname(), "pid": os.getpid(),
                                 "node_id": getattr(result, "node_id", None)}}
        self.storage.write_bytes(f"{UNITS_DIR}/{unit_id}.done.json", (json.dumps(marker) + "\n").encode(), atomic=True)

    def marker(self, unit_id: str) -> dict | None:
        """The unit's ``.done.json`` marker, or None when it is missing or unreadable."""
        try:
            return json.loads(self.storage.read_bytes(f"{UNITS_DIR}/{unit_id}.done.json"))
        except (OSError, ValueError):
            return None

    def load(self, unit_id: str) -> Any | None:
        """A unit's saved result if it is complete and intact, else None (the unit must be trained).

        Complete means: the marker exists and names this unit, the pickle has the marker's size and
        SHA-256, and it loads to an object whose ``unit_id`` is ``unit_id``.
        """
        marker = self.marker(unit_id)
        if marker is None:
            return None
        try:
            data = self.storage.read_bytes(f"{UNITS_DIR}/{unit_id}.pkl")
        except OSError:
            return None
        if (marker.get("unit") != unit_id or marker.get("bytes") != len(data)
                or marker.get("sha256") != hashlib.sha256(data).hexdigest()):
            return None
        try:
            result = pickle.loads(data)
        except Exception:  # a pickle from an incompatible version of the code: train the unit again
            return None
        return result if getattr(result, "unit_id", None) == unit_id else None


class RunDirectory:
    """Staging area for one run; :meth:`commit` makes it the complete run at ``--out``.

    Locally the staging directory is a hidden sibling renamed to ``out`` by :meth:`commit`; for a
    URI it is the prefix itself, complete once ``manifest.json`` is written (see the module doc).

    Args:
        out: final run directory (must not exist yet) or object-store URI (must hold no object yet).

    Raises:
        ConfigError: ``out`` already exists / holds objects (runs are never overwritten); for a
            URI also an unsupported scheme, a missing bucket, an unreachable endpoint or a failed
            write probe (checked here, before any training).
    """

    def __init__(self, out: str | Path):
        self.remote = is_uri(out)
        self.state: dict[str, Any] | None = None
        if self.remote:
            self.final = str(out)
            self.storage = Storage(out)
            self.storage.check_writable_prefix()
            self.staging = display_location(out)
        else:
            self.final = _local_path(out)
            self.check_available()
            self.staging = self.final.parent / f".{self.final.name}.partial-{uuid.uuid4().hex[:8]}"
            self.storage = Storage(self.staging)
        self.units = UnitStore(self.storage)

    @classmethod
    def resume(cls, path: str | Path) -> "RunDirectory":
        """The staging area of an interrupted run, with its saved ``run.json`` in :attr:`state`.

        Args:
            path: the staging directory itself (printed by ``fleet train`` when it starts), or the
                run's ``--out`` path, whose single ``.<name>.partial-*`` sibling is then used; or the
                run's URI (its prefix is its staging area).

        Raises:
            ConfigError: nothing resumable there, several interrupted runs for one ``--out``, the
                run is already complete, ``run.json`` is unreadable, or (URI) the store is unreachable.
        """
        if is_uri(path):
            return cls._resume_uri(str(path))
        p = _local_path(path)
        if (p / MANIFEST).is_file():
            raise ConfigError(f"--resume {p}: that run is complete (it has a manifest.json); nothing to resume")
        if (p / STATE_FILE).is_file():
            staging = p
        else:
            found = sorted(c for c in p.parent.glob(f".{p.name}.partial-*") if (c / STATE_FILE).is_file())
            if not found:
                raise ConfigError(f"--resume {p}: not an interrupted run (no {STATE_FILE} there, and no "
                                  f".{p.name}.partial-* staging directory beside it); pass the staging directory "
                                  "that `fleet train` printed when it started")
            if len(found) > 1:
                raise ConfigError(f"--resume {p}: {len(found)} interrupted runs for this --out "
                                  f"({', '.join(str(f) for f in found)}); pass one of them")
            staging = found[0]
        try:
            state = json.loads((staging / STATE_FILE).read_text())
            final = Path(state["out"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"--resume {staging}: unreadable {STATE_FILE} ({err})") from None
        run = cls.__new__(cls)
        run.remote = False
        run.final, run.staging, run.state = final, staging, state
        run.storage = Storage(staging)
        run.units = UnitStore(run.storage)
        run.check_available()
        return run

    @classmethod
    def _resume_uri(cls, uri: str) -> "RunDirectory":
        storage = Storage(uri)
        shown = display_location(uri)
        try:
            names = storage.list_names()
        except OSError as err:
            raise ConfigError(f"--resume {shown}: cannot reach the object store ({_one_line(err)})") from None
        if MANIFEST in names:
            raise ConfigError(f"--resume {shown}: that run is complete (it has a manifest.json); nothing to resume")
        if STATE_FILE not in names:
            raise ConfigError(f"--resume {shown}: not an interrupted run (no {STATE_FILE} under this prefix)")
        try:
            state = json.loads(storage.read_bytes(STATE_FILE))
            state["out"]  # noqa: B018 -- must be there
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"--resume {shown}: unreadable {STATE_FILE} ({err})") from None
        run = cls.__new__(cls)
        run.remote = True
        run.final, run.staging, run.state = uri, shown, state
        run.storage = storage
        run.units = UnitStore(storage)
        return run

    def check_available(self) -> None:
        if self.remote:
            if self.storage.is_file(MANIFEST):
                raise ConfigError(f"--out {self.staging}: a complete run is already there; runs are never overwritten")
            return
        if self.final.exists():
            raise ConfigError(f"--out {self.final}: a run directory already exists there; runs are never "
                              "overwritten, choose another --out")

    @property
    def shown(self) -> str:
        """The final location as printed and recorded (a URI without credentials)."""
        return display_location(self.final)

    def open(self, state: dict[str, Any] | None = None) -> "RunDirectory":
        """Create the staging directory (unless resuming; nothing to create on an object store) and
        save ``state`` as ``run.json``."""
        if not self.remote:
            self.staging.mkdir(parents=True, exist_ok=self.state is not None)
        if state is not None:
            out = self.shown if self.remote else str(self.final.resolve())
            self.state = {**state, "out": out}
            self.write_json(STATE_FILE, self.state)
        return self

    def unit_sink(self) -> UnitStore | None:
        """What workers save their unit's result with: the unit store for a URI run (shared storage every
        Ray node reaches), None for a local run (its path may exist only on the driver's machine, so the
        driver saves each result it receives)."""
        return self.units if self.remote else None

    def save_unit(self, unit_id: str, result: Any) -> None:
        """Write one unit's result, then its completeness marker (:meth:`UnitStore.save`)."""
        self.units.save(unit_id, result)

    def load_unit(self, unit_id: str) -> Any | None:
        """A unit's saved result if it is complete and intact, else None (:meth:`UnitStore.load`)."""
        return self.units.load(unit_id)

    def describe(self, relative: str = "") -> str:
        """Where ``relative`` is in the staging area, for messages."""
        return self.storage.describe(relative)

    def write_bytes(self, relative: str, data: bytes) -> None:
        self.storage.write_bytes(relative, data)

    def write_json(self, relative: str, data: Any) -> None:
        self.write_bytes(relative, (json.dumps(data, indent=2, default=_json_default) + "\n").encode())

    def write_csv(self, relative: str, frame: pd.DataFrame, float_format: str = "%.6g") -> None:
        self.write_bytes(relative, frame.to_csv(index=False, float_format=float_format).encode())

    def write_parquet(self, relative: str, frame: pd.DataFrame) -> None:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        self.write_bytes(relative, buf.getvalue())

    def write_pickle(self, relative: str, obj: Any) -> None:
        self.write_bytes(relative, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def delete(self, relative: str) -> None:
        self.storage.delete(relative)

    def commit(self) -> Path | str:
        """Make the run complete and return its location (a Path, or the URI without credentials).

        Locally: rename the staging directory to the final path. On an object store the run is
        complete once ``manifest.json`` is written (the driver writes it last), so this only removes
        the per-unit results (needed only to resume).
        """
        if self.remote:
            if not self.storage.is_file(MANIFEST):
                raise RunDirectoryError(f"{self.staging}: cannot commit a run without its {MANIFEST}")
            self.storage.delete_tree(UNITS_DIR)
            return self.shown
        self.check_available()
        os.rename(self.staging, self.final)
        shutil.rmtree(self.final / UNITS_DIR, ignore_errors=True)  # per-unit results: only needed to resume
        return self.final

    def abort(self) -> None:
        """Remove the staging directory / every object under the prefix (nothing is left behind; a URI
        run starts only on an empty prefix, so everything there is this run's)."""
        self.storage.delete_tree()


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory, fsync and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    with tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _json_default(obj: Any):
    if isinstance(obj, (pd.Timestamp,)):
        return obj.isoformat()
    if isinstance(obj, pd.Timedelta):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
