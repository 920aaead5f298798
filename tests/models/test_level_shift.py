"""Step 4 of the mixture: each asset's level fitted on the inner out-of-fold rows (calibration in the large)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score

from _moe_data import ColumnExpert, panel_rows
from fleet.config import ModelConfig
from fleet.models import MixtureOfExpertsEnsemble, SelectGate
from fleet.models._context import ASSET_ID
from fleet.models.moe import asset_intercepts


class Flat(ColumnExpert):
    """An expert that answers one constant P(up) (a tree that could not split)."""

    def predict_proba(self, X):
        return np.column_stack([np.full(len(X), 0.5), np.full(len(X), 0.5)])


def test_asset_intercepts_are_the_maximum_likelihood_offsets_statsmodels_fits():
    rng = np.random.default_rng(0)
    ids = np.repeat([2, 5, 9], 400)
    p = rng.uniform(0.2, 0.8, len(ids))
    y = (rng.uniform(size=len(ids)) < expit(logit(p) + np.select([ids == 2, ids == 5], [0.4, -0.3], 0.0))).astype(int)
    y[ids == 9] = 1  # one class: no finite maximum-likelihood shift, the asset is left as it is
    got = asset_intercepts(ids, p, y)
    assert set(got) == {2, 5}
    for a in (2, 5):  # an independent fit: a binomial GLM with the mixture's logit as offset, intercept only
        m = ids == a
        glm = sm.GLM(y[m], np.ones((m.sum(), 1)), family=sm.families.Binomial(), offset=logit(p[m])).fit()
        assert got[a] == pytest.approx(glm.params[0], abs=1e-6)
        assert expit(logit(p[m]) + got[a]).mean() == pytest.approx(y[m].mean(), abs=1e-9)


def _levels(n: int, rates: dict[int, float], seed: int, signal: float = 0.6):
    """Two assets whose up-rate is ``rates[a]`` throughout; expert ``a`` ranks each asset's bars (``signal``) but
    answers around 0.5 for both (the level it learned is wrong), expert ``b`` is noise."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(list(rates), n)
    z = rng.normal(size=len(ids))
    base = np.array([rates[a] for a in ids])
    y = (rng.uniform(size=len(ids)) < expit(logit(base) + signal * z)).astype(int)
    X = panel_rows(n, assets=tuple(rates), a=expit(0.3 * z), b=expit(0.3 * rng.normal(size=len(ids))))
    return X, y


def _fit(X, y, recalibrate):
    experts = [("a", ColumnExpert("a")), ("b", ColumnExpert("b"))]
    return MixtureOfExpertsEnsemble(experts, gate=SelectGate(), purge_bars=4, min_inner_rows=100,
                                    recalibrate=recalibrate).fit(X, y)


def test_a_planted_per_asset_level_is_found_and_one_assets_ranking_is_unchanged():
    X, y = _levels(3000, {3: 0.62, 7: 0.38}, seed=1)
    on, off = _fit(X, y, "asset"), _fit(X, y, "off")
    assert on.level_shift_[3] > 0.3 and on.level_shift_[7] < -0.3  # logit(0.62) = 0.49
    Xt, yt = _levels(3000, {3: 0.62, 7: 0.38}, seed=2)
    p_on, p_off = on.predict_proba(Xt)[:, 1], off.predict_proba(Xt)[:, 1]
    assert roc_auc_score(yt, p_on) > roc_auc_score(yt, p_off) + 0.03
    for a in (3, 7):  # within one asset the order of the bars is the gate's own
        m = (Xt[ASSET_ID] == a).to_numpy()
        assert roc_auc_score(yt[m], p_on[m]) == pytest.approx(roc_auc_score(yt[m], p_off[m]), abs=1e-12)
        assert p_on[m].mean() == pytest.approx(yt[m].mean(), abs=0.03)
    assert on.gate_summary()["asset_intercepts"] == {3: on.level_shift_[3], 7: on.level_shift_[7]}
    assert on.gate_summary()["recalibrate"] == "asset" and off.gate_summary()["recalibrate"] == "off"
    assert off.level_shift_ == {} and off.gate_summary()["asset_intercepts"] == {}
    # off is the default, in the estimator and in the config
    assert MixtureOfExpertsEnsemble([]).recalibrate == "off" and ModelConfig().moe.recalibrate == "off"


def test_on_noise_the_level_finds_no_edge():
    rng = np.random.default_rng(3)
    n = 3000
    X = panel_rows(n, a=rng.uniform(0.3, 0.7, 2 * n), b=rng.uniform(0.3, 0.7, 2 * n))
    y = rng.integers(0, 2, 2 * n)
    ens = _fit(X, y, "asset")
    assert max(abs(d) for d in ens.level_shift_.values()) < 0.15
    Xt = panel_rows(n, a=rng.uniform(0.3, 0.7, 2 * n), b=rng.uniform(0.3, 0.7, 2 * n))
    yt = rng.integers(0, 2, 2 * n)
    assert abs(roc_auc_score(yt, ens.predict_proba(Xt)[:, 1]) - 0.5) < 0.03


def test_the_level_reads_only_the_inner_out_of_fold_rows():
    """No look-ahead inside the window either: a label outside every out-of-fold row (block B_0, which only trains
    the inner fits) does not move the shift; a label in an out-of-fold row does (the test can fail)."""
    X, y = _levels(1200, {3: 0.6, 7: 0.4}, seed=4)
    ref = _fit(X, y, "asset").level_shift_
    ens = _fit(X, y, "asset")
    outside = np.setdiff1d(np.arange(len(y)), ens.oof_index_)
    assert len(outside) > 0
    y2 = y.copy()
    y2[outside] = 1 - y2[outside]
    assert _fit(X, y2, "asset").level_shift_ == pytest.approx(ref)
    y3 = y.copy()
    y3[ens.oof_index_[:200]] = 1 - y3[ens.oof_index_[:200]]
    assert _fit(X, y3, "asset").level_shift_ != pytest.approx(ref)


def test_blocks_left_out_of_the_gate_still_set_the_level():
    """An expert that answers one constant P(up) in every inner block leaves the gate no row (equal weights
    answer), but those blocks hold each asset's labels: the level is fitted on them."""
    X, y = _levels(2000, {3: 0.65, 7: 0.35}, seed=5)
    experts = [("a", ColumnExpert("a")), ("flat", Flat())]
    ens = MixtureOfExpertsEnsemble(experts, gate=SelectGate(), purge_bars=4, min_inner_rows=100,
                                   recalibrate="asset").fit(X, y)
    assert len(ens.oof_index_) == 0 and all("constant" in f.get("skipped", "") for f in ens.inner_folds_)
    assert ens.level_shift_[3] > 0.3 and ens.level_shift_[7] < -0.3
    with pytest.raises(ValueError, match="recalibrate='both'"):
        MixtureOfExpertsEnsemble(experts, gate=SelectGate(), recalibrate="both").fit(X, y)


def test_the_config_reaches_the_ensemble_and_a_bad_value_is_refused():
    from fleet.config import load_config
    from fleet.errors import FleetError
    from fleet.models.factory import build_model

    cfg = load_config(None, {"model.experts": ["trend", "momentum"], "model.moe.recalibrate": "asset"})
    assert build_model(cfg.model, seed=0).recalibrate == "asset"
    with pytest.raises(FleetError, match="recalibrate"):
        load_config(None, {"model.experts": ["trend", "momentum"], "model.moe.recalibrate": "assets"})
