"""Gates of the mixture of experts: which experts answer for a row, and with what weight.

Every gate is an estimator fitted on the experts' *out-of-fold* predictions (see
:mod:`fleet.models.moe`): ``fit(X, expert_probs, y, expert_names)`` with X the rows (n, features +
context; gates read the ``fp_*`` fingerprint columns, ``asset_id`` and, when present,
``market_factor``), ``expert_probs`` (n, E) the experts' out-of-fold P(up) and y (n,) the labels.
At predict time ``predict_mixture(X, expert_probs) -> (p_up (n,), weights (n, E))``.

* :class:`RuleGate` — static rules on the fingerprint: nothing is learned.
  p_up = sum_e w_e P_e with top-k weights.
* :class:`~fleet.models.gate_mlp.MLPGate` (in :mod:`fleet.models.gate_mlp`, the one gate that needs torch) — a
  small network: fingerprint + market factor + the experts' logit P(up) (standardised) + a learned asset embedding
  -> hidden layer -> E logits, plus a free per-expert
  bias (the constant mixing weights, not weight-decayed) -> softmax -> top-k, renormalised.
  Default objective ``likelihood``: the binary cross-entropy of the mixture
  p(x) = sum_e w_e(x) P_e(x) (Jacobs, Jordan, Nowlan & Hinton 1991, "Adaptive mixtures of local
  experts"), with the same renormalised top-k mask in training as at inference (the mask is
  chosen without gradient; the kept weights are differentiable), a load-balancing term with
  coefficient ``balance_coef`` ('switch' = E * sum_e f_e * P_e, Switch Transformer, Fedus et al.
  2021; 'entropy' = minus the entropy of the batch-mean routing), weight decay on the network
  (not on the bias) and early stopping on a purged, time-ordered tail of the rows. Objective
  ``oracle`` (not the default): cross-entropy toward the expert most right on each
  row (smallest |P_e - y|); it rewards the expert with the most extreme probabilities, not skill.
* :class:`StackGate` — logistic regression on the experts' standardised logit P(up) (+ one-hot
  asset intercepts): the classic stacker (Wolpert 1992; Breiman 1996, "Stacked regressions").
  p_up is the stacker's own output, *not* sum_e w_e P_e; its weights are defined as each expert's
  share of the linear predictor's spread: w_e = |c_e| * sd_e / sum_j |c_j| * sd_j (c_e the
  coefficient of expert e's logit, sd_e the std of that logit on the fitting rows), the same on
  every row.
* :class:`SelectGate` — ensemble selection (Caruana et al. 2004): constant convex weights, multiples of
  1/rounds, chosen by greedy forward selection with replacement on the out-of-fold rows, starting from the
  best single expert. p_up = sum_e w_e P_e. The default gate.
* :class:`BestExpertGate` — the single expert with the best out-of-fold score (:func:`score_forecast`, see
  :mod:`fleet.models.criteria`; default 'asset_auc', the mean over (inner block, asset) groups of the AUC inside the
  group, which rewards timing and not which asset drifted up; 'auc' = the AUC pooled over the rows, which rewards
  both; 'calibrated' = log-loss after a 2-parameter Platt recalibration, 'log_loss' = raw log-loss): weight 1 on it,
  0 elsewhere (selects, does not mix). It is also what a guarded mixture falls back to. Raw log-loss is a poor
  selector here: inner fits on a part of the window are mis-calibrated, and it prefers a weak, well-calibrated
  expert.

:class:`BestExpertGate` and :class:`SelectGate` also take ``blocks`` (n,), each row's inner block, in ``fit``: the
groups of the per-asset criterion are (block, ``asset_id``) pairs (with ``blocks`` None, one block).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

from fleet.models._context import ASSET_ID, require_context
from fleet.models._gate_base import _check_fit_args, _ConvexGate, expert_logits, top_k_weights
# the scoring criteria live in fleet.models.criteria; re-exported here, where callers have always found them
from fleet.models.criteria import (asset_auc_standard_error, auc_standard_error, calibrated_log_loss,
                                   mixture_log_loss, per_asset_auc, score_forecast, switch_margin)
from fleet.models._io import PersistMixin
from fleet.models._tabular import asset_onehot
from fleet.models import specs

__all__ = ["REGIMES", "BestExpertGate", "RuleGate", "SelectGate", "StackGate", "asset_auc_standard_error",
           "auc_standard_error", "calibrated_log_loss", "expert_logits", "mixture_log_loss", "per_asset_auc",
           "score_forecast", "switch_margin", "top_k_weights"]

#: The rule gate's regimes on the fingerprint: name -> condition on (vol30 daily volatility,
#: trend R^2, Hurst exponent), each (n,) -> (n,) bool. Which expert gains what in each regime is the
#: experts' ``rule_hints`` in :data:`fleet.models.specs.EXPERTS`.
REGIMES = {
    "high_vol": lambda vol, r2, h: vol > 0.06,
    "low_vol": lambda vol, r2, h: vol < 0.005,
    "strong_trend": lambda vol, r2, h: (r2 >= 0.8) & (h > 0.55),
    "steady_trend": lambda vol, r2, h: (vol >= 0.01) & (vol < 0.03) & (r2 >= 0.6),
    "moderate_vol": lambda vol, r2, h: (vol >= 0.005) & (vol < 0.02),
    "mean_reverting": lambda vol, r2, h: h < 0.45,
}


class RuleGate(_ConvexGate, PersistMixin, BaseEstimator):
    """Seed 003's static fingerprint rules mapped onto the experts at hand.

    Scores (before top-k): every expert starts at 1; then, per row, each regime of :data:`REGIMES` that
    holds adds the bonus the experts' specs give it (``rule_hints`` in :data:`fleet.models.specs.EXPERTS`):
      vol30 > 6 %/day (high_vol)                        -> crypto_hft +3, stress +2, pattern +1
      vol30 < 0.5 %/day (low_vol)                       -> low_vol_etf +3, sde +2
      trend R^2 >= 0.8 and Hurst > 0.55 (strong_trend)  -> futures_trend +3, trend +2
      1 % <= vol30 < 3 % and R^2 >= 0.6 (steady_trend)  -> equity_intraday +3, trend +1
      0.5 % <= vol30 < 2 % (moderate_vol)               -> equity_daily +2, sde +1
      Hurst < 0.45, mean-reverting (mean_reverting)     -> sde +2
    Missing fingerprint columns make their rules inactive. Weights = top_k of scores / sum.

    Args:
        top_k: experts per row.
    """

    def __init__(self, top_k: int = 2):
        self.top_k = top_k

    def fit(self, X, expert_probs=None, y=None, expert_names=None) -> "RuleGate":
        """Remember the expert names (E,); nothing is learned."""
        if not expert_names:
            raise ValueError("RuleGate.fit: expert_names (the ensemble's experts) is required")
        self.expert_names_ = list(expert_names)
        top_k_weights(np.ones((1, len(self.expert_names_))), min(self.top_k, len(self.expert_names_)))
        return self

    def scores(self, X: pd.DataFrame) -> np.ndarray:
        """Rule scores (n, E)."""
        n = len(X)
        s = np.ones((n, len(self.expert_names_)))
        col = {name: j for j, name in enumerate(self.expert_names_)}

        def get(c):
            return X[c].to_numpy(np.float64) if c in X.columns else np.full(n, np.nan)

        vol, r2, h = get("fp_vol30"), get("fp_trend_r2"), get("fp_hurst")
        with np.errstate(invalid="ignore"):
            masks = {regime: rule(vol, r2, h) for regime, rule in REGIMES.items()}
        for spec in specs.EXPERTS:
            if spec.name in col:
                for regime, bonus in spec.rule_hints.items():
                    s[masks[regime], col[spec.name]] += bonus
        return s

    def predict_weights(self, X: pd.DataFrame, expert_probs=None) -> np.ndarray:
        """Top-k weights (n, E), rows sum to 1 (``expert_probs`` is not read)."""
        s = self.scores(X)
        return top_k_weights(s / s.sum(axis=1, keepdims=True), min(self.top_k, s.shape[1]))


def _selection_context(X, y, blocks, criterion: str, who: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(assets (n,) or None, blocks (n,) or None): what ``criterion`` reads besides y and P. The per-asset AUC needs
    X's ``asset_id``; ValueError when it is missing or ``blocks`` is not one entry per row."""
    if blocks is not None and len(blocks) != len(y):
        raise ValueError(f"{who}.fit: blocks has {len(blocks)} entries for {len(y)} rows: expected one per row")
    if criterion != "asset_auc":
        return None, None
    require_context(X, f"{who} (criterion 'asset_auc')", (ASSET_ID,))
    return X[ASSET_ID].to_numpy(np.int64), None if blocks is None else np.asarray(blocks, dtype=np.int64)


