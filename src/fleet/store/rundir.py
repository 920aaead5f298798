"""A run directory being written: staged locally and renamed into place, or written in place on an object store.

**Local paths** are written under a temporary name and renamed into place at the end, so a
crash, an interrupt or a rejected input never leaves something at ``--out`` that looks like a
complete run, and an existing run is never overwritten. The staging directory
``<parent>/.<name>.partial-<id>/`` holds

* ``run.json`` — written when training starts: the final path, the resolved configuration, the
  planned unit ids and the data files' SHA-256, so ``fleet train --resume`` re-plans the same run
  and refuses one whose data changed;
* ``units/<unit id>/<symbol>.parquet``, ``models/<group>.pkl`` (final fold), ``units/<unit id>.pkl`` +
  ``units/<unit id>.done.json`` — written by the worker that trained the unit, as it finishes
  (temporary file + rename): each asset's prediction rows, the served model, the rest of the result,
  then a marker with every file's SHA-256 and size. A unit is complete only when the marker exists,
  the sizes and checksums match and the pickle loads as that unit's result; anything else is
  trained again.

After the final rename the ``units/`` directory is removed (the prediction files are built from it
by the run's output tasks, :mod:`fleet.training.outputs`).

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
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import pickle
import socket
import uuid
from pathlib import Path
from typing import Any

from fleet.errors import ConfigError, RunDirectoryError
from fleet.store.layout import (MANIFEST, STATE_FILE, UNITS_DIR, RunLayout, is_refit_unit, model_entry, model_file,
                                unit_files, unit_part_file)
from fleet.store.location import Storage, display_location, is_uri, local_path, one_line


class UnitStore:
    """Where units' results are saved as they finish: ``units/`` of the run's staging area.

    Small and picklable: the worker that trained a unit (a Ray actor, or this process with the local backend)
    saves it (:meth:`save`): each asset's prediction rows as ``units/<unit id>/<symbol>.parquet``, a final-fold
    unit's model as ``models/<group>.pkl`` (a refit unit's as ``models/refit/<group>.pkl``), and the rest of the
    result (timings, FFD orders, gate and policy records) as ``units/<unit id>.pkl``. The driver keeps only that
    small rest.
    """

    def __init__(self, storage: Storage):
        self.storage = storage

    def _put(self, relative: str, data: bytes, files: dict) -> None:
        self.storage.write_bytes(relative, data, atomic=True)
        files[relative] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}

    def save(self, unit_id: str, result: Any) -> Any:
        """Write one unit's result, then its completeness marker; returns the result as the driver keeps it.

        The prediction rows (``result.predictions``, a frame with a ``symbol`` column) and the served model
        (``result.model``) are written to files of their own and left out of the returned copy, which names them
        (``parts``: symbol -> file; ``model_info``: the models index entry). The marker, written last, holds the
        SHA-256 and size of every file and which host / process / Ray node wrote it. Locally every file is an
        atomic replacement; on an object store each is one atomic PUT, so the marker never exists without the
        files it names.

        Raises:
            RunDirectoryError: the staging area is a local path that does not exist where this worker runs (a
                Ray node on another machine without a shared filesystem: use an object-store ``--out``).
        """
        if not self.storage.remote and not self.storage.exists():
            raise RunDirectoryError(
                f"{self.storage.describe()}: the run's staging directory is not on this machine "
                f"({socket.gethostname()}); on a Ray cluster of several machines write the run to a shared "
                "filesystem or an object store (--out s3://... or gs://...)")
        files: dict[str, dict] = {}
        kept = copy.copy(result)
        predictions = getattr(result, "predictions", None)
        if predictions is not None:
            kept.parts = {}
            for symbol, rows in predictions.groupby("symbol", sort=True):
                buf = io.BytesIO()
                rows.reset_index(drop=True).to_parquet(buf, index=False)
                kept.parts[str(symbol)] = unit_part_file(unit_id, str(symbol))
                self._put(kept.parts[str(symbol)], buf.getvalue(), files)
            kept.predictions = None
        model = getattr(result, "model", None)
        if model is not None:
            refit = is_refit_unit(unit_id)  # a refit unit's model: models/refit/<group>.pkl
            self._put(model_file(result.group, refit), pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), files)
            kept.model, kept.model_info = None, model_entry(result.group, model, refit)
        data = pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL)
        pkl, done = unit_files(unit_id)
        self.storage.write_bytes(pkl, data, atomic=True)
        marker = {"unit": unit_id, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "files": files,
                  "written_by": {"host": socket.gethostname(), "pid": os.getpid(),
                                 "node_id": getattr(result, "node_id", None)}}
        self.storage.write_bytes(done, (json.dumps(marker) + "\n").encode(), atomic=True)
        return kept

    def marker(self, unit_id: str) -> dict | None:
        """The unit's ``.done.json`` marker, or None when it is missing or unreadable."""
        try:
            return json.loads(self.storage.read_bytes(unit_files(unit_id)[1]))
        except (OSError, ValueError):
            return None

    def _intact(self, relative: str, expected: dict) -> bool:
        try:
            data = self.storage.read_bytes(relative)
        except OSError:
            return False
        return expected.get("bytes") == len(data) and expected.get("sha256") == hashlib.sha256(data).hexdigest()

    def load(self, unit_id: str) -> Any | None:
        """A unit's saved result (as :meth:`save` returned it) if it is complete and intact, else None (the unit
        must be trained).

        Complete means: the marker exists and names this unit, the pickle and every file the marker lists have
        the marker's sizes and SHA-256, and the pickle loads to an object whose ``unit_id`` is ``unit_id`` and
        that names its prediction files (a result saved by an older layout, rows inside, is trained again).
        """
        marker = self.marker(unit_id)
        if marker is None or marker.get("unit") != unit_id or "files" not in marker:
            return None
        pkl = unit_files(unit_id)[0]
        if not self._intact(pkl, marker) or not all(self._intact(f, e) for f, e in marker["files"].items()):
            return None
        try:
            result = pickle.loads(self.storage.read_bytes(pkl))
        except Exception:  # a pickle from an incompatible version of the code: train the unit again
            return None
        if getattr(result, "unit_id", None) != unit_id or getattr(result, "predictions", None) is not None:
            return None
        return result


