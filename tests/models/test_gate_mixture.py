"""Issue 12: the mixture must earn its place.

Planted regimes (the gate routes to the expert that is informative in each regime), identical
experts (noise copies cost no AUC), blocked inner out-of-fold folds (purged, no look-ahead, an asset
absent from an inner fit does not fail the unit), the best / stack gates and the guard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from _moe_data import HOUR, ColumnExpert, panel_rows
from fleet.models import (BestExpertGate, MLPGate, MixtureOfExpertsEnsemble, RuleGate, SelectGate, StackGate,
                          TrendExpert)
from fleet.models._context import ASSET_ID, BAR_TIME


def _regimes(n_per_asset: int, seed: int):
    """Two assets; the regime (fp_vol30 high = 1 / low = 0) switches every 150 bars. Expert column pa is
    informative in the high-vol regime only, pb in the low-vol regime only, pc never."""
    rng = np.random.default_rng(seed)
    n = 2 * n_per_asset
    t = np.tile(np.arange(n_per_asset), 2)
    regime = (t // 150) % 2
    y = rng.integers(0, 2, n)
    sign = 2 * y - 1

    def expert(active):
        return np.clip(0.5 + np.where(active, 0.12 * sign, 0.0) + rng.normal(0, 0.08, n), 0.02, 0.98)

    X = panel_rows(n_per_asset, fp_vol30=np.where(regime == 1, 0.07, 0.01) + rng.normal(0, 0.003, n),
                   fp_hurst=rng.uniform(0.4, 0.6, n), pa=expert(regime == 1), pb=expert(regime == 0),
                   pc=expert(np.zeros(n, bool)), seed=seed)
    return X, y, regime


EXPERTS = [("a", ColumnExpert("pa")), ("b", ColumnExpert("pb")), ("c", ColumnExpert("pc"))]


def test_planted_regimes_route_to_the_right_expert_and_the_mixture_beats_each():
    X, y, _ = _regimes(3000, seed=0)
    ens = MixtureOfExpertsEnsemble(EXPERTS, gate=MLPGate(top_k=2, purge_bars=4), purge_bars=4).fit(X, y)
    Xt, yt, rt = _regimes(2000, seed=1)  # fresh rows of the same process: out of sample
    p, P, W = ens.predict_details(Xt)
    assert ens.fallback_ is None and ens.guard_["checked"]
    assert W[rt == 1, 0].mean() >= 0.7  # high vol -> a
    assert W[rt == 0, 1].mean() >= 0.7  # low vol -> b
    assert W[:, 2].mean() < 0.1  # noise expert
    auc = roc_auc_score(yt, p)
    assert auc > roc_auc_score(yt, P[:, 0]) + 0.02 and auc > roc_auc_score(yt, P[:, 1]) + 0.02
    # the oracle target's failure mode: it cannot tell skill from extremity,
    # so the same planted data does not give it the routing (the test above can fail)
    oracle = MixtureOfExpertsEnsemble(EXPERTS, gate=MLPGate(top_k=2, objective="oracle", balance_coef=0.1,
                                                            val_fraction=0.0), guard=False, purge_bars=4).fit(X, y)
    Wo = oracle.predict_details(Xt)[2]
    assert Wo[:, 2].mean() > 0.1 or Wo[rt == 1, 0].mean() < 0.7


def _one_good_three_noise(n_per_asset: int, seed: int):
    rng = np.random.default_rng(seed)
    n = 2 * n_per_asset
    y = rng.integers(0, 2, n)
    good = np.clip(0.5 + 0.08 * (2 * y - 1) + rng.normal(0, 0.1, n), 0.02, 0.98)
    noise = np.clip(0.5 + rng.normal(0, 0.1, n), 0.02, 0.98)
    X = panel_rows(n_per_asset, fp_vol30=rng.uniform(0, 0.08, n), good=good, noise=noise)
    return X, y


@pytest.mark.parametrize("gate", [MLPGate(purge_bars=4), StackGate(), BestExpertGate(), SelectGate()],
                         ids=["mlp", "stack", "best", "select"])
def test_three_copies_of_noise_cost_the_informative_expert_nothing(gate):
    X, y = _one_good_three_noise(3000, seed=2)
    experts = [("good", ColumnExpert("good"))] + [(f"noise{i}", ColumnExpert("noise")) for i in range(3)]
    ens = MixtureOfExpertsEnsemble(experts, gate=gate, purge_bars=4).fit(X, y)
    Xt, yt = _one_good_three_noise(3000, seed=3)
    p, P, W = ens.predict_details(Xt)
    assert roc_auc_score(yt, p) >= roc_auc_score(yt, P[:, 0]) - 0.002
    assert W[:, 0].mean() > 0.8


def test_best_gate_selects_the_lowest_oof_log_loss_and_stack_weights_are_contribution_shares():
    X, y = _one_good_three_noise(2000, seed=4)
    experts = [("noise", ColumnExpert("noise")), ("good", ColumnExpert("good"))]
    best = MixtureOfExpertsEnsemble(experts, gate=BestExpertGate(), purge_bars=4, min_inner_rows=100).fit(X, y)
    oof_y = y[best.oof_index_]
    aucs = [roc_auc_score(oof_y, best.oof_probs_[:, j]) for j in range(2)]  # independent computation
    assert best.gate_.chosen_ == "good" == ["noise", "good"][int(np.argmax(aucs))]
    raw = BestExpertGate(criterion="log_loss").fit(X.iloc[best.oof_index_], best.oof_probs_, oof_y, ["noise", "good"])
    np.testing.assert_allclose([raw.losses_[n] for n in ["noise", "good"]],
                               [log_loss(oof_y, best.oof_probs_[:, j]) for j in range(2)])
    np.testing.assert_array_equal(best.gate_weights(X).to_numpy(), np.tile([0.0, 1.0], (len(X), 1)))
    np.testing.assert_allclose(best.predict_proba(X)[:, 1], X["good"].to_numpy())
    stack = MixtureOfExpertsEnsemble(experts, gate=StackGate(), purge_bars=4, guard=False, min_inner_rows=100).fit(X, y)
    L = np.log(best.oof_probs_ / (1 - best.oof_probs_))
    ref = LogisticRegression(C=1.0, max_iter=1000).fit((L - L.mean(0)) / L.std(0), oof_y)
    share = np.abs(ref.coef_[0]) / np.abs(ref.coef_[0]).sum()
    np.testing.assert_allclose(stack.gate_weights(X).iloc[0].to_numpy(), share, rtol=1e-4)
    assert share[1] > 0.9


def _two_signals(n_per_asset: int, seed: int, signal: bool = True):
    """y = 1 when s1 + s2 + noise > 0; expert a sees s1 only, b sees s2 only (each with its own noise), c sees
    nothing. Without ``signal`` y is a coin and every expert is noise."""
    rng = np.random.default_rng(seed)
    n = 2 * n_per_asset
    s1, s2 = rng.normal(size=n), rng.normal(size=n)
    y = (s1 + s2 + 2.0 * rng.normal(size=n) > 0).astype(int) if signal else rng.integers(0, 2, n)

    def expert(z):
        return 1.0 / (1.0 + np.exp(-0.4 * (z + 0.5 * rng.normal(size=n))))

    X = panel_rows(n_per_asset, pa=expert(s1), pb=expert(s2), pc=expert(rng.normal(size=n)), seed=seed)
    return X, y


@pytest.mark.parametrize("base_rate", ["choose", "mix", "off"])
def test_select_gate_mixes_two_independent_signals_and_leaves_noise_out(base_rate):
    # Ensemble selection (Caruana et al. 2004) on the OOF rows: both informative experts get weight, the noise
    # expert little (its one starting copy), and out of sample the mixture beats each expert alone. The loss path
    # starts at the equal mixture's loss (scored independently with scikit-learn) and never rises; it is the loss of
    # the selection's copies, the base rate's among them, whatever is served.
    X, y = _two_signals(3000, seed=5)
    ens = MixtureOfExpertsEnsemble(EXPERTS, gate=SelectGate(base_rate=base_rate), purge_bars=4).fit(X, y)
    g = ens.gate_
    # not guarded: the guard on means no cross-fit and no fallback
    assert ens.guard_ == {"checked": False, "best_expert": ens.guard_["best_expert"],
                          "reason": "the gate keeps a copy of an expert only where it lowers the out-of-fold loss"}
    assert ens.fallback_ is None
    oof_y = y[ens.oof_index_]
    assert g.path_[0] == pytest.approx(log_loss(oof_y, ens.oof_probs_.mean(axis=1))) and np.all(np.diff(g.path_) < 0)
    total = g.counts_.sum() + g.base_count_
    assert g.base_rate_ == pytest.approx(oof_y.mean()) and g.base_share_ == pytest.approx(g.base_count_ / total)
    assert g.path_[-1] == pytest.approx(log_loss(oof_y, ens.oof_probs_ @ (g.counts_ / total)
                                                 + g.base_share_ * oof_y.mean()))  # the likelihood
    assert g.weights_[0] >= 0.3 and g.weights_[1] >= 0.3 and g.weights_[2] <= 0.1 and g.counts_.min() >= 1
    if base_rate == "mix":  # served as selected: the experts' weights sum to 1 minus the base rate's share
        np.testing.assert_allclose(g.weights_, g.counts_ / total)
        assert g.base_weight_ == g.base_share_
    else:  # 'choose' serves the experts' counts renormalised; 'off' never had a base-rate copy
        np.testing.assert_allclose(g.weights_, g.counts_ / g.counts_.sum())
        assert g.base_weight_ == 0.0 and (base_rate == "choose" or g.base_count_ == 0)
    base = g.base_weight_ * oof_y.mean()  # the served base-rate term, a constant
    Xt, yt = _two_signals(3000, seed=6)
    p, P, W = ens.predict_details(Xt)
    np.testing.assert_allclose(p, P @ g.weights_ + base)  # the convex mixture of the experts' P(up) and the base rate
    auc = roc_auc_score(yt, p)
    assert auc > max(roc_auc_score(yt, P[:, j]) for j in range(2)) + 0.02
    # the best-expert start (the rule before the equal start) begins at the best single expert's loss
    best = SelectGate(start="best").fit(X.iloc[ens.oof_index_], ens.oof_probs_, oof_y, ["a", "b", "c"])
    assert best.path_[0] == pytest.approx(min(log_loss(oof_y, ens.oof_probs_[:, j]) for j in range(3)))
    assert best.weights_[2] == 0.0


def _overconfident_and_narrow(n: int, seed: int):
    """One informative expert whose P(up) is far too extreme, one with no skill whose P(up) stays near 0.5."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=n)
    y = (s + rng.normal(0, 3, n) > 0).astype(int)
    over = 1 / (1 + np.exp(-3 * (s + rng.normal(0, 1, n))))
    narrow = np.clip(0.5 + 0.05 * rng.normal(size=n), 0.02, 0.98)
    return pd.DataFrame(index=range(n)), np.column_stack([over, narrow]), y


