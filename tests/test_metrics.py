"""signal_metrics and summarise on tiny hand-computed arrays."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from fleet.errors import ConfigError, DataError
from fleet.evaluation.metrics import signal_metrics, summarise

Y = [1, 0, 1, 1, 0, 0]
P = [0.9, 0.8, 0.3, 0.6, 0.2, 0.56]
R = [0.01, -0.02, 0.03, 0.005, -0.01, 0.002]


def test_hand_computed():
    m = signal_metrics(Y, P, R, threshold=0.55, cost_bps=10.0)
    # signalled: rows 0, 1, 3, 5 -> 4 trades, 2 of them up (rows 0, 3); 3 positives in all
    assert m["trades"] == 4 and m["n"] == 6
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(2 / 3)
    # mean(0.01, -0.02, 0.005, 0.002) = -0.00075; minus a 10 bp round trip each side = 0.002
    assert m["expectancy"] == pytest.approx(-0.00275)
    # positive/negative pairs ranked right: 0.9 beats 3, 0.6 beats 2, 0.3 beats 1 -> 6 of 9
    assert m["auc"] == pytest.approx(6 / 9)
    assert set(m) == {"precision", "recall", "auc", "expectancy", "trades", "n"}


def test_threshold_is_strict_and_costs_scale():
    m = signal_metrics(Y, P, R, threshold=0.6, cost_bps=0.0)
    assert m["trades"] == 2                                 # 0.6 itself is not signalled
    assert m["expectancy"] == pytest.approx((0.01 - 0.02) / 2)
    m = signal_metrics(Y, P, R, threshold=0.6, cost_bps=25.0)
    assert m["expectancy"] == pytest.approx(-0.005 - 0.005)


def test_nan_cases_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        none = signal_metrics(Y, P, R, threshold=0.95)
        one_class = signal_metrics([0, 0, 0], [0.9, 0.1, 0.7], [0.01, 0.02, -0.01])
        empty = signal_metrics([], [], [])
    assert none["trades"] == 0
    assert math.isnan(none["precision"]) and math.isnan(none["expectancy"])
    assert none["recall"] == 0.0 and none["auc"] == pytest.approx(6 / 9)
    assert math.isnan(one_class["recall"]) and math.isnan(one_class["auc"])
    assert one_class["precision"] == 0.0 and one_class["trades"] == 2
    assert empty["n"] == 0 and empty["trades"] == 0 and math.isnan(empty["auc"])


def test_errors():
    with pytest.raises(DataError, match="differ in length"):
        signal_metrics([1, 0], [0.5], [0.0, 0.1])
    with pytest.raises(DataError, match=r"y_true: expected 0 or 1, not so at 1 row \(e\.g\. 1\)"):
        signal_metrics([1, 2], [0.5, 0.6], [0.0, 0.1])
    with pytest.raises(DataError, match=r"p_up: expected a probability in \[0, 1\], not so at 1 row \(e\.g\. 0\)"):
        signal_metrics([1, 0], [np.nan, 0.6], [0.0, 0.1])
    with pytest.raises(DataError, match="forward_return: .*finite"):
        signal_metrics([1, 0], [0.5, 0.6], [0.0, np.inf])
    with pytest.raises(ConfigError, match="threshold=1.5"):
        signal_metrics(Y, P, R, threshold=1.5)
    with pytest.raises(ConfigError, match="cost_bps=-1.0"):
        signal_metrics(Y, P, R, cost_bps=-1)


def predictions() -> pd.DataFrame:
    ts = pd.date_range("2024-01-01", periods=6, freq="h", tz="UTC")
    return pd.DataFrame({
        "symbol": ["ETH", "BTC", "ETH", "BTC", "ETH", "BTC"],
        "timestamp": ts, "fold": [0, 0, 1, 1, 1, 1],
        "p_up": [0.9, 0.7, 0.3, 0.6, 0.8, 0.1],
        "y": [1, 0, 1, 1, 0, 0],
        "forward_return": [0.02, -0.01, 0.01, 0.03, -0.005, -0.02],
        "cluster": [0, 0, 0, 0, 0, 0],
    })


def test_summarise_by_symbol_hand_computed():
    out = summarise(predictions(), "symbol", threshold=0.55, cost_bps=0.0)
    assert list(out.columns) == ["symbol", "precision", "recall", "auc", "expectancy", "trades", "n", "folds"]
    assert out["symbol"].tolist() == ["BTC", "ETH"]
    btc, eth = out.iloc[0], out.iloc[1]
    # BTC rows: p 0.7, 0.6, 0.1; y 0, 1, 0; r -0.01, 0.03, -0.02 -> trades 0.7, 0.6
    assert (btc["trades"], btc["n"], btc["folds"]) == (2, 3, 2)
    assert btc["precision"] == pytest.approx(0.5) and btc["recall"] == pytest.approx(1.0)
    assert btc["expectancy"] == pytest.approx(0.01)
    assert btc["auc"] == pytest.approx(0.5)                  # the up bar (0.6) beats 0.1, not 0.7
    # ETH rows: p 0.9, 0.3, 0.8; y 1, 1, 0; r 0.02, 0.01, -0.005 -> trades 0.9, 0.8
    assert (eth["trades"], eth["n"], eth["folds"]) == (2, 3, 2)
    assert eth["precision"] == pytest.approx(0.5) and eth["recall"] == pytest.approx(0.5)
    assert eth["expectancy"] == pytest.approx(0.0075)
    assert eth["auc"] == pytest.approx(0.5)                  # 0.9 beats 0.8; 0.3 does not


def test_summarise_multiple_keys_and_overall():
    out = summarise(predictions(), ["symbol", "fold"], threshold=0.55, cost_bps=10.0)
    assert list(zip(out["symbol"], out["fold"])) == [("BTC", 0), ("BTC", 1), ("ETH", 0), ("ETH", 1)]
    assert out["folds"].tolist() == [1, 1, 1, 1]
    assert out["trades"].tolist() == [1, 1, 1, 1]
    assert out.loc[0, "expectancy"] == pytest.approx(-0.01 - 0.002)
    assert math.isnan(out.loc[0, "recall"])                 # BTC fold 0: no up bar
    overall = summarise(predictions(), [], threshold=0.55, cost_bps=0.0)
    assert len(overall) == 1 and overall.loc[0, "trades"] == 4 and overall.loc[0, "folds"] == 2
    assert overall.loc[0, "expectancy"] == pytest.approx((-0.01 + 0.03 + 0.02 - 0.005) / 4)


def test_summarise_errors():
    with pytest.raises(DataError, match=r"missing column\(s\) 'forward_return'.*found: symbol"):
        summarise(predictions().drop(columns="forward_return"), "symbol", threshold=0.55, cost_bps=10.0)
    with pytest.raises(DataError, match="missing column.*'sector'"):
        summarise(predictions(), "sector", threshold=0.55, cost_bps=10.0)
    bad = predictions()
    bad.loc[4, "p_up"] = 1.5
    with pytest.raises(DataError, match=r"predictions: p_up: expected .*not so at 1 row \(e\.g\. 4\)"):
        summarise(bad, "symbol", threshold=0.55, cost_bps=10.0)
