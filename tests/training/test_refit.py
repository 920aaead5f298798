"""--refit: every unit fitted once more on all the data up to the last bar, served instead of the last fold's.

Three tiny runs on the synthetic market with a 10-day hold-out: with --refit, with --refit on the same data whose
hold-out bars are scrambled, and without --refit. The refit must read no bar after the data's end (trivially) and
none of the hold-out's (its training rows stop at the hold-out's start, and scrambling the hold-out changes nothing
it fitted); the walk-forward's results and predictions are those of the run without --refit, which serves its last
fold's models as before.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import fleet
import fleet.training.driver as driver_mod  # where the driver fits each window's market
import fleet.training.graph as unit_mod  # where the prepare step builds the design matrices
from fleet.data.synthetic import synthetic_market
from fleet.evaluation.splits import Fold
from fleet.serving.predictor import FleetPredictor
from fleet.serving.schema import ModelsResponse
from fleet.store import layout as L
from fleet.training.refit_window import last_bar, refit_window

SYMBOLS = ["C0S0", "C1S0"]
HORIZON = 4
BAR = pd.Timedelta(hours=1)
HOLDOUT_DAYS = 10
SETTINGS = dict(folds=2, strategy="global", horizon=HORIZON, holdout_days=HOLDOUT_DAYS, clusters=2, bootstrap_reps=0,
                echo=None)


def _bars() -> pd.DataFrame:
    frames = synthetic_market(days=90, seed=0).panel.frames
    return pd.concat([frames[s].rename_axis("timestamp").reset_index().assign(symbol=s) for s in SYMBOLS],
                     ignore_index=True)


def _scrambled_after(bars: pd.DataFrame, after: pd.Timestamp) -> pd.DataFrame:
    """``bars`` with every bar after ``after`` moved by up to +-20 % (open, high, low and close alike, so each bar
    stays valid): a model that read any of them would differ."""
    out = bars.copy()
    late = out["timestamp"] > after
    scale = np.random.default_rng(7).uniform(0.8, 1.2, int(late.sum()))
    for col in ("open", "high", "low", "close"):
        out.loc[late, col] = out.loc[late, col].to_numpy() * scale
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(refit run, its training rows and market windows, refit run on scrambled hold-out bars, run without refit)."""
    base = tmp_path_factory.mktemp("refit")
    bars = _bars()
    seen: list[tuple[Fold, pd.Series]] = []
    windows: list[Fold] = []
    real_ds, real_market = unit_mod.build_unit_dataset, driver_mod.fit_fold_market

    def recording(**kw):
        ds = real_ds(**kw)
        seen.append((kw["fold"], ds.train_meta["timestamp"]))
        return ds

    def market(**kw):
        windows.append(kw["fold"])
        return real_market(**kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(unit_mod, "build_unit_dataset", recording)
    mp.setattr(driver_mod, "fit_fold_market", market)
    try:
        refit = fleet.train(bars, refit=True, out=str(base / "refit"), **SETTINGS)
    finally:
        mp.undo()
    after = pd.Timestamp(refit.manifest["holdout"]["after"])
    scrambled = fleet.train(_scrambled_after(bars, after), refit=True, out=str(base / "scrambled"), **SETTINGS)
    plain = fleet.train(bars, out=str(base / "plain"), **SETTINGS)
    return refit, seen, windows, scrambled, plain


def test_refit_window_holds_every_bar_up_to_the_last_one_before_the_holdout():
    timeline = pd.date_range("2024-01-01", periods=100, freq="h", tz="UTC")
    folds = [Fold(0, timeline[0], timeline[40], timeline[50], timeline[70]),
             Fold(1, timeline[0], timeline[60], timeline[70], timeline[99] + BAR)]
    whole = refit_window(folds, timeline, timeline[-1])
    assert whole.index == 2 and whole.train_start == timeline[0] and last_bar(whole) == timeline[-1]
    assert (timeline < whole.train_end).all() and whole.test_start == whole.test_end  # no test block
    cut = refit_window(folds, timeline, timeline[89] + pd.Timedelta(minutes=30))  # a hold-out starting off-grid
    assert last_bar(cut) == timeline[89]
    assert list(timeline[timeline < cut.train_end]) == list(timeline[:90])


def test_the_refit_sees_no_bar_of_the_holdout_nor_after_the_data(runs):
    refit, seen, windows, _, _ = runs
    after = pd.Timestamp(refit.manifest["holdout"]["after"])
    data_end = max(pd.Timestamp(t) for t in refit.manifest["data"]["last"].values())
    assert after == data_end - pd.Timedelta(days=HOLDOUT_DAYS)
    last_fold = refit.manifest["folds"][-1]["index"]
    refit_rows = [ts for fold, ts in seen if fold.index == last_fold + 1]
    assert len(refit_rows) == 1, "one refit unit (global)"
    # a training row's label window (t, t + h bars] ends at the hold-out's start at the latest: exactly there, so
    # the refit uses all the data before the hold-out and not one bar of it
    assert refit_rows[0].max() + HORIZON * BAR == after
    assert max(w.train_end for w in windows) <= after + BAR  # the clustering / factor fits: bars <= after only
    assert pd.Timestamp(refit.manifest["refit"]["last_bar"]) == after
    assert refit.served_model == "refit" and refit.trained_until == {"global": after}


def test_scrambling_the_holdout_changes_nothing_the_refit_fitted(runs):
    refit, _, _, scrambled, _ = runs
    a, b = refit.models["global"], scrambled.models["global"]
    assert {s: (p.d, p.mean, p.std) for s, p in a.preprocessors.items()} == \
        {s: (p.d, p.mean, p.std) for s, p in b.preprocessors.items()}
    after = pd.Timestamp(refit.manifest["holdout"]["after"])
    bars = _bars()
    own = bars[(bars["symbol"] == "C1S0") & (bars["timestamp"] <= after)]
    np.testing.assert_array_equal(refit.predict(own, all_bars=True)["p_up"],
                                  scrambled.predict(own, all_bars=True)["p_up"])
    fa = refit._layout.read_market_factor(L.REFIT_FACTOR)
    fb = scrambled._layout.read_market_factor(L.REFIT_FACTOR)
    pd.testing.assert_series_equal(fa[fa.index <= after], fb[fb.index <= after])  # loadings from the window only
    # ... while the hold-out itself was scrambled: its rows differ between the two runs
    a_rows, b_rows = refit.holdout_predictions, scrambled.holdout_predictions
    assert len(a_rows) > 0 and (a_rows["forward_return"] - b_rows["forward_return"]).abs().min() > 0


def test_refit_leaves_the_walk_forward_and_holdout_results_as_without_it(runs):
    refit, _, _, _, plain = runs
    for name in ("asset", "cluster", "fold", "holdout", "expert_weights"):
        pd.testing.assert_frame_equal(refit.results[name], plain.results[name])
    pd.testing.assert_frame_equal(refit.predictions, plain.predictions)
    pd.testing.assert_frame_equal(refit.holdout_predictions, plain.holdout_predictions)
    index = json.loads((refit.path / L.MODELS_INDEX).read_text())
    assert index == json.loads((plain.path / L.MODELS_INDEX).read_text())  # the last fold's models are kept too
    assert {u["unit"] for u in refit.manifest["units"]} == {u["unit"] for u in plain.manifest["units"]}
    assert [u["unit"] for u in refit.manifest["refit"]["units"]] == ["refit/global"]


def test_without_refit_the_last_folds_models_are_served(runs):
    _, _, _, _, plain = runs
    last = plain.manifest["folds"][-1]
    assert not (plain.path / L.REFIT_DIR).exists() and "refit" not in plain.manifest
    assert plain.served_model == f"fold {last['index']}"
    assert plain.trained_until == {"global": pd.Timestamp(last["train_end"])}
    models = ModelsResponse.model_validate(FleetPredictor(plain.path).describe())
    assert [(u.model, pd.Timestamp(u.trained_until)) for u in models.units] == \
        [(f"fold {last['index']}", pd.Timestamp(last["train_end"]))]
    served = plain._layout.read_pickle(L.model_file("global"))
    assert served.trained_until == plain.models["global"].trained_until


def test_models_response_names_the_refit_and_its_last_bar(runs):
    refit, _, _, _, _ = runs
    models = ModelsResponse.model_validate(FleetPredictor(refit.path).describe())
    after = pd.Timestamp(refit.manifest["holdout"]["after"])
    assert [(u.unit, u.model, pd.Timestamp(u.trained_until)) for u in models.units] == [("global", "refit", after)]
    required = ModelsResponse.model_json_schema()["$defs"]["UnitModelInfo"]["required"]
    assert {"model", "trained_until"} <= set(required)
    # the refit answers, not the last fold's model: they differ
    bars = _bars()
    own = bars[(bars["symbol"] == "C0S0") & (bars["timestamp"] <= after)]
    fold_model = refit._layout.read_pickle(L.model_file("global"))
    X = fold_model.design_matrix("C0S0", own.set_index("timestamp")[["open", "high", "low", "close", "volume"]],
                                 refit._layout.read_market_factor())
    X = X[X.notna().all(axis=1)]
    p_fold = pd.Series(fold_model.estimator.predict_proba(X)[:, 1], index=X.index)
    p_served = refit.predict(own, all_bars=True).set_index("timestamp")["p_up"]
    both = p_served.index.intersection(p_fold.index)
    assert len(both) > 1000 and (p_fold[both] - p_served[both]).abs().max() > 1e-3


@pytest.mark.slow
def test_the_refit_runs_the_whole_task_graph_alike_on_ray_and_locally(tmp_path, ray_session):
    """A mixture (inner folds, gate, policy) per cluster: the refit's models are the same from Ray actors."""
    base = dict(data={"days": 90}, synthetic={"n_clusters": 2, "assets_per_cluster": 2}, validation={"folds": 2},
                seed=3, refit=True, strategy="hierarchical",
                model={"experts": ["trend", "momentum"], "trend": {"max_iter": 40}})
    runs = {backend: fleet.train(None, base, out=str(tmp_path / backend), backend=backend, echo=None)
            for backend in ("local", "ray")}
    local, remote = runs["local"], runs["ray"]
    assert json.loads((local.path / L.REFIT_INDEX).read_text()) == json.loads((remote.path / L.REFIT_INDEX).read_text())
    tasks = remote.manifest["refit"]["tasks"]
    assert {"prepare", "inner", "gate", "full", "assemble"} <= {t["phase"] for t in tasks}
    assert all(t["node_id"] for t in tasks)  # run as Ray actor calls
    bars = _bars()
    own = bars[bars["symbol"] == "C1S0"]  # any bars under a served symbol: both runs answer the same input
    assert local.served_model == remote.served_model == "refit"
    pd.testing.assert_frame_equal(local.predict(own, all_bars=True), remote.predict(own, all_bars=True))
