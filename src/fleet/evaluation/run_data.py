"""What ``fleet report`` reads from a finished run directory, through its :class:`~fleet.store.layout.RunLayout`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fleet.errors import RunDirectoryError
from fleet.store import layout as L

#: Columns the report needs in predictions/<SYM>.parquet (older runs lack some of them).
PREDICTION_COLUMNS = ("timestamp", "fold", "p_up", "signal", "forward_return", "y", "return_1")


@dataclass
class RunData:
    """What the report reads from a run directory."""

    path: Path
    manifest: dict
    clusters: dict
    per_asset: pd.DataFrame
    per_cluster: pd.DataFrame
    per_fold: pd.DataFrame
    expert_weights: pd.DataFrame
    factor: pd.Series
    predictions: dict[str, pd.DataFrame]
    forced_entry: pd.DataFrame | None
    holdout: pd.DataFrame | None = None

    @property
    def horizon(self) -> int:
        return int(self.manifest["config"]["labels"]["horizon"])

    @property
    def cost_bps(self) -> float:
        return float(self.manifest["config"]["policy"]["cost_bps"])

    @property
    def threshold(self) -> float:
        return float(self.manifest["config"]["policy"]["threshold"])

    @property
    def bars_per_year(self) -> float:
        return float(self.manifest["bars_per_year"])

    @property
    def experts(self) -> list[str]:
        """The run's experts in order (expert_weights.csv's ``base_rate`` row is the select gate's constant, not
        an expert)."""
        return [e for e in dict.fromkeys(self.expert_weights["expert"].astype(str)) if e != "base_rate"]

    @property
    def fold_starts(self) -> list[pd.Timestamp]:
        """Test-block starts of the walk-forward folds (fold boundaries on time axes)."""
        return [pd.Timestamp(f["test_start"]) for f in self.manifest.get("folds", [])]

    @property
    def factor_fitted_until(self) -> pd.Timestamp | None:
        """End of the last fold's training window: the market factor's loadings are in-sample before it."""
        folds = self.manifest.get("folds", [])
        return pd.Timestamp(folds[-1]["train_end"]) if folds else None

    def pooled(self) -> pd.DataFrame:
        """Every asset's prediction rows in one frame, with a symbol column."""
        return pd.concat([p.assign(symbol=s) for s, p in self.predictions.items()], ignore_index=True)


def load_run(run_dir: str | Path) -> RunData:
    """Read what the report needs from a finished run directory.

    Raises:
        RunDirectoryError: the directory or one of its files is missing or unreadable, or the
            predictions lack a column the report needs (one line naming the file).
    """
    path = Path(run_dir)
    layout = L.RunLayout(path)
    if not layout.exists():
        raise RunDirectoryError(f"fleet report: run directory {path} not found")
    if layout.has(L.RESULTS_SEEDS) and not layout.has(L.MANIFEST):
        raise RunDirectoryError(f"fleet report: {path} holds a --seeds run; report one of its seed<k>/ directories")
    missing = layout.missing(L.REQUIRED_FILES)
    if missing:
        raise RunDirectoryError(f"fleet report: {layout.describe(missing[0])} is missing: {path} is not a complete "
                                "run directory (written by `fleet train`)")

    def read(name, fn):
        try:
            return fn(name)
        except Exception as err:  # any parse error -> one line naming the file
            raise RunDirectoryError(f"fleet report: cannot read {layout.describe(name)}: {err}") from None

    manifest, clusters = read(L.MANIFEST, layout.read_json), read(L.CLUSTERS, layout.read_json)
    _require_keys(layout, L.MANIFEST, manifest, ("config", "bars_per_year"))
    _require_keys(layout, L.CLUSTERS, clusters, ("cluster_map", "dominant_cluster", "linkage", "correlation"))
    per_asset = read(L.RESULTS_PER_ASSET, layout.read_csv)
    factor = read(L.MARKET_FACTOR, layout.read_parquet)
    if not {"timestamp", "market_factor"} <= set(factor.columns):
        raise RunDirectoryError(f"fleet report: {layout.describe(L.MARKET_FACTOR)}: expected columns timestamp, "
                                f"market_factor, found {', '.join(map(str, factor.columns))}")
    predictions = {}
    for symbol in per_asset["symbol"].astype(str):
        name = L.prediction_file(symbol)
        if not layout.has(name):
            raise RunDirectoryError(f"fleet report: {layout.describe(name)} is missing: {path} is not a complete "
                                    "run directory")
        frame = read(name, layout.read_parquet)
        missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
        if missing:
            raise RunDirectoryError(f"fleet report: {layout.describe(name)} has no {', '.join(missing)} column(s): "
                                    "written by an older fleet; train the run again to report it")
        predictions[symbol] = frame.sort_values("timestamp").reset_index(drop=True)
    optional = {name: read(name, layout.read_csv) if layout.has(name) else None
                for name in (L.FORCED_ENTRY, L.RESULTS_HOLDOUT)}
    return RunData(
        path=path, manifest=manifest, clusters=clusters, per_asset=per_asset,
        per_cluster=read(L.RESULTS_PER_CLUSTER, layout.read_csv),
        per_fold=read(L.RESULTS_PER_FOLD, layout.read_csv),
        expert_weights=read(L.EXPERT_WEIGHTS, layout.read_csv),
        factor=factor.set_index("timestamp")["market_factor"],
        predictions=predictions,
        forced_entry=optional[L.FORCED_ENTRY],
        holdout=optional[L.RESULTS_HOLDOUT],
    )


def _require_keys(layout: L.RunLayout, name: str, content: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        if key not in content:
            raise RunDirectoryError(f"fleet report: {layout.describe(name)} has no '{key}' entry")