class BestExpertGate(_ConvexGate, PersistMixin, BaseEstimator):
    """Weight 1 on the expert with the lowest loss on the fitting (out-of-fold) rows.

    Args:
        expert: force this expert (a name) instead of choosing one; None chooses.
        criterion: the loss, see :func:`score_forecast` (default 'asset_auc': 1 - the mean over (inner block, asset)
            groups of the ROC AUC inside the group; 'auc' pools the rows of every asset and block, and so also
            rewards an expert that only knows which asset drifted up).
        switch_z: the first expert listed is kept unless another's loss is lower by more than this many standard
            errors of the criterion's AUC (:func:`switch_margin`; 0: the plain argmin; no margin for the
            log-losses).
        horizon: the labels' horizon, bars (overlapping labels: the standard error counts n / horizon rows).

    ``fit(X, expert_probs, y, expert_names, blocks=None)``: X (n, ...) with ``asset_id`` under 'asset_auc',
    expert_probs (n, E), y (n,), blocks (n,) each row's inner block (None: one block).

    Fitted: expert_names_, chosen_ (name), losses_ (name -> loss on the fitting rows).
    """

    takes_blocks = True  # MixtureOfExpertsEnsemble hands fit each row's inner block

    def __init__(self, expert: str | None = None, criterion: str = "asset_auc", switch_z: float = 0.0,
                 horizon: int = 1):
        self.expert = expert
        self.criterion = criterion
        self.switch_z = switch_z
        self.horizon = horizon

    def fit(self, X, expert_probs, y, expert_names, blocks=None) -> "BestExpertGate":
        """Choose the expert; raises ValueError on bad shapes, an unknown forced expert, or no ``asset_id`` in X
        under 'asset_auc'."""
        P, y = _check_fit_args("BestExpertGate", X, P=expert_probs, y=y, expert_names=expert_names)
        self.expert_names_ = list(expert_names)
        assets, blocks = _selection_context(X, y, blocks, self.criterion, "BestExpertGate")
        self.losses_ = ({n: score_forecast(y, P[:, j], self.criterion, assets, blocks)
                         for j, n in enumerate(self.expert_names_)} if len(y) else {})
        if self.expert is not None and self.expert not in self.expert_names_:
            raise ValueError(f"BestExpertGate: expert={self.expert!r} is not one of {self.expert_names_}")
        if self.expert is None and not self.losses_:
            raise ValueError("BestExpertGate.fit: no rows to choose an expert by")
        if self.expert is not None:
            self.chosen_ = self.expert
            return self
        # The first expert listed is the incumbent; another replaces it only when its loss is lower by more
        # than switch_z standard errors: an inner window's AUC is noisy, and a plain argmin would pick a
        # weaker expert in a fair share of units.
        first = self.expert_names_[0]
        challenger = min(self.expert_names_, key=self.losses_.__getitem__)
        margin = switch_margin(y, self.criterion, self.switch_z, self.horizon, assets, blocks)
        self.chosen_ = challenger if self.losses_[challenger] < self.losses_[first] - margin else first
        return self

    def predict_weights(self, X: pd.DataFrame, expert_probs=None) -> np.ndarray:
        """(n, E): 1 in the chosen expert's column."""
        W = np.zeros((len(X), len(self.expert_names_)))
        W[:, self.expert_names_.index(self.chosen_)] = 1.0
        return W


