"""The feature-family registry: warm-ups that are exactly the bars a value needs, columns, the pipeline order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fleet.features.families import FAMILIES, FAMILY_NAMES, family, full_warmup, input_columns, selected
from fleet.features.pipeline import feature_group_warmup
from fleet.features.spec import FeatureSpec


def _bars(n: int, bar: str, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    # market_factor: the run's factor at the bars, which the pipeline adds for the 'factor' family
    return pd.DataFrame({"close": close, "high": close * 1.01, "low": close * 0.99, "volume": rng.lognormal(size=n),
                         "market_factor": rng.normal(size=n)},
                        index=pd.date_range("2021-01-01", periods=n, freq=bar, tz="UTC"))


@pytest.mark.parametrize("name", FAMILY_NAMES)
@pytest.mark.parametrize("bar", ["1h", "4h"])
def test_warmup_is_the_exact_history_a_value_needs(name, bar):
    # The last value computed from the last `warmup` bars equals the value computed from a long history,
    # and one bar fewer changes it: the registry's warm-up is neither short nor padded.
    fam = family(name)
    frame = _bars(3000, bar)
    params = FeatureSpec(horizon=4, sde_window=120)
    w = fam.warmup(params, pd.Timedelta(bar))
    full = fam.compute(frame, params).iloc[-1].to_numpy(dtype=float)
    exact = fam.compute(frame.iloc[-w:], params).iloc[-1].to_numpy(dtype=float)
    short = fam.compute(frame.iloc[-(w - 1):], params).iloc[-1].to_numpy(dtype=float)
    np.testing.assert_allclose(exact, full, rtol=1e-9, atol=1e-12)
    assert not np.allclose(short, full, rtol=1e-9, atol=1e-12, equal_nan=True)


def test_hand_computed_warmups():
    # 168-bar stress statistics over a 24-bar volatility; OU window + 1 closes; the fingerprint's 720-bar
    # Hurst over 8-bar sums on hourly bars, its 30-day volatility (30 bars + 1) on daily bars.
    spec, hour, day = FeatureSpec(horizon=4, sde_window=168), pd.Timedelta("1h"), pd.Timedelta("1D")
    assert family("stress").warmup(spec, hour) == 168 + 24
    assert family("sde").warmup(spec, hour) == 169
    assert family("fingerprint").warmup(spec, hour) == 720 + 8
    assert family("fingerprint").warmup(spec, day) == 720 + 8
    assert family("fingerprint").warmup(spec, pd.Timedelta("1min")) == 30 * 1440 + 1
    assert full_warmup(FeatureSpec(horizon=4, sde_window=168, groups=("sde", "stress")), hour) == 192
    assert full_warmup(spec, hour) == 0
    assert family("factor").warmup(spec, hour) == 24  # the longest return horizon
    assert family("factor").warmup(FeatureSpec(return_horizons=(1,)), hour) == 1
    assert feature_group_warmup(FeatureSpec(horizon=4, sde_window=168, groups=("stress", "sde", "fingerprint")),
                                columns=("close",), bar=hour)[1] == 728
    with pytest.raises(ValueError, match="bar length is needed"):
        family("fingerprint").warmup(spec, None)


def test_families_need_only_their_columns():
    # On close-only bars each family computes without its optional columns; with all columns it computes
    # exactly those optional outputs more.
    params = FeatureSpec(horizon=4, sde_window=100)
    bars = _bars(600, "1h")
    for fam in FAMILIES:
        assert set(fam.columns) <= {"close"}
        lean = fam.compute(bars[["close", "market_factor"]], params)
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


def test_factor_returns_are_the_factor_summed_over_each_horizon():
    # factor_ret_h at bar t is the sum of the factor over bars t-h+1..t, checked against a direct loop; h = 1 is
    # the base market_factor feature and gets no column; without the factor the family refuses.
    bars = _bars(60, "1h")
    out = family("factor").compute(bars, FeatureSpec(return_horizons=(1, 4, 12)))
    assert list(out.columns) == ["factor_ret_4", "factor_ret_12"]
    f = bars["market_factor"].to_numpy()
    for h in (4, 12):
        want = [np.nan] * (h - 1) + [f[t - h + 1:t + 1].sum() for t in range(h - 1, len(f))]
        np.testing.assert_allclose(out[f"factor_ret_{h}"].to_numpy(), want, rtol=1e-12)
    from fleet.errors import DataError
    with pytest.raises(DataError, match="no market factor"):
        family("factor").compute(bars[["close"]], FeatureSpec())


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_no_family_value_reads_a_later_bar(name):
    # Perturbing every input (closes, volume, the factor) after bar t leaves each family's values up to t as
    # they were: no value uses a bar later than the one it is stamped with.
    params = FeatureSpec(horizon=4, sde_window=120)
    bars = _bars(1200, "1h")
    t = 1000
    later = bars.copy()
    rng = np.random.default_rng(9)
    later.iloc[t + 1:] = later.iloc[t + 1:] * rng.uniform(0.5, 1.5, size=later.iloc[t + 1:].shape)
    a, b = family(name).compute(bars, params), family(name).compute(later, params)
    np.testing.assert_allclose(a.iloc[:t + 1].to_numpy(float), b.iloc[:t + 1].to_numpy(float), rtol=1e-12,
                               equal_nan=True)
    assert not np.allclose(a.iloc[t + 1:].to_numpy(float), b.iloc[t + 1:].to_numpy(float), equal_nan=True)
