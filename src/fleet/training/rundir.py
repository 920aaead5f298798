"""The run directory: written under a temporary name and renamed into place at the end.

A crash, an interrupt or a rejected input therefore never leaves something at ``--out`` that
looks like a complete run, and an existing run is never overwritten.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from fleet.errors import ConfigError


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

    def check_available(self) -> None:
        if self.final.exists():
            raise ConfigError(f"--out {self.final}: a run directory already exists there; runs are never "
                              "overwritten, choose another --out")

    def open(self) -> "RunDirectory":
        self.staging.mkdir(parents=True)
        return self

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
        return self.final

    def abort(self) -> None:
        """Remove the staging directory (nothing is left behind)."""
        shutil.rmtree(self.staging, ignore_errors=True)


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
