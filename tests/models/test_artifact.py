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
from fleet.models.artifact import UnitModel, load_unit_model
from fleet.models.gate import RuleGate

OLD = {b"fleet.models.artifact\nUnitModel": b"fleet.training.unit\nUnitModel",
       b"fleet.features.pipeline\nAssetPreprocessor": b"fleet.training.dataset\nAssetPreprocessor"}


def _model() -> UnitModel:
    prep = AssetPreprocessor(symbol="A", asset_id=0, d=0.4, adf_p_value=0.01, d_capped=False,
                             mean={"ret_1": 0.001}, std={"ret_1": 0.02})
    gate = RuleGate(top_k=1).fit(pd.DataFrame({"fp_vol30": [0.1]}), expert_names=["trend", "stress"])
    return UnitModel(group="cluster0", assets={"A": 0}, estimator=gate, preprocessors={"A": prep},
                     feature_names=["ret_1", "asset_id"], trained_until=pd.Timestamp("2024-01-01", tz="UTC"),
                     config=FleetConfig().to_dict())


def _old_stream() -> bytes:
    """A pickle byte stream as older runs wrote it: protocol 2 names classes as text (GLOBAL opcodes),
    so the new module paths can be swapped for the old ones byte for byte."""
    data = pickle.dumps(_model(), protocol=2)
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


def test_design_columns_match_the_pipeline():
    from fleet.config import FeatureConfig
    from fleet.features.pipeline import asset_feature_arrays

    n = 400
    rng = np.random.default_rng(0)
    idx = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    cols = {"close": np.exp(np.cumsum(rng.normal(0, 0.01, n)))}
    m = _model()
    X = m.design_columns("A", cols, idx, None)
    raw, _ = asset_feature_arrays(cols, idx, d=0.4, factor=None, config=FeatureConfig())
    np.testing.assert_allclose(X["ret_1"], (raw["ret_1"] - 0.001) / 0.02)
    assert X["asset_id"].dtype == np.int64 and list(X) == ["ret_1", "asset_id"]
