"""The fleet books and the cross-sectional IC against direct loops, hand-written books, a planted signal and noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, spearmanr

from fleet.errors import ConfigError, DataError
from fleet.evaluation.book import (book_weights, cross_sectional_ic, fold_panels, ic_summary, scaled_book_size,
                                   topk_dropout_step, weighted_book)
from fleet.evaluation.exposure_matched import exposure_matched
from fleet.evaluation.fleet_book import book_tables
from fleet.evaluation.metrics import summarise

BPY = 8760.0


def _rows(score, ret1, *, horizon: int = 4, folds: int = 1, start="2024-01-01", drop=None) -> pd.DataFrame:
    """Long prediction rows from (T, N) score and 1-bar log return matrices; forward_return is the sum of the
    next h one-bar returns (the label the score predicts)."""
    T, N = ret1.shape
    csum = np.vstack([np.zeros((1, N)), np.cumsum(ret1, axis=0)])
    fwd = csum[np.minimum(np.arange(T) + horizon, T)] - csum[:T]
    stamps = pd.date_range(start, periods=T, freq="h", tz="UTC")
    fold = np.repeat(np.arange(folds), int(np.ceil(T / folds)))[:T]
    out = pd.DataFrame({"timestamp": np.repeat(stamps, N), "symbol": np.tile([f"S{j:02d}" for j in range(N)], T),
                        "fold": np.repeat(fold, N), "p_up": score.ravel(), "forward_return": fwd.ravel(),
                        "return_1": ret1.ravel(), "bar_number": np.repeat(np.arange(T), N)})
    if drop is not None:
        out = out[~drop.ravel()]
    return out.reset_index(drop=True)


def test_cross_sectional_ic_equals_scipy_per_timestamp():
    rng = np.random.default_rng(1)
    T, N = 120, 7
    ret = rng.normal(0, 0.01, (T, N))
    score = 0.5 + 0.3 * ret + rng.normal(0, 0.01, (T, N))
    score[5, :] = 0.5  # a timestamp without spread: NaN, as scipy gives
    score[7, 2] = score[7, 3]  # ties: average ranks
    drop = rng.random((T, N)) < 0.15
    drop[9, :5] = True  # 2 assets left: below min_assets
    rows = _rows(score, ret, folds=3, drop=drop)
    got = pd.concat([cross_sectional_ic(p) for p in fold_panels(rows)])
    for t, g in rows.groupby("timestamp"):
        if len(g) < 3 or g["p_up"].nunique() < 2:
            assert np.isnan(got.loc[t, "ic"]) and np.isnan(got.loc[t, "rank_ic"])
            continue
        assert got.loc[t, "ic"] == pytest.approx(pearsonr(g["p_up"], g["forward_return"])[0], abs=1e-12)
        assert got.loc[t, "rank_ic"] == pytest.approx(spearmanr(g["p_up"], g["forward_return"])[0], abs=1e-12)
        assert got.loc[t, "n"] == len(g)
    table, _ = book_tables(rows, horizon=4, cost_bps=10, bars_per_year=BPY)
    score_rows = table[table["book"] == "score"].set_index("fold")
    for f, g in got.groupby(rows.drop_duplicates("timestamp").set_index("timestamp")["fold"]):
        ic = g["ic"].dropna()
        assert score_rows.loc[f, "cs_ic"] == pytest.approx(ic.mean(), abs=1e-12)
        assert score_rows.loc[f, "cs_ic_std"] == pytest.approx(ic.std(ddof=1), abs=1e-12)
        assert score_rows.loc[f, "cs_icir"] == pytest.approx(ic.mean() / ic.std(ddof=1), abs=1e-12)
    assert score_rows.loc["all", "cs_rank_ic"] == pytest.approx(got["rank_ic"].dropna().mean(), abs=1e-12)


def _hand_example():
    """4 assets, 30 bars, h = 10: rebalances at bars 0, 10 and 20 with the scores below; the other bars' scores
    are noise that a shifted rebalance would pick up."""
    rng = np.random.default_rng(7)
    score = rng.random((30, 4))
    score[0] = [0.9, 0.8, 0.7, 0.6]
    score[10] = [0.5, 0.85, 0.9, 0.95]
    score[20] = [0.3, 0.1, 0.4, 0.2]
    ret = rng.normal(0, 0.02, (30, 4))
    return score, ret


def test_topk_dropout_book_equals_hand_written_loop():
    score, ret = _hand_example()
    # k = 2, n_drop = 1. Bar 0: the best two, A and B. Bar 10: the best not held is D (0.95); of D, B, A the
    # lowest is A: sell A, buy D. Bar 20: the best not held is C (0.4); of C, D, B the lowest is B: sell B, buy C.
    w = np.zeros((30, 4))
    w[0:10, [0, 1]] = 0.5
    w[10:20, [1, 3]] = 0.5
    w[20:30, [2, 3]] = 0.5
    turnover = np.zeros(30)
    turnover[[0, 10, 20]] = 1.0  # open A, B; A -0.5, D +0.5; B -0.5, C +0.5
    turnover[29] = 1.0  # the fold's last bar closes C and D
    gross = np.array([sum(w[t, i] * (np.exp(ret[t, i]) - 1) for i in range(4)) for t in range(30)])
    net = gross - 25e-4 * turnover
    panel = fold_panels(_rows(score, ret, horizon=10))[0]
    W = book_weights(panel, "topk", horizon=10, k=2, n_drop=1)
    np.testing.assert_allclose(W, w, atol=0)
    pnl = weighted_book(W, panel.ret1, 25.0)
    np.testing.assert_allclose(pnl["turnover"], turnover, atol=1e-15)
    np.testing.assert_allclose(pnl["net"], net, atol=1e-15)
    _, curves = book_tables(_rows(score, ret, horizon=10), horizon=10, cost_bps=25, bars_per_year=BPY, k=2, n_drop=1)
    np.testing.assert_allclose(curves["topk"], net, atol=1e-15)
    np.testing.assert_allclose(curves["benchmark"], np.expm1(ret).mean(axis=1), atol=1e-15)


def test_long_short_book_equals_hand_written_loop():
    score, ret = _hand_example()
    # ranks 4 3 2 1 -> demeaned 1.5 .5 -.5 -1.5 -> / 4
    w = np.zeros((30, 4))
    w[0:10] = [0.375, 0.125, -0.125, -0.375]
    w[10:20] = [-0.375, -0.125, 0.125, 0.375]  # ranks 1 2 3 4
    w[20:30] = [0.125, -0.375, 0.375, -0.125]  # ranks 3 1 4 2
    turnover = np.zeros(30)
    turnover[0] = 1.0
    turnover[10] = 0.75 + 0.25 + 0.25 + 0.75
    turnover[20] = 0.5 + 0.25 + 0.25 + 0.5
    turnover[29] = 1.0
    gross = np.array([sum(w[t, i] * (np.exp(ret[t, i]) - 1) for i in range(4)) for t in range(30)])
    net = gross - 10e-4 * turnover
    panel = fold_panels(_rows(score, ret, horizon=10))[0]
    W = book_weights(panel, "long_short", horizon=10)
    np.testing.assert_allclose(W, w, atol=1e-15)
    pnl = weighted_book(W, panel.ret1, 10.0)
    np.testing.assert_allclose(pnl["turnover"], turnover, atol=1e-15)
    np.testing.assert_allclose(pnl["net"], net, atol=1e-15)


def test_no_look_ahead_one_bar_shift():
    """A score equal to the next bar's return (what a perfect forecast at t knows) must earn; the same score one
    bar late (the bar just past, known at t) must not: a book that earned the previous bar's return, or used a
    later score, fails one of the two."""
    rng = np.random.default_rng(3)
    T, N = 1500, 10
    ret = rng.normal(0, 0.01, (T, N))
    oracle = _rows(ret, ret, horizon=1)
    late = _rows(np.vstack([np.zeros((1, N)), ret[:-1]]), ret, horizon=1)
    for rows, earns in ((oracle, True), (late, False)):
        table, _ = book_tables(rows, horizon=1, cost_bps=0, bars_per_year=BPY)
        ls = table[(table["book"] == "long_short") & (table["fold"] == "all")].iloc[0]
        assert (ls["sharpe_net_t"] > 10) if earns else (abs(ls["sharpe_net_t"]) < 3)


def _fleet(seed: int, *, T: int = 1600, N: int = 12, drift: float = 0.0, signal: float = 0.0):
    """A trending fleet: a common market factor with a drift, half the assets outperform the other half by
    ``drift`` per bar, and a score that sees the group with strength ``signal`` (0: pure noise)."""
    rng = np.random.default_rng(seed)
    group = np.r_[np.ones(N // 2), -np.ones(N - N // 2)]
    market = rng.normal(3e-4, 0.01, (T, 1))
    ret = market + 0.5 * drift * group + rng.normal(0, 0.01, (T, N))
    score = 0.5 + signal * group + rng.normal(0, 0.02, (T, N))
    return _rows(score, ret, horizon=4, folds=2)


def test_planted_cross_sectional_signal_is_found():
    table, _ = book_tables(_fleet(11, T=4000, drift=1e-3, signal=0.05), horizon=4, cost_bps=10, bars_per_year=BPY)
    run = table[table["fold"] == "all"].set_index("book")
    assert run.loc["long_short", "sharpe_net"] > 0 and run.loc["long_short", "sharpe_net_t"] > 3
    assert abs(run.loc["long_short", "beta"]) < 0.1
    assert run.loc["score", "cs_ic_t"] > 3 and run.loc["score", "cs_rank_ic_t"] > 3
    assert run.loc["topk", "excess_t"] > 2 and run.loc["topk", "information_ratio"] > 0
    groups = run.loc["score", ["group_q1", "group_q5"]].to_numpy(dtype=float)
    assert groups[1] > groups[0]


def test_noise_scores_find_nothing():
    hits = {"long_short": 0, "topk": 0, "ic": 0}
    for seed in range(20):
        table, _ = book_tables(_fleet(100 + seed, T=800), horizon=4, cost_bps=0, bars_per_year=BPY)
        run = table[table["fold"] == "all"].set_index("book")
        hits["long_short"] += abs(run.loc["long_short", "sharpe_net_t"]) >= 2
        hits["topk"] += abs(run.loc["topk", "excess_t"]) >= 2
        hits["ic"] += abs(run.loc["score", "cs_ic_t"]) >= 2
    assert all(v <= 2 for v in hits.values()), hits


def test_topk_dropout_never_sells_more_than_n_drop():
    rng = np.random.default_rng(5)
    held = np.zeros(20, dtype=bool)
    held = topk_dropout_step(rng.random(20), held, 5, 2)
    assert held.sum() == 5
    for _ in range(50):
        new = topk_dropout_step(rng.random(20), held, 5, 2)
        assert new.sum() == 5 and (held & ~new).sum() <= 2
        held = new


def test_scaled_book_size_and_errors():
    assert scaled_book_size(10) == (2, 1)
    assert scaled_book_size(300) == (60, 12)
    assert scaled_book_size(3) == (1, 1)
    assert scaled_book_size(10, 4, 0) == (4, 0)
    with pytest.raises(ConfigError, match="book_k"):
        scaled_book_size(10, 11)
    with pytest.raises(ConfigError, match="book_k"):
        scaled_book_size(10, 0)
    with pytest.raises(DataError, match="forward_return"):
        book_tables(pd.DataFrame({"timestamp": [], "symbol": [], "fold": [], "p_up": []}), horizon=1, cost_bps=0,
                    bars_per_year=BPY)


def test_ic_summary_t_uses_the_overlap():
    """IC series with h-bar overlap: the HAC t is smaller than the naive mean / std * sqrt(n)."""
    rng = np.random.default_rng(2)
    ic = np.convolve(rng.normal(0.02, 0.3, 4003), np.ones(4) / 4, "valid")
    s = ic_summary(ic, horizon=4)
    naive = ic.mean() / ic.std(ddof=1) * np.sqrt(ic.size)
    assert s["n"] == ic.size and 0 < s["t"] < 0.7 * naive


def test_exposure_matched_against_direct_formulas():
    rng = np.random.default_rng(4)
    T = 600
    ret = rng.normal(2e-4, 0.01, (T, 2))
    rows = _rows(rng.random((T, 2)), ret, horizon=4)
    rows["y"] = (rows["forward_return"] > 0).astype(int)
    rows["signal"] = (rows["p_up"] > 0.6).astype(int)
    got = exposure_matched(rows, horizon=4, cost_bps=10, bars_per_year=BPY, reps=50).set_index("symbol")
    per_asset = summarise(rows, "symbol", cost_bps=10, horizon=4, bars_per_year=BPY).set_index("symbol")
    for j, sym in enumerate(["S00", "S01"]):
        s = rows.loc[rows["symbol"] == sym, "signal"].to_numpy()
        x = np.array([s[max(0, t - 3):t + 1].sum() / 4 for t in range(T)]).mean()
        const = x * np.expm1(ret[:, j])
        const[0] -= 1e-3 * x
        const[-1] -= 1e-3 * x
        sharpe = const.mean() / const.std(ddof=1) * np.sqrt(BPY)
        assert got.loc[sym, "sharpe_net_matched"] == pytest.approx(sharpe, rel=1e-10)
        assert got.loc[sym, "timing_sharpe"] == pytest.approx(per_asset.loc[sym, "sharpe_net"] - sharpe, rel=1e-10)
        assert 0 < got.loc[sym, "timing_sharpe_se"] < 5