def test_select_gate_shrinks_with_the_base_rate_not_with_a_narrow_expert():
    """Without the base rate as a candidate, the mixture's log-loss buys shrinkage toward 0.5 with copies of the
    skill-less expert whose P(up) spreads least (like the SDE expert on daily equities): it takes most of the
    weight and the ranking suffers. With it, the constant takes the shrinkage, the narrow expert keeps its one
    starting copy, and out of sample both the AUC and the log-loss (scikit-learn's) are better."""
    X, P, y = _overconfident_and_narrow(6000, seed=0)
    Xt, Pt, yt = _overconfident_and_narrow(6000, seed=1)
    old = SelectGate(base_rate="off").fit(X, P, y, ["over", "narrow"])
    new = SelectGate(base_rate=True).fit(X, P, y, ["over", "narrow"])  # True = 'mix'
    assert new.base_share_ == new.base_weight_
    assert old.base_weight_ == 0 and old.weights_[1] >= 0.6  # the failure the candidate removes
    assert new.base_weight_ >= 0.4 and new.weights_[1] <= new.weights_[0] and new.base_rate_ == pytest.approx(y.mean())
    p_old, p_new = old.predict_mixture(Xt, Pt)[0], new.predict_mixture(Xt, Pt)[0]
    np.testing.assert_allclose(p_new, Pt @ new.weights_ + new.base_weight_ * y.mean())  # the fit rows' rate, a constant
    assert roc_auc_score(yt, p_new) > roc_auc_score(yt, p_old) + 0.005
    assert log_loss(yt, p_new) < log_loss(yt, p_old)
    assert new.weights_.sum() + new.base_weight_ == pytest.approx(1.0)
    # 'choose' (the default): the same selection, the experts' counts served renormalised, so the narrow expert's
    # small share still holds and the AUC gain with it (the log-loss is not claimed: nothing is shrunk when served)
    chosen = SelectGate().fit(X, P, y, ["over", "narrow"])
    np.testing.assert_array_equal(chosen.counts_, new.counts_)
    assert chosen.base_weight_ == 0.0 and chosen.base_share_ == new.base_share_
    np.testing.assert_allclose(chosen.predict_mixture(Xt, Pt)[0], Pt @ (new.counts_ / new.counts_.sum()))
    assert roc_auc_score(yt, chosen.predict_mixture(Xt, Pt)[0]) > roc_auc_score(yt, p_old) + 0.005


