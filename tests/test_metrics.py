"""signal_metrics and summarise on tiny hand-computed arrays."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from fleet.errors import ConfigError, DataError
from fleet.evaluation.metrics import (equity_returns, icir, information_coefficients, signal_metrics, summarise,
                                      trading_metrics)

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
    assert list(out.columns) == ["symbol", "precision", "recall", "auc", "expectancy", "ic", "rank_ic", "icir",
                                 "ann_return", "ann_return_net", "ir", "ir_net", "max_dd", "max_dd_net",
                                 "trades", "n", "folds"]
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


# --- ranking and equity-curve metrics, expected values worked out by hand -----------------------

def test_information_coefficients_hand_computed():
    p = [0.2, 0.4, 0.6, 0.8]
    r = [0.01, -0.01, 0.03, 0.05]
    # p - mean = (-0.3, -0.1, 0.1, 0.3); r - mean(0.02) = (-0.01, -0.03, 0.01, 0.03)
    # cov sum = 0.003 + 0.003 + 0.001 + 0.009 = 0.016; sum dp^2 = 0.2; sum dr^2 = 0.002
    ic, rank_ic = information_coefficients(p, r)
    assert ic == pytest.approx(0.016 / math.sqrt(0.2 * 0.002))
    # ranks of r: (2, 1, 3, 4) against (1, 2, 3, 4): Spearman 1 - 6 * (1 + 1) / (4 * 15) = 0.8
    assert rank_ic == pytest.approx(0.8)
    # ties get the average rank: r ranks (1.5, 1.5, 3, 4)
    # centred on the rank mean 2.5: r (-1, -1, 0.5, 1.5), p (-1.5, -0.5, 0.5, 1.5)
    # cov = 1.5 + 0.5 + 0.25 + 2.25 = 4.5; var_r = 1 + 1 + 0.25 + 2.25 = 4.5; var_p = 5
    _, tied = information_coefficients(p, [0.0, 0.0, 0.02, 0.04])
    assert tied == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert all(math.isnan(v) for v in information_coefficients([0.5, 0.5], [0.01, 0.02]))
        assert all(math.isnan(v) for v in information_coefficients([0.5], [0.01]))
        # a constant forecast whose centring leaves float noise is still NaN, not ~1e-17
        assert all(math.isnan(v) for v in information_coefficients([0.1] * 3, [0.01, 0.03, -0.02]))


def test_icir_hand_computed():
    # ICs 0.1, 0.3, 0.2: mean 0.2, sample std sqrt((0.01 + 0.01 + 0) / 2) = 0.1 -> ICIR 2
    assert icir([0.1, 0.3, 0.2]) == pytest.approx(2.0)
    assert icir([0.1, float("nan"), 0.3]) == pytest.approx(0.2 / math.sqrt(0.02))
    assert math.isnan(icir([0.1])) and math.isnan(icir([0.2, 0.2]))


def test_equity_curve_is_one_over_h_tranches():
    r = [0.04, -0.02, 0.01, 0.03]
    s = [1, 1, 0, 1]
    gross, net = equity_returns(r, s, horizon=2, cost_bps=5.0)
    # each signalled bar is half the capital (h = 2): 0.04/2, -0.02/2, 0, 0.03/2
    np.testing.assert_allclose(gross, [0.02, -0.01, 0.0, 0.015])
    # round trip 2 x 5 bp = 0.001 on a half-size tranche = 0.0005
    np.testing.assert_allclose(net, [0.0195, -0.0105, 0.0, 0.0145])
    with pytest.raises(ConfigError, match="horizon=0"):
        equity_returns(r, s, horizon=0, cost_bps=0.0)


def test_trading_metrics_hand_computed():
    x = [0.02, -0.01, 0.0, 0.015]
    m = trading_metrics(x, bars_per_year=100)
    # mean 0.025 / 4 = 0.00625 per bar -> 0.625 a year at 100 bars a year
    assert m["ann_return"] == pytest.approx(0.625)
    # deviations 0.01375, -0.01625, -0.00625, 0.00875: squares sum to 0.00056875, / 3 for ddof=1
    assert m["ir"] == pytest.approx(0.00625 / math.sqrt(0.00056875 / 3) * 10.0)
    # equity 0, 0.02, 0.01, 0.01, 0.025: worst fall from a peak is 0.02 -> 0.01
    assert m["max_dd"] == pytest.approx(0.01)
    # a curve that only falls: the starting 0 is the peak
    assert trading_metrics([-0.01, -0.02, 0.005], bars_per_year=252)["max_dd"] == pytest.approx(0.03)
    no_year = trading_metrics(x, bars_per_year=None)
    assert math.isnan(no_year["ann_return"]) and math.isnan(no_year["ir"]) and no_year["max_dd"] == pytest.approx(0.01)
    flat = trading_metrics([0.0, 0.0], bars_per_year=252)
    assert flat["ann_return"] == 0.0 and math.isnan(flat["ir"]) and flat["max_dd"] == 0.0
    with pytest.raises(ConfigError, match="bars_per_year=-1"):
        trading_metrics(x, bars_per_year=-1)


def test_signal_column_overrides_threshold():
    m = signal_metrics(Y, P, R, threshold=0.55, cost_bps=0.0, signal=[0, 0, 1, 0, 0, 0])
    assert m["trades"] == 1 and m["expectancy"] == pytest.approx(0.03) and m["precision"] == 1.0
    with pytest.raises(DataError, match=r"signal: expected 0 or 1, not so at 1 row \(e\.g\. 1\)"):
        signal_metrics(Y, P, R, signal=[0, 2, 1, 0, 0, 0])


def test_summarise_trading_and_rank_columns_hand_computed():
    out = summarise(predictions(), "symbol", threshold=0.55, cost_bps=10.0, horizon=2, bars_per_year=1000)
    btc = out.iloc[0]
    # BTC in time order: p 0.7, 0.6, 0.1; r -0.01, 0.03, -0.02; signals 1, 1, 0 (fold 0, 1, 1)
    # gross x = -0.005, 0.015, 0; net x = -0.006, 0.014, 0 (round trip 2 x 10 bp = 0.002, / h = 0.001)
    assert btc["ann_return"] == pytest.approx(0.01 / 3 * 1000)
    assert btc["ann_return_net"] == pytest.approx(0.008 / 3 * 1000)
    assert btc["max_dd"] == pytest.approx(0.005) and btc["max_dd_net"] == pytest.approx(0.006)
    # net x mean 0.008/3; deviations -0.026/3, 0.034/3, -0.008/3
    var = (0.026 ** 2 + 0.034 ** 2 + 0.008 ** 2) / 9 / 2
    assert btc["ir_net"] == pytest.approx(0.008 / 3 / math.sqrt(var) * math.sqrt(1000))
    # IC of (0.7, 0.6, 0.1) with (-0.01, 0.03, -0.02): p mean 1.4/3, r mean 0
    dp, dr = (0.7 / 3, 0.4 / 3, -1.1 / 3), (-0.01, 0.03, -0.02)
    assert btc["ic"] == pytest.approx(sum(a * b for a, b in zip(dp, dr))
                                      / math.sqrt(sum(a * a for a in dp) * sum(b * b for b in dr)))
    # ranks p (3, 2, 1) vs r (2, 3, 1): d = (1, -1, 0) -> 1 - 6 * 2 / (3 * 8) = 0.5
    assert btc["rank_ic"] == pytest.approx(0.5)
    # fold 0 has one BTC bar (no IC), so only one fold IC: no ICIR
    assert math.isnan(btc["icir"])


def test_summarise_group_curve_is_equal_weight_per_timestamp():
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    frame = pd.DataFrame({
        "symbol": ["A", "B", "A", "B"], "timestamp": [ts, ts, ts + pd.Timedelta("1h"), ts + pd.Timedelta("1h")],
        "fold": [0, 0, 1, 1], "p_up": [0.9, 0.9, 0.9, 0.1], "y": [1, 0, 0, 0],
        "forward_return": [0.02, -0.01, -0.04, 0.05],
    })
    out = summarise(frame, [], threshold=0.5, cost_bps=0.0, horizon=1, bars_per_year=10)
    # bar 1: mean(0.02, -0.01) = 0.005; bar 2: mean(-0.04, B not signalled 0) = -0.02
    assert out.loc[0, "ann_return"] == pytest.approx((0.005 - 0.02) / 2 * 10)
    assert out.loc[0, "max_dd"] == pytest.approx(0.02)
    # an explicit signal column wins over the threshold
    out = summarise(frame.assign(signal=[0, 0, 0, 1]), [], threshold=0.5, cost_bps=0.0, horizon=1, bars_per_year=10)
    assert out.loc[0, "trades"] == 1 and out.loc[0, "ann_return"] == pytest.approx((0.0 + 0.025) / 2 * 10)
