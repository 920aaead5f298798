"""signal_metrics, summarise and the marked-to-market book on tiny hand-computed arrays."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from fleet.errors import ConfigError, DataError
from fleet.evaluation.metrics import (book_pnl, exposure, icir, information_coefficients, mark_to_market,
                                      segments_of, signal_metrics, summarise, trading_metrics)

Y = [1, 0, 1, 1, 0, 0]
P = [0.9, 0.8, 0.3, 0.6, 0.2, 0.56]
R = [0.01, -0.02, 0.03, 0.005, -0.01, 0.002]


def test_hand_computed():
    m = signal_metrics(Y, P, R, threshold=0.55, cost_bps=10.0)
    # signalled: rows 0, 1, 3, 5 -> 4 signals, 2 of them up (rows 0, 3); 3 positives in all
    assert m["signals"] == 4 and m["n"] == 6
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(2 / 3)
    # positive/negative pairs ranked right: 0.9 beats 3, 0.6 beats 2, 0.3 beats 1 -> 6 of 9
    assert m["auc"] == pytest.approx(6 / 9)
    assert set(m) == {"precision", "recall", "auc", "signals", "n"}


def test_threshold_is_strict_and_costs_scale():
    m = signal_metrics(Y, P, R, threshold=0.6, cost_bps=0.0)
    assert m["signals"] == 2                                # 0.6 itself is not signalled


def test_nan_cases_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        none = signal_metrics(Y, P, R, threshold=0.95)
        one_class = signal_metrics([0, 0, 0], [0.9, 0.1, 0.7], [0.01, 0.02, -0.01])
        empty = signal_metrics([], [], [])
    assert none["signals"] == 0
    assert math.isnan(none["precision"])
    assert none["recall"] == 0.0 and none["auc"] == pytest.approx(6 / 9)
    assert math.isnan(one_class["recall"]) and math.isnan(one_class["auc"])
    assert one_class["precision"] == 0.0 and one_class["signals"] == 2
    assert empty["n"] == 0 and empty["signals"] == 0 and math.isnan(empty["auc"])


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
        "return_1": [0.004, -0.002, 0.006, 0.01, -0.003, -0.008],
        "cluster": [0, 0, 0, 0, 0, 0],
    })


def test_summarise_by_symbol_hand_computed():
    out = summarise(predictions(), "symbol", threshold=0.55, cost_bps=0.0)
    # the results files' order (results_per_asset.csv less asset and cluster)
    assert list(out.columns) == ["symbol", "precision", "recall", "auc", "auc_per_asset", "expectancy", "signals",
                                 "round_trips", "folds", "ic", "rank_ic", "icir", "sharpe", "sharpe_net", "ann_return",
                                 "ann_return_net", "max_dd", "max_dd_net", "exposure", "turnover", "auc_se",
                                 "auc_per_asset_se", "ic_se", "rank_ic_se", "sharpe_net_se", "n"]
    assert out["symbol"].tolist() == ["BTC", "ETH"]
    btc, eth = out.iloc[0], out.iloc[1]
    # BTC rows: p 0.7, 0.6, 0.1; y 0, 1, 0; return_1 -0.002, 0.01, -0.008 -> signals at 0.7, 0.6
    assert (btc["signals"], btc["n"], btc["folds"]) == (2, 3, 2)
    assert btc["precision"] == pytest.approx(0.5) and btc["recall"] == pytest.approx(1.0)
    # h = 1: long over bars 0 and 1, flat over bar 2 -> in at 0, out at 2: one round trip of the capital
    assert btc["round_trips"] == pytest.approx(1.0)
    assert btc["expectancy"] == pytest.approx(math.expm1(-0.002) + math.expm1(0.01))
    assert btc["auc"] == pytest.approx(0.5)                  # the up bar (0.6) beats 0.1, not 0.7
    # ETH rows: p 0.9, 0.3, 0.8; y 1, 1, 0 -> signals at 0.9, 0.8 (bars 0 and 2): two round trips
    assert (eth["signals"], eth["n"], eth["folds"]) == (2, 3, 2)
    assert eth["precision"] == pytest.approx(0.5) and eth["recall"] == pytest.approx(0.5)
    assert eth["round_trips"] == pytest.approx(2.0)
    assert eth["expectancy"] == pytest.approx((math.expm1(0.004) + math.expm1(-0.003)) / 2)
    assert eth["auc"] == pytest.approx(0.5)                  # 0.9 beats 0.8; 0.3 does not
    assert out["auc_se"].isna().all()                        # no bootstrap draws asked for


def test_summarise_multiple_keys_and_overall():
    out = summarise(predictions(), ["symbol", "fold"], threshold=0.55, cost_bps=10.0)
    assert list(zip(out["symbol"], out["fold"])) == [("BTC", 0), ("BTC", 1), ("ETH", 0), ("ETH", 1)]
    assert out["folds"].tolist() == [1, 1, 1, 1]
    assert out["signals"].tolist() == [1, 1, 1, 1]
    # BTC fold 0: one bar long (return_1 -0.002), in and out: one round trip paying 2 x 10 bp
    assert out.loc[0, "expectancy"] == pytest.approx(math.expm1(-0.002) - 0.002)
    assert math.isnan(out.loc[0, "recall"])                 # BTC fold 0: no up bar
    overall = summarise(predictions(), [], threshold=0.55, cost_bps=0.0)
    assert len(overall) == 1 and overall.loc[0, "signals"] == 4 and overall.loc[0, "folds"] == 2


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
    assert icir([0.1, 0.3, 0.2], min_periods=2) == pytest.approx(2.0)
    assert icir([0.1, float("nan"), 0.3], min_periods=2) == pytest.approx(0.2 / math.sqrt(0.02))
    assert math.isnan(icir([0.1], min_periods=1)) and math.isnan(icir([0.2, 0.2], min_periods=2))
    # the default needs five folds: three or four ICs are too few for a ratio of mean to spread
    assert math.isnan(icir([0.1, 0.3, 0.2, 0.25]))
    assert icir([0.1, 0.3, 0.2, 0.1, 0.3]) == pytest.approx(0.2 / np.std([0.1, 0.3, 0.2, 0.1, 0.3], ddof=1))


def loop_book(r1, s, h, cost_bps, seg=None):
    """The tranche book simulated trade by trade (a direct loop, independent of the vectorised code):
    a list of open tranches, each 1/h of the capital, opened at a signal and closed h bars later or
    at the end of its segment; the bar's order is (opened - closed) / h and pays cost on its size."""
    n = len(r1)
    seg = [0] * n if seg is None else list(seg)
    c = cost_bps / 1e4
    gross, net, open_ = [], [], []          # open_: bars left per tranche
    for t in range(n):
        if t > 0 and seg[t] != seg[t - 1]:
            open_ = []                      # closed at the previous segment's end (paid there)
        before = len(open_)
        open_ = [k - 1 for k in open_ if k - 1 > 0]   # tranches whose h bars are over close now
        closed = before - len(open_)
        opened = 1 if s[t] else 0
        if opened:
            open_.append(h)
        x = len(open_) / h
        cost = c * abs(opened - closed) / h
        if t == n - 1 or seg[t + 1] != seg[t]:
            cost += c * x                   # what is still open is closed at the segment's end
        gross.append(x * math.expm1(r1[t]))    # the book's simple return over the bar
        net.append(x * math.expm1(r1[t]) - cost)
    return np.array(gross), np.array(net)


