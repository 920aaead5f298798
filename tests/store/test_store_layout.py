"""store/: one owner of the run directory's names and formats, one Storage code path for local and remote."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from fleet.store import REQUIRED_FILES, RunLayout, Storage
from fleet.store import layout as L


def test_atomic_write_replaces_in_place_and_leaves_no_temporary(tmp_path):
    storage = Storage(tmp_path / "run")
    storage.write_bytes("units/fold0/A.pkl", b"first", atomic=True)
    storage.write_bytes("units/fold0/A.pkl", b"second", atomic=True)
    assert (tmp_path / "run" / "units" / "fold0" / "A.pkl").read_bytes() == b"second"
    assert os.listdir(tmp_path / "run" / "units" / "fold0") == ["A.pkl"]
    assert storage.list_names("units") == ["fold0"] and storage.list_names("nowhere") == []
    storage.delete("units/fold0/A.pkl")
    storage.delete("units/fold0/A.pkl")  # missing is fine
    assert not storage.is_file("units/fold0/A.pkl")
    storage.delete_tree()
    assert not (tmp_path / "run").exists() and not storage.exists()


def test_results_tables_keep_15_digits_and_the_others_6(tmp_path):
    layout = RunLayout(tmp_path)
    value = 0.123456789012345678
    frame = pd.DataFrame({"x": [value]})
    layout.write_csv(L.RESULTS_PER_ASSET, frame)
    layout.write_csv(L.EXPERT_AUC, frame)
    assert (tmp_path / L.RESULTS_PER_ASSET).read_text().split()[1] == "0.123456789012346"
    assert (tmp_path / L.EXPERT_AUC).read_text().split()[1] == "0.123457"
    assert layout.read_csv(L.RESULTS_PER_ASSET)["x"].iloc[0] == pytest.approx(value, abs=1e-15)


def test_predictions_and_factor_round_trip(tmp_path):
    layout = RunLayout(tmp_path)
    ts = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    rows = pd.DataFrame({"timestamp": ts[::-1].append(ts[::-1]), "symbol": ["B"] * 4 + ["A"] * 4,
                         "p_up": range(8)})
    layout.write_predictions(rows, ["timestamp", "p_up"])
    assert layout.prediction_symbols() == ["A", "B"] and layout.prediction_symbols(holdout=True) == []
    a = layout.read_parquet(L.prediction_file("A"))
    assert list(a.columns) == ["timestamp", "p_up"] and a["timestamp"].is_monotonic_increasing
    factor = pd.Series([0.1, -0.2, 0.3, 0.0], index=ts)
    layout.write_market_factor(factor)
    back = layout.read_market_factor()
    assert back.index.equals(ts) and back.to_numpy().tolist() == factor.to_numpy().tolist()


def test_a_trained_run_holds_every_required_file_and_names_come_from_the_layout(served_runs):
    run_dir, _ = served_runs["hierarchical"]
    layout = RunLayout(run_dir)
    assert layout.missing() == []
    index = json.loads((run_dir / L.MODELS_INDEX).read_text())
    assert all(entry["file"] == L.model_file(group) for group, entry in index.items())
    written = {str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file()}
    assert set(REQUIRED_FILES) <= written
    assert {L.prediction_file(s) for s in layout.prediction_symbols()} <= written
    assert L.STATE_FILE in written  # the saved plan stays; the per-unit results and failures do not
    assert not any(name.startswith((L.UNITS_DIR + "/", L.FAILURES)) for name in written)
    assert layout.missing(("no_such_file.csv", *REQUIRED_FILES)) == ["no_such_file.csv"]


def test_an_older_runs_asset_column_is_read_as_symbol(tmp_path):
    """Results files written before the tables named their asset column ``symbol`` read as the new ones; other
    files, and a file that already has ``symbol``, are read as they are."""
    from fleet.store.layout import RESULTS_PER_ASSET, RESULTS_PER_CLUSTER

    (tmp_path / RESULTS_PER_ASSET).write_text("asset,cluster,auc\nA,0,0.51\nB,1,0.49\n")
    (tmp_path / RESULTS_PER_CLUSTER).write_text("cluster,asset\n0,x\n")
    layout = RunLayout(tmp_path)
    assert list(layout.read_csv(RESULTS_PER_ASSET).columns) == ["symbol", "cluster", "auc"]
    assert layout.read_csv(RESULTS_PER_ASSET)["symbol"].tolist() == ["A", "B"]
    assert list(layout.read_csv(RESULTS_PER_CLUSTER).columns) == ["cluster", "asset"]
