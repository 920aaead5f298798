"""The run directory's format: every file name and how each file is written and read.

One module owns it, for the writer (``fleet train``'s driver) and every reader (serving,
``fleet report``, ``fleet.Run``, ``fleet train --resume``); nothing else spells a file name of a
run directory. A complete run directory holds (``*``: in :data:`REQUIRED_FILES`)::

    manifest.json*            configuration, data, folds, versions, timings; written last (the
                              completion marker on an object store)
    results_per_asset.csv*    out-of-sample metrics per asset / cluster / (fold, asset);
    results_per_cluster.csv*  15 significant digits (RESULTS_FORMAT)
    results_per_fold.csv*
    results_holdout.csv       only with --holdout-days
    forced_entry.csv          only with --forced-entry
    policy_comparison.csv     only when the units set positions (--policy tuned, --sides both, --meta-label):
                              the fixed rule beside the units' policies (15 significant digits)
    expert_auc.csv            expert telemetry (6 significant digits)
    expert_weights.csv*
    predictions/<SYM>.parquet walk-forward predictions per asset; holdout_predictions/ likewise
    clusters.json*            last fold's clustering, plus every fold's cluster map
    market_factor.parquet*    columns timestamp, market_factor (last fold's factor)
    asset_registry.json*      the asset ids the run trained with
    models/index.json*        group -> {file, assets, trained_until, features}
    models/<group>.pkl        the last fold's unit models (pickles)
    models/refit/             only with --refit: index.json, <group>.pkl and market_factor.parquet of the
                              units refitted on all the data; served instead of the last fold's when present
    report/                   the HTML report (``fleet report``)

Every run also keeps ``run.json`` (the plan saved when it started: configuration, unit ids,
data files' SHA-256; what ``--resume`` reads). While a run is being written it also holds
``units/`` (each unit's result and its ``.done.json`` marker) and, after failed units,
``failures.json``; both are gone from a complete run. ``fleet train --seeds N`` writes ``seed<k>/`` runs and
``results_seeds.csv``.
"""

from __future__ import annotations

import io
import itertools
import json
import pickle
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from fleet.store.location import Storage

MANIFEST = "manifest.json"
STATE_FILE = "run.json"
UNITS_DIR = "units"
FAILURES = "failures.json"
RESULTS_PER_ASSET = "results_per_asset.csv"
RESULTS_PER_CLUSTER = "results_per_cluster.csv"
RESULTS_PER_FOLD = "results_per_fold.csv"
RESULTS_HOLDOUT = "results_holdout.csv"
RESULTS_SEEDS = "results_seeds.csv"
FORCED_ENTRY = "forced_entry.csv"
POLICY_COMPARISON = "policy_comparison.csv"
RESULTS_BOOK = "results_book.csv"
#: Results files with one row per asset (or ALL) under the ``symbol`` column.
SYMBOL_TABLES = frozenset({RESULTS_PER_ASSET, RESULTS_PER_FOLD, RESULTS_HOLDOUT, FORCED_ENTRY, POLICY_COMPARISON})
BOOK_CURVES = "book_curves.parquet"
EXPERT_AUC = "expert_auc.csv"
EXPERT_WEIGHTS = "expert_weights.csv"
CLUSTERS = "clusters.json"
MARKET_FACTOR = "market_factor.parquet"
ASSET_REGISTRY = "asset_registry.json"
MODELS_DIR = "models"
MODELS_INDEX = f"{MODELS_DIR}/index.json"
REFIT_DIR = f"{MODELS_DIR}/refit"
REFIT_INDEX = f"{REFIT_DIR}/index.json"
REFIT_FACTOR = f"{REFIT_DIR}/market_factor.parquet"
#: The first part of a refit unit's id (``refit/<group>``; a fold's units are ``fold<k>/<group>``).
REFIT_UNIT = "refit"
PREDICTIONS_DIR = "predictions"
HOLDOUT_PREDICTIONS_DIR = "holdout_predictions"
REPORT_DIR = "report"

#: Files every complete run directory holds (serving, ``fleet report`` and ``fleet.Run`` check them).
REQUIRED_FILES = (MANIFEST, MODELS_INDEX, MARKET_FACTOR, ASSET_REGISTRY, CLUSTERS, RESULTS_PER_ASSET,
                  RESULTS_PER_CLUSTER, RESULTS_PER_FOLD, EXPERT_WEIGHTS)

#: Result tables by short name (``fleet.Run.table``) -> file; the optional ones exist only when configured.
TABLES = {"asset": RESULTS_PER_ASSET, "cluster": RESULTS_PER_CLUSTER, "fold": RESULTS_PER_FOLD,
          "holdout": RESULTS_HOLDOUT, "forced_entry": FORCED_ENTRY, "policy": POLICY_COMPARISON,
          "expert_auc": EXPERT_AUC, "book": RESULTS_BOOK,
          "expert_weights": EXPERT_WEIGHTS}