def test_select_gate_base_rate_modes_and_the_config_that_names_them():
    from fleet.config import ModelConfig
    from fleet.models import build_model

    X, P, y = _overconfident_and_narrow(500, seed=2)
    with pytest.raises(ValueError, match="base_rate='sometimes': expected one of choose, mix, off"):
        SelectGate(base_rate="sometimes").fit(X, P, y, ["over", "narrow"])
    assert ModelConfig().moe.select_base_rate == "choose"
    # YAML's true/false, the option's values before 'choose' existed, keep their meaning
    assert ModelConfig(moe={"select_base_rate": True}).moe.select_base_rate == "mix"
    assert ModelConfig(moe={"select_base_rate": False}).moe.select_base_rate == "off"
    with pytest.raises(ValueError, match="select_base_rate"):
        ModelConfig(moe={"select_base_rate": "sometimes"})
    mc = ModelConfig(experts=["trend", "stress"], moe={"select_base_rate": "off"})
    assert build_model(mc, seed=0, horizon=4, embargo=8).gate.base_rate == "off"


def test_select_gate_finds_no_edge_in_noise():
    # Every expert is noise: whatever the selection keeps, the mixture has no edge out of sample.
    X, y = _two_signals(3000, seed=7, signal=False)
    ens = MixtureOfExpertsEnsemble(EXPERTS, gate=SelectGate(), purge_bars=4, guard=False).fit(X, y)
    Xt, yt = _two_signals(3000, seed=8, signal=False)
    p = ens.predict_proba(Xt)[:, 1]
    assert abs(roc_auc_score(yt, p) - 0.5) < 0.02
    by_auc = SelectGate(criterion="auc", start="best").fit(X, X[["pa", "pb", "pc"]].to_numpy(), y, ["a", "b", "c"])
    assert by_auc.path_[0] == pytest.approx(1.0 - max(roc_auc_score(y, X[c]) for c in ("pa", "pb", "pc")))
    with pytest.raises(ValueError, match="rounds=0"):
        SelectGate(rounds=0).fit(X, X[["pa", "pb", "pc"]].to_numpy(), y, ["a", "b", "c"])
    with pytest.raises(ValueError, match="start='worst'"):
        SelectGate(start="worst").fit(X, X[["pa", "pb", "pc"]].to_numpy(), y, ["a", "b", "c"])


