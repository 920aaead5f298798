"""The served artifact (fleet.models.artifact.UnitModel): runs pickled under the old class paths still load,
and loading one needs no training code."""

from __future__ import annotations

import pickle
import pickletools
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fleet.config import FleetConfig
from fleet.features.pipeline import AssetPreprocessor
from fleet.features.spec import FeatureSpec
from fleet.models.artifact import UnitModel, load_unit_model
from fleet.models.gate import RuleGate

OLD = {b"fleet.models.artifact\nUnitModel": b"fleet.training.unit\nUnitModel",
       b"fleet.features.pipeline\nAssetPreprocessor": b"fleet.training.dataset\nAssetPreprocessor"}


def _model(features: FeatureSpec | None = FeatureSpec(), config: dict | None = None) -> UnitModel:
    """A served artifact; ``features=None``: one written without its feature settings (older runs)."""
    rsi = f"rsi_{14 if features is None else features.rsi_window}"
    prep = AssetPreprocessor(symbol="A", asset_id=0, d=0.4, adf_p_value=0.01, d_capped=False,
                             mean={"ret_1": 0.001, rsi: 50.0}, std={"ret_1": 0.02, rsi: 10.0})
    gate = RuleGate(top_k=1).fit(pd.DataFrame({"fp_vol30": [0.1]}), expert_names=["trend", "stress"])
    return UnitModel(group="cluster0", assets={"A": 0}, estimator=gate, preprocessors={"A": prep},
                     feature_names=["ret_1", rsi, "asset_id"], trained_until=pd.Timestamp("2024-01-01", tz="UTC"),
                     config=FleetConfig().to_dict() if config is None else config, features=features)


def _old_stream() -> bytes:
    """A pickle byte stream as older runs wrote it: protocol 2 names classes as text (GLOBAL opcodes),
    so the new module paths can be swapped for the old ones byte for byte."""
    data = pickle.dumps(_model(features=None), protocol=2)
    for new, old in OLD.items():
        assert new in data
        data = data.replace(new, old)
    return data


