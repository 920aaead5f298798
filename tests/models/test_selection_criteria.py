"""Selecting on the per-asset AUC: --gate best, the guard and the best expert it compares against.

A pooled AUC over several assets rewards an expert that only knows which asset drifts up; the per-asset AUC (mean
over (inner block, asset) groups of the AUC inside the group) does not. Checked against scikit-learn loops, on a
planted level-versus-timing market and on pure noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.metrics import roc_auc_score

from _moe_data import ColumnExpert, panel_rows
from fleet.models import BestExpertGate, MixtureOfExpertsEnsemble, SelectGate
from fleet.models._gate_base import _ConvexGate
from fleet.models.criteria import (asset_auc_standard_error, auc_standard_error, group_aucs, per_asset_auc,
                                   score_forecast, switch_margin)

ASSETS = tuple(range(10, 20))


def _direct_per_asset_auc(y, p, assets, blocks) -> float:
    """The definition, looped: roc_auc_score inside each (block, asset) group with both classes, then the mean."""
    frame = pd.DataFrame({"y": y, "p": p, "a": assets, "b": blocks})
    aucs = [roc_auc_score(g["y"], g["p"]) for _, g in frame.groupby(["b", "a"]) if g["y"].nunique() == 2]
    return float(np.mean(aucs))


def test_per_asset_criterion_equals_a_direct_loop_over_blocks_and_assets():
    rng = np.random.default_rng(0)
    n = 6000
    assets, blocks = rng.choice([3, 7, 41, 1000], n), rng.integers(1, 4, n)
    y = rng.integers(0, 2, n)
    p = np.round(rng.random(n) + 0.1 * y, 2)  # rounded: many ties, which roc_auc_score counts as one half
    y[(assets == 41) & (blocks == 2)] = 1  # a group with one class: skipped, not counted as 0.5
    want = _direct_per_asset_auc(y, p, assets, blocks)
    assert per_asset_auc(y, p, assets, blocks) == pytest.approx(want, abs=1e-12)
    assert score_forecast(y, p, "asset_auc", assets, blocks) == pytest.approx(1.0 - want, abs=1e-12)
    # with one asset and one block it is the pooled AUC
    assert per_asset_auc(y, p, np.zeros(n), None) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    auc, n1, n0 = group_aucs(y, p, np.zeros(n, dtype=np.int64))
    assert n1[0] == y.sum() and n0[0] == n - y.sum()
    with pytest.raises(ValueError, match="asset id"):
        score_forecast(y, p, "asset_auc")


def _level_and_timing(seed: int, n_per_asset: int = 1500):
    """Ten assets whose up-rates differ (0.40 .. 0.60) and a weak timing signal s inside each asset.

    ``level``: P(up) = the asset's up-rate over its rows, constant within an asset (it knows only which asset
    drifts up); ``timing``: a noisy logistic of s (it knows nothing of the levels)."""
    rng = np.random.default_rng(seed)
    k = len(ASSETS)
    rate = np.repeat(np.linspace(0.40, 0.60, k), n_per_asset)
    s = rng.normal(size=k * n_per_asset)
    y = (rng.random(k * n_per_asset) < rate + 0.05 * s).astype(int)
    timing = 1.0 / (1.0 + np.exp(-0.3 * (s + rng.normal(size=len(s)))))
    level = pd.Series(y).groupby(np.repeat(np.arange(k), n_per_asset)).transform("mean").to_numpy()
    X = panel_rows(n_per_asset, assets=ASSETS, level=level, timing=timing)
    blocks = np.tile(np.arange(n_per_asset) * 3 // n_per_asset, k)  # three time blocks per asset
    return X, y, blocks


def test_level_expert_wins_the_pooled_auc_but_best_chooses_the_timing_expert():
    X, y, blocks = _level_and_timing(seed=0)
    P = X[["level", "timing"]].to_numpy()
    ids = X["asset_id"].to_numpy()
    # the planted facts, scored by scikit-learn: the level expert ranks higher pooled, and has no timing at all
    assert roc_auc_score(y, P[:, 0]) > roc_auc_score(y, P[:, 1]) + 0.02
    assert _direct_per_asset_auc(y, P[:, 0], ids, blocks) == pytest.approx(0.5)
    assert _direct_per_asset_auc(y, P[:, 1], ids, blocks) > 0.52
    names = ["level", "timing"]
    assert BestExpertGate().fit(X, P, y, names, blocks=blocks).chosen_ == "timing"  # the default: per-asset AUC
    assert BestExpertGate(criterion="auc").fit(X, P, y, names, blocks=blocks).chosen_ == "level"
    # even as a challenger that must clear a margin of 2 (conservative) standard errors
    assert BestExpertGate(switch_z=2.0).fit(X, P, y, names, blocks=blocks).chosen_ == "timing"
    # ensemble selection by AUC: the per-asset criterion starts from timing, the pooled one from level
    assert SelectGate(criterion="asset_auc", start="best").fit(X, P, y, names, blocks=blocks).path_[0] == \
        pytest.approx(1.0 - _direct_per_asset_auc(y, P[:, 1], ids, blocks))
    sel = SelectGate(criterion="asset_auc", start="best", rounds=1).fit(X, P, y, names, blocks=blocks)
    assert list(sel.counts_) == [0, 1]
    assert list(SelectGate(criterion="auc", start="best", rounds=1).fit(X, P, y, names).counts_) == [1, 0]


class ServeLevel(_ConvexGate, BaseEstimator):
    """A deliberately bad gate: weight 1 on the expert named ``level`` on every row (nothing is learned)."""

    def fit(self, X, expert_probs, y, expert_names):
        self.expert_names_ = list(expert_names)
        return self

    def predict_weights(self, X, expert_probs=None):
        W = np.zeros((len(X), len(self.expert_names_)))
        W[:, self.expert_names_.index("level")] = 1.0
        return W


def test_guard_compares_against_the_timing_expert_and_falls_back_to_it():
    X, y, _ = _level_and_timing(seed=1)
    experts = [("level", ColumnExpert("level")), ("timing", ColumnExpert("timing"))]
    ens = MixtureOfExpertsEnsemble(experts, gate=ServeLevel(), purge_bars=4).fit(X, y)
    g = ens.guard_
    assert g["checked"] and g["criterion"] == "asset_auc" and g["best_expert"] == "timing"
    assert ens.fallback_ == "timing"  # the gate served the level expert: no timing, so it lost
    assert g["gate_asset_auc"] == pytest.approx(0.5) and g["best_asset_auc"] > 0.52
    assert g["gate_auc"] > g["best_auc"]  # ... though it won the pooled AUC
    np.testing.assert_allclose(ens.predict_proba(X)[:, 1], X["timing"].to_numpy())
    # judged on the pooled AUC the level expert is the best one and the level-serving gate stays
    pooled = MixtureOfExpertsEnsemble(experts, gate=ServeLevel(), purge_bars=4, criterion="auc").fit(X, y)
    assert pooled.guard_["best_expert"] == "level" and pooled.fallback_ is None


def test_unit_records_pooled_and_per_asset_auc_of_each_expert_and_of_the_gate():
    X, y, _ = _level_and_timing(seed=2, n_per_asset=800)
    experts = [("level", ColumnExpert("level")), ("timing", ColumnExpert("timing"))]
    ens = MixtureOfExpertsEnsemble(experts, gate=BestExpertGate(), purge_bars=4).fit(X, y)
    idx, yo = ens.oof_index_, y[ens.oof_index_]
    ids, blk = X["asset_id"].to_numpy()[idx], ens.oof_block_
    for j, name in enumerate(["level", "timing"]):
        rec = ens.oof_scores_[name]
        assert rec["auc"] == pytest.approx(roc_auc_score(yo, ens.oof_probs_[:, j]))
        assert rec["asset_auc"] == pytest.approx(_direct_per_asset_auc(yo, ens.oof_probs_[:, j], ids, blk))
    summary = ens.gate_summary()
    assert ens.gate_.chosen_ == "timing"
    assert summary["gate_oof_scores"]["asset_auc"] == pytest.approx(summary["oof_scores"]["timing"]["asset_auc"])
    assert summary["gate_oof_scores"]["auc"] == pytest.approx(summary["oof_scores"]["timing"]["auc"])


def _noise(seed: int, n_per_asset: int = 600, experts: int = 3):
    rng = np.random.default_rng(seed)
    n = n_per_asset * len(ASSETS)
    y = rng.integers(0, 2, n)
    P = rng.uniform(0.3, 0.7, size=(n, experts))
    X = panel_rows(n_per_asset, assets=ASSETS)
    return X, P, y, np.tile(np.arange(n_per_asset) * 3 // n_per_asset, len(ASSETS))


def test_pure_noise_experts_get_no_systematic_preference():
    names = ["a", "b", "c"]
    plain, kept = [], []
    for seed in range(60):
        X, P, y, blocks = _noise(seed)
        plain.append(BestExpertGate().fit(X, P, y, names, blocks=blocks).chosen_)
        kept.append(BestExpertGate(switch_z=1.0).fit(X, P, y, names, blocks=blocks).chosen_)
    counts = pd.Series(plain).value_counts()
    assert set(counts.index) == set(names) and counts.min() >= 10  # about 20 each: no expert is favoured
    assert kept.count("a") >= 54  # a margin of one standard error keeps the incumbent on noise


@pytest.mark.parametrize("shared", [True, False])
def test_asset_auc_standard_error_bounds_the_spread_of_the_per_asset_auc(shared):
    """Noise scores on ten assets in three blocks. When every asset has the same labels and scores (the worst
    case: perfectly correlated group AUCs) the spread of the per-asset AUC matches the standard error; with
    independent assets it is about 1/sqrt(10) of it: the bound is conservative, never too small."""
    rng = np.random.default_rng(int(shared))
    k, n = 10, 900
    ids, blocks = np.repeat(np.arange(k), n), np.tile(np.arange(n) * 3 // n, k)
    vals = []
    for _ in range(300):
        y1, p1 = rng.integers(0, 2, n), rng.random(n)
        y = np.tile(y1, k) if shared else rng.integers(0, 2, k * n)
        p = np.tile(p1, k) if shared else rng.random(k * n)
        vals.append(per_asset_auc(y, p, ids, blocks))
    ratio = float(np.std(vals)) / asset_auc_standard_error(y, ids, blocks)
    if shared:
        assert 0.85 < ratio < 1.15
    else:
        assert 0.2 < ratio < 0.45
    # one asset, one block: Hanley & McNeil's pooled standard error; the margin is z of them
    assert asset_auc_standard_error(y, np.zeros(len(y)), None, 4) == pytest.approx(auc_standard_error(y, 4))
    assert switch_margin(y, "asset_auc", 2.0, 1, ids, blocks) == pytest.approx(
        2.0 * asset_auc_standard_error(y, ids, blocks))
    assert switch_margin(y, "log_loss", 2.0) == 0.0