def test_mark_to_market_matches_a_trade_by_trade_loop():
    rng = np.random.default_rng(3)
    for h, seg in ((1, None), (4, None), (3, [0] * 20 + [1] * 7 + [2] * 33)):
        r1 = rng.normal(0.0, 0.01, 60)
        s = (rng.random(60) < 0.4).astype(int)
        gross, net = mark_to_market(r1, s, horizon=h, cost_bps=7.0, segment=seg)
        g2, n2 = loop_book(r1, s, h, 7.0, seg)
        np.testing.assert_allclose(gross, g2, rtol=0, atol=1e-15)
        np.testing.assert_allclose(net, n2, rtol=0, atol=1e-15)
    with pytest.raises(ConfigError, match="horizon=0"):
        mark_to_market([0.01], [1], horizon=0, cost_bps=0.0)


def test_exposure_and_segments_hand_computed():
    np.testing.assert_allclose(exposure([1, 0, 0, 0, 0, 1, 1], horizon=4), [0.25, 0.25, 0.25, 0.25, 0, 0.25, 0.5])
    # a break in bar numbers (5 -> 9) starts a new segment: nothing is carried across it
    seg = segments_of([3, 4, 5, 9, 10])
    assert seg.tolist() == [0, 0, 0, 1, 1]
    np.testing.assert_allclose(exposure([1, 1, 1, 0, 1], horizon=2, segment=seg), [0.5, 1, 1, 0, 0.5])


