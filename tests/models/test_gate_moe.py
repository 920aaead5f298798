"""Gates and the mixture: top-k routing, load balancing against collapse, out-of-fold gate training,
moe.enabled=false, planning of GPU requests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from _moe_data import panel_rows
from fleet.config import FleetConfig, ModelConfig, build_config
from fleet.errors import ConfigError
from fleet.models import MLPGate, MixtureOfExpertsEnsemble, RuleGate, TrendExpert, build_model, top_k_weights
from fleet.models._context import ASSET_ID, BAR_TIME


def _gate_rows(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    return panel_rows(n // 2, fp_vol30=rng.uniform(0, 0.08, n), fp_trend_r2=rng.uniform(size=n),
                      fp_hurst=rng.uniform(0.3, 0.7, n))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_top_k_gives_exactly_k_nonzero_weights_summing_to_one(k):
    rng = np.random.default_rng(k)
    w = top_k_weights(rng.dirichlet(np.ones(4), size=500), k)
    assert ((w > 0).sum(axis=1) == k).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    X = _gate_rows()
    names = ["trend", "pattern", "stress", "sde"]
    for gate in (RuleGate(top_k=k), MLPGate(top_k=k, epochs=3)):
        P = rng.uniform(size=(len(X), 4))
        gate.fit(X, P, rng.integers(0, 2, len(X)), expert_names=names)
        W = gate.predict_weights(X, P)
        assert W.shape == (len(X), 4) and ((W > 0).sum(axis=1) == k).all()
        np.testing.assert_allclose(W.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="top_k=5"):
        top_k_weights(np.ones((2, 4)), 5)


def test_rule_gate_follows_seed_003_rules():
    X = panel_rows(2, fp_vol30=[0.10, 0.001, 0.04, 0.04], fp_trend_r2=[0.1, 0.1, 0.9, 0.1], fp_hurst=[0.5, 0.5, 0.6, 0.4])
    names = ["trend", "stress", "sde", "crypto_hft", "low_vol_etf", "futures_trend"]
    W = RuleGate(top_k=1).fit(X, expert_names=names).predict_weights(X)
    # rows are (time, asset) interleaved: row 0 -> vol 10 %/day, row 2 -> vol 0.1 %/day ...
    top = [names[i] for i in W.argmax(axis=1)]
    assert top == ["crypto_hft", "low_vol_etf", "futures_trend", "sde"]


def _collapsing_case(n=4000, seed=0):
    """Expert 0 is the most right on 90 % of rows regardless of the fingerprint: a gate trained on the oracle
    alone routes every row's top choice to expert 0 (collapse)."""
    rng = np.random.default_rng(seed)
    X = _gate_rows(n, seed)
    y = rng.integers(0, 2, n)
    P = np.where(y[:, None] == 1, 0.45, 0.55) + 0.0 * rng.uniform(size=(n, 3))
    good = rng.uniform(size=n) < 0.9
    best = np.where(good, 0, rng.integers(1, 3, n))
    P[np.arange(n), best] = np.where(y == 1, 0.7, 0.3)[np.arange(n)]
    return X, P, y


def test_load_balancing_prevents_collapse():
    X, P, y = _collapsing_case()
    names = ["a", "b", "c"]
    # the oracle objective on the fingerprint alone (no expert inputs), all epochs
    kw = dict(top_k=1, epochs=20, batch_size=256, objective="oracle", expert_inputs=False, val_fraction=0.0)
    plain = MLPGate(balance_coef=0.0, **kw).fit(X, P, y, expert_names=names)
    assert (plain.predict_weights(X)[:, 0] > 0).mean() > 0.95  # collapsed: one expert takes every row
    balanced = MLPGate(balance="switch", balance_coef=3.0, **kw).fit(X, P, y, expert_names=names)
    W = balanced.predict_weights(X)
    assert (W[:, 0] > 0).mean() < 0.8
    assert (W > 0).mean(axis=0).min() > 0.05  # every expert gets some rows


def test_entropy_term_flattens_the_mean_routing_but_does_not_break_top1_collapse():
    """Seed 003's entropy term (here on the batch-mean routing) pulls the mean gate probabilities toward
    uniform, but with a fingerprint that says nothing about which expert is right every row keeps the same
    top-1 expert: documented limitation; the Switch f.P term (default) is what prevents collapse."""
    X, P, y = _collapsing_case()
    kw = dict(top_k=1, epochs=20, batch_size=256, objective="oracle", expert_inputs=False, val_fraction=0.0)
    plain = MLPGate(balance_coef=0.0, **kw).fit(X, P, y, expert_names=["a", "b", "c"])
    ent = MLPGate(balance="entropy", balance_coef=3.0, **kw).fit(X, P, y, expert_names=["a", "b", "c"])
    assert ent.predict_gate_probs(X).mean(axis=0)[0] < plain.predict_gate_probs(X).mean(axis=0)[0] - 0.2