def test_select_gate_with_no_out_of_fold_row_keeps_equal_weights():
    """A window too short for any inner fold: nothing to select by, so the equal start answers (the other
    gates fall back to the first expert listed, which is not chosen by any evidence either)."""
    X, y = _two_signals(300, seed=9)
    ens = MixtureOfExpertsEnsemble(EXPERTS, gate=SelectGate(), purge_bars=4, min_inner_rows=10_000).fit(X, y)
    assert not len(ens.oof_index_) and ens.fallback_ is None and ens.active_experts_ == ["a", "b", "c"]
    assert "keeps its start, equal weights" in ens.guard_["reason"]
    np.testing.assert_allclose(ens.predict_proba(X)[:, 1], X[["pa", "pb", "pc"]].mean(axis=1).to_numpy())
    first = MixtureOfExpertsEnsemble(EXPERTS, gate=SelectGate(start="best"), purge_bars=4,
                                     min_inner_rows=10_000).fit(X, y)
    assert first.fallback_ == "a"
    np.testing.assert_allclose(first.predict_proba(X)[:, 1], X["pa"].to_numpy())


def test_guard_falls_back_to_the_best_expert_when_the_gate_loses():
    """The rule gate mixes a noise expert in with weight 1/2 (it knows no expert called 'good'/'noise'): its
    cross-fitted loss is worse than the informative expert's, so the unit answers with that expert alone."""
    X, y = _one_good_three_noise(2000, seed=5)
    experts = [("good", ColumnExpert("good")), ("noise", ColumnExpert("noise"))]
    ens = MixtureOfExpertsEnsemble(experts, gate=RuleGate(top_k=2), purge_bars=4, min_inner_rows=100).fit(X, y)
    assert ens.fallback_ == "good" and isinstance(ens.gate_, BestExpertGate)
    assert ens.guard_["gate_loss"] > ens.guard_["best_loss"]
    np.testing.assert_allclose(ens.predict_proba(X)[:, 1], X["good"].to_numpy())
    assert ens.gate_summary()["fallback"] == "good"
    off = MixtureOfExpertsEnsemble(experts, gate=RuleGate(top_k=2), purge_bars=4, guard=False,
                                   min_inner_rows=100).fit(X, y)
    assert off.fallback_ is None and isinstance(off.gate_, RuleGate)