def test_costs_are_charged_on_turnover_not_per_tranche():
    # Six back-to-back signals, h = 2: the position goes 0 -> 1/2 -> 1 ... -> 0: one round trip of
    # the capital (2 x 10 bp), not six half-size round trips (6 x 2 x 10 bp / 2 = 60 bp).
    gross, net = mark_to_market(np.zeros(6), np.ones(6), horizon=2, cost_bps=10.0)
    assert (gross - net).sum() == pytest.approx(2 * 10.0 / 1e4)
    # one isolated signal: a tranche of 1/h in and out -> 2 x 10 bp / h
    gross, net = mark_to_market(np.zeros(6), [0, 1, 0, 0, 0, 0], horizon=2, cost_bps=10.0)
    assert (gross - net).sum() == pytest.approx(2 * 10.0 / 1e4 / 2)


def test_book_pnl_is_the_exact_growth_of_a_fractional_book_not_x_times_the_log_return():
    """A book holding the fraction x of its wealth in the asset (rebalanced to x every bar, the rest in cash)
    simulated in prices and units; its log growth is what the curve compounds, and the shortcut x * r is not."""
    rng = np.random.default_rng(5)
    n = 400
    r1 = rng.normal(0.0, 0.03, n)                       # volatile bars: the log shortcut's bias is visible
    price = 100.0 * np.exp(np.concatenate(([0.0], np.cumsum(r1))))
    x = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=n)
    wealth = [1.0]
    for t in range(n):
        units = x[t] * wealth[-1] / price[t]            # bought at the bar's open price (its close before)
        cash = wealth[-1] - units * price[t]
        wealth.append(cash + units * price[t + 1])
    gross, net, _ = book_pnl(r1, x, cost_bps=0.0)
    np.testing.assert_allclose(np.cumsum(np.log1p(gross)), np.log(wealth[1:]), rtol=0, atol=1e-12)
    # log(1 + x (e^r - 1)) >= x r: the shortcut books less than the book earns whenever 0 < x < 1
    assert np.log(wealth[-1]) - (x * r1).sum() > 0.01
    growth = trading_metrics(gross, bars_per_year=n)["ann_return"]
    assert growth == pytest.approx(wealth[-1] - 1.0, rel=1e-10)   # one "year" of n bars


def test_always_long_random_walk_sharpe_is_bar_by_bar_not_sqrt_h_higher():
    """The issue's example: always long on an i.i.d. random walk with h = 4. Marked to market the
    Sharpe ratio is the bar-by-bar one; booking each trade's h-bar return at entry (the old curve)
    shrinks the std by ~sqrt(h) and doubles it."""
    rng = np.random.default_rng(11)
    h, n, bpy = 4, 40_000, 8760
    r1 = rng.normal(0.0002, 0.01, n + h)
    simple = np.expm1(r1[:n])
    bar_by_bar = simple.mean() / simple.std(ddof=1) * math.sqrt(bpy)
    gross, _ = mark_to_market(r1[:n], np.ones(n), horizon=h, cost_bps=0.0)
    sharpe = trading_metrics(gross, bars_per_year=bpy)["sharpe"]
    assert sharpe == pytest.approx(bar_by_bar, rel=0.01)
    fwd = np.array([r1[t:t + h].sum() for t in range(n)])
    old = trading_metrics(np.expm1(fwd) / h, bars_per_year=bpy)["sharpe"]   # the entry-booked curve
    assert old / sharpe == pytest.approx(math.sqrt(h), rel=0.1)


def test_sharpe_matches_empyrical():
    empyrical = pytest.importorskip("empyrical")
    rng = np.random.default_rng(2)
    r1 = rng.normal(0.0001, 0.01, 3000)
    s = (rng.random(3000) < 0.5).astype(int)
    gross, net = mark_to_market(r1, s, horizon=4, cost_bps=10.0)
    for x in (gross, net):
        ours = trading_metrics(x, bars_per_year=8760)["sharpe"]
        theirs = empyrical.sharpe_ratio(pd.Series(x), risk_free=0, annualization=8760)
        assert ours == pytest.approx(float(theirs), rel=1e-12)
        # empyrical's max_drawdown compounds simple returns, which the curve is
        dd = -float(empyrical.max_drawdown(pd.Series(x)))
        assert trading_metrics(x, bars_per_year=8760)["max_dd"] == pytest.approx(dd, rel=1e-10)


