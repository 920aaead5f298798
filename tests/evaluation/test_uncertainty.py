"""The stationary block bootstrap over timestamps and its weighted statistics, against direct computations."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import roc_auc_score

from fleet.errors import ConfigError
from fleet.evaluation.metrics import summarise
from fleet.evaluation.uncertainty import (TimestampBootstrap, format_with_se, percentile_interval, sharpe_se_lo,
                                          weighted_auc, weighted_mean_over_sd, weighted_pearson)


def test_weighted_statistics_equal_the_library_on_the_drawn_rows():
    """Each draw's weighted AUC / Pearson / Sharpe equals scikit-learn / scipy / numpy on the rows repeated by their
    weights; several rows share a timestamp and are drawn together."""
    rng = np.random.default_rng(0)
    n_t, per = 120, 3
    stamps = np.repeat(np.arange(n_t), per)
    y = rng.integers(0, 2, stamps.size)
    score = np.round(rng.random(stamps.size) + 0.3 * y, 2)       # ties on purpose
    ret = rng.normal(size=stamps.size) + 0.5 * score
    boot = TimestampBootstrap(stamps, reps=20, series=ret, seed=1)
    W = boot.row_weights()
    assert (W.reshape(20, n_t, per) == W.reshape(20, n_t, per)[:, :, :1]).all()   # a timestamp's rows together
    auc, ic = weighted_auc(y, score, W), weighted_pearson(score, ret, W)
    for k in (0, 7, 19):
        idx = np.repeat(np.arange(stamps.size), W[k].astype(int))
        assert auc[k] == pytest.approx(roc_auc_score(y[idx], score[idx]), abs=1e-12)
        assert ic[k] == pytest.approx(pearsonr(score[idx], ret[idx])[0], abs=1e-12)
    v = rng.normal(0.1, 1.0, n_t)
    sr = weighted_mean_over_sd(v, boot.counts)
    idx = np.repeat(np.arange(n_t), boot.counts[3].astype(int))
    assert sr[3] == pytest.approx(v[idx].mean() / v[idx].std(ddof=1), abs=1e-12)
    assert weighted_auc(y, score, np.ones(stamps.size)) == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_percentile_interval_covers_a_known_sharpe_about_90_percent_of_the_time():
    """200 AR(1) return series with a known Sharpe ratio: the bootstrap's 90 % interval covers it 85-95 % of the
    time (a plain iid bootstrap of autocorrelated returns would under-cover)."""
    rng = np.random.default_rng(42)
    n, phi, mu = 1000, 0.3, 0.05
    true_sr = mu / 1.0                                      # stationary sd is 1: innovations scaled below
    covered = 0
    for k in range(200):
        e = rng.normal(0.0, math.sqrt(1 - phi ** 2), n + 100)
        z = np.zeros(n + 100)
        for t in range(1, n + 100):
            z[t] = phi * z[t - 1] + e[t]
        r = mu + z[100:]
        boot = TimestampBootstrap(np.arange(n), reps=300, series=r, seed=k)
        lo, hi = percentile_interval(weighted_mean_over_sd(r, boot.counts), 0.9)
        covered += lo <= true_sr <= hi
    assert 0.85 <= covered / 200 <= 0.95, covered


def test_lo_standard_error_matches_the_spread_of_sharpe_ratios_on_iid_returns():
    rng = np.random.default_rng(3)
    n, sr = 2000, 0.05
    draws = [(x.mean() / x.std(ddof=1)) for x in rng.normal(sr, 1.0, (2000, n))]
    assert sharpe_se_lo(sr, n) == pytest.approx(np.std(draws, ddof=1), rel=0.08)
    assert sharpe_se_lo(sr, n, bars_per_year=252) == pytest.approx(sharpe_se_lo(sr, n) * math.sqrt(252))


def test_summarise_standard_errors_are_wider_for_correlated_assets():
    """Ten assets moving together carry about one asset's information: the pooled AUC's bootstrap se by timestamp
    is far larger than with ten independent assets of the same size."""
    rng = np.random.default_rng(5)
    stamps = pd.date_range("2024-01-01", periods=400, freq="h", tz="UTC")
    out = {}
    for rho in (0.0, 0.95):
        # scores and returns each move together across assets, independently of each other (no skill)
        common_r, common_p = rng.normal(size=len(stamps)), rng.normal(size=len(stamps))
        rows = []
        for a in range(10):
            r = math.sqrt(rho) * common_r + math.sqrt(1 - rho) * rng.normal(size=len(stamps))
            p = 0.5 + 0.1 * np.tanh(math.sqrt(rho) * common_p + math.sqrt(1 - rho) * rng.normal(size=len(stamps)))
            rows.append(pd.DataFrame({"symbol": f"A{a}", "timestamp": stamps, "fold": 0, "p_up": p,
                                      "y": (r > 0).astype(int), "forward_return": r * 0.01,
                                      "return_1": r * 0.01}))
        out[rho] = summarise(pd.concat(rows, ignore_index=True), [], threshold=0.5, cost_bps=0.0,
                             bars_per_year=8760, reps=200).iloc[0]
    assert out[0.95]["auc_se"] > 2.0 * out[0.0]["auc_se"]
    assert np.isfinite(out[0.0][["auc_se", "auc_per_asset_se", "ic_se", "rank_ic_se", "sharpe_net_se"]]).all()


def _fleet(edge: float, seed: int, n_assets: int = 6, n: int = 3000) -> pd.DataFrame:
    """Assets whose next-bar log return leans toward P(up) by ``edge`` (negative: away from it)."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    rows = []
    for a in range(n_assets):
        p = np.clip(0.5 + 0.1 * rng.normal(size=n), 0.01, 0.99)
        r1 = edge * (p - 0.5) + 0.01 * rng.normal(size=n)
        rows.append(pd.DataFrame({"symbol": f"A{a}", "timestamp": stamps, "fold": np.arange(n) * 2 // n, "p_up": p,
                                  "y": (r1 > 0).astype(int), "forward_return": r1, "return_1": r1,
                                  "bar_number": np.arange(n)}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("edge, sign", [(0.05, 1.0), (-0.05, -1.0)])
def test_expectancy_and_net_sharpe_agree_in_sign(edge, sign):
    """One cost model: on a planted-edge fleet both are positive, on a losing fleet both negative, per asset and
    pooled."""
    out = summarise(_fleet(edge, seed=7), "symbol", threshold=0.55, cost_bps=5.0, horizon=1, bars_per_year=8760)
    pooled = summarise(_fleet(edge, seed=7), [], threshold=0.55, cost_bps=5.0, horizon=1, bars_per_year=8760)
    for table in (out, pooled):
        assert (np.sign(table["expectancy"]) == sign).all(), table[["expectancy", "sharpe_net"]]
        assert (np.sign(table["sharpe_net"]) == sign).all(), table[["expectancy", "sharpe_net"]]


def test_rank_ic_draws_use_the_original_ranks():
    """With all weights 1 the Rank IC statistic of a draw is scipy's Spearman correlation."""
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=300), rng.normal(size=300)
    from scipy.stats import rankdata

    assert weighted_pearson(rankdata(a), rankdata(b), np.ones((1, 300)))[0] == pytest.approx(spearmanr(a, b)[0])


def test_format_with_se_and_errors():
    assert format_with_se(0.51234, 0.00421) == "0.5123 ± 0.0042"
    assert format_with_se(1.234, 1.1, signed=True) == "+1.2 ± 1.1"
    assert format_with_se(0.0123, 0.0031, scale=100, suffix=" %") == "1.23 ± 0.31 %"
    assert format_with_se(0.5, float("nan")) == "0.5"
    assert format_with_se(float("nan"), 0.1) == "–"
    with pytest.raises(ConfigError, match="reps"):
        TimestampBootstrap(np.arange(10), reps=1)
    with pytest.raises(ConfigError, match="block"):
        TimestampBootstrap(np.arange(10), block=0.5)


def test_paired_table_finds_a_planted_difference_and_calls_identical_forecasts_a_tie():
    from fleet.evaluation.compare import paired_table

    rows = _fleet(0.05, seed=11)
    rng = np.random.default_rng(12)
    noise = rows.assign(p_up=np.clip(0.5 + 0.1 * rng.normal(size=len(rows)), 0.01, 0.99))
    kw = dict(threshold=0.55, cost_bps=1.0, horizon=1, bars_per_year=8760, reps=200)
    better = paired_table(rows, noise, **kw).set_index("figure")
    assert (better.loc[["auc", "auc_per_asset", "rank_ic"], "z"] > 3).all(), better
    assert better.loc["auc", "a"] == pytest.approx(roc_auc_score(rows["y"], rows["p_up"]), abs=1e-12)
    same = paired_table(rows, rows.copy(), **kw)
    assert (same["diff"] == 0).all() and (same["verdict"] == "tie").all()


def test_weighted_group_mean_auc_with_unit_weights_is_the_per_asset_auc():
    from fleet.evaluation.metrics import per_asset_auc
    from fleet.evaluation.uncertainty import weighted_group_mean_auc

    rows = _fleet(0.05, seed=3, n_assets=4, n=400)
    groups = rows.groupby(["fold", "symbol"]).ngroup().to_numpy()
    W = np.ones((2, len(rows)))
    got = weighted_group_mean_auc(rows["y"], rows["p_up"], groups, W)
    assert got == pytest.approx([per_asset_auc(rows)] * 2, abs=1e-12)


def test_group_mean_auc_equals_a_loop_of_sklearn_aucs_on_repeated_rows():
    from sklearn.metrics import roc_auc_score

    from fleet.evaluation.uncertainty import weighted_group_mean_auc

    rng = np.random.default_rng(11)
    for _ in range(20):
        n = int(rng.integers(20, 200))
        y = rng.integers(0, 2, n)
        score = np.round(rng.normal(size=n), int(rng.integers(0, 3)))  # ties inside groups
        groups = rng.integers(0, int(rng.integers(1, 5)), n)
        W = rng.integers(0, 3, (4, n)).astype(float)
        got = weighted_group_mean_auc(y, score, groups, W)
        for k in range(W.shape[0]):
            reps = np.repeat(np.arange(n), W[k].astype(int))
            aucs = [roc_auc_score(y[reps][groups[reps] == g], score[reps][groups[reps] == g])
                    for g in np.unique(groups[reps]) if len(np.unique(y[reps][groups[reps] == g])) == 2]
            want = np.mean(aucs) if aucs else np.nan
            np.testing.assert_allclose(got[k], want, rtol=0, atol=1e-12, equal_nan=True)


def test_counted_figures_equal_the_weighted_ones_on_the_rows_weights():
    # The draws' figures from per-timestamp counts (what summarise uses) against the row-weight forms, which the
    # tests above check against scikit-learn / scipy on repeated rows.
    from fleet.evaluation.uncertainty import (counted_aucs, counted_pearsons, weighted_auc, weighted_group_mean_auc,
                                              weighted_pearsons)

    rng = np.random.default_rng(3)
    for _ in range(20):
        n_t, n = int(rng.integers(5, 40)), int(rng.integers(40, 300))
        inverse = np.r_[np.arange(n_t), rng.integers(0, n_t, n - n_t)]  # several rows per timestamp
        counts = rng.integers(0, 4, (6, n_t)).astype(float)
        y = rng.integers(0, 2, n)
        score = np.round(rng.normal(size=n), int(rng.integers(0, 3)))
        groups = rng.integers(0, 4, n)
        r = rng.normal(size=n)
        W = counts[:, inverse]
        pooled, mean = counted_aucs(y, score, groups, counts, inverse, cells=int(rng.integers(5, 100)))
        np.testing.assert_array_equal(pooled, weighted_auc(y, score, W))
        np.testing.assert_allclose(mean, weighted_group_mean_auc(y, score, groups, W), rtol=0, atol=1e-15)
        got, want = counted_pearsons([(score, r)], counts, inverse), weighted_pearsons([(score, r)], W)
        np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-12)


