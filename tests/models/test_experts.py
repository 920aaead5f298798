"""Experts: planted signal found, pure noise not; embedding shapes; unknown assets; causal windows; save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from _moe_data import panel_rows, time_split, window_signal
from fleet.errors import UnknownSymbolError
from fleet.features.ou import rolling_ou
from fleet.models import (ArchetypeExpert, StackGate, MLPGate, MixtureOfExpertsEnsemble, MomentumExpert, PatternExpert,
                          RuleGate, SDEExpert,
                          StressExpert, TrendExpert)
from fleet.models._context import WindowStore
from fleet.models.kernels import ARCHETYPES, kernel_bank
from fleet.models.tcn import TemporalConvNet

FAST_CNN = dict(epochs=4, lr=1e-2, patience=4, max_train_windows=2000, hidden=8, levels=2, window=32, random_state=0)


def _auc(model, X, y, train):
    model.fit(X[train], y[train])
    return roc_auc_score(y[~train], model.predict_proba(X[~train])[:, 1])


def _stress_rows(signal: bool, n=2000, seed=0):
    rng = np.random.default_rng(seed)
    cols = {c: rng.normal(size=2 * n) for c in ("stress_drawdown", "stress_volofvol", "stress_skew", "other")}
    y = (0.8 * cols["stress_drawdown"] + rng.normal(size=2 * n) > 0).astype(int) if signal else rng.integers(0, 2, 2 * n)
    return panel_rows(n, **cols), y


def test_stress_expert_finds_planted_signal_and_not_noise():
    X, y = _stress_rows(True)
    assert _auc(StressExpert(), X, y, time_split(X)) > 0.7
    X, y = _stress_rows(False)
    assert abs(_auc(StressExpert(), X, y, time_split(X)) - 0.5) < 0.05


def test_stress_expert_uses_only_stress_columns_and_refuses_hand_set_bias():
    X, y = _stress_rows(True)
    m = StressExpert().fit(X, y)
    assert m.columns_ == ["stress_drawdown", "stress_volofvol", "stress_skew"]
    assert m.class_weight == "balanced"
    with pytest.raises(ValueError, match="hand-set class bias"):
        StressExpert(class_weight={0: 2.0, 1: 1.0}).fit(X, y)


def _momentum_rows(signal: bool, n=2000, seed=3):
    # Two assets; the label follows the market factor's last 12 bars (a planted lead) or is a coin.
    rng = np.random.default_rng(seed)
    cols = {c: rng.normal(size=2 * n) for c in ("ret_1", "ret_4", "market_factor", "factor_ret_4", "factor_ret_12",
                                                "rsi_14", "stress_skew")}
    y = ((0.6 * cols["factor_ret_12"] + rng.normal(size=2 * n) > 0).astype(int) if signal
         else rng.integers(0, 2, 2 * n))
    return panel_rows(n, **cols), y


def test_momentum_expert_finds_a_market_lead_and_not_noise():
    X, y = _momentum_rows(True)
    assert _auc(MomentumExpert(), X, y, time_split(X)) > 0.65
    m = MomentumExpert().fit(X, y)
    assert m.columns_ == ["ret_1", "ret_4", "market_factor", "factor_ret_4", "factor_ret_12"]  # not rsi, stress
    assert np.argmax(np.abs(m.estimator_.coef_[0, :5])) == 4  # the planted column carries the weight
    X, y = _momentum_rows(False)
    assert abs(_auc(MomentumExpert(), X, y, time_split(X)) - 0.5) < 0.05
    with pytest.raises(ValueError, match="no columns starting with"):
        MomentumExpert().fit(X[["rsi_14", "asset_id", "bar_time"]], y)


def _ou_rows(mean_reverting: bool, n=3000, horizon=4, seed=1):
    rng = np.random.default_rng(seed)
    frames, ys = [], []
    for k in range(2):
        x = np.zeros(n)
        for t in range(1, n):
            x[t] = (0.9 * x[t - 1] if mean_reverting else x[t - 1]) + 0.01 * rng.normal()
        s = pd.Series(x)
        feats = rolling_ou(s, window=100, horizon=horizon)
        fwd = s.shift(-horizon) - s
        ok = (feats.notna().all(axis=1) & fwd.notna()).to_numpy()
        frames.append(feats[ok].reset_index(drop=True))
        ys.append((fwd[ok] > 0).astype(int).to_numpy())
    m = min(len(f) for f in frames)
    cols = {c: np.concatenate([f[c].to_numpy()[:m] for f in frames]) for c in frames[0].columns}
    return panel_rows(m, **cols), np.concatenate([y[:m] for y in ys])


def test_sde_expert_finds_mean_reversion_and_not_a_random_walk():
    X, y = _ou_rows(True)
    assert _auc(SDEExpert(), X, y, time_split(X)) > 0.65
    X, y = _ou_rows(False)
    assert abs(_auc(SDEExpert(), X, y, time_split(X)) - 0.5) < 0.05


def test_rolling_ou_recovers_theta():
    rng = np.random.default_rng(0)
    b, x = 0.95, np.zeros(20000)
    for t in range(1, len(x)):
        x[t] = b * x[t - 1] + 0.01 * rng.normal()
    theta = rolling_ou(pd.Series(x), window=5000)["sde_theta"].dropna()
    assert theta.median() == pytest.approx(-np.log(b), rel=0.2)


@pytest.mark.parametrize("cls,kw", [(PatternExpert, {}), (ArchetypeExpert, {"archetype": "futures_trend"})])
def test_cnn_experts_find_a_window_pattern_and_not_noise(cls, kw):
    cols, y = window_signal(1500)
    X = panel_rows(1500, **cols)
    train = time_split(X)
    assert _auc(cls(**FAST_CNN, **kw), X, y, train) > 0.75
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 2, len(y))
    assert abs(_auc(cls(**FAST_CNN, **kw), X, noise, train) - 0.5) < 0.06


def test_embedding_is_expanded_along_time_and_concatenated():
    net = TemporalConvNet(n_channels=5, num_assets=3, asset_emb_dim=8)
    x = torch.randn(4, 5, 64)
    ids = torch.tensor([0, 1, 2, 1])
    z = net.embed(x, ids)
    assert z.shape == (4, 5 + 8, 64)
    assert torch.equal(z[:, :5], x)
    assert torch.allclose(z[:, 5:, 0], net.asset_embedding(ids)) and torch.allclose(z[:, 5:, 0], z[:, 5:, -1])
    assert net(x, ids).shape == (4,)
    assert net.asset_embedding.weight.shape == (3, 8)


def test_unknown_asset_policy():
    cols, y = window_signal(600)
    X = panel_rows(600, **cols)
    m = PatternExpert(**FAST_CNN).fit(X, y)
    new = X[X["asset_id"] == 7].copy()
    new["asset_id"] = 99
    p = m.predict_proba(new)[:, 1]
    assert np.isfinite(p).all()
    # 'mean' policy = the mean of the learned embeddings (the rows of the ids trained on; rows are registry ids)
    net = m.module_.eval()
    W = m._windows(m.store_.__class__(m.features_).add(new), new)
    with torch.no_grad():
        mean_emb = net.asset_embedding.weight[sorted(set(X["asset_id"]))].mean(0)
        h = net.input_proj(torch.cat([torch.as_tensor(W), mean_emb[None, :, None].expand(len(W), 8, W.shape[-1])], 1))
        expected = torch.sigmoid(net.head(net.blocks(h)[:, :, -1]).squeeze(-1)).numpy()
    np.testing.assert_allclose(p, expected, atol=1e-5)
    strict = PatternExpert(**FAST_CNN, unknown_asset="error").fit(X, y)
    with pytest.raises(UnknownSymbolError, match=r"asset ids \[99\]"):
        strict.predict_proba(new)
    with pytest.raises(UnknownSymbolError):
        TrendExpert(min_samples_leaf=20, max_iter=5).fit(X, y).predict_proba(new)


def test_windows_never_use_later_bars():
    cols, y = window_signal(300)
    X = panel_rows(300, **cols)
    store = WindowStore(["f_a", "ffd_log_close"]).add(X)
    W = store.windows(X["asset_id"].to_numpy(), X["bar_time"].to_numpy(), 16)
    assert W.shape == (len(X), 2, 16)
    row = 100  # asset 3, bar 100: its window is bars 85..100 of asset 3
    np.testing.assert_allclose(W[row, 0], X["f_a"].to_numpy()[85:101].astype(np.float32))
    assert (W[0, :, :-1] == 0).all()  # first bar: left zero padding only
    m = PatternExpert(**FAST_CNN).fit(X[time_split(X)], y[time_split(X)])
    test = X[~time_split(X)]
    p = m.predict_proba(test)[:, 1]
    perturbed = test.copy()
    late = perturbed["bar_time"] > perturbed["bar_time"].median()
    perturbed.loc[late, ["f_a", "ffd_log_close"]] = 50.0
    q = m.predict_proba(perturbed)[:, 1]
    np.testing.assert_allclose(p[~late.to_numpy()], q[~late.to_numpy()], atol=1e-6)
    assert not np.allclose(p[late.to_numpy()], q[late.to_numpy()])


def test_kernel_bank_per_archetype_and_options_skew_refused():
    for a in ARCHETYPES:
        names, bank = kernel_bank(a)
        assert bank.shape[0] == len(names) and np.allclose(np.linalg.norm(bank, axis=1), 1.0)
    assert "head_shoulders" in kernel_bank("equity_daily")[0]
    with pytest.raises(ValueError, match="implied"):
        kernel_bank("options_skew")
    m = ArchetypeExpert(archetype="crypto_hft", **FAST_CNN)
    cols, y = window_signal(300)
    X = panel_rows(300, **cols)
    m.features_ = ["f_a", "ffd_log_close"]
    m.device_ = torch.device("cpu")
    m.initialize(2, 2)
    _, bank = kernel_bank("crypto_hft")
    w = m.module_.stem.weight.detach().numpy()
    np.testing.assert_allclose(w[:, 1, :], bank, atol=1e-6)  # templates on the ffd_log_close channel
    assert m.module_.stem.weight.requires_grad


def _all_experts_rows():
    cols, y = window_signal(800)
    rng = np.random.default_rng(2)
    n = len(y)
    extra = {"stress_drawdown": rng.normal(size=n), "factor_ret_4": rng.normal(size=n), "sde_p_up": rng.uniform(size=n), "sde_theta": rng.uniform(size=n),
             "fp_vol30": rng.uniform(0, 0.08, n), "fp_trend_r2": rng.uniform(size=n), "fp_hurst": rng.uniform(size=n)}
    return panel_rows(800, **cols, **extra), y


@pytest.mark.parametrize("make", [
    lambda: TrendExpert(min_samples_leaf=20, max_iter=10), StressExpert, SDEExpert, MomentumExpert,
    lambda: PatternExpert(**FAST_CNN), lambda: ArchetypeExpert(archetype="low_vol_etf", **FAST_CNN),
    pytest.param(lambda: MixtureOfExpertsEnsemble([("trend", TrendExpert(min_samples_leaf=20, max_iter=10)),
                                                   ("stress", StressExpert()), ("pattern", PatternExpert(**FAST_CNN))],
                                                  gate=MLPGate(epochs=5), purge_bars=4, min_inner_rows=50),
                 marks=pytest.mark.slow),
    lambda: MixtureOfExpertsEnsemble([("trend", TrendExpert(min_samples_leaf=20, max_iter=10)), ("sde", SDEExpert())],
                                     gate=RuleGate(), min_inner_rows=50),
    lambda: MixtureOfExpertsEnsemble([("trend", TrendExpert(min_samples_leaf=20, max_iter=10)), ("sde", SDEExpert())],
                                     gate=StackGate(), guard=False, min_inner_rows=50),
])
def test_save_load_round_trip_identical_probabilities(make, tmp_path):
    X, y = _all_experts_rows()
    train = time_split(X)
    m = make().fit(X[train], y[train])
    assert m.fit(X[train], y[train]) is m
    p = m.predict_proba(X[~train])
    assert p.shape == (int((~train).sum()), 2)
    m.save(tmp_path / "m.pkl")
    q = type(m).load(tmp_path / "m.pkl").predict_proba(X[~train])
    np.testing.assert_array_equal(p, q)