def test_trading_metrics_hand_computed():
    x = [0.02, -0.01, 0.0, 0.015]
    m = trading_metrics(x, bars_per_year=100)
    # the equity compounds the simple returns: 1.02 * 0.99 * 1.0 * 1.015 over 4 bars -> 100 bars a year
    growth = 1.02 * 0.99 * 1.015
    assert m["ann_return"] == pytest.approx(growth ** (100 / 4) - 1)
    # deviations from the mean 0.00625: 0.01375, -0.01625, -0.00625, 0.00875: squares sum to 0.00056875
    assert m["sharpe"] == pytest.approx(0.00625 / math.sqrt(0.00056875 / 3) * 10.0)
    # equity 1, 1.02, 1.0098, 1.0098, 1.024947: the worst fall is 1.02 -> 1.0098, 1 %
    assert m["max_dd"] == pytest.approx(0.01)
    # a curve that only falls: the starting 1 is the peak (0.99 * 0.98 = 0.9702)
    assert trading_metrics([-0.01, -0.02, 0.005], bars_per_year=252)["max_dd"] == pytest.approx(1 - 0.9702)
    # a loss of the whole capital (costs can push a bar below -100 %) is ruin: equity 0, not negative
    ruin = trading_metrics([0.1, -1.2, 0.5], bars_per_year=252)
    assert ruin["max_dd"] == 1.0 and ruin["ann_return"] == -1.0
    no_year = trading_metrics(x, bars_per_year=None)
    assert math.isnan(no_year["ann_return"]) and math.isnan(no_year["sharpe"])
    flat = trading_metrics([0.0, 0.0], bars_per_year=252)
    assert flat["ann_return"] == 0.0 and math.isnan(flat["sharpe"]) and flat["max_dd"] == 0.0
    with pytest.raises(ConfigError, match="bars_per_year=-1"):
        trading_metrics(x, bars_per_year=-1)


def test_signal_column_overrides_threshold():
    m = signal_metrics(Y, P, R, threshold=0.55, cost_bps=0.0, signal=[0, 0, 1, 0, 0, 0])
    assert m["signals"] == 1 and m["precision"] == 1.0
    with pytest.raises(DataError, match=r"signal: expected 0 or 1, not so at 1 row \(e\.g\. 1\)"):
        signal_metrics(Y, P, R, signal=[0, 2, 1, 0, 0, 0])


def test_summarise_trading_and_rank_columns_against_the_loop():
    out = summarise(predictions(), "symbol", threshold=0.55, cost_bps=10.0, horizon=2, bars_per_year=1000)
    btc = out.iloc[0]
    # BTC in time order: p 0.7, 0.6, 0.1 -> signals 1, 1, 0; return_1 -0.002, 0.01, -0.008
    gross, net = loop_book([-0.002, 0.01, -0.008], [1, 1, 0], 2, 10.0)
    # exposure 0.5, 1, 0.5 -> gross 0.5 (e^-0.002 - 1), e^0.01 - 1, 0.5 (e^-0.008 - 1)
    np.testing.assert_allclose(gross, [0.5 * math.expm1(-0.002), math.expm1(0.01), 0.5 * math.expm1(-0.008)])
    for col, x in (("", gross), ("_net", net)):
        assert btc["ann_return" + col] == pytest.approx(math.expm1(np.log1p(x).mean() * 1000))
        assert btc["sharpe" + col] == pytest.approx(x.mean() / x.std(ddof=1) * math.sqrt(1000))
        eq = np.concatenate(([0.0], np.cumsum(np.log1p(x))))
        assert btc["max_dd" + col] == pytest.approx(1 - math.exp(-(np.maximum.accumulate(eq) - eq).max()))
    assert btc["exposure"] == pytest.approx(2 / 3)
    # IC of (0.7, 0.6, 0.1) with (-0.01, 0.03, -0.02): p mean 1.4/3, r mean 0
    dp, dr = (0.7 / 3, 0.4 / 3, -1.1 / 3), (-0.01, 0.03, -0.02)
    assert btc["ic"] == pytest.approx(sum(a * b for a, b in zip(dp, dr))
                                      / math.sqrt(sum(a * a for a in dp) * sum(b * b for b in dr)))
    # ranks p (3, 2, 1) vs r (2, 3, 1): d = (1, -1, 0) -> 1 - 6 * 2 / (3 * 8) = 0.5
    assert btc["rank_ic"] == pytest.approx(0.5)
    # fold 0 has one BTC bar (no IC), so only one fold IC: no ICIR
    assert math.isnan(btc["icir"])
    # bar numbers with a break start a new segment: BTC 0, 1 | 5 -> the second signal's tranche
    # is the only one held at bar 1, and nothing is carried into bar 5
    broken = summarise(predictions().assign(bar_number=[0, 0, 1, 1, 2, 5]), "symbol", threshold=0.55,
                       cost_bps=10.0, horizon=2, bars_per_year=1000).iloc[0]
    _, net2 = loop_book([-0.002, 0.01, -0.008], [1, 1, 0], 2, 10.0, seg=[0, 0, 1])
    assert broken["sharpe_net"] == pytest.approx(net2.mean() / net2.std(ddof=1) * math.sqrt(1000))