class Memoriser(ClassifierMixin, BaseEstimator):
    """Answers its training rows' labels exactly (1.0 / 0.0) and noise around 0.5 elsewhere (a fixed draw per row,
    so its out-of-fold blocks are not constant and stay in the gate's rows); logs what it trained on and predicted."""

    log: list = []

    def fit(self, X, y, sample_weight=None):
        self.seen_ = dict(zip(zip(X[ASSET_ID], X[BAR_TIME]), np.asarray(y)))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        keys = list(zip(X[ASSET_ID], X[BAR_TIME]))
        Memoriser.log.append((set(self.seen_), set(keys)))
        p = np.array([float(self.seen_[k]) if k in self.seen_
                      else 0.45 + 0.1 * np.random.default_rng([int(k[0]), int(k[1]) % 2**32]).random() for k in keys])
        return np.column_stack([1 - p, p])


class Honest(ClassifierMixin, BaseEstimator):
    def fit(self, X, y, sample_weight=None):
        self.m_ = LogisticRegression().fit(X[["signal"]], y)
        self.classes_ = self.m_.classes_
        return self

    def predict_proba(self, X):
        return self.m_.predict_proba(X[["signal"]])


def test_gate_never_sees_in_sample_expert_outputs():
    rng = np.random.default_rng(0)
    n = 1500
    s = rng.normal(size=2 * n)
    y = (s + 0.5 * rng.normal(size=2 * n) > 0).astype(int)
    X = panel_rows(n, signal=s, fp_vol30=rng.uniform(0, 0.08, 2 * n), fp_hurst=rng.uniform(size=2 * n))
    Memoriser.log = []
    ens = MixtureOfExpertsEnsemble([("memo", Memoriser()), ("honest", Honest())],
                                   gate=MLPGate(top_k=1, epochs=40, objective="oracle", balance_coef=0.1,
                                                expert_inputs=False, val_fraction=0.0),
                                   purge_bars=4, guard=False, min_inner_rows=50).fit(X, y)
    # 1) every prediction that fed the gate (one per inner fold) came from a memoriser that had not trained on
    #    those rows, and together they are exactly the gate's rows
    fed = Memoriser.log[:ens.inner_folds]
    assert all(f[1] and not (f[0] & f[1]) for f in fed)
    gate_rows = set(zip(X[ASSET_ID].to_numpy()[ens.oof_index_], X[BAR_TIME].to_numpy()[ens.oof_index_]))
    assert gate_rows == set().union(*(f[1] for f in fed))
    # 2) so the gate learned that the memoriser is useless out of sample and routes to the honest expert
    assert ens.gate_.oracle_share_["memo"] < 0.3
    assert ens.gate_weights(X)["honest"].mean() > 0.8
    # 3) had the gate seen in-sample outputs, the memoriser would have looked perfect (the test can fail)
    P_in = np.column_stack([Memoriser().fit(X, y).predict_proba(X)[:, 1], Honest().fit(X, y).predict_proba(X)[:, 1]])
    leaky = MLPGate(top_k=1, epochs=40).fit(X, P_in, y, expert_names=["memo", "honest"])
    assert leaky.oracle_share_["memo"] > 0.7


def test_gate_weights_frame_and_active_experts():
    rng = np.random.default_rng(1)
    n = 800
    s = rng.normal(size=2 * n)
    y = (s > 0).astype(int)
    X = panel_rows(n, signal=s, fp_vol30=rng.uniform(0, 0.08, 2 * n))
    ens = MixtureOfExpertsEnsemble([("memo", Memoriser()), ("honest", Honest()), ("h2", Honest())],
                                   gate=RuleGate(top_k=2), min_inner_rows=50).fit(X, y)
    gw = ens.gate_weights(X)
    assert list(gw.columns) == ["memo", "honest", "h2"] and gw.shape == (len(X), 3)
    assert ens.expert_names_ == ["memo", "honest", "h2"] and set(ens.active_experts_) <= set(ens.expert_names_)
    p, P, W = ens.predict_details(X)
    np.testing.assert_allclose(p, (P * W).sum(axis=1))


