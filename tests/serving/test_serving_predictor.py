"""Ray-free tests of fleet.serving.predictor: loading, validation, required bars, parity with training."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from conftest import candles_of, columns_of, last_fold_predictions
from fleet.errors import InsufficientHistoryError, RequestError, RunDirectoryError, UnknownSymbolError
from fleet.features.fracdiff import ffd_weights
from fleet.serving.predictor import FleetPredictor
from fleet.serving.schema import BatchRequest, PredictRequest


@pytest.fixture(scope="module", params=["hierarchical", "islands"])
def run(request, served_runs):
    run_dir, frames = served_runs[request.param]
    return FleetPredictor(run_dir), frames


def test_loads_every_unit_and_asset(run):
    predictor, frames = run
    assert set(predictor.assets) == set(frames)
    assert predictor.threshold == 0.55
    described = predictor.describe()
    assert described["model_version"] == predictor.run_dir.name
    assert sum(len(u["assets"]) for u in described["units"]) == len(frames)


def test_parity_with_stored_predictions_and_predict_proba_bars(run):
    predictor, frames = run
    for symbol in sorted(frames)[::3]:
        info = predictor.asset(symbol)
        model = predictor.units[info.unit]
        for _, row in last_fold_predictions(predictor.run_dir, symbol).iterrows():
            req = PredictRequest(symbol=symbol, candles=candles_of(frames[symbol], row["timestamp"]))
            got = predictor.predict(req)
            assert got.p_up == pytest.approx(row["p_up"], abs=1e-6)
            assert got.signal == int(row["signal"])
            offline = model.predict_proba_bars(symbol, frames[symbol][frames[symbol].index <= row["timestamp"]],
                                               predictor.factor).iloc[-1]
            assert got.p_up == pytest.approx(offline, abs=1e-6)
            assert got.as_of == row["timestamp"]
            assert got.gate_weights == {"trend": 1.0} and got.active_experts == ["trend"]


def test_recommended_window_reproduces_training(run):
    predictor, frames = run
    symbol = sorted(frames)[0]
    row = last_fold_predictions(predictor.run_dir, symbol, k=1).iloc[0]
    n = predictor.asset(symbol).recommended_bars
    got = predictor.predict(PredictRequest(symbol=symbol, candles=candles_of(frames[symbol], row["timestamp"], n)))
    assert got.p_up == pytest.approx(row["p_up"], abs=1e-6)


def test_required_bars_is_exact(run):
    predictor, frames = run
    symbol = sorted(frames)[-1]
    info = predictor.asset(symbol)
    f = predictor.config["features"]  # the run's settings as the manifest records them
    width = len(ffd_weights(info.d, threshold=f["ffd_threshold"], max_width=f["ffd_max_width"]))
    assert info.required_bars == max(width - 1, f["volume_window"] - 1, max(f["return_horizons"]), f["vol_window"]) + 1
    candles = candles_of(frames[symbol])
    assert math.isfinite(predictor.predict(PredictRequest(symbol=symbol, candles=candles[-info.required_bars:])).p_up)
    with pytest.raises(InsufficientHistoryError, match=f"{info.required_bars - 1} given, {info.required_bars} needed"):
        predictor.predict(PredictRequest(symbol=symbol, candles=candles[-(info.required_bars - 1):]))


def test_unknown_symbol_points_to_models_listing(run):
    predictor, frames = run
    candles = candles_of(next(iter(frames.values())), n=10)
    with pytest.raises(UnknownSymbolError, match="GET /v1/models"):
        predictor.predict(PredictRequest(symbol="NOPE", candles=candles))


def test_missing_column_names_candle(run):
    predictor, frames = run
    symbol = sorted(frames)[0]
    candles = candles_of(frames[symbol])
    del candles[7]["volume"]
    with pytest.raises(RequestError, match=r"candles\[7\]\.volume: missing") as err:
        predictor.predict(PredictRequest(symbol=symbol, candles=candles))
    assert err.value.field == "candles[7].volume"


def test_each_isolates_errors_and_batches_units(run):
    predictor, frames = run
    symbols = sorted(frames)
    good = [PredictRequest(symbol=s, candles=candles_of(frames[s])) for s in symbols[:4]]
    bad = PredictRequest(symbol="NOPE", candles=candles_of(frames[symbols[0]], n=5))
    out = predictor.predict_each([good[0], bad, *good[1:]], prefix_index=True)
    assert isinstance(out[1], UnknownSymbolError) and "requests[1]." in str(out[1])
    singles = [predictor.predict(r).p_up for r in good]
    assert [o.p_up for o in (out[0], *out[2:])] == pytest.approx(singles, abs=1e-12)
    with pytest.raises(UnknownSymbolError, match=r"requests\[1\]"):
        predictor.predict_many([good[0], bad], prefix_index=True)


def test_factor_missing_timestamps_count_as_zero(run):
    predictor, frames = run
    symbol = sorted(frames)[0]
    frame = frames[symbol].iloc[-800:].copy()
    shifted = frame.copy()
    shifted.index = shifted.index + pd.Timedelta(days=3650)  # far beyond the stored factor grid
    got = predictor.predict(PredictRequest(symbol=symbol, candles=candles_of(shifted)))
    model = predictor.units[predictor.asset(symbol).unit]
    zero = pd.Series(0.0, index=shifted.index)
    expected = model.predict_proba_bars(symbol, shifted, zero if "market_factor" in model.feature_names else None)
    assert got.p_up == pytest.approx(expected.iloc[-1], abs=1e-12)


def test_gate_weights_come_from_an_ensemble_that_exposes_them(run):
    predictor, frames = run
    symbol = sorted(frames)[0]
    model = predictor.units[predictor.asset(symbol).unit]

    class Ensemble:
        expert_names_ = ["trend", "pattern", "stress"]

        def __init__(self, inner):
            self.inner = inner

        def predict_proba(self, X):
            return self.inner.predict_proba(X)

        def gate_weights(self, X):
            return np.tile([0.7, 0.3, 0.0], (len(X), 1))

    original = model.estimator
    model.estimator = Ensemble(original)
    try:
        got = predictor.predict(PredictRequest(symbol=symbol, candles=candles_of(frames[symbol])))
    finally:
        model.estimator = original
    assert got.gate_weights == {"trend": 0.7, "pattern": 0.3, "stress": 0.0}
    assert got.active_experts == ["trend", "pattern"]


@pytest.mark.parametrize("mutate, where", [
    (lambda c: c[3].update(close=float("nan")), "close"),
    (lambda c: c[3].update(close=float("inf")), "close"),
    (lambda c: c[3].update(close=-1.0), "close"),
    (lambda c: c[3].update(volume=-5.0), "volume"),
    (lambda c: c[3].update(high=1.0, low=2.0), "high"),
    (lambda c: c[3].pop("close"), "close"),
    (lambda c: c[3].update(timestamp=c[2]["timestamp"]), "duplicates"),
    (lambda c: c.insert(0, c.pop(3)), "oldest first"),
    (lambda c: c[3].update(colour="red"), "colour"),
])
def test_schema_rejects_bad_candles(served_runs, mutate, where):
    _, frames = served_runs["hierarchical"]
    candles = candles_of(next(iter(frames.values())), n=10)
    mutate(candles)
    with pytest.raises(ValidationError, match=where):
        PredictRequest(symbol="X", candles=candles)
    with pytest.raises(ValidationError):
        BatchRequest(requests=[])


@pytest.mark.parametrize("remove", ["manifest.json", "models/index.json", "market_factor.parquet",
                                    "asset_registry.json", "models/cluster0.pkl"])
def test_incomplete_run_directory_names_the_file(served_runs, tmp_path, remove):
    run_dir, _ = served_runs["hierarchical"]
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / remove).unlink()
    with pytest.raises(RunDirectoryError, match=remove.replace(".", r"\.")):
        FleetPredictor(copy)
    with pytest.raises(RunDirectoryError, match="no such run directory"):
        FleetPredictor(tmp_path / "absent")


def test_columns_layout_equals_rows_and_batched_equals_single(run):
    """Columns and rows give the same answer; one batch (one model call per unit) equals one call per request."""
    predictor, frames = run
    reqs = []
    for symbol in sorted(frames):
        for end in frames[symbol].index[[-1, -30, -200]]:
            n = predictor.asset(symbol).recommended_bars
            reqs.append(PredictRequest(symbol=symbol, candles=candles_of(frames[symbol], end, n)))
            reqs.append(PredictRequest(symbol=symbol, candles=columns_of(frames[symbol], end, n)))
    singles = [predictor.predict(r) for r in reqs]
    batched = predictor.predict_each(reqs)
    for one, many in zip(singles, batched):
        assert many.p_up == pytest.approx(one.p_up, abs=1e-9)
        assert (many.symbol, many.as_of, many.signal) == (one.symbol, one.as_of, one.signal)
    for rows, cols in zip(singles[::2], singles[1::2]):
        assert cols.p_up == pytest.approx(rows.p_up, abs=1e-12) and cols.as_of == rows.as_of


def test_columns_layout_parity_with_training(run):
    predictor, frames = run
    symbol = sorted(frames)[1]
    for _, row in last_fold_predictions(predictor.run_dir, symbol, k=2).iterrows():
        got = predictor.predict(PredictRequest(symbol=symbol, candles=columns_of(frames[symbol], row["timestamp"])))
        assert got.p_up == pytest.approx(row["p_up"], abs=1e-6)
        assert got.as_of == row["timestamp"]


def test_columns_layout_missing_model_column_names_it(run):
    predictor, frames = run
    symbol = sorted(frames)[0]
    cols = columns_of(frames[symbol])
    del cols["volume"]
    with pytest.raises(RequestError, match=r"candles\.volume: missing") as err:
        predictor.predict(PredictRequest(symbol=symbol, candles=cols))
    assert err.value.field == "candles.volume"
    info = predictor.asset(symbol)
    short = columns_of(frames[symbol], n=info.required_bars - 1)
    with pytest.raises(InsufficientHistoryError, match=f"{info.required_bars - 1} given"):
        predictor.predict(PredictRequest(symbol=symbol, candles=short))


def _set(name, i, value):
    def mutate(c):
        c[name][i] = value
    return mutate


@pytest.mark.parametrize("mutate, where", [
    (_set("close", 3, float("nan")), "close"),
    (_set("close", 3, float("inf")), "close"),
    (_set("close", 3, -1.0), "close"),
    (_set("volume", 3, -5.0), "volume"),
    (lambda c: c.update(high=[1.0] * 10, low=[2.0] * 10), r"candles\.high\[0\]"),
    (lambda c: c.pop("close"), "close"),
    (lambda c: c["volume"].pop(), r"candles\.volume: 9 values for 10"),
    (lambda c: c["timestamp"].__setitem__(3, c["timestamp"][2]), r"candles\.timestamp\[3\].*duplicates"),
    (lambda c: c["timestamp"].insert(0, c["timestamp"].pop(3)), "oldest first"),
    (lambda c: c["timestamp"].__setitem__(3, "yesterday"), "timestamp"),
    (lambda c: c.update(colour=["red"] * 10), "colour"),
    (lambda c: c.update({k: [] for k in c}), "timestamp"),
])
def test_columns_layout_rejects_bad_input(served_runs, mutate, where):
    _, frames = served_runs["hierarchical"]
    cols = columns_of(next(iter(frames.values())), n=10)
    mutate(cols)
    with pytest.raises(ValidationError, match=where):
        PredictRequest(symbol="X", candles=cols)