def test_summarise_group_curve_is_equal_weight_per_timestamp():
    ts = pd.Timestamp("2024-01-01", tz="UTC")
    frame = pd.DataFrame({
        "symbol": ["A", "B", "A", "B"], "timestamp": [ts, ts, ts + pd.Timedelta("1h"), ts + pd.Timedelta("1h")],
        "fold": [0, 0, 1, 1], "p_up": [0.9, 0.9, 0.9, 0.1], "y": [1, 0, 0, 0],
        "forward_return": [0.02, -0.01, -0.04, 0.05], "return_1": [0.02, -0.01, -0.04, 0.05],
    })
    out = summarise(frame, [], threshold=0.5, cost_bps=0.0, horizon=1, bars_per_year=10)
    # bar 1: the mean of both books' simple returns; bar 2: A's and B's (not signalled: 0)
    b1, b2 = (math.expm1(0.02) + math.expm1(-0.01)) / 2, math.expm1(-0.04) / 2
    assert out.loc[0, "ann_return"] == pytest.approx(((1 + b1) * (1 + b2)) ** (10 / 2) - 1)
    assert out.loc[0, "max_dd"] == pytest.approx(-b2)
    # an explicit signal column wins over the threshold
    out = summarise(frame.assign(signal=[0, 0, 0, 1]), [], threshold=0.5, cost_bps=0.0, horizon=1, bars_per_year=10)
    assert out.loc[0, "signals"] == 1
    assert out.loc[0, "ann_return"] == pytest.approx((1 + math.expm1(0.05) / 2) ** (10 / 2) - 1)
    with pytest.raises(DataError, match=r"missing column\(s\) 'return_1'"):
        summarise(frame.drop(columns="return_1"), [], threshold=0.5, cost_bps=0.0)


def test_per_asset_auc_is_the_mean_of_direct_sklearn_aucs_and_ignores_level():
    """Per-asset AUC against a direct loop with roc_auc_score per (fold, asset); a forecast that only knows
    each asset's level scores far above 0.5 pooled and exactly 0.5 per asset."""
    from sklearn.metrics import roc_auc_score

    from fleet.evaluation.metrics import asset_fold_aucs, per_asset_auc

    rng = np.random.default_rng(3)
    rows = []
    for fold in range(3):
        for sym, base in (("A", 0.7), ("B", 0.3), ("C", 0.5)):
            y = (rng.random(300) < base).astype(int)
            rows.append(pd.DataFrame({"fold": fold, "symbol": sym, "y": y, "timing": y * 0.1 + rng.random(300),
                                      "level": np.full(300, base)}))
    f = pd.concat(rows, ignore_index=True)
    direct = [roc_auc_score(g["y"], g["timing"]) for _, g in f.groupby(["fold", "symbol"])]
    assert per_asset_auc(f, "timing") == pytest.approx(np.mean(direct), abs=1e-12)
    assert len(asset_fold_aucs(f, "timing")) == 9
    assert roc_auc_score(f["y"], f["level"]) > 0.65
    assert per_asset_auc(f, "level") == pytest.approx(0.5, abs=1e-12)
