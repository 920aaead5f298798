"""The run directory: written under a temporary name and renamed into place at the end.

A crash, an interrupt or a rejected input therefore never leaves something at ``--out`` that
looks like a complete run, and an existing run is never overwritten.

Resumable staging: the staging directory ``<parent>/.<name>.partial-<id>/`` holds

* ``run.json`` — written when training starts: the final path, the resolved configuration, the
  planned unit ids and the data files' SHA-256, so ``fleet train --resume`` re-plans the same run
  and refuses one whose data changed;
* ``units/<unit id>.pkl`` + ``units/<unit id>.done.json`` — each unit's pickled result, written as
  the unit finishes (temporary file + ``os.replace``), then a marker with the pickle's SHA-256 and
  size. A unit is complete only when the marker exists, the sizes and checksum match and the
  pickle loads as that unit's result; anything else is trained again.

After the final rename the ``units/`` directory is removed (models and predictions are in their
usual places).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from fleet.errors import ConfigError

STATE_FILE = "run.json"
UNITS_DIR = "units"


def default_out() -> Path:
    """``runs/<UTC timestamp>`` under the current directory."""
    return Path("runs") / pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%SZ")


class RunDirectory:
    """Staging area for one run; :meth:`commit` renames it to the final path.

    Args:
        out: final run directory; must not exist yet.

    Raises:
        ConfigError: when ``out`` already exists (runs are never overwritten).
    """

    def __init__(self, out: str | Path):
        self.final = Path(out)
        self.check_available()
        self.staging = self.final.parent / f".{self.final.name}.partial-{uuid.uuid4().hex[:8]}"
        self.state: dict[str, Any] | None = None

    @classmethod
    def resume(cls, path: str | Path) -> "RunDirectory":
        """The staging area of an interrupted run, with its saved ``run.json`` in :attr:`state`.

        Args:
            path: the staging directory itself (printed by ``fleet train`` when it starts), or the
                run's ``--out`` path, whose single ``.<name>.partial-*`` sibling is then used.

        Raises:
            ConfigError: nothing resumable there, several interrupted runs for one ``--out``, the
                run is already complete, or ``run.json`` is unreadable.
        """
        p = Path(path)
        if (p / "manifest.json").is_file():
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
        run.final, run.staging, run.state = final, staging, state
        run.check_available()
        return run

    def check_available(self) -> None:
        if self.final.exists():
            raise ConfigError(f"--out {self.final}: a run directory already exists there; runs are never "
                              "overwritten, choose another --out")

    def open(self, state: dict[str, Any] | None = None) -> "RunDirectory":
        """Create the staging directory (unless resuming) and save ``state`` as ``run.json``."""
        self.staging.mkdir(parents=True, exist_ok=self.state is not None)
        if state is not None:
            self.state = {**state, "out": str(self.final.resolve())}
            self.write_json(STATE_FILE, self.state)
        return self

    def save_unit(self, unit_id: str, result: Any) -> None:
        """Write one unit's result atomically, then its completeness marker (pickle SHA-256 and size)."""
        pkl = self.path(f"{UNITS_DIR}/{unit_id}.pkl")
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        _write_atomic(pkl, data)
        marker = {"unit": unit_id, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        _write_atomic(pkl.with_suffix(".done.json"), (json.dumps(marker) + "\n").encode())

    def load_unit(self, unit_id: str) -> Any | None:
        """A unit's saved result if it is complete and intact, else None (the unit must be trained).

        Complete means: the marker exists and names this unit, the pickle has the marker's size and
        SHA-256, and it loads to an object whose ``unit_id`` is ``unit_id``.
        """
        pkl = self.staging / UNITS_DIR / f"{unit_id}.pkl"
        try:
            marker = json.loads(pkl.with_suffix(".done.json").read_text())
            data = pkl.read_bytes()
        except (OSError, ValueError):
            return None
        if (marker.get("unit") != unit_id or marker.get("bytes") != len(data)
                or marker.get("sha256") != hashlib.sha256(data).hexdigest()):
            return None
        try:
            result = pickle.loads(data)
        except Exception:  # a pickle from an incompatible version of the code: train the unit again
            return None
        return result if getattr(result, "unit_id", None) == unit_id else None

    def path(self, relative: str) -> Path:
        p = self.staging / relative
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, relative: str, data: Any) -> None:
        self.path(relative).write_text(json.dumps(data, indent=2, default=_json_default) + "\n")

    def write_csv(self, relative: str, frame: pd.DataFrame) -> None:
        frame.to_csv(self.path(relative), index=False, float_format="%.6g")

    def write_parquet(self, relative: str, frame: pd.DataFrame) -> None:
        frame.to_parquet(self.path(relative), index=False)

    def write_pickle(self, relative: str, obj: Any) -> None:
        with self.path(relative).open("wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)

    def commit(self) -> Path:
        """Rename the staging directory to the final path and return it."""
        self.check_available()
        os.rename(self.staging, self.final)
        shutil.rmtree(self.final / UNITS_DIR, ignore_errors=True)  # per-unit results: only needed to resume
        return self.final

    def abort(self) -> None:
        """Remove the staging directory (nothing is left behind)."""
        shutil.rmtree(self.staging, ignore_errors=True)


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
