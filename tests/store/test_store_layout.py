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


def _clusters(n: int):
    import numpy as np

    from fleet.market.clustering import cluster_assets

    rng = np.random.default_rng(4)
    returns = pd.DataFrame(rng.normal(size=(300, n)) + rng.normal(size=(300, 1)),
                           columns=[f"S{i:04d}" for i in range(n)])
    return cluster_assets(returns)


def test_json_is_written_as_json_dumps_writes_it_also_with_lazy_correlation_rows(tmp_path):
    clusters = _clusters(40)
    eager = {**clusters.to_dict(), "when": pd.Timestamp("2024-01-01", tz="UTC")}
    lazy = {**clusters.to_dict(lazy_correlation=True), "when": pd.Timestamp("2024-01-01", tz="UTC")}
    layout = RunLayout(tmp_path)
    layout.write_json("lazy.json", lazy)
    expected = json.dumps({**eager, "when": "2024-01-01T00:00:00+00:00"}, indent=2) + "\n"  # the standard library's
    assert (tmp_path / "lazy.json").read_text() == expected
    assert json.loads(expected)["correlation"]["S0003"]["S0007"] == clusters.correlation.loc["S0003", "S0007"]


def test_lazy_correlation_rows_never_hold_the_whole_matrix(tmp_path):
    import tracemalloc

    clusters = _clusters(400)  # 160,000 correlations
    layout = RunLayout(tmp_path)
    peaks = {}
    for lazy in (False, True):
        tracemalloc.start()
        layout.write_json(f"c{lazy}.json", clusters.to_dict(lazy_correlation=lazy))
        peaks[lazy] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert (tmp_path / "cTrue.json").read_bytes() == (tmp_path / "cFalse.json").read_bytes()
    assert peaks[True] < peaks[False] / 5, peaks


def test_a_write_that_fails_midway_leaves_no_file(tmp_path):
    storage = Storage(tmp_path / "run")

    def chunks():
        yield b"{\n"
        raise TypeError("not JSON serialisable: object")

    with pytest.raises(TypeError, match="not JSON serialisable"):
        storage.write_chunks("manifest.json", chunks())
    assert not (tmp_path / "run" / "manifest.json").exists()
    with pytest.raises(TypeError, match="not JSON serialisable"):
        RunLayout(tmp_path / "run").write_json("clusters.json", {"a": object()})
    assert not (tmp_path / "run" / "clusters.json").exists()