class SelectGate(_ConvexGate, PersistMixin, BaseEstimator):
    """Ensemble selection (Caruana, Niculescu-Mizil, Crew & Ksikes 2004, "Ensemble selection from libraries of
    models", ICML): constant convex weights chosen by greedy forward selection *with replacement* on the
    out-of-fold rows.

    Start from one copy of every expert (``start='equal'``, the paper's sorted initialisation with all the
    models, sec. 2.1) or from the single expert with the lowest loss (``start='best'``; ties go to the expert
    listed first); then, until there are ``rounds`` copies, add one more copy of whichever expert lowers the loss
    (:func:`score_forecast`, ``criterion``) of the running average p = sum_e (count_e / total) P_e the most, and
    stop at the first step that lowers it by no more than ``tol``. Weights are the counts over the total, so they
    are multiples of 1/``rounds``: few degrees of freedom (a stacker fits E free coefficients), and the result is
    never worse on the fitting rows than where it starts.

    Why equal weights are the default start: a constant combination estimated on a short window rarely beats
    equal weights out of sample (the "forecast combination puzzle", Clemen 1989; Smith & Wallis 2009), and an
    expert leaves the mixture only as far as the out-of-fold rows pay for it. With no out-of-fold row at
    all the equal start is the fit (``path_`` is empty).

    The base rate as a candidate (``base_rate``): besides the experts, a copy may be the out-of-fold rows' base
    rate P(up) = mean(y), one constant (the "climatology" reference forecast of weather verification, Murphy
    1988). It starts with no copy and enters only where it lowers the loss, so the log-loss can shrink
    over-confident experts toward the base rate without buying that shrinkage with copies of the expert whose
    P(up) spreads least (without it, the SDE expert, the narrowest P(up) with little skill, got 0.36-0.47 of the
    weight on daily equities, and the expert with the best inner AUC had the largest weight in 29-40 % of those
    units). What is served then:

    * ``'choose'`` (the default): the experts' counts alone, renormalised to sum to 1. The base rate only chose
      them; the served P(up) is a convex mixture of the experts, like every other gate's, so units and folds stay
      comparable (no unit is compressed toward its own window's base rate).
    * ``'mix'`` (``True`` is accepted for it): the base rate is served too, p = sum_e w_e P_e + base_weight_ x
      base_rate_, and the experts' weights sum to 1 - ``base_weight_``. A constant changes no ranking inside a
      unit, but each unit is compressed toward its own base rate by its own share, which makes units and folds
      less comparable (a cost to the fold-pooled AUC).
    * ``'off'`` (``False`` is accepted for it): experts only.

    Args:
        rounds: most copies in the ensemble (the weights' resolution is 1/rounds; with ``start='equal'`` and
            fewer rounds than experts, the equal start is kept as it is). With the equal start every expert keeps
            at least 1/rounds, so more rounds let the selection push noise experts further down
            (tests/models/test_gate_mixture.py compares 50 with 20).
        criterion: the loss (:func:`score_forecast`; default 'log_loss', the mixture's own binary cross-entropy,
            so the weights are a maximum-likelihood fit of constant mixture weights on a grid of 1/rounds;
            'asset_auc' = 1 - the per-asset AUC over (inner block, asset) groups; 'auc' = 1 - ROC AUC pooled over
            the rows). The log-loss, like the pooled AUC, also rewards an expert's level (a P(up) that knows
            which asset drifts up lowers it). It stays the default because the weights are one constant mix of
            whole experts: a copy of an expert that carries only a level (constant within each asset) leaves every
            asset's ranking of its bars, and so the per-asset AUC, unchanged, and the served P(up) is also the
            level that the threshold policies trade on. 'asset_auc' selects on timing alone.
        tol: smallest loss reduction that adds a copy.
        start: 'equal' (one copy of every expert) or 'best' (one copy of the lowest-loss expert).
        base_rate: 'choose', 'mix' or 'off' (above; the base rate never counts as the start).

    Fitted: expert_names_, counts_ (E,) ints, base_rate_ (mean of y; 0.5 with no row), base_count_ (its copies;
    0 with 'off'), base_share_ = base_count_ / total copies (its share where the selection stopped), weights_
    (E,) the served expert weights (counts_ / counts_.sum() with 'choose' or 'off'; counts_ / total copies with
    'mix'), base_weight_ the served base-rate share (base_share_ with 'mix', else 0), path_ (the loss at the start
    and after each added copy).

    Raises:
        ValueError: bad shapes (:func:`_check_fit_args`), rounds < 1, another start or base_rate, or no rows
            with ``start='best'``.
    """

    def __init__(self, rounds: int = 50, criterion: str = "log_loss", tol: float = 0.0, start: str = "equal",
                 base_rate: str | bool = "choose"):
        self.rounds = rounds
        self.criterion = criterion
        self.tol = tol
        self.start = start
        self.base_rate = base_rate

    takes_blocks = True  # MixtureOfExpertsEnsemble hands fit each row's inner block

    def fit(self, X, expert_probs, y, expert_names, blocks=None) -> "SelectGate":
        """Choose the counts on out-of-fold P (n, E) and labels y (n,); ``blocks`` (n,) each row's inner block
        (read by 'asset_auc' only; None: one block)."""
        P, y = _check_fit_args("SelectGate", X, P=expert_probs, y=y, expert_names=expert_names)
        assets, blocks = _selection_context(X, y, blocks, self.criterion, "SelectGate")
        if int(self.rounds) < 1:
            raise ValueError(f"SelectGate: rounds={self.rounds}: expected >= 1")
        if self.start not in ("equal", "best"):
            raise ValueError(f"SelectGate: start={self.start!r}: expected 'equal' or 'best'")
        try:
            mode = specs.select_base_rate_mode(self.base_rate)
        except ValueError as err:
            raise ValueError(f"SelectGate: {err}") from None
        self.expert_names_ = list(expert_names)
        e = len(self.expert_names_)
        self.base_rate_ = float(y.mean()) if len(y) else 0.5
        if mode != "off":  # the constant candidate, last column; it is never part of the start
            P = np.column_stack([P, np.full(len(y), self.base_rate_)])
        counts = np.zeros(P.shape[1], dtype=np.int64)
        if self.start == "equal":
            counts[:e] = 1
        elif not len(y):
            raise ValueError("SelectGate.fit: no rows to select experts by")
        else:
            counts[int(np.argmin([score_forecast(y, P[:, j], self.criterion, assets, blocks) for j in range(e)]))] = 1
        total = P @ counts.astype(np.float64)  # the sum of the chosen copies' P(up), (n,)
        # with no row there is nothing to select by: the equal start is the fit and the path is empty
        path = [score_forecast(y, total / counts.sum(), self.criterion, assets, blocks)] if len(y) else []
        last = int(self.rounds) if len(y) else 0
        for k in range(int(counts.sum()) + 1, last + 1):
            trial = [score_forecast(y, (total + P[:, j]) / k, self.criterion, assets, blocks)
                     for j in range(P.shape[1])]
            j = int(np.argmin(trial))
            if trial[j] >= path[-1] - self.tol:
                break
            counts[j] += 1
            total += P[:, j]
            path.append(float(trial[j]))
        self.counts_ = counts[:e]
        self.base_count_ = int(counts[e]) if mode != "off" else 0
        self.base_share_ = self.base_count_ / int(counts.sum())
        served = counts.sum() if mode == "mix" else self.counts_.sum()  # 'choose': the experts' counts, renormalised
        self.weights_ = self.counts_ / served
        self.base_weight_ = self.base_share_ if mode == "mix" else 0.0
        self.path_ = [float(v) for v in path]
        return self

    def predict_weights(self, X: pd.DataFrame, expert_probs=None) -> np.ndarray:
        """(n, E): the constant expert weights ``weights_`` on every row (they sum to 1 - ``base_weight_``)."""
        return np.tile(self.weights_, (len(X), 1))

    def predict_mixture(self, X: pd.DataFrame, expert_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(p_up (n,) = sum_e w_e P_e + base_weight_ x base_rate_, clipped to [0, 1]; weights (n, E))."""
        p, W = super().predict_mixture(X, expert_probs)  # the experts' share, as every convex gate mixes it
        base = getattr(self, "base_weight_", 0.0) * getattr(self, "base_rate_", 0.5)  # artifacts saved before it
        return np.clip(p + base, 0.0, 1.0), W


class StackGate(PersistMixin, BaseEstimator):
    """Logistic regression on the experts' logit P(up) (see module docstring for what w_e means).

    Args:
        C: inverse L2 regularisation of :class:`~sklearn.linear_model.LogisticRegression`.
        asset_intercepts: add one-hot asset columns (per-asset intercepts; an unseen asset gets the
            pooled intercept). Off by default: on crypto_1h they lowered the AUC pooled over a unit's assets
            (0.5406 vs 0.5420, 730 days, 5 folds, hierarchical; benchmarks/gates.py).

    Fitted: estimator_, expert_names_, mean_, std_ (of the logits), asset_codes_, weights_ (E,).
    """

    def __init__(self, C: float = 1.0, asset_intercepts: bool = False):
        self.C = C
        self.asset_intercepts = asset_intercepts

    def _design(self, X: pd.DataFrame, P: np.ndarray) -> np.ndarray:
        Z = (expert_logits(P) - self.mean_) / self.std_
        if not self.asset_intercepts:
            return Z
        return np.column_stack([Z, asset_onehot(X, self.asset_codes_)])

    def fit(self, X: pd.DataFrame, expert_probs, y, expert_names) -> "StackGate":
        """Fit the stacker on out-of-fold P (n, E) and labels y (n,); ValueError on bad shapes."""
        require_context(X, "StackGate", (ASSET_ID,))
        P, y = _check_fit_args("StackGate", X, expert_probs, y, expert_names)
        self.expert_names_ = list(expert_names)
        L = expert_logits(P)
        self.mean_ = L.mean(axis=0)
        self.std_ = L.std(axis=0)
        self.std_[~(self.std_ > 1e-12)] = 1.0
        self.asset_codes_ = {int(a): i for i, a in enumerate(np.unique(X[ASSET_ID].to_numpy()))}
        self.estimator_ = LogisticRegression(C=self.C, max_iter=1000)
        self.estimator_.fit(self._design(X, P), y.astype(np.int64))
        c = np.abs(self.estimator_.coef_[0, :len(self.expert_names_)])  # standardised: |c_e| * sd_e already
        self.weights_ = c / c.sum() if c.sum() > 0 else np.full(len(c), 1.0 / len(c))
        return self

    def predict_weights(self, X: pd.DataFrame, expert_probs=None) -> np.ndarray:
        """(n, E): the constant contribution shares ``weights_`` on every row."""
        return np.tile(self.weights_, (len(X), 1))

    def predict_mixture(self, X: pd.DataFrame, expert_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(p_up (n,) from the stacker, weights (n, E))."""
        P = np.asarray(expert_probs, dtype=np.float64)
        return self.estimator_.predict_proba(self._design(X, P))[:, 1], self.predict_weights(X)


def __getattr__(name):
    # The MLP gate moved to fleet.models.gate_mlp (torch is imported only where it is used); models pickled
    # before that name fleet.models.gate.MLPGate / GateMLP, and unpickling looks them up here.
    if name in ("MLPGate", "GateMLP"):
        from fleet.models import gate_mlp

        return getattr(gate_mlp, name)
    raise AttributeError(f"module 'fleet.models.gate' has no attribute {name!r}")