def _globals(data: bytes) -> set[str]:
    return {str(arg) for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


def test_old_stream_names_the_old_paths_and_loads():
    data = _old_stream()
    assert {"fleet.training.unit UnitModel", "fleet.training.dataset AssetPreprocessor"} <= _globals(data)
    model = load_unit_model(data, source="old.pkl")
    assert type(model) is UnitModel and type(model.preprocessors["A"]) is AssetPreprocessor
    assert model.preprocessors["A"].d == 0.4 and model.estimator.expert_names_ == ["trend", "stress"]
    # A plain pickle.loads finds the aliases the old modules keep.
    assert type(pickle.loads(data)) is UnitModel


def test_loading_an_old_model_imports_no_training_code():
    code = ("import sys; from fleet.models.artifact import load_unit_model; "
            "m = load_unit_model(sys.stdin.buffer.read()); "
            "print(type(m).__module__, sorted(k for k in sys.modules if k.startswith('fleet.training')))")
    out = subprocess.run([sys.executable, "-c", code], input=_old_stream(), capture_output=True, check=True)
    assert out.stdout.decode().split() == ["fleet.models.artifact", "[]"]


def test_old_mlp_gate_path_resolves():
    from fleet.models import gate, gate_mlp

    assert gate.MLPGate is gate_mlp.MLPGate and gate.GateMLP is gate_mlp.GateMLP
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        gate.Nope  # noqa: B018


def test_new_pickles_name_the_new_paths_and_other_objects_are_refused():
    data = pickle.dumps(_model(), protocol=pickle.HIGHEST_PROTOCOL)
    assert b"fleet.training" not in data
    assert load_unit_model(data).group == "cluster0"
    with pytest.raises(TypeError, match="x.pkl: holds a dict, expected a UnitModel"):
        load_unit_model(pickle.dumps({"a": 1}), source="x.pkl")


def _bars(n: int = 400) -> tuple[dict[str, np.ndarray], pd.DatetimeIndex]:
    rng = np.random.default_rng(0)
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    return {"close": np.exp(np.cumsum(rng.normal(0, 0.01, n)))}, idx


def _wilder_rsi(close: np.ndarray, n: int) -> np.ndarray:
    """Wilder's RSI (New Concepts in Technical Trading Systems, 1978) by its recursion, NaN for the first n bars."""
    d = np.diff(close)
    up, down = np.clip(d, 0, None), np.clip(-d, 0, None)
    out = np.full(len(close), np.nan)
    gain, loss = up[:n].mean(), down[:n].mean()
    out[n] = 100.0 - 100.0 / (1.0 + gain / loss)
    for t in range(n, len(d)):
        gain, loss = (gain * (n - 1) + up[t]) / n, (loss * (n - 1) + down[t]) / n
        out[t + 1] = 100.0 - 100.0 / (1.0 + gain / loss)
    return out


def test_design_columns_match_the_pipeline():
    from fleet.features.pipeline import asset_feature_arrays

    cols, idx = _bars()
    X = _model().design_columns("A", cols, idx, None)
    raw, _ = asset_feature_arrays(cols, idx, d=0.4, factor=None, features=FeatureSpec())
    np.testing.assert_allclose(X["ret_1"], (raw["ret_1"] - 0.001) / 0.02)
    ret_1 = np.diff(np.log(cols["close"]))  # the 1-bar log return, computed here
    np.testing.assert_allclose(X["ret_1"][1:], (ret_1 - 0.001) / 0.02, rtol=1e-12)
    assert X["asset_id"].dtype == np.int64 and list(X) == ["ret_1", "rsi_14", "asset_id"]


def test_served_inputs_follow_the_stored_spec_not_the_config():
    # The artifact's config says rsi_window 14; its stored spec says 5: serving computes the RSI over 5 bars.
    cols, idx = _bars()
    config = FleetConfig().to_dict()
    assert config["features"]["rsi_window"] == 14
    X = _model(features=FeatureSpec(rsi_window=5), config=config).design_columns("A", cols, idx, None)
    assert list(X) == ["ret_1", "rsi_5", "asset_id"]
    want = _wilder_rsi(cols["close"], 5)
    ok = ~np.isnan(want)
    assert np.isnan(X["rsi_5"][~ok]).all()
    # the stored rsi is scaled with the artifact's (mean 50, std 10)
    np.testing.assert_allclose(X["rsi_5"][ok] * 10.0 + 50.0, want[ok], rtol=1e-9)
    fourteen = _wilder_rsi(cols["close"], 14)
    assert not np.allclose(X["rsi_5"][20:] * 10.0 + 50.0, fourteen[20:])


def test_a_model_without_feature_settings_gets_them_from_its_stored_config():
    cfg = FleetConfig(model={"experts": ["trend", "sde"], "sde": {"window": 120}}, labels={"horizon": 6},
                      features={"rsi_window": 9})
    model = load_unit_model(pickle.dumps(_model(features=None, config=cfg.to_dict())), source="old.pkl")
    f = model.features
    assert (f.sde_window, f.horizon, f.rsi_window, f.vol_window) == (120, 6, 9, 24)
    assert "sde" in f.groups
    spec = FeatureSpec(sde_window=77)
    assert load_unit_model(pickle.dumps(_model(features=spec))).features is not spec  # a copy, unpickled
    assert load_unit_model(pickle.dumps(_model(features=spec))).features == spec  # a stored spec is kept
    bad = FleetConfig().to_dict()
    bad["features"]["rsi_window"] = 0  # no longer a valid setting
    with pytest.raises(ValueError, match="old.pkl: the model stores no feature settings and its stored config"):
        load_unit_model(pickle.dumps(_model(features=None, config=bad)), source="old.pkl")
    with pytest.raises(ValueError, match="UnitModel.features is None"):
        _model(features=None).design_columns("A", *_bars(), None)
