"""Tests of fleet.features.labels: hand-computed forward returns and up/down labels."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fleet.errors import ConfigError, DataError
from fleet.features import binary_label, forward_log_return

NAN = np.nan


def closes() -> pd.Series:
    index = pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC", name="timestamp")
    return pd.Series([100.0, 110.0, 99.0, 99.0, 121.0], index=index, name="close")


def test_forward_log_return_hand_computed():
    close = closes()
    one = forward_log_return(close, 1)
    expected = [math.log(1.1), math.log(0.9), 0.0, math.log(121 / 99), NAN]
    np.testing.assert_allclose(one.to_numpy(), expected, rtol=1e-14, atol=1e-15, equal_nan=True)
    assert one.index.equals(close.index)
    assert one.dtype == np.float64

    two = forward_log_return(close, 2)
    expected = [math.log(0.99), math.log(0.9), math.log(121 / 99), NAN, NAN]
    np.testing.assert_allclose(two.to_numpy(), expected, rtol=1e-14, atol=1e-15, equal_nan=True)


def test_last_horizon_values_are_nan():
    close = closes()
    for h in range(1, 8):
        out = forward_log_return(close, h)
        assert out.iloc[max(len(close) - h, 0):].isna().all()
        assert out.iloc[: max(len(close) - h, 0)].notna().all()


def test_nan_close_propagates():
    close = closes()
    close.iloc[2] = np.nan
    out = forward_log_return(close, 1)
    np.testing.assert_array_equal(out.isna().to_numpy(), [False, True, True, False, True])


def test_binary_label_hand_computed():
    fwd = pd.Series([0.02, -0.01, 0.0, NAN, 1e-12], index=list("abcde"))
    label = binary_label(fwd)
    np.testing.assert_array_equal(label.to_numpy(), [1.0, 0.0, 0.0, NAN, 1.0])
    assert label.index.equals(fwd.index)
    assert label.dtype == np.float64


def test_label_of_forward_return_chain():
    label = binary_label(forward_log_return(closes(), 1))
    np.testing.assert_array_equal(label.to_numpy(), [1.0, 0.0, 0.0, 1.0, NAN])


@pytest.mark.parametrize("horizon", [0, -1, 1.5, True])
def test_bad_horizon(horizon):
    with pytest.raises(ConfigError, match=f"horizon={horizon!r}"):
        forward_log_return(closes(), horizon)


def test_bad_prices():
    close = closes()
    close.iloc[[1, 3]] = [0.0, -5.0]
    with pytest.raises(DataError, match=r"invalid values at 2 rows \(e.g. 1, 3\)"):
        forward_log_return(close, 1)
