"""FeatureSpec: every feature setting of a configuration, read from the config's own fields, and its dict form."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from fleet.config import FleetConfig
from fleet.features.spec import FeatureSpec


def test_from_config_takes_each_setting_from_its_config_field():
    cfg = FleetConfig(features={"return_horizons": [1, 3], "vol_window": 30, "rsi_window": 9, "volume_window": 50,
                                "max_d": 0.8, "d_step": 0.1, "ffd_threshold": 1e-3, "ffd_max_width": 500},
                      labels={"horizon": 6}, model={"experts": ["trend", "sde", "stress"], "sde": {"window": 99}})
    spec = FeatureSpec.from_config(cfg)
    assert spec == FeatureSpec(return_horizons=(1, 3), vol_window=30, rsi_window=9, volume_window=50, max_d=0.8,
                               d_step=0.1, ffd_threshold=1e-3, ffd_max_width=500, horizon=6, sde_window=99,
                               groups=tuple(cfg.model.feature_groups()))
    assert {"sde", "stress"} <= set(spec.groups)


def test_defaults_equal_the_default_configuration_single_model_has_no_families():
    cfg = FleetConfig()
    assert FeatureSpec.from_config(cfg) == FeatureSpec(horizon=cfg.labels.horizon,
                                                       groups=tuple(cfg.model.feature_groups()),
                                                       sde_window=cfg.model.sde.window)
    single = SimpleNamespace(features=cfg.features, model=None, labels=SimpleNamespace(horizon=3))
    assert FeatureSpec.from_config(single).groups == () and FeatureSpec.from_config(single).horizon == 3


def test_dict_form_round_trips_through_json_and_refuses_unknown_settings():
    spec = FeatureSpec(return_horizons=(1, 4), groups=("sde", "fingerprint"), horizon=8, sde_window=120)
    text = json.dumps(spec.to_dict())
    assert json.loads(text)["groups"] == ["sde", "fingerprint"]
    back = FeatureSpec.from_dict(json.loads(text))
    assert back == spec and hash(back) == hash(spec)
    with pytest.raises(ValueError, match=r"unknown settings \['sde_windw'\]"):
        FeatureSpec.from_dict({"sde_windw": 3})
