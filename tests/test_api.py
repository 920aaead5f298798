"""The Python API (fleet.train / fleet.load_run / fleet.Run) and the shared asset registry across runs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import fleet
from conftest import REPO, last_fold_predictions
from fleet.errors import ConfigError, DataError, RunDirectoryError, UnknownSymbolError

SMALL = dict(days=90, folds=2, strategy="global")


def _long(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    parts = [f.rename_axis("timestamp").reset_index().assign(symbol=s) for s, f in frames.items()]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def synthetic_frames():
    from fleet.data.synthetic import synthetic_market

    return synthetic_market(days=90, seed=0).panel.frames


def test_import_fleet_stays_light():
    code = "import sys, fleet; bad = [m for m in ('ray', 'fleet.api', 'fleet.training.driver', 'sklearn') if m in sys.modules]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": ""}).stdout
    assert out.strip() == "[]"


def test_unknown_override_and_bad_config_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown override fold=2; did you mean 'folds'"):
        fleet.train(None, fold=2)
    with pytest.raises(ConfigError, match="validation.folds=0"):
        fleet.train(None, folds=0, out=str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_dataframe_is_validated_like_a_file(synthetic_frames, tmp_path):
    frame = _long(synthetic_frames)
    frame.loc[5, "close"] = -1.0
    with pytest.raises(DataError, match=r"<DataFrame>.*close"):
        fleet.train(frame, **SMALL, out=str(tmp_path / "bad"), echo=None)
    with pytest.raises(DataError, match="<DataFrame>: missing column 'symbol'"):
        fleet.train(frame.drop(columns="symbol"), **SMALL, out=str(tmp_path / "bad"), echo=None)
    assert not (tmp_path / "bad").exists()


def test_load_run_refuses_a_non_run(tmp_path):
    with pytest.raises(RunDirectoryError, match="missing manifest.json"):
        fleet.load_run(tmp_path)


@pytest.fixture(scope="module")
def frame_run(synthetic_frames, tmp_path_factory):
    """A run trained from a long DataFrame (the synthetic market's bars), with a shared registry."""
    root = tmp_path_factory.mktemp("api")
    run = fleet.train(_long(synthetic_frames), **SMALL, out=str(root / "run"), registry=str(root / "ids.json"),
                      echo=None)
    return run, synthetic_frames, root


def test_train_from_dataframe_and_load_run(frame_run):
    run, frames, root = frame_run
    assert isinstance(run, fleet.Run)
    again = fleet.load_run(run.path)
    asset = again.results["asset"]
    assert set(asset["symbol"]) == set(frames) and {"auc", "sharpe_net"} <= set(asset.columns)
    assert {"asset", "cluster", "fold", "expert_auc", "expert_weights"} <= set(again.results)
    preds = again.predictions
    assert list(preds.columns[:2]) == ["timestamp", "symbol"] and set(preds["symbol"]) == set(frames)
    # Independent check: the stored per-symbol parquet files, concatenated.
    stored = sum(len(pd.read_parquet(p)) for p in (run.path / "predictions").glob("*.parquet"))
    assert len(preds) == stored
    assert again.config.validation.folds == 2 and again.config.data.days == 90
    assert again.manifest["registry"]["version"] == 1 and again.manifest["data"]["source"].startswith("in-memory")
    assert set(again.models) == {"global"}
    from fleet.serving.predictor import FleetPredictor
    from fleet.serving.schema import ModelsResponse

    served = ModelsResponse.model_validate(FleetPredictor(run.path).describe())  # what GET /v1/models answers
    assert served.registry_version == 1 and [u.registry_version for u in served.units] == [1]
    assert served.horizon_bars == again.config.labels.horizon
    assets = again.assets
    assert list(assets["symbol"]) == sorted(frames) and (assets["required_bars"] > 0).all()
    assert list(assets["asset_id"]) == [again.registry.id_of(s) for s in assets["symbol"]]
    assert again.registry.symbols == sorted(frames)


def test_predict_matches_the_served_predictor_and_training(frame_run):
    from fleet.serving.predictor import FleetPredictor
    from fleet.serving.schema import PredictRequest

    run, frames, _ = frame_run
    symbols = sorted(frames)[:3]
    reference = FleetPredictor(run.path)  # what the HTTP endpoint answers with
    for symbol in symbols:
        row = last_fold_predictions(run.path, symbol, k=2).iloc[-1]
        bars = frames[symbol][frames[symbol].index <= row["timestamp"]]
        got = run.predict(_long({symbol: bars}))
        assert len(got) == 1 and got["timestamp"].iloc[0] == row["timestamp"]
        candles = [{"timestamp": t.isoformat(), **{c: float(v) for c, v in r.items()}}
                   for t, r in zip(bars.index, bars.to_dict("records"))]
        http = reference.predict(PredictRequest.model_validate({"symbol": symbol, "candles": candles}))
        assert got["p_up"].iloc[0] == pytest.approx(http.p_up, abs=1e-6)
        assert got["p_up"].iloc[0] == pytest.approx(row["p_up"], abs=1e-6)  # and training's own number
        assert got["asset_id"].iloc[0] == http.asset_id and got["signal"].iloc[0] == http.signal
        assert got["w_trend"].iloc[0] == pytest.approx(http.gate_weights["trend"])


def test_predict_all_bars_matches_stored_predictions(frame_run):
    run, frames, _ = frame_run
    symbol = sorted(frames)[1]
    got = run.predict(_long({symbol: frames[symbol]}), all_bars=True).set_index("timestamp")
    stored = run.predictions
    last = stored[(stored["symbol"] == symbol) & (stored["fold"] == stored["fold"].max())].set_index("timestamp")
    common = last.index.intersection(got.index)
    assert len(common) > 100
    np.testing.assert_allclose(got.loc[common, "p_up"], last.loc[common, "p_up"], atol=1e-6)


def test_predict_refuses_unknown_symbol(frame_run):
    run, frames, _ = frame_run
    bars = _long({"NOPE": next(iter(frames.values()))})
    with pytest.raises(UnknownSymbolError, match="NOPE") as err:
        run.predict(bars)
    assert "Run.assets" in str(err.value) and "GET" not in str(err.value)  # Python advice, not HTTP


def test_predict_reports_a_missing_column_as_missing(frame_run):
    run, frames, _ = frame_run
    symbol = sorted(frames)[0]
    uses = run.assets.set_index("symbol").loc[symbol, "columns"]
    assert "volume" in uses
    with pytest.raises(DataError, match="volume.*missing"):
        run.predict(_long({symbol: frames[symbol].drop(columns="volume")}))


def test_columns_of_another_layout_are_mapped(frame_run, tmp_path):
    """A frame in mlforecast's unique_id / ds / y layout: mapped, it trains and predicts like fleet's own."""
    from fleet.api import map_columns

    run, frames, _ = frame_run
    theirs = _long(frames).rename(columns={"symbol": "unique_id", "timestamp": "ds", "close": "y"})
    names = dict(id_col="unique_id", time_col="ds", price_col="y")
    symbol = sorted(frames)[2]
    mine = run.predict(_long({symbol: frames[symbol]}))
    got = run.predict(theirs[theirs["unique_id"] == symbol], **names)
    pd.testing.assert_frame_equal(got, mine)
    assert list(theirs.columns) == list(_long(frames).rename(
        columns={"symbol": "unique_id", "timestamp": "ds", "close": "y"}).columns)  # the caller's frame is unchanged
    with pytest.raises(DataError, match="price_col='price' is not a column"):
        map_columns(theirs, id_col="unique_id", time_col="ds", price_col="price")
    with pytest.raises(DataError, match="has both 'y' and 'close'"):
        map_columns(theirs.assign(close=1.0), id_col="unique_id", time_col="ds", price_col="y")
    with pytest.raises(DataError, match="<DataFrame>: missing required columns 'timestamp' and 'close'"):
        fleet.train(theirs, **SMALL, out=str(tmp_path / "no"), echo=None)
    four = theirs[theirs["unique_id"].isin(sorted(frames)[:4])]
    trained = fleet.train(four, **SMALL, out=str(tmp_path / "mapped"), echo=None, **names)
    assert sorted(trained.predictions["symbol"].unique()) == sorted(frames)[:4]


def test_registry_keeps_ids_from_run_a_to_run_b(synthetic_frames, tmp_path):
    """Run A on 6 symbols, then run B on 8 that include A's 6: A's ids are the same in B."""
    registry = tmp_path / "ids.json"
    symbols = sorted(synthetic_frames)
    # B's extra symbols sort *before* some of A's: per-run ids (sorted order) would shift A's ids.
    a_syms = symbols[3:]
    b_syms = symbols[1:]
    a = fleet.train(_long(synthetic_frames), **SMALL, symbols=a_syms, registry=str(registry),
                    out=str(tmp_path / "a"), echo=None)
    b = fleet.train(_long(synthetic_frames), **SMALL, symbols=b_syms, registry=str(registry),
                    out=str(tmp_path / "b"), echo=None)
    ids_a = {s: a.registry.id_of(s) for s in a_syms}
    assert {s: b.registry.id_of(s) for s in a_syms} == ids_a
    assert sorted(ids_a.values()) == list(range(6))
    assert {b.registry.id_of(s) for s in symbols[1:3]} == {6, 7}
    assert (a.manifest["registry"]["version"], b.manifest["registry"]["version"]) == (1, 2)
    # The ids the models were trained with are the registry's (the served asset ids).
    for run, syms in ((a, a_syms), (b, b_syms)):
        prep = run.models["global"].preprocessors
        assert {s: prep[s].asset_id for s in syms} == {s: run.registry.id_of(s) for s in syms}
    saved = json.loads((tmp_path / "b" / "asset_registry.json").read_text())
    assert saved["metadata"]["version"] == 2 and saved["symbol_to_id"] == json.loads(registry.read_text())["symbol_to_id"]
    # Without a registry, ids are per run: what B would have got (sorted order) differs for A's symbols.
    assert {s: sorted(b_syms).index(s) for s in a_syms} != ids_a