def test_moe_disabled_falls_back_to_the_first_expert():
    cfg = ModelConfig(experts=["trend", "stress", "sde"], moe={"enabled": False})
    assert isinstance(build_model(cfg, seed=0), TrendExpert)
    assert cfg.feature_groups() == ()
    cfg = ModelConfig(experts=["trend", "stress", "sde"], moe={"gate": "rule", "top_k": 5})
    m = build_model(cfg, seed=0, horizon=4)
    assert isinstance(m, MixtureOfExpertsEnsemble) and isinstance(m.gate, RuleGate) and m.gate.top_k == 3
    assert m.purge_bars == 4 and set(cfg.feature_groups()) == {"stress", "sde", "fingerprint"}


def test_expert_names_are_checked_and_options_skew_is_refused():
    with pytest.raises(ConfigError, match="implied"):
        build_config({"model": {"experts": ["trend", "options_skew"]}})
    with pytest.raises(ConfigError, match="unknown expert 'magic'"):
        build_config({"model": {"experts": ["trend", "magic"]}})


def test_planning_asks_for_gpus_only_for_cnn_units():
    from fleet.evaluation.splits import Fold
    from fleet.features.spec import FeatureSpec
    from fleet.training.plan import plan_fold

    t = pd.Timestamp("2024-01-01", tz="UTC")
    fold = Fold(index=0, train_start=t, train_end=t + pd.Timedelta(days=10), test_start=t + pd.Timedelta(days=11),
                test_end=t + pd.Timedelta(days=20))
    kw = dict(fold=fold, timeline_end=fold.test_end, asset_ids={"A": 0, "B": 1}, cluster_of={"A": 0, "B": 1},
              factor=None, is_final=True)
    gbm = FleetConfig.model_validate({"model": {"experts": ["trend", "stress"]}})
    cnn = FleetConfig.model_validate({"model": {"experts": ["trend", "pattern"]}, "resources": {"cnn_num_gpus": 0.25}})
    assert {u.num_gpus for u in plan_fold(config=gbm, features=FeatureSpec.from_config(gbm), **kw)} == {0.0}
    assert {u.num_gpus for u in plan_fold(config=cnn, features=FeatureSpec.from_config(cnn), **kw)} == {0.25}


class SlowLearner(ClassifierMixin, BaseEstimator):
    """Logistic regression on ``signal`` once fitted on at least ``min_rows`` rows; a constant base rate below
    that (a tree that cannot split on a small window answers the same way)."""

    def __init__(self, min_rows: int = 2000):
        self.min_rows = min_rows

    def fit(self, X, y, sample_weight=None):
        self.classes_ = np.array([0, 1])
        self.m_ = LogisticRegression().fit(X[["signal"]], y) if len(X) >= self.min_rows else None
        self.rate_ = float(np.mean(y))
        return self

    def predict_proba(self, X):
        p = self.m_.predict_proba(X[["signal"]])[:, 1] if self.m_ is not None else np.full(len(X), self.rate_)
        return np.column_stack([1 - p, p])


class Coin(ClassifierMixin, BaseEstimator):
    """Noise P(up) around 0.5 from its own seed: no information."""

    def fit(self, X, y, sample_weight=None):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p = 0.5 + 0.05 * np.random.default_rng(len(X)).standard_normal(len(X))
        return np.column_stack([1 - p, p])


@pytest.mark.parametrize("min_rows, kept_blocks", [(2000, [3]), (3000, [])])
def test_inner_blocks_with_a_constant_expert_are_left_out(min_rows, kept_blocks):
    # 2 assets x 1600 bars, 3 inner blocks: the inner fits have < 800, 1600 and 2400 rows, the full window 3200. The
    # slow learner is constant on blocks 1 and 2 (on block 3 too with min_rows 3000); those blocks cannot rank it.
    rng = np.random.default_rng(1)
    n = 1600
    s = rng.normal(size=2 * n)
    y = (s + rng.normal(size=2 * n) > 0).astype(int)
    X = panel_rows(n, signal=s)
    ens = MixtureOfExpertsEnsemble([("slow", SlowLearner(min_rows)), ("coin", Coin())], gate=MLPGate(epochs=5),
                                   purge_bars=4, guard=True, min_inner_rows=50).fit(X, y)
    assert sorted(set(ens.oof_block_.tolist())) == kept_blocks
    skipped = [f for f in ens.inner_folds_ if "constant out-of-fold P(up) from slow" in f.get("skipped", "")]
    assert len(skipped) == 3 - len(kept_blocks)
    if not kept_blocks:  # nothing compares the experts: the first one answers alone, as with no inner fold
        assert ens.fallback_ == "slow" and ens.active_experts_ == ["slow"]
    # the slow learner carries the planted signal on the full window: the unit's answer must keep it
    p = ens.predict_proba(X)[:, 1]
    assert np.corrcoef(p, s)[0, 1] > 0.5