def test_stationary_counts_are_arch_draws_shared_and_read_only():
    """The draw counts equal arch's StationaryBootstrap indices counted draw by draw; a second request with the same
    (timestamps, block, reps, seed) gets the same array without drawing again, and nobody can write into it."""
    from arch.bootstrap import StationaryBootstrap

    from fleet.evaluation.uncertainty import stationary_counts

    n_t, block, reps, seed = 257, 7.3, 40, 11
    bs = StationaryBootstrap(block, np.arange(n_t), seed=np.random.default_rng(seed))
    want = np.stack([np.bincount(pos[0], minlength=n_t) for pos, _ in bs.bootstrap(reps)])
    stationary_counts.cache_clear()
    got = stationary_counts(n_t, block, reps, seed)
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.float64 and (got.sum(axis=1) == n_t).all()
    assert stationary_counts(n_t, block, reps, seed) is got and stationary_counts.cache_info().hits == 1
    with pytest.raises(ValueError):
        got[0, 0] = 5.0
    assert not np.array_equal(stationary_counts(n_t, block, reps, seed + 1), got)


def test_a_timestamp_bootstrap_built_twice_draws_the_same_counts_in_any_row_order():
    """An asset's results row and its exposure-matched benchmark build the bootstrap from the same rows in different
    orders: the block length and the draws are the same."""
    rng = np.random.default_rng(5)
    stamps = np.arange(500) * 3_600_000_000_000
    ret = np.convolve(rng.normal(size=503), np.ones(4), "valid")  # overlapping 4-bar returns
    order = rng.permutation(stamps.size)
    a = TimestampBootstrap(stamps, reps=30, series=ret, seed=2)
    b = TimestampBootstrap(stamps[order], reps=30, series=ret[order], seed=2)
    assert a.block == b.block > 1.0
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.counts[:, a.inverse[order]], b.counts[:, b.inverse])
