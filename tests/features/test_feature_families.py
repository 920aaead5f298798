"""The feature-family registry: warm-ups that are exactly the bars a value needs, columns, the pipeline order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fleet.features.families import (FAMILIES, FAMILY_NAMES, FamilyParams, family, full_warmup, input_columns,
                                     selected)
from fleet.features.pipeline import feature_group_warmup


def _bars(n: int, bar: str, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame({"close": close, "high": close * 1.01, "low": close * 0.99, "volume": rng.lognormal(size=n)},
                        index=pd.date_range("2021-01-01", periods=n, freq=bar, tz="UTC"))


@pytest.mark.parametrize("name", FAMILY_NAMES)
@pytest.mark.parametrize("bar", ["1h", "4h"])
def test_warmup_is_the_exact_history_a_value_needs(name, bar):
    # The last value computed from the last `warmup` bars equals the value computed from a long history,
    # and one bar fewer changes it: the registry's warm-up is neither short nor padded.
    fam = family(name)
    frame = _bars(3000, bar)
    params = FamilyParams(horizon=4, sde_window=120, bar=pd.Timedelta(bar))
    w = fam.warmup(params)
    full = fam.compute(frame, params).iloc[-1].to_numpy(dtype=float)
    exact = fam.compute(frame.iloc[-w:], params).iloc[-1].to_numpy(dtype=float)
    short = fam.compute(frame.iloc[-(w - 1):], params).iloc[-1].to_numpy(dtype=float)
    np.testing.assert_allclose(exact, full, rtol=1e-9, atol=1e-12)
    assert not np.allclose(short, full, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_hand_computed_warmups():
    # 168-bar stress statistics over a 24-bar volatility; OU window + 1 closes; the fingerprint's 720-bar
    # Hurst over 8-bar sums on hourly bars, its 30-day volatility (30 bars + 1) on daily bars.
    hourly = FamilyParams(horizon=4, sde_window=168, bar=pd.Timedelta("1h"))
    daily = FamilyParams(horizon=4, sde_window=168, bar=pd.Timedelta("1D"))
    assert family("stress").warmup(hourly) == 168 + 24
    assert family("sde").warmup(hourly) == 169
    assert family("fingerprint").warmup(hourly) == 720 + 8
    assert family("fingerprint").warmup(daily) == 720 + 8
    assert family("fingerprint").warmup(FamilyParams(bar=pd.Timedelta("1min"))) == 30 * 1440 + 1
    assert full_warmup(("sde", "stress"), hourly) == 192
    assert full_warmup((), hourly) == 0
    assert feature_group_warmup(("stress", "sde", "fingerprint"), columns=("close",), bar=pd.Timedelta("1h"),
                                horizon=4, sde_window=168)[1] == 728


def test_families_need_only_their_columns():
    # On close-only bars each family computes without its optional columns; with all columns it computes
    # exactly those optional outputs more.
    params = FamilyParams(horizon=4, sde_window=100, bar=pd.Timedelta("1h"))
    bars = _bars(600, "1h")
    for fam in FAMILIES:
        assert set(fam.columns) <= {"close"}
        lean = fam.compute(bars[["close"]], params)
        full = fam.compute(bars, params)
        assert len(lean) == len(bars) and all(c.startswith(fam.prefix) for c in full.columns)
        assert set(full.columns) - set(lean.columns) == set(fam.optional)


def test_input_columns_of_served_features():
    assert input_columns(["ret_1", "asset_id"]) == set()
    assert input_columns(["sde_p_up", "fp_vol30"]) == {"close"}
    assert input_columns(["fp_spread", "stress_volume_shock"]) == {"close", "high", "low", "volume"}


def test_selected_keeps_registry_order_and_refuses_unknown_names():
    assert [f.name for f in selected(("fingerprint", "stress"))] == ["stress", "fingerprint"]
    with pytest.raises(ValueError, match="feature family 'volz': unknown; expected one of"):
        selected(("volz",))
