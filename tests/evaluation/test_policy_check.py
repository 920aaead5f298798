"""The tuned policy's test against correlation and many candidates: t per timestamp against pandas and scipy,
runs of correlated pure-noise fleets that must stay flat, and a planted timing edge that must still be traded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from fleet.errors import ConfigError, DataError
from fleet.evaluation.costaware import apply_positions, fit_policy
from fleet.evaluation.policy_check import (crossfit_calibrated, per_timestamp_mean, spa_pvalue, spa_test, t_stat,
                                          unit_level)
from fleet.evaluation.trading import book_pnl

#: A run of 365 hourly days in 3 folds: inner out-of-fold timestamps of each fold's training window (expanding
#: windows of ~90, ~180 and ~270 days, two thirds of each out of fold), and 10 assets in clusters of 4, 3 and 3.
FOLD_TIMESTAMPS = (900, 2900, 4600)
GROUPS = ((0, 1, 2, 3), (4, 5, 6), (7, 8, 9))
HORIZON, COST_BPS = 4, 10.0


def _ar1(rng, shape, phi):
    """Unit-variance AR(1) paths along axis 0 (a model's P(up) is persistent from bar to bar)."""
    e = rng.standard_normal(shape) * np.sqrt(1 - phi ** 2)
    out = np.empty(shape)
    out[0] = rng.standard_normal(shape[1:])
    for t in range(1, shape[0]):
        out[t] = phi * out[t - 1] + e[t]
    return out


def fleet_run(seed: int, *, edge: float = 0.0, rho: float = 0.3, n_assets: int = 10, sigma: float = 0.006):
    """One run's units: ``[(fold, group, rows), ...]``, rows as :func:`fit_policy` reads them.

    Returns of ``n_assets`` assets with pairwise correlation ``rho`` (one common factor), hourly volatility
    ``sigma``. Each fold's model gives its own P(up): a persistent score with a common part across assets (models
    of one cluster share features), independent of the returns. ``edge`` > 0 plants timing skill: the next bar's
    expected return is ``edge * sigma * z`` where ``z`` is the standardised score behind P(up).
    """
    rng = np.random.default_rng(seed)
    n = max(FOLD_TIMESTAMPS)
    common, idio = rng.standard_normal((n, 1)), rng.standard_normal((n, n_assets))
    noise = sigma * (np.sqrt(rho) * common + np.sqrt(1 - rho) * idio)
    ts = pd.date_range("2023-01-01", periods=n, freq="h", tz="UTC")
    units = []
    for fold, n_ts in enumerate(FOLD_TIMESTAMPS):
        z = np.sqrt(0.5) * _ar1(rng, (n_ts, 1), 0.95) + np.sqrt(0.5) * _ar1(rng, (n_ts, n_assets), 0.95)
        r1 = noise[:n_ts] + edge * sigma * z
        fwd = pd.DataFrame(r1).rolling(HORIZON).sum().shift(-(HORIZON - 1)).to_numpy()
        p = np.clip(0.5 + 0.04 * z, 0.01, 0.99)
        for g, members in enumerate(GROUPS):
            rows = pd.concat([pd.DataFrame({"symbol": f"A{a}", "timestamp": ts[:n_ts], "p_up": p[:, a],
                                            "y": (fwd[:, a] > 0).astype(int), "forward_return": fwd[:, a],
                                            "return_1": r1[:, a], "bar_number": np.arange(n_ts)})
                              for a in members], ignore_index=True)
            units.append((fold, g, rows))
    return units


def run_trades(seed: int, **kw) -> bool:
    """Whether a run trades: any of its units' tuned policies is not flat (each told the run's unit count)."""
    units = fleet_run(seed, **kw)
    return any(fit_policy(rows, cost_bps=COST_BPS, horizon=HORIZON, n_units=len(units), seed=seed).kind != "flat"
               for _, _, rows in units)


def test_t_per_timestamp_against_pandas_and_scipy():
    rng = np.random.default_rng(0)
    ts = pd.date_range("2024-01-01", periods=50, freq="h", tz="UTC")
    rows = pd.concat([pd.DataFrame({"symbol": s, "timestamp": ts[k:], "v": rng.normal(1e-4, 1e-3, 50 - k)})
                      for s, k in (("A", 0), ("B", 7), ("C", 20))], ignore_index=True)  # unequal spans
    want = rows.groupby("timestamp")["v"].mean()
    codes = pd.Index(want.index).get_indexer(rows["timestamp"])
    got = per_timestamp_mean(rows["v"].to_numpy(), codes, len(want))
    np.testing.assert_allclose(got, want.to_numpy(), rtol=1e-12)
    assert t_stat(got) == pytest.approx(stats.ttest_1samp(want.to_numpy(), 0.0).statistic, rel=1e-12)
    with pytest.raises(DataError, match="every code"):
        per_timestamp_mean(np.ones(3), np.array([0, 0, 2]), 3)


def test_fitted_t_is_the_chosen_rules_t_per_timestamp():
    """The ``t`` in a tuned policy's fit is the t of its timing P&L averaged over assets per timestamp
    (recomputed here from its positions, pandas and scipy); ``t_stacked`` is the t of all rows stacked."""
    rows = fleet_run(3, edge=0.08)[7][2]  # fold 2, 3 assets
    pol = fit_policy(rows, cost_bps=COST_BPS, horizon=HORIZON, spa_alpha=1.0)
    assert pol.kind == "hysteresis"  # reads p_up itself, so its positions here are the ones it was scored by
    x = apply_positions(rows, pol).sort_values(["symbol", "timestamp"])
    x["net"] = np.concatenate([book_pnl(g["return_1"].to_numpy(), g["position"].to_numpy(), cost_bps=COST_BPS)[1]
                               for _, g in x.groupby("symbol", sort=True)])
    x["timing"] = x["net"] - x["position"].mean() * np.expm1(x["return_1"])
    by_ts = x.groupby("timestamp")["timing"].mean().to_numpy()
    assert pol.fit["t"] == pytest.approx(stats.ttest_1samp(by_ts, 0.0).statistic, rel=1e-9)
    assert pol.fit["t_stacked"] == pytest.approx(stats.ttest_1samp(x["timing"], 0.0).statistic, rel=1e-9)
    assert pol.fit["timestamps"] == rows["timestamp"].nunique()


def test_fit_records_why_a_unit_trades_or_stays_flat():
    _, _, rows = fleet_run(1)[4]
    pol = fit_policy(rows, cost_bps=COST_BPS, horizon=HORIZON, n_units=9, seed=1)
    f = pol.fit
    assert f["n_units"] == 9 and f["spa_alpha"] == 0.05 and f["level"] == pytest.approx(0.05 / 9)
    assert f["candidates"] >= 60 and {"t", "t_stacked", "reason"} <= set(f)
    with pytest.raises(ConfigError, match="n_units"):
        fit_policy(rows, cost_bps=COST_BPS, horizon=HORIZON, n_units=0)
    with pytest.raises(ConfigError, match="spa_alpha"):
        unit_level(0.0, 3)


@pytest.mark.parametrize("shift", [0.0, 0.25])
def test_spa_pvalue_is_archs(shift):
    """The consistent p-value of ``arch.bootstrap.SPA`` (nested variance, same seed, same stationary bootstrap)."""
    from arch.bootstrap import SPA

    rng = np.random.default_rng(8)
    d = rng.standard_normal((400, 12))
    d[:, 3] += shift
    spa = SPA(np.zeros(400), -d, block_size=5, reps=600, bootstrap="stationary", nested=True, seed=4)
    spa.compute()
    want = spa.pvalues["consistent"]
    assert spa_pvalue(d, block=5, reps=600, seed=4, chunk=7) == pytest.approx(want, abs=1e-12)
    assert (want < 0.05) == (shift > 0)


def test_spa_rejects_a_real_edge_and_not_the_best_of_noise():
    rng = np.random.default_rng(5)
    noise = rng.normal(0.0, 1e-3, (3000, 60))
    best = int(np.argmax(noise.mean(0) / noise.std(0, ddof=1)))
    assert t_stat(noise[:, best]) > 2  # the best of 60 noise columns looks significant on its own ...
    assert spa_test(noise, level=0.05, seed=0)["spa_p"] > 0.05  # ... not once the grid is accounted for
    noise[:, 7] += 1e-4  # t ~ 5.5
    out = spa_test(noise, level=0.05, seed=0)
    assert out["spa_p"] < 0.01 and out["spa_tested"] == 60
    assert spa_test(np.zeros((100, 3)), level=0.05, seed=0)["spa_p"] == 1.0  # nothing trades: nothing to test


def test_crossfit_calibration_never_scores_its_own_rows():
    """Labels moved in one half change the calibrated P(up) of the other half only."""
    rng = np.random.default_rng(2)
    n = 2000
    p = rng.uniform(0.3, 0.7, n)
    y = (rng.random(n) < p).astype(float)
    codes = np.arange(n)
    q = crossfit_calibrated(p, y, codes, n, horizon=4, method="isotonic")
    y2 = y.copy()
    y2[:1000] = 1 - y2[:1000]
    q2 = crossfit_calibrated(p, y2, codes, n, horizon=4, method="isotonic")
    np.testing.assert_array_equal(q[:1000], q2[:1000])
    assert not np.allclose(q[1000:], q2[1000:])
    y3 = y.copy()
    y3[996:1000] = 1 - y3[996:1000]  # the first half's last `horizon` labels reach into the second half
    np.testing.assert_array_equal(crossfit_calibrated(p, y3, codes, n, horizon=4, method="isotonic"), q)


def test_a_correlated_noise_run_stays_flat():
    assert not run_trades(0)


@pytest.mark.slow
def test_correlated_noise_trades_in_at_most_one_run_of_twenty():
    """10 assets with pairwise return correlation 0.3, P(up) independent of the returns, 9 units per run
    (3 folds x 3 clusters): a run that trades is a false discovery; at most 1 of 20 may."""
    assert sum(run_trades(seed) for seed in range(100, 120)) <= 1


def test_planted_timing_edge_is_still_traded():
    """The same fleet with P(up) carrying timing skill (the next bar's mean return moves with it) trades, at the
    level shared among the run's 9 units."""
    units = fleet_run(11, edge=0.08)
    pols = [fit_policy(rows, cost_bps=COST_BPS, horizon=HORIZON, n_units=len(units), seed=11)
            for fold, _, rows in units if fold == 1]  # the middle fold's 3 units keep the test fast
    assert sum(p.kind != "flat" for p in pols) >= 2
    assert all(p.fit["spa_p"] <= p.fit["level"] for p in pols if p.kind != "flat")