#: Results tables keep 15 significant digits, so a figure can be recomputed from predictions/ and
#: compared to ~1e-12; the other CSVs keep 6.
RESULTS_FORMAT = "%.15g"
OTHER_FORMAT = "%.6g"
_PRECISE = {RESULTS_PER_ASSET, RESULTS_PER_CLUSTER, RESULTS_PER_FOLD, RESULTS_HOLDOUT, POLICY_COMPARISON, RESULTS_BOOK}


def prediction_file(symbol: str, holdout: bool = False) -> str:
    """``predictions/<symbol>.parquet`` (``holdout_predictions/`` for the hold-out rows)."""
    return f"{HOLDOUT_PREDICTIONS_DIR if holdout else PREDICTIONS_DIR}/{symbol}.parquet"


def model_file(group: str, refit: bool = False) -> str:
    """``models/<group>.pkl``: one group's model of the last fold; ``models/refit/<group>.pkl``: its refit."""
    return f"{REFIT_DIR if refit else MODELS_DIR}/{group}.pkl"


def is_refit_unit(unit_id: str) -> bool:
    """Whether ``unit_id`` names a refit unit (``refit/<group>``) rather than a fold's."""
    return unit_id.startswith(f"{REFIT_UNIT}/")


def unit_part_file(unit_id: str, symbol: str) -> str:
    """``units/<unit id>/<symbol>.parquet``: one asset's out-of-sample rows of one unit, before the run's policy."""
    return f"{UNITS_DIR}/{unit_id}/{symbol}.parquet"


def model_entry(group: str, model: Any, refit: bool = False) -> dict:
    """The ``models/index.json`` (``models/refit/index.json``) entry of one group's model (``assets``,
    ``trained_until``, ``feature_names``)."""
    return {"file": model_file(group, refit), "assets": model.assets,
            "trained_until": model.trained_until.isoformat(), "features": model.feature_names}


def unit_files(unit_id: str) -> tuple[str, str]:
    """(pickle, completeness marker) of one unit's saved result: ``units/<unit id>.pkl`` / ``.done.json``."""
    return f"{UNITS_DIR}/{unit_id}.pkl", f"{UNITS_DIR}/{unit_id}.done.json"