class LastLabel(ClassifierMixin, BaseEstimator):
    """P(up) of a row = mean label of the training rows of its asset within the last 10 bars before it (0.5 when
    none): an expert that profits from any label it is allowed to see near the rows it predicts."""

    def fit(self, X, y, sample_weight=None):
        self.t_, self.a_, self.y_ = X[BAR_TIME].to_numpy(), X[ASSET_ID].to_numpy(), np.asarray(y, float)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        out = []
        for a, t in zip(X[ASSET_ID].to_numpy(), X[BAR_TIME].to_numpy()):
            m = (self.a_ == a) & (self.t_ < t) & (self.t_ >= t - 10 * HOUR)
            out.append(self.y_[m].mean() if m.any() else 0.5)
        p = np.asarray(out)
        return np.column_stack([1 - p, p])


def test_inner_folds_are_purged_and_never_look_ahead():
    """Perturbing every label from the purge gap before block k on changes none of block k's out-of-fold
    predictions, for every k; without the purge the same perturbation does change them (the test can fail)."""
    rng = np.random.default_rng(6)
    n = 160
    X = panel_rows(n, fp_vol30=rng.uniform(0, 0.08, 2 * n), signal=rng.normal(size=2 * n))
    y = rng.integers(0, 2, 2 * n)
    experts = [("last", LastLabel()), ("gbm", TrendExpert(min_samples_leaf=20, max_iter=5))]

    def oof(purge, yy, embargo=2):
        ens = MixtureOfExpertsEnsemble(experts, gate=BestExpertGate(), purge_bars=purge, embargo_bars=embargo,
                                       inner_folds=3, min_inner_rows=10)
        idx, P, block, starts, folds, _ = ens.inner_oof(X, yy)
        assert [f["block"] for f in folds] == [1, 2, 3] and not any("skipped" in f for f in folds)
        return idx, P, block, starts

    idx, P, block, starts = oof(4, y)
    uniq = np.unique(X[BAR_TIME])
    assert len(np.unique(X[BAR_TIME].to_numpy()[idx])) == len(uniq) - len(uniq) // 4  # blocks 1..3 = 3/4 of the window
    for k, start in starts.items():
        gap_start = uniq[np.searchsorted(uniq, start) - 6]  # purge 4 + embargo 2 timestamps before block k
        y2 = y.copy()
        late = X[BAR_TIME].to_numpy() >= gap_start
        y2[late] = rng.integers(0, 2, late.sum())
        idx2, P2, block2, _ = oof(4, y2)
        np.testing.assert_array_equal(idx, idx2)
        np.testing.assert_array_equal(P[block <= k], P2[block2 <= k])
        leaky = oof(0, y, 0), oof(0, y2, 0)
        assert not np.array_equal(leaky[0][1][leaky[0][2] == k], leaky[1][1][leaky[1][2] == k])