class RunDirectory:
    """Staging area for one run; :meth:`commit` makes it the complete run at ``--out``.

    Locally the staging directory is a hidden sibling renamed to ``out`` by :meth:`commit`; for a
    URI it is the prefix itself, complete once ``manifest.json`` is written (see the module doc).
    Files are written through :attr:`layout` (:class:`~fleet.store.layout.RunLayout`).

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
            self._attach(Storage(out), display_location(out))
            _check_empty_prefix(self.storage)
        else:
            self.final = local_path(out)
            self.check_available()
            staging = self.final.parent / f".{self.final.name}.partial-{uuid.uuid4().hex[:8]}"
            self._attach(Storage(staging), staging)

    def _attach(self, storage: Storage, staging: Path | str) -> None:
        self.storage, self.staging = storage, staging
        self.units = UnitStore(storage)
        self.layout = RunLayout(storage)

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
            storage, shown = Storage(path), display_location(path)
            _check_resumable_prefix(storage, shown)
        else:
            storage = Storage(_local_staging(local_path(path)))
            shown = storage.root
        try:
            state = json.loads(storage.read_bytes(STATE_FILE))
            final = state["out"] if is_uri(path) else Path(state["out"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ConfigError(f"--resume {shown}: unreadable {STATE_FILE} ({err})") from None
        run = cls.__new__(cls)
        run.remote = is_uri(path)
        run.final, run.state = (str(path) if run.remote else final), state
        run._attach(storage, shown)
        if not run.remote:
            run.check_available()
        return run

    def check_available(self) -> None:
        """Refuse to write over a complete run.

        Raises:
            ConfigError: the final local path exists, or the URI prefix holds a ``manifest.json``.
        """
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
            self.layout.write_json(STATE_FILE, self.state)
        return self

    def unit_sink(self) -> UnitStore:
        """What workers save their unit's result with (:meth:`UnitStore.save`): every backend saves a unit where
        it trained it, so the prediction rows and models never pass through the driver. A local path must be
        reachable from every Ray node (one machine or a shared filesystem); a URI always is."""
        return self.units

    def save_unit(self, unit_id: str, result: Any) -> Any:
        """Write one unit's result, then its completeness marker (:meth:`UnitStore.save`); returns what is kept."""
        return self.units.save(unit_id, result)

    def load_unit(self, unit_id: str) -> Any | None:
        """A unit's saved result if it is complete and intact, else None (:meth:`UnitStore.load`)."""
        return self.units.load(unit_id)

    def describe(self, relative: str = "") -> str:
        """Where ``relative`` is in the staging area, for messages."""
        return self.storage.describe(relative)

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
        Storage(self.final).delete_tree(UNITS_DIR)  # per-unit results: only needed to resume
        return self.final

    def abort(self) -> None:
        """Remove the staging directory / every object under the prefix (nothing is left behind; a URI
        run starts only on an empty prefix, so everything there is this run's)."""
        self.storage.delete_tree()


def _check_empty_prefix(storage: Storage) -> None:
    """A URI run starts only on an empty, writable prefix.

    Raises:
        ConfigError: unreachable store, missing bucket, a run (complete or interrupted) or other
            objects already there, or a failed write probe.
    """
    shown = display_location(storage.location)
    existing = storage.check_writable()
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
    storage.probe_write()


def _check_resumable_prefix(storage: Storage, shown: str) -> None:
    """A URI to resume holds an interrupted run: a ``run.json`` and no ``manifest.json``.

    Raises:
        ConfigError: unreachable store, a complete run, or no run there.
    """
    try:
        names = storage.list_names()
    except OSError as err:
        raise ConfigError(f"--resume {shown}: cannot reach the object store ({one_line(err)})") from None
    if MANIFEST in names:
        raise ConfigError(f"--resume {shown}: that run is complete (it has a manifest.json); nothing to resume")
    if STATE_FILE not in names:
        raise ConfigError(f"--resume {shown}: not an interrupted run (no {STATE_FILE} under this prefix)")


def _local_staging(p: Path) -> Path:
    """The staging directory of the interrupted local run named by ``p`` (itself or its single sibling).

    Raises:
        ConfigError: the run is complete, there is no interrupted run, or several.
    """
    if (p / MANIFEST).is_file():
        raise ConfigError(f"--resume {p}: that run is complete (it has a manifest.json); nothing to resume")
    if (p / STATE_FILE).is_file():
        return p
    found = sorted(c for c in p.parent.glob(f".{p.name}.partial-*") if (c / STATE_FILE).is_file())
    if not found:
        raise ConfigError(f"--resume {p}: not an interrupted run (no {STATE_FILE} there, and no "
                          f".{p.name}.partial-* staging directory beside it); pass the staging directory "
                          "that `fleet train` printed when it started")
    if len(found) > 1:
        raise ConfigError(f"--resume {p}: {len(found)} interrupted runs for this --out "
                          f"({', '.join(str(f) for f in found)}); pass one of them")
    return found[0]
