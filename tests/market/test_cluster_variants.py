"""Clusters that mean something: residual returns and FFD levels as clustering inputs, a minimum
cluster size, and no look-ahead in either variant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from fleet.config import build_config
from fleet.data.panel import Panel
from fleet.errors import ConfigError
from fleet.evaluation.splits import PurgedWalkForward
from fleet.market.cluster_inputs import clustering_input, residual_returns
from fleet.market.clustering import cluster_assets, merge_small_clusters
from fleet.market.fold import fit_fold_market


def _planted(n=6000, seed=0, market=0.02, group=0.004, noise=0.004):
    """9 assets in 3 planted groups under one strong market factor with asset-specific betas."""
    rng = np.random.default_rng(seed)
    m = market * rng.standard_normal(n)
    g = group * rng.standard_normal((n, 3))
    betas = rng.uniform(0.5, 1.5, 9)
    cols = {}
    truth = {}
    for i in range(9):
        k = i // 3
        cols[f"G{k}A{i}"] = betas[i] * m + g[:, k] + noise * rng.standard_normal(n)
        truth[f"G{k}A{i}"] = k
    idx = pd.date_range("2023-01-01", periods=n, freq="h", tz="UTC")
    return pd.DataFrame(cols, index=idx), truth


def test_merge_small_clusters_by_hand():
    syms = ["A", "B", "C", "D", "E"]
    d = pd.DataFrame([[0, .1, .2, .9, .8], [.1, 0, .2, .9, .8], [.2, .2, 0, .9, .9], [.9, .9, .9, 0, .3],
                      [.8, .8, .9, .3, 0]], index=syms, columns=syms, dtype=float)
    labels = pd.Series([0, 0, 0, 1, 2], index=syms)
    # E is closest to D on average (0.3 < mean(.8, .8, .9)): the singletons D and E merge first
    out = merge_small_clusters(labels, d, 2)
    assert out["D"] == out["E"] != out["A"] and out.nunique() == 2
    assert merge_small_clusters(labels, d, 1).equals(labels)
    assert merge_small_clusters(labels, d, 10).nunique() == 1
    with pytest.raises(ConfigError, match="min_cluster_size"):
        merge_small_clusters(labels, d, 0)


def test_residual_returns_recover_planted_groups():
    returns, truth = _planted()
    res = residual_returns(returns)
    # the market is gone: residuals are nearly uncorrelated with the equal-weight market proxy
    proxy = returns.mean(axis=1)
    assert max(abs(np.corrcoef(res[c], proxy)[0, 1]) for c in res) < 0.3
    got = cluster_assets(res, n_clusters=3, signed=True).cluster_map
    assert adjusted_rand_score([truth[s] for s in got], list(got.values())) == 1.0
    # on 1 - |corr| the groups' induced negative correlation reads as similarity: the reason for signed=True
    unsigned = cluster_assets(res, n_clusters=3).cluster_map
    assert adjusted_rand_score([truth[s] for s in unsigned], list(unsigned.values())) < 1.0


def test_ffd_levels_match_a_direct_computation():
    """The FFD input is each asset's log price fractionally differentiated at its own d (AFML snippet 5.3),
    recomputed here from the weights' recursion w_k = -w_{k-1} (d - k + 1) / k, one window at a time."""
    from fleet.features.fracdiff import choose_d

    returns, _ = _planted(n=3000, seed=1, market=0.0)
    closes = {s: 100 * np.exp(returns[s].cumsum()) for s in returns}
    cfg = build_config({}, {})
    f = cfg.features
    x = clustering_input("ffd", returns, closes, end=returns.index[-1] + pd.Timedelta(hours=1), features=f)
    assert list(x.columns) == list(returns.columns) and x.notna().sum().min() > 1000
    s = "G1A4"
    lp = np.log(closes[s]).to_numpy()
    d = choose_d(pd.Series(lp, index=returns.index), max_d=f.max_d, step=f.d_step, threshold=f.ffd_threshold,
                 max_width=f.ffd_max_width).d
    w = [1.0]
    while len(w) < f.ffd_max_width:
        nxt = -w[-1] * (d - len(w) + 1) / len(w)
        if abs(nxt) < f.ffd_threshold:
            break
        w.append(nxt)
    K = len(w)
    for t in (K - 1, K + 100, len(lp) - 1):
        direct = sum(w[k] * lp[t - k] for k in range(K))
        assert x[s].iloc[t] == pytest.approx(direct, rel=1e-9, abs=1e-12)
    assert x[s].iloc[: K - 1].isna().all()
    with pytest.raises(ConfigError, match="cluster_on"):
        clustering_input("bogus", returns)


@pytest.mark.parametrize("cluster_on", ["residual", "ffd"])
def test_variants_ignore_the_future(cluster_on):
    returns, _ = _planted(n=2400, seed=2)
    frames = {s: pd.DataFrame({"close": 100 * np.exp(returns[s].cumsum())}) for s in returns}
    panel = Panel(frames=frames, sources={s: "synthetic" for s in frames}, columns=("close",),
                  bar=pd.Timedelta(hours=1))
    ts = returns.index
    fold = PurgedWalkForward(2, horizon=4, embargo_bars=8, bar=panel.bar).folds(ts)[0]
    cfg = build_config({}, {"market.cluster_on": cluster_on, "market.min_cluster_size": 2})
    before = fit_fold_market(panel, fold, cfg)
    rng = np.random.default_rng(0)
    moved = {}
    for s, f in frames.items():
        g = f.copy()
        late = g.index >= fold.train_end
        g.loc[late, "close"] = g.loc[late, "close"].to_numpy() * np.exp(rng.normal(0, 0.05, late.sum()))
        moved[s] = g
    panel2 = Panel(frames=moved, sources=panel.sources, columns=("close",), bar=panel.bar)
    after = fit_fold_market(panel2, fold, cfg)
    assert before.clusters == after.clusters
    assert min(len(m) for m in before.clusters.members.values()) >= 2