class RunLayout:
    """Typed reads and writes of one run directory's files, local or on an object store.

    Args:
        where: a :class:`~fleet.store.location.Storage`, or a local path / URI to open one on.

    Reads raise what the filesystem or the parser raises (OSError, FileNotFoundError, ValueError,
    ...); callers turn them into a :class:`~fleet.errors.RunDirectoryError` in their own words.
    """

    def __init__(self, where: Storage | str | Path):
        self.storage = where if isinstance(where, Storage) else Storage(where)

    def describe(self, relative: str = "") -> str:
        """Where ``relative`` is, for messages (a local path as given; a URI without credentials)."""
        return self.storage.describe(relative)

    # ------------------------------------------------------------------------------------------ writing
    def write_bytes(self, relative: str, data: bytes) -> None:
        self.storage.write_bytes(relative, data)

    def write_json(self, relative: str, data: Any) -> None:
        """Indented JSON; timestamps as ISO text, numpy scalars and arrays as numbers and lists, any other
        ``Mapping`` as an object (made when it is reached). The text is the one ``json.dumps(data, indent=2)``
        gives, encoded and written a block at a time (:meth:`~fleet.store.location.Storage.write_chunks`): a large
        file (``clusters.json`` of 1,000 assets holds a million correlations) is never one string in memory."""
        chunks = json.JSONEncoder(indent=2, default=_json_default).iterencode(data)
        self.storage.write_chunks(relative, _blocks(itertools.chain(chunks, ["\n"])))

    def write_csv(self, relative: str, frame: pd.DataFrame) -> None:
        """CSV without the index: results tables with 15 significant digits, the others with 6."""
        fmt = RESULTS_FORMAT if relative in _PRECISE else OTHER_FORMAT
        self.write_bytes(relative, frame.to_csv(index=False, float_format=fmt).encode())

    def write_parquet(self, relative: str, frame: pd.DataFrame) -> None:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        self.write_bytes(relative, buf.getvalue())

    def write_pickle(self, relative: str, obj: Any) -> None:
        self.write_bytes(relative, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))

    def write_tables(self, tables: dict[str, pd.DataFrame | None]) -> None:
        """Result tables by file name (:data:`TABLES` values); None entries are not written."""
        for name, frame in tables.items():
            if frame is not None:
                self.write_csv(name, frame)

    def write_predictions(self, predictions: pd.DataFrame, columns: list[str], *, holdout: bool = False) -> None:
        """One parquet per asset (``columns`` of its rows, by timestamp) under predictions/ or holdout_predictions/."""
        for symbol, rows in predictions.groupby("symbol", sort=True):
            self.write_parquet(prediction_file(str(symbol), holdout),
                               rows[columns].sort_values("timestamp").reset_index(drop=True))

    def write_market_factor(self, factor: pd.Series, relative: str = MARKET_FACTOR) -> None:
        """The factor series (DatetimeIndex) as columns timestamp, market_factor (the refit's: ``REFIT_FACTOR``)."""
        self.write_parquet(relative, factor.rename("market_factor").rename_axis("timestamp").reset_index())

    def write_registry(self, registry: dict) -> None:
        self.write_bytes(ASSET_REGISTRY, (json.dumps(registry, indent=2) + "\n").encode())

    def write_models(self, models: dict[str, Any]) -> dict[str, dict]:
        """Pickle each group's served model and write ``models/index.json``; returns the index.

        ``models``: group -> model with ``assets``, ``trained_until`` (Timestamp) and ``feature_names``.
        """
        index = {}
        for group, model in models.items():
            self.write_pickle(model_file(group), model)
            index[group] = model_entry(group, model)
        self.write_json(MODELS_INDEX, index)
        return index

    def write_manifest(self, manifest: dict) -> None:
        """``manifest.json``: write it last (on an object store it marks the run complete)."""
        self.write_json(MANIFEST, manifest)

    # ------------------------------------------------------------------------------------------ reading
    def exists(self) -> bool:
        return self.storage.exists()

    def has(self, relative: str) -> bool:
        return self.storage.is_file(relative)

    def missing(self, required: tuple[str, ...] = REQUIRED_FILES) -> list[str]:
        """The files of ``required`` that are not there (in that order)."""
        return [name for name in required if not self.storage.is_file(name)]

    def prediction_symbols(self, holdout: bool = False) -> list[str]:
        """Symbols with a file under predictions/ (or holdout_predictions/), sorted; empty when none."""
        folder = HOLDOUT_PREDICTIONS_DIR if holdout else PREDICTIONS_DIR
        return [n[: -len(".parquet")] for n in self.storage.list_names(folder) if n.endswith(".parquet")]

    def read_json(self, relative: str) -> Any:
        return json.loads(self.storage.read_bytes(relative))

    def read_csv(self, relative: str) -> pd.DataFrame:
        """A CSV of the run; the asset column of a results file written by an older version (``asset``) is read
        as ``symbol``, the name every table uses now."""
        frame = pd.read_csv(io.BytesIO(self.storage.read_bytes(relative)))
        if relative in SYMBOL_TABLES and "asset" in frame.columns and "symbol" not in frame.columns:
            frame = frame.rename(columns={"asset": "symbol"})
        return frame

    def read_parquet(self, relative: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.storage.read_bytes(relative)))

    def read_pickle(self, relative: str) -> Any:
        """Unpickle ``relative`` (only for run directories you trust: a pickle runs code when loaded)."""
        return pickle.loads(self.storage.read_bytes(relative))

    def read_manifest(self) -> dict:
        return self.read_json(MANIFEST)

    def read_market_factor(self, relative: str = MARKET_FACTOR) -> pd.Series:
        """The stored factor (the last fold's, or the refit's: ``REFIT_FACTOR``) as a float64 Series on a UTC
        DatetimeIndex.

        Raises:
            KeyError: the file lacks the timestamp or market_factor column.
        """
        stored = self.read_parquet(relative)
        ts = pd.DatetimeIndex(pd.to_datetime(stored["timestamp"], utc=True))
        return pd.Series(stored["market_factor"].to_numpy(dtype="float64"), index=ts, name="market_factor")


#: Characters of JSON text gathered before one write.
JSON_BLOCK = 1 << 16


def _blocks(chunks: Iterator[str]) -> Iterator[bytes]:
    """``chunks`` (many short strings) joined into UTF-8 blocks of about :data:`JSON_BLOCK` characters."""
    block, size = [], 0
    for chunk in chunks:
        block.append(chunk)
        size += len(chunk)
        if size >= JSON_BLOCK:
            yield "".join(block).encode()
            block, size = [], 0
    if block:
        yield "".join(block).encode()


def _json_default(obj: Any):
    if isinstance(obj, Mapping):  # e.g. a lazy mapping (fleet.market.clustering.CorrelationRows): made as written
        return dict(obj.items())
    if isinstance(obj, (pd.Timestamp,)):
        return obj.isoformat()
    if isinstance(obj, pd.Timedelta):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