def test_an_asset_missing_from_an_inner_fit_gets_no_oof_row_there_and_does_not_fail_the_unit():
    """Issue 12, 7a: asset 7 starts late (a longer warm-up / a later listing), so the first inner fit has no row
    of it; TrendExpert refuses unknown assets, which used to fail the unit with UnknownSymbolError."""
    rng = np.random.default_rng(7)
    n = 600
    X = panel_rows(n, assets=(3, 7), fp_vol30=rng.uniform(0, 0.08, 2 * n), signal=rng.normal(size=2 * n))
    y = (X["signal"] + rng.normal(size=2 * n) > 0).astype(int).to_numpy()
    keep = ~((X[ASSET_ID] == 7) & (X[BAR_TIME] < 250 * HOUR)).to_numpy()
    X, y = X[keep].reset_index(drop=True), y[keep]
    experts = [("trend", TrendExpert(min_samples_leaf=20, max_iter=5)), ("gbm", TrendExpert(min_samples_leaf=50, max_iter=5))]
    ens = MixtureOfExpertsEnsemble(experts, gate=StackGate(), purge_bars=4, inner_folds=3, min_inner_rows=50).fit(X, y)
    first = ens.inner_folds_[0]
    assert first["assets_left_out"] == [7] and first["n_oof"] > 0
    rows = X.iloc[ens.oof_index_]
    assert set(rows.loc[ens.oof_block_ == 1, ASSET_ID]) == {3}
    assert set(rows.loc[ens.oof_block_ == 3, ASSET_ID]) == {3, 7}
    assert ens.predict_proba(X).shape == (len(X), 2)


@pytest.mark.parametrize("gate", ["mlp", "select"])
def test_unit_inner_folds_and_gate_ignore_bars_after_the_training_window(gate):
    """A mixture fitted on a fold of the synthetic market, then again after every bar from the end of the training
    window on was rewritten: same inner out-of-fold matrix, same gate weights, same P(up) (for select, with the base
    rate as a candidate, that includes the rate it fitted on the inner rows)."""
    from fleet.config import ModelConfig
    from fleet.data.synthetic import synthetic_market
    from fleet.models import build_model
    from fleet.training.dataset import build_unit_dataset
    from _lookahead import _fold, _perturb_after

    panel = synthetic_market(n_clusters=1, assets_per_cluster=2, days=80, seed=11).panel
    fold, end = _fold(panel, 2)
    mc = ModelConfig(experts=["trend", "stress"], moe={"gate": gate, "gate_epochs": 5, "min_inner_rows": 100,
                                                       "select_base_rate": True},
                     trend={"max_iter": 10})
    from fleet.features.spec import FeatureSpec

    kw = dict(assets={s: i for i, s in enumerate(panel.symbols)}, fold=fold, timeline_end=end, factor=None,
              features=FeatureSpec(horizon=4, groups=mc.feature_groups()))
    fits = []
    for frames in (panel.frames, _perturb_after(panel, fold.train_end).frames):
        ds = build_unit_dataset(frames=frames, **kw)
        fits.append((ds, build_model(mc, seed=0, horizon=4, embargo=8).fit(ds.X_train, ds.y_train)))
    (d0, m0), (d1, m1) = fits
    assert not d0.X_test.equals(d1.X_test)  # the perturbation reached the rows after the window
    np.testing.assert_array_equal(m0.oof_index_, m1.oof_index_)
    np.testing.assert_array_equal(m0.oof_probs_, m1.oof_probs_)
    np.testing.assert_array_equal(m0.gate_weights(d0.X_train).to_numpy(), m1.gate_weights(d0.X_train).to_numpy())
    np.testing.assert_array_equal(m0.predict_proba(d0.X_train), m1.predict_proba(d0.X_train))
    assert m0.fallback_ == m1.fallback_ and m0.gate_summary().get("base_rate") == m1.gate_summary().get("base_rate")


def test_calibrated_log_loss_scores_skill_not_the_scale_of_the_probabilities():
    """A forecast made over-confident (logit x 3) keeps its calibrated log-loss but loses on the raw one; the raw
    log-loss then prefers pure noise at 0.5 to an informative, over-confident expert."""
    from fleet.models.gate import calibrated_log_loss, expert_logits

    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 5000)
    p = np.clip(0.5 + 0.02 * (2 * y - 1) + rng.normal(0, 0.1, 5000), 0.01, 0.99)
    loud = 1 / (1 + np.exp(-3 * expert_logits(p[:, None])[:, 0]))
    assert calibrated_log_loss(y, loud) == pytest.approx(calibrated_log_loss(y, p), abs=1e-4)
    assert log_loss(y, loud) > log_loss(y, np.full(5000, 0.5)) > calibrated_log_loss(y, loud)


