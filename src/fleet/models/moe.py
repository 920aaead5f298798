"""MixtureOfExpertsEnsemble: experts + gate, the gate trained only on out-of-fold expert outputs.

fit(X, y) on one unit's training window (rows of several assets, context columns ``asset_id`` and
``bar_time``, see :mod:`fleet.models._context`):

1. **Inner out-of-fold predictions (blocked stacking, Wolpert 1992).** The window's unique
   timestamps are cut into ``inner_folds + 1`` equal, time-ordered blocks B_0 .. B_K. For
   k = 1..K a clone of every expert is fitted on the timestamps before B_k, less the last
   ``purge_bars + embargo_bars`` of them (the label horizon and the embargo, as in the outer
   folds, so no inner-training label reaches into B_k), and predicts B_k. An asset with no row in
   that inner fit (a longer warm-up, a later listing) gets no out-of-fold row in B_k; an inner fold
   whose fit has fewer than ``min_inner_rows`` rows or one class is skipped, and so is a block in which
   some expert's inner fit answers one constant P(up) (it could not learn on the inner rows, which says
   nothing of its full-window skill); with no fold left the first expert answers alone (the ``select`` gate
   with its default equal start keeps equal weights instead). The result is the
   (n_oof, E) matrix of out-of-fold P(up) over K/(K+1) of the window (3/4 by default): the only
   expert output the gate ever sees — never a prediction an expert made on its own training rows.
2. **Gate.** The gate is fitted on those rows (their fingerprint / asset / factor, the OOF matrix,
   labels); see :mod:`fleet.models.gate` (rule, mlp, stack, best, select).
3. **Guard.** The gate is cross-fitted forward over the inner blocks: for j = 2..K a clone fitted
   on the OOF rows of blocks < j (purged by ``purge_bars + embargo_bars`` timestamps before B_j)
   predicts B_j, so every loss counted is out of sample for the gate as well as for the experts.
   If its loss on those rows (``criterion``, default 'asset_auc': 1 - the mean over (inner block, asset)
   groups of the AUC inside the group, which scores timing and not which asset drifted up; 'auc' pools the rows
   and so rewards both; or the log-loss after a 2-parameter Platt recalibration, or the raw log-loss; see
   :mod:`fleet.models.criteria`) is above that of the best single expert (best over
   all OOF rows by the same criterion, the expert ``--gate best`` picks) on the same rows, the unit falls back to that
   expert: the gate becomes a :class:`~fleet.models.gate.BestExpertGate` (``fallback_`` names the
   expert). With fewer than 2 inner blocks holding rows there is no guard (``guard_`` says so). The ``best``
   and ``select`` gates are not guarded: the first is the best expert, the second keeps a copy of an expert
   only where it lowers the out-of-fold loss.
4. **Per-asset level** (``recalibrate="asset"``; off by default). The fitted gate's mixture is applied to every
   inner out-of-fold row, those of the blocks left out in step 1 included (they hold the asset's labels even when
   they cannot rank the experts), and for each asset the intercept shift delta_a of the mixture's logit is fitted
   by maximum likelihood on that asset's rows: calibration in the large, the intercept-only update of a
   prediction model (Steyerberg, *Clinical Prediction Models*, 2nd ed. 2019, ch. 20; Janssen et al. 2008,
   J. Clin. Epidemiol. 61:76). It sets each asset's mean P(up) on its out-of-fold rows to its up-rate there and
   leaves the ranking of one asset's bars unchanged. Off by default: where the recent up-rate is a worse guide to an
   asset's level than the experts' own levels, the shift costs the fold-pooled AUC.
5. Every expert is refitted on the full training window (``experts_``); at predict time
   ``gate_.predict_mixture`` combines their P(up) (sum of top-k weight x P(up), or the stacker's
   output for ``stack``) and the asset's shift is added to its logit.

With one expert (or ``enabled=False`` in the config, see :func:`fleet.models.factory.build_model`)
there is no gate: weight 1.

Fitted attributes: expert_names_, experts_ (name -> fitted expert), gate_, oof_index_ (positions of X
with an out-of-fold row), oof_probs_ (n_oof, E), oof_block_ (n_oof,) inner block 1..K of each row,
inner_folds_ (per inner fold: rows fitted / predicted, assets left out, or why skipped), oof_scores_
(expert -> {"log_loss", "auc" pooled, "asset_auc" per (block, asset), "calibrated_log_loss"} over the OOF rows),
gate_scores_ (the same figures of the served gate's mixture on the rows it was fitted on: in-sample for the
gate; the guard's ``gate_auc`` / ``gate_asset_auc`` are out of sample), level_shift_ (asset id -> delta_a, logit
units, step 4; empty when off), guard_ (dict: the gate's and the best expert's cross-fitted loss, pooled and
per-asset AUC, rows, decision), fallback_ (expert name or None), active_experts_ (experts with non-zero mean gate
weight on the OOF rows), classes_.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit, logit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import roc_auc_score

from fleet.models._context import ASSET_ID, BAR_TIME, require_context
from fleet.models import specs
from fleet.models._io import PersistMixin
from fleet.models.criteria import forecast_scores, per_asset_auc, score_forecast, switch_margin
from fleet.models.gate import BestExpertGate, SelectGate
# step 1's pure functions; re-exported here, where the task graph and older callers import them
from fleet.models.inner import collect_oof, constant_experts, fit_full, fit_inner  # noqa: F401


def _auc(y, p) -> float:
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def fit_with_blocks(gate, X: pd.DataFrame, P, y, names: list[str], blocks):
    """``gate.fit(X, P, y, expert_names=names)``, with each row's inner block for the gates that read it
    (``takes_blocks``: their per-asset criterion groups rows by (block, asset)); returns the fitted gate."""
    if getattr(gate, "takes_blocks", False):
        return gate.fit(X, P, y, expert_names=names, blocks=blocks)
    return gate.fit(X, P, y, expert_names=names)


def asset_intercepts(asset_ids, p, y) -> dict[int, float]:
    """Per-asset calibration in the large: the intercept shift of the logit that makes each asset's mean P(up)
    equal its up-rate (step 4 of the module docstring).

    For asset a, delta_a solves sum_i sigmoid(logit p_i + delta_a) = sum_i y_i over its rows: the maximum-likelihood
    intercept of a logistic recalibration with logit p as offset and slope 1 (Steyerberg 2019, ch. 20, "updating
    the intercept").

    Args:
        asset_ids: (n,) asset id of each row; p: (n,) P(up) in (0, 1) (clipped to [1e-6, 1 - 1e-6]);
        y: (n,) labels in {0, 1}.

    Returns:
        asset id -> delta_a (logit units), for the assets whose rows hold both classes (with one class the
        maximum-likelihood shift is infinite: such an asset keeps its level and is not listed).
    """
    ids = np.asarray(asset_ids, dtype=np.int64)
    z = logit(np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6))
    y = np.asarray(y, dtype=np.float64)
    out = {}
    for a in np.unique(ids):
        m = ids == a
        if y[m].min() == y[m].max():
            continue
        # the score equation is monotone in delta; with both classes present its root lies within +-30 of 0
        out[int(a)] = float(brentq(lambda d: float(np.sum(expit(z[m] + d) - y[m])), -30.0, 30.0))
    return out


class MixtureOfExpertsEnsemble(PersistMixin, ClassifierMixin, BaseEstimator):
    """Gated mixture of experts (see module docstring).

    Args:
        experts: list of (name, unfitted estimator) pairs; names unique.
        gate: unfitted gate (RuleGate / MLPGate / StackGate / BestExpertGate), or None with a single expert.
        inner_folds: K, the number of inner out-of-fold blocks (the window is cut into K + 1 blocks).
        purge_bars: timestamps dropped before each inner block (the label horizon, bars).
        embargo_bars: further timestamps dropped there (the outer folds' embargo, bars).
        guard: fall back to the best single expert when the cross-fitted gate loses to it.
        criterion: the loss that picks the best expert and that the guard compares
            (:func:`fleet.models.criteria.score_forecast`: 'asset_auc' (default: 1 - the mean over (inner block,
            asset) groups of the AUC inside the group), 'auc' (1 - AUC pooled over the rows), 'calibrated'
            log-loss or raw 'log_loss').
        min_inner_rows: an inner fold whose fit has fewer rows is skipped (and so is a guard step whose gate
            fit would have fewer). An expert fitted on a few hundred rows says little about the same expert
            fitted on the whole window (a TrendExpert with 1,000-row leaves cannot split at all), and judging
            experts by such fits picked the weak ones on short windows. When no inner fold qualifies, the first
            expert of ``experts`` answers alone (``fallback_``; the equal-start ``select`` gate keeps equal weights).
        switch_z: the best expert is the first one listed unless another beats it by more than ``switch_z``
            standard errors of the criterion's AUC on the OOF rows, and the guard keeps the gate only when it beats
            the best expert by that margin (:func:`fleet.models.criteria.switch_margin`; 0: plain comparisons).
        recalibrate: 'off' (default): the gate's mixture as it is; 'asset': step 4's per-asset intercept.

    Raises:
        ValueError: in fit, on duplicate names, no experts, a missing gate with several experts, or inner_folds < 1.
    """

    def __init__(self, experts, gate=None, inner_folds: int = 3, purge_bars: int = 0, embargo_bars: int = 0,
                 guard: bool = True, criterion: str = "asset_auc", min_inner_rows: int = 500, switch_z: float = 0.0,
                 recalibrate: str = "off"):
        self.experts = experts
        self.gate = gate
        self.inner_folds = inner_folds
        self.purge_bars = purge_bars
        self.embargo_bars = embargo_bars
        self.guard = guard
        self.criterion = criterion
        self.min_inner_rows = min_inner_rows
        self.switch_z = switch_z
        self.recalibrate = recalibrate

    # ----------------------------------------------------------------------------------------- fit
    def inner_plan(self, X: pd.DataFrame, y) -> list[dict]:
        """The inner folds of step 1 (module docstring), without fitting anything.

        Returns:
            One dict per inner block k = 1..K: ``block`` (k), ``fit_rows`` / ``val_rows`` (row positions of X,
            int64), ``start`` (first timestamp of B_k, int64 ns, or None) and ``info`` (the record kept in
            ``inner_folds_``: rows fitted / predicted, assets left out, and ``skipped`` with the reason when the
            fold is not fitted, in which case ``fit_rows`` / ``val_rows`` are empty).

        Raises:
            ValueError: inner_folds < 1.
        """
        if int(self.inner_folds) < 1:
            raise ValueError(f"MixtureOfExpertsEnsemble: inner_folds={self.inner_folds}: expected >= 1")
        y = np.asarray(y, dtype=np.int64)
        times = X[BAR_TIME].to_numpy(np.int64)
        ids = X[ASSET_ID].to_numpy(np.int64)
        uniq = np.unique(times)
        K = int(self.inner_folds)
        edges = np.linspace(0, len(uniq), K + 2).astype(int)
        gap = int(self.purge_bars) + int(self.embargo_bars)
        none = np.empty(0, dtype=np.int64)
        plan = []
        for k in range(1, K + 1):
            s, e = edges[k], edges[k + 1]
            info = {"block": k, "n_fit": 0, "n_oof": 0, "assets_left_out": []}
            plan.append({"block": k, "fit_rows": none, "val_rows": none, "start": None, "info": info})
            if s >= e or s - gap < 1:
                info["skipped"] = "too few timestamps before the block"
                continue
            fit_rows = np.flatnonzero(times < uniq[s - gap])
            in_block = (times >= uniq[s]) & ((times < uniq[e]) if e < len(uniq) else True)
            known = np.unique(ids[fit_rows])
            info["assets_left_out"] = sorted(int(a) for a in np.setdiff1d(np.unique(ids[in_block]), known))
            val_rows = np.flatnonzero(in_block & np.isin(ids, known))
            info["n_fit"], info["n_oof"] = len(fit_rows), len(val_rows)
            if len(fit_rows) < self.min_inner_rows or len(np.unique(y[fit_rows])) < 2 or not len(val_rows):
                info["skipped"] = (f"{len(fit_rows)} fitting rows, {len(np.unique(y[fit_rows]))} classes, "
                                   f"{len(val_rows)} rows to predict")
                info["n_oof"] = 0
                continue
            plan[-1].update(fit_rows=fit_rows, val_rows=val_rows, start=int(uniq[s]))
        return plan

    def inner_oof(self, X: pd.DataFrame, y, sample_weight=None):
        """Inner out-of-fold predictions (step 1 of the module docstring), in this process.

        :meth:`inner_plan`, then :func:`fit_inner` for every (expert, fitted fold), then :func:`collect_oof` —
        the same steps a task graph runs as separate tasks (:mod:`fleet.training.graph`).

        Returns:
            (index (n_oof,) row positions of X, P (n_oof, E) out-of-fold P(up), block (n_oof,) in 1..K,
            starts {k: first timestamp of B_k (int64 ns)}, folds: list of per-fold dicts).

        Raises:
            ValueError: inner_folds < 1.
        """
        plan = self.inner_plan(X, y)
        columns = {(name, f["block"]): fit_inner(est, X, y, sample_weight, f) for name, est in self.experts
                   for f in plan}
        return collect_oof(plan, [n for n, _ in self.experts], columns)

    def fit_gate(self, X_oof: pd.DataFrame, P: np.ndarray, y, block: np.ndarray, starts: dict[int, int]):
        """Steps 2 and 3: fit the gate on the out-of-fold rows and apply the guard; returns self.

        Args:
            X_oof: the OOF rows (n_oof, features + context); P: their expert P(up) (n_oof, E);
            y: labels (n_oof,); block: inner block of each row (n_oof,); starts: block -> first timestamp.
        """
        names = [n for n, _ in self.experts]
        y = np.asarray(y, dtype=np.int64)
        P = np.asarray(P, dtype=np.float64)
        assets = X_oof[ASSET_ID].to_numpy(np.int64)
        self.oof_scores_ = {n: forecast_scores(y, P[:, j], assets, block) for j, n in enumerate(names)}
        best = fit_with_blocks(BestExpertGate(criterion=self.criterion, switch_z=self.switch_z,
                                              horizon=self.purge_bars), X_oof, P, y, names, block)
        self.gate_ = fit_with_blocks(clone(self.gate), X_oof, P, y, names, block)
        self.fallback_ = None
        self.guard_ = {"checked": False, "best_expert": best.chosen_}
        if not self.guard:
            self.guard_["reason"] = "guard off"
            return self
        spec = specs.gate_of(self.gate)  # the gate table says which gates the guard leaves alone, and why
        if spec is not None and not spec.guarded:
            self.guard_["reason"] = spec.unguarded_reason
            return self
        p_cf = self.cross_fit(X_oof, P, y, block, starts)
        ok = np.isfinite(p_cf)
        if not ok.any():
            self.guard_["reason"] = "fewer than 2 inner blocks with rows: nothing to cross-fit"
            return self
        b = names.index(best.chosen_)
        crit = dict(criterion=self.criterion, assets=assets[ok], blocks=block[ok])
        gate_loss, best_loss = score_forecast(y[ok], p_cf[ok], **crit), score_forecast(y[ok], P[ok, b], **crit)
        self.guard_.update(checked=True, criterion=self.criterion, rows=int(ok.sum()), gate_loss=gate_loss,
                           best_loss=best_loss, gate_auc=_auc(y[ok], p_cf[ok]), best_auc=_auc(y[ok], P[ok, b]),
                           gate_asset_auc=per_asset_auc(y[ok], p_cf[ok], assets[ok], block[ok]),
                           best_asset_auc=per_asset_auc(y[ok], P[ok, b], assets[ok], block[ok]))
        # The gate must beat the best expert by switch_z standard errors to be kept (0: by anything).
        self.guard_["margin"] = switch_margin(y[ok], self.criterion, self.switch_z, self.purge_bars, assets[ok],
                                              block[ok])
        if gate_loss > best_loss - self.guard_["margin"]:
            self.fallback_ = best.chosen_
            self.gate_ = fit_with_blocks(BestExpertGate(expert=best.chosen_, criterion=self.criterion), X_oof, P, y,
                                         names, block)
        return self

    def cross_fit(self, X_oof: pd.DataFrame, P: np.ndarray, y: np.ndarray, block: np.ndarray,
                  starts: dict[int, int]) -> np.ndarray:
        """Step 3's forward cross-fit: (n_oof,) P(up) of the gate fitted on the OOF rows of blocks < j (purged by
        ``purge_bars + embargo_bars`` timestamps before B_j) on block j, j = 2..K; NaN on rows not predicted."""
        names = [n for n, _ in self.experts]
        times = X_oof[BAR_TIME].to_numpy(np.int64)
        gap = int(self.purge_bars) + int(self.embargo_bars)
        p_cf = np.full(len(y), np.nan)
        for j in sorted(starts)[1:]:
            before = np.flatnonzero(block < j)
            if gap and len(before):  # purge: drop rows whose label window reaches B_j
                t_before = np.unique(times[before])
                cut = np.searchsorted(t_before, starts[j])  # timestamps strictly before B_j
                before = before[times[before] < t_before[max(cut - gap, 0)]] if cut - gap > 0 else before[:0]
            rows = np.flatnonzero(block == j)
            if len(before) < self.min_inner_rows or len(np.unique(y[before])) < 2:
                continue
            g = fit_with_blocks(clone(self.gate), X_oof.iloc[before], P[before], y[before], names, block[before])
            p_cf[rows] = g.predict_mixture(X_oof.iloc[rows], P[rows])[0]
        return p_cf

    def start_fit(self) -> list[str]:
        """Check the experts and gate and reset the fitted attributes; returns the expert names (E,).

        Raises:
            ValueError: duplicate names, no experts, a missing gate with several experts, or an unknown
                ``recalibrate``.
        """
        names = [n for n, _ in self.experts]
        if self.recalibrate not in ("asset", "off"):
            raise ValueError(f"MixtureOfExpertsEnsemble: recalibrate={self.recalibrate!r}: expected 'asset' or 'off'")
        if not names or len(set(names)) != len(names):
            raise ValueError(f"MixtureOfExpertsEnsemble: experts={names}: expected unique names, at least one")
        if len(names) > 1 and self.gate is None:
            raise ValueError("MixtureOfExpertsEnsemble: a gate is required with more than one expert")
        self.expert_names_ = names
        self.gate_, self.fallback_, self.guard_ = None, None, None
        self.oof_index_ = np.empty(0, dtype=np.int64)
        self.oof_probs_ = np.empty((0, len(names)))
        self.oof_block_ = np.empty(0, dtype=np.int64)
        self.inner_folds_, self.oof_scores_, self.gate_scores_ = [], {}, {}
        self.level_shift_ = {}
        self.active_experts_ = list(names)
        return names

    def fit_gate_stage(self, X: pd.DataFrame, y, oof) -> "MixtureOfExpertsEnsemble":
        """Steps 2-4 from the inner out-of-fold result ``oof`` (what :meth:`inner_oof` returns); returns self.

        With no out-of-fold row the first expert answers alone (``fallback_``), or, for the ``select`` gate with
        its equal start, equal weights. Sets the gate attributes, ``level_shift_`` (from the sixth element of
        ``oof``, the rows of every predicted inner block) and ``active_experts_`` (experts with non-zero mean gate
        weight on the OOF rows).
        """
        names = self.start_fit()
        y = np.asarray(y, dtype=np.int64)
        idx, P, block, starts, self.inner_folds_, (level_idx, level_P) = oof
        self.oof_index_, self.oof_probs_, self.oof_block_ = idx, P, block
        if len(idx):
            self.fit_gate(X.iloc[idx], P, y[idx], block, starts)
        elif isinstance(self.gate, SelectGate) and self.gate.start == "equal":
            # nothing to judge the experts by: ensemble selection keeps its start, equal weights
            self.gate_ = clone(self.gate).fit(X.iloc[:0], P, y[:0], expert_names=names)
            self.guard_ = {"checked": False, "best_expert": "",
                           "reason": f"no inner fold had {self.min_inner_rows} fitting rows: the select gate keeps "
                                     "its start, equal weights"}
        else:  # no inner fold had enough rows: nothing to judge the experts by, the first expert answers
            self.fallback_ = names[0]
            self.gate_ = BestExpertGate(expert=names[0]).fit(X.iloc[:0], P, y[:0], expert_names=names)
            self.guard_ = {"checked": False, "best_expert": names[0],
                           "reason": f"no inner fold had {self.min_inner_rows} fitting rows: the first expert "
                                     f"({names[0]}) answers"}
        if len(self.oof_index_):
            X_oof = X.iloc[self.oof_index_]
            self.gate_scores_ = forecast_scores(y[idx], self.gate_.predict_mixture(X_oof, P)[0],
                                                X_oof[ASSET_ID].to_numpy(np.int64), block)
            w = self.gate_.predict_weights(X_oof, self.oof_probs_)
            self.active_experts_ = [n for n, m in zip(names, w.mean(axis=0)) if m > 0]
        else:  # no out-of-fold row to average over: the fallback expert (or the equal start) answers
            self.active_experts_ = [self.fallback_] if self.fallback_ else list(names)
        if self.recalibrate == "asset" and len(level_idx):
            Xl = X.iloc[level_idx]
            p = self.gate_.predict_mixture(Xl, np.asarray(level_P, dtype=np.float64))[0]
            self.level_shift_ = asset_intercepts(Xl[ASSET_ID].to_numpy(np.int64), p, y[level_idx])
        return self

    def shift_levels(self, X: pd.DataFrame, p) -> np.ndarray:
        """The gate's mixture ``p`` (n,) on rows ``X`` (with ``asset_id``) after step 4: each asset's
        ``level_shift_`` added to the logit (an asset without one keeps ``p``); returns (n,) P(up)."""
        p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
        shift = getattr(self, "level_shift_", None)
        if not shift:
            return p
        d = pd.Series(X[ASSET_ID].to_numpy(np.int64)).map(shift).fillna(0.0).to_numpy()
        moved = d != 0.0
        p[moved] = expit(logit(np.clip(p[moved], 1e-6, 1 - 1e-6)) + d[moved])
        return p

    def set_experts(self, fitted: dict) -> "MixtureOfExpertsEnsemble":
        """Step 5's outcome: ``fitted`` maps every expert name to its expert fitted on the full window."""
        self.experts_ = {n: fitted[n] for n, _ in self.experts}
        self.classes_ = np.array([0, 1])
        return self

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> "MixtureOfExpertsEnsemble":
        require_context(X, "MixtureOfExpertsEnsemble")
        names = self.start_fit()
        if len(names) > 1:
            self.fit_gate_stage(X, y, self.inner_oof(X, y, sample_weight))
        return self.set_experts({n: fit_full(est, X, y, sample_weight) for n, est in self.experts})

    # ------------------------------------------------------------------------------------- predict
    def history_bars(self) -> int:
        """Longest per-asset history (bars) an expert reads for one prediction: a CNN's window, else 1."""
        return max([e.history_bars() for e in self.experts_.values() if hasattr(e, "history_bars")] + [1])

    def gate_summary(self) -> dict:
        """What the unit records about its gate: kind, fallback, guard losses, inner folds, OOF scores."""
        kind = type(self.gate).__name__ if self.gate is not None else None
        out = {"gate": kind, "fallback": self.fallback_, "guard": self.guard_, "oof_scores": self.oof_scores_,
               "gate_oof_scores": getattr(self, "gate_scores_", {}), "oof_rows": int(len(self.oof_index_)),
               "inner_folds": self.inner_folds_, "recalibrate": getattr(self, "recalibrate", "off"),
               "asset_intercepts": {int(a): float(d) for a, d in getattr(self, "level_shift_", {}).items()}}
        if hasattr(self.gate_, "base_weight_"):  # select: the constant base-rate P(up) candidate
            # weight: its share of the served mixture (0 unless select_base_rate is 'mix'); share_at_selection: its
            # share where the selection stopped (what it took from the experts while choosing their weights)
            out["base_rate"] = {"p_up": float(self.gate_.base_rate_), "weight": float(self.gate_.base_weight_),
                                "share_at_selection": float(getattr(self.gate_, "base_share_",
                                                                    self.gate_.base_weight_)),
                                "mode": specs.select_base_rate_mode(getattr(self.gate_, "base_rate", False))}
        return out

    def expert_probs(self, X: pd.DataFrame) -> np.ndarray:
        """Each expert's P(up), shape (n, E), columns in ``expert_names_`` order."""
        return np.column_stack([self.experts_[n].predict_proba(X)[:, 1] for n in self.expert_names_])

    def gate_weights(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row gate weights, (n, E) DataFrame with columns ``expert_names_`` (rows sum to 1, or to 1 minus the
        base rate's share under the select gate with ``select_base_rate: mix``; see
        :mod:`fleet.models.gate` for what they mean for the stacker)."""
        if self.gate_ is None:
            W = np.ones((len(X), len(self.expert_names_)))
        else:
            P = self.expert_probs(X) if getattr(self.gate_, "expert_inputs", False) else None
            W = self.gate_.predict_weights(X, P)
        return pd.DataFrame(W, columns=self.expert_names_, index=X.index)

    def predict_details(self, X: pd.DataFrame, expert_probs: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p_up (n,), expert P(up) (n, E), gate weights (n, E)) — one pass for telemetry.

        ``expert_probs``: the experts' P(up) on X (n, E) when already computed (a task graph predicts each expert in
        the task that fitted it); None: computed here.
        """
        P = self.expert_probs(X) if expert_probs is None else np.asarray(expert_probs, dtype=np.float64)
        if self.gate_ is None:
            return np.clip(P[:, 0], 0.0, 1.0), P, np.ones_like(P)
        p, W = self.gate_.predict_mixture(X, P)
        return self.shift_levels(X, p), P, W

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, 2) probabilities; column 1 is P(up) (the gate's mixture of the experts' P(up))."""
        p = self.predict_details(X)[0]
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