def test_a_window_too_short_for_any_inner_fold_answers_with_the_first_expert():
    X, y = _one_good_three_noise(300, seed=9)
    experts = [("good", ColumnExpert("good")), ("noise", ColumnExpert("noise"))]
    ens = MixtureOfExpertsEnsemble(experts, gate=StackGate(), purge_bars=4).fit(X, y)  # 600 rows < 1000 per inner fit
    assert ens.fallback_ == "good" and len(ens.oof_index_) == 0 and "no inner fold" in ens.guard_["reason"]
    assert all("skipped" in f for f in ens.inner_folds_)
    np.testing.assert_allclose(ens.predict_proba(X)[:, 1], X["good"].to_numpy())


def test_auc_standard_error_matches_the_spread_of_auc_on_noise():
    """Hanley & McNeil's SE at A = 0.5 against the empirical std of the AUC of random scores (independent)."""
    from sklearn.metrics import roc_auc_score

    from fleet.models.gate import auc_standard_error

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    aucs = [roc_auc_score(y, rng.random(len(y))) for _ in range(400)]
    assert abs(np.std(aucs) / auc_standard_error(y) - 1.0) < 0.15


@pytest.mark.parametrize("h", [4, 8])
def test_auc_standard_error_counts_overlapping_labels_once_per_horizon(h):
    """Labels over h bars on every bar, scored by a persistent forecast (a 48-bar moving average of noise, like
    a trend feature): the plain Hanley-McNeil SE understates the AUC's spread, the horizon-adjusted one does not
    (simulated directly, no fleet code in the loop)."""
    from sklearn.metrics import roc_auc_score

    from fleet.models.gate import auc_standard_error

    rng = np.random.default_rng(h)
    n, aucs = 3000, []
    for _ in range(250):
        r = rng.standard_normal(n + h)
        y = (np.convolve(r, np.ones(h), "valid")[1:n + 1] > 0).astype(int)  # sign of the next h returns
        p = np.convolve(rng.standard_normal(n + 48), np.ones(48), "valid")[:n]
        aucs.append(roc_auc_score(y, p))
    spread = float(np.std(aucs))
    assert spread / auc_standard_error(y) > 1.6  # the plain SE is too small ...
    assert 0.7 < spread / auc_standard_error(y, horizon=h) < 1.15  # ... the adjusted one is about right


def test_best_gate_keeps_the_first_expert_unless_another_is_clearly_better():
    """A challenger better by noise (< 1 SE) does not replace the first expert; a planted one (>> 1 SE) does."""
    from fleet.models.gate import BestExpertGate, auc_standard_error

    rng = np.random.default_rng(1)
    n = 4000
    y = rng.integers(0, 2, n)
    X = pd.DataFrame({"asset_id": np.zeros(n, dtype=np.int64)})
    first = np.clip(0.5 + 0.05 * (y - 0.5) + rng.normal(0, 0.2, n), 0.01, 0.99)
    se = auc_standard_error(y)
    # a challenger equal to the first plus a small nudge toward the label: better, but by less than one SE
    nudged = np.clip(first + 0.004 * (y - 0.5), 0.01, 0.99)
    from sklearn.metrics import roc_auc_score

    gain = roc_auc_score(y, nudged) - roc_auc_score(y, first)
    assert 0 < gain < se
    P = np.column_stack([first, nudged])
    assert BestExpertGate(switch_z=1.0).fit(X, P, y, ["a", "b"]).chosen_ == "a"
    assert BestExpertGate(switch_z=0.0).fit(X, P, y, ["a", "b"]).chosen_ == "b"
    strong = np.clip(0.5 + 0.4 * (y - 0.5) + rng.normal(0, 0.2, n), 0.01, 0.99)
    assert BestExpertGate(switch_z=1.0).fit(X, np.column_stack([first, strong]), y, ["a", "b"]).chosen_ == "b"
