"""Gates of the mixture of experts: which experts answer for a row, and with what weight.

Every gate is an estimator fitted on the experts' *out-of-fold* predictions (see
:mod:`fleet.models.moe`): ``fit(X, expert_probs, y, expert_names)`` with X the rows (n, features +
context; gates read the ``fp_*`` fingerprint columns, ``asset_id`` and, when present,
``market_factor``), ``expert_probs`` (n, E) the experts' out-of-fold P(up) and y (n,) the labels.
At predict time ``predict_mixture(X, expert_probs) -> (p_up (n,), weights (n, E))``.

* :class:`RuleGate` — seed 003's static rules on the fingerprint: nothing is learned.
  p_up = sum_e w_e P_e with top-k weights.
* :class:`MLPGate` — a small network: fingerprint + market factor + the experts' logit P(up)
  (standardised) + a learned asset embedding -> hidden layer -> E logits, plus a free per-expert
  bias (the constant mixing weights, not weight-decayed) -> softmax -> top-k, renormalised.
  Default objective ``likelihood``: the binary cross-entropy of the mixture
  p(x) = sum_e w_e(x) P_e(x) (Jacobs, Jordan, Nowlan & Hinton 1991, "Adaptive mixtures of local
  experts"), with the same renormalised top-k mask in training as at inference (the mask is
  chosen without gradient; the kept weights are differentiable), a load-balancing term with
  coefficient ``balance_coef`` ('switch' = E * sum_e f_e * P_e, Switch Transformer, Fedus et al.
  2021; 'entropy' = minus the entropy of the batch-mean routing), weight decay on the network
  (not on the bias) and early stopping on a purged, time-ordered tail of the rows. Objective
  ``oracle`` (seed 003, no longer the default): cross-entropy toward the expert most right on each
  row (smallest |P_e - y|); it rewards the expert with the most extreme probabilities, not skill.
* :class:`StackGate` — logistic regression on the experts' standardised logit P(up) (+ one-hot
  asset intercepts): the classic stacker (Wolpert 1992; Breiman 1996, "Stacked regressions").
  p_up is the stacker's own output, *not* sum_e w_e P_e; its weights are defined as each expert's
  share of the linear predictor's spread: w_e = |c_e| * sd_e / sum_j |c_j| * sd_j (c_e the
  coefficient of expert e's logit, sd_e the std of that logit on the fitting rows), the same on
  every row.
* :class:`BestExpertGate` — the single expert with the best out-of-fold score (:func:`score_forecast`;
  default the AUC pooled over the rows, the figure the fleet is judged by; 'calibrated' = log-loss after a
  2-parameter Platt recalibration, 'log_loss' = raw log-loss): weight 1 on it, 0 elsewhere (selects, does
  not mix). It is also what a guarded mixture falls back to. Raw log-loss is a poor selector here: inner
  fits on a part of the window are mis-calibrated, and it prefers a weak, well-calibrated expert (on
  crypto_1h, 730 d, 5 folds, hierarchical: AUC 0.5287 raw log-loss, 0.5423 calibrated, 0.5439 AUC).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from torch import nn

from fleet.features.fingerprint import FINGERPRINT_PREFIX
from fleet.models._context import ASSET_ID, BAR_TIME, require_context
from fleet.models._io import PersistMixin
from fleet.models._tabular import asset_onehot

FACTOR = "market_factor"
_EPS = 1e-6


def top_k_weights(probs: np.ndarray, k: int) -> np.ndarray:
    """Keep each row's k largest entries of ``probs`` (n, E), zero the rest, renormalise to sum 1.

    Raises:
        ValueError: k outside 1..E.
    """
    probs = np.asarray(probs, dtype=np.float64)
    n, e = probs.shape
    if not 1 <= k <= e:
        raise ValueError(f"top_k={k}: expected 1 <= top_k <= {e} (number of experts)")
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    out = np.zeros_like(probs)
    rows = np.arange(n)[:, None]
    kept = np.maximum(probs[rows, order], 1e-12)
    out[rows, order] = kept / kept.sum(axis=1, keepdims=True)
    return out


def expert_logits(P: np.ndarray) -> np.ndarray:
    """logit of P(up) (n, E), probabilities clipped to [1e-6, 1 - 1e-6]."""
    P = np.clip(np.asarray(P, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(P) - np.log1p(-P)


def mixture_log_loss(y, p) -> float:
    """Mean binary cross-entropy (nats) of P(up) ``p`` (n,) for labels ``y`` (n,) in {0, 1}."""
    return float(log_loss(np.asarray(y, dtype=np.int64), np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS),
                          labels=[0, 1]))


def calibrated_log_loss(y, p) -> float:
    """Log-loss (nats) of P(up) ``p`` (n,) after a 2-parameter logistic recalibration of its logit on the
    same rows (Platt 1999): a + b * logit(p), fitted by maximum likelihood (tiny L2, C = 1e4).

    It scores what a forecast can be made worth by a monotone map — its skill — and not the scale of its
    probabilities: an expert fitted on a short inner window is often over- or under-confident, and the raw
    log-loss then prefers a weak, well-calibrated expert to a stronger one (measured in issue 12: selecting by raw
    log-loss cost 0.015 AUC on crypto_1h). Two parameters on thousands of rows: the in-sample optimism is ~1/n.
    """
    y = np.asarray(y, dtype=np.int64)
    L = expert_logits(np.asarray(p, dtype=np.float64)[:, None])
    if len(np.unique(y)) < 2:
        return mixture_log_loss(y, p)
    m = LogisticRegression(C=1e4, max_iter=200).fit(L, y)
    return mixture_log_loss(y, m.predict_proba(L)[:, 1])


def score_forecast(y, p, criterion: str) -> float:
    """Loss of P(up) ``p`` for labels ``y`` by ``criterion``: 'calibrated' (:func:`calibrated_log_loss`),
    'log_loss' (raw) or 'auc' (1 - ROC AUC). Lower is better. ValueError on another criterion."""
    if criterion == "calibrated":
        return calibrated_log_loss(y, p)
    if criterion == "log_loss":
        return mixture_log_loss(y, p)
    if criterion == "auc":
        from sklearn.metrics import roc_auc_score

        y = np.asarray(y)
        return 1.0 - float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else 0.5
    raise ValueError(f"criterion={criterion!r}: expected 'calibrated', 'log_loss' or 'auc'")


def auc_standard_error(y, horizon: int = 1) -> float:
    """Standard error of a ROC AUC near 0.5 on labels ``y`` (n,), Hanley & McNeil (1982), eq. 2 at A = 0.5:
    sqrt((n1 + n0 + 1) / (12 n1 n0)), with the class counts divided by ``horizon``.

    Labels over ``horizon`` bars taken on every bar overlap: their average uniqueness is 1/horizon
    (López de Prado, AFML ch. 4.4), so the rows carry about n / horizon independent outcomes, and with
    forecasts as persistent as ours the plain formula understates the spread of the AUC by about
    sqrt(horizon) (tests/test_gate_mixture.py measures it on simulated overlapping labels). The noise scale
    of an AUC difference between two forecasts of the same rows (an upper bound: correlated forecasts
    differ by less). inf when a class is missing.
    """
    y = np.asarray(y)
    h = max(int(horizon), 1)
    n1 = float((y == 1).sum()) / h
    n0 = float(len(y)) / h - n1
    return float(np.sqrt((n1 + n0 + 1.0) / (12.0 * n1 * n0))) if n1 > 0 and n0 > 0 else float("inf")


def switch_margin(y, criterion: str, z: float, horizon: int = 1) -> float:
    """How much lower a challenger's loss must be to replace the incumbent: ``z`` AUC standard errors
    (:func:`auc_standard_error` for labels over ``horizon`` bars) under criterion 'auc', 0 under the others."""
    return float(z) * auc_standard_error(y, horizon) if criterion == "auc" and z > 0 else 0.0


def _check_fit_args(who: str, X, P, y, expert_names) -> tuple[np.ndarray, np.ndarray]:
    P = np.asarray(P, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if not expert_names:
        raise ValueError(f"{who}.fit: expert_names (the ensemble's experts) is required")
    if P.ndim != 2 or len(P) != len(X) or len(y) != len(X) or P.shape[1] != len(expert_names):
        raise ValueError(f"{who}.fit: expert_probs {P.shape}, y {y.shape}, X {getattr(X, 'shape', None)}, "
                         f"{len(expert_names)} experts: expected (n, E), (n,), n rows")
    return P, y


class _ConvexGate:
    """Shared by gates whose output is the convex mixture sum_e w_e P_e."""

    def predict_mixture(self, X: pd.DataFrame, expert_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(p_up (n,) = sum_e w_e P_e clipped to [0, 1], weights (n, E))."""
        P = np.asarray(expert_probs, dtype=np.float64)
        W = self.predict_weights(X, P)
        return np.clip((P * W).sum(axis=1), 0.0, 1.0), W


class RuleGate(_ConvexGate, PersistMixin, BaseEstimator):
    """Seed 003's static fingerprint rules mapped onto the experts at hand.

    Scores (before top-k): every expert starts at 1; then, per row,
      vol30 > 6 %/day                -> crypto_hft +3, stress +2, pattern +1
      vol30 < 0.5 %/day              -> low_vol_etf +3, sde +2
      trend R^2 >= 0.8 and Hurst > 0.55 -> futures_trend +3, trend +2
      1 % <= vol30 < 3 % and R^2 >= 0.6 -> equity_intraday +3, trend +1
      0.5 % <= vol30 < 2 %           -> equity_daily +2, sde +1
      Hurst < 0.45 (mean-reverting)  -> sde +2
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
            rules = [
                (vol > 0.06, {"crypto_hft": 3, "stress": 2, "pattern": 1}),
                (vol < 0.005, {"low_vol_etf": 3, "sde": 2}),
                ((r2 >= 0.8) & (h > 0.55), {"futures_trend": 3, "trend": 2}),
                ((vol >= 0.01) & (vol < 0.03) & (r2 >= 0.6), {"equity_intraday": 3, "trend": 1}),
                ((vol >= 0.005) & (vol < 0.02), {"equity_daily": 2, "sde": 1}),
                (h < 0.45, {"sde": 2}),
            ]
        for mask, bonus in rules:
            for name, b in bonus.items():
                if name in col:
                    s[mask, col[name]] += b
        return s

    def predict_weights(self, X: pd.DataFrame, expert_probs=None) -> np.ndarray:
        """Top-k weights (n, E), rows sum to 1 (``expert_probs`` is not read)."""
        s = self.scores(X)
        return top_k_weights(s / s.sum(axis=1, keepdims=True), min(self.top_k, s.shape[1]))


class BestExpertGate(_ConvexGate, PersistMixin, BaseEstimator):
    """Weight 1 on the expert with the lowest loss on the fitting (out-of-fold) rows.

    Args:
        expert: force this expert (a name) instead of choosing one; None chooses.
        criterion: the loss, see :func:`score_forecast` (default 'auc': 1 - ROC AUC pooled over the rows).
        switch_z: the first expert listed is kept unless another's loss is lower by more than this many AUC
            standard errors (:func:`switch_margin`; 0: the plain argmin).
        horizon: the labels' horizon, bars (overlapping labels: the standard error counts n / horizon rows).

    Fitted: expert_names_, chosen_ (name), losses_ (name -> loss on the fitting rows).
    """

    def __init__(self, expert: str | None = None, criterion: str = "auc", switch_z: float = 0.0, horizon: int = 1):
        self.expert = expert
        self.criterion = criterion
        self.switch_z = switch_z
        self.horizon = horizon

    def fit(self, X, expert_probs, y, expert_names) -> "BestExpertGate":
        """Choose the expert; raises ValueError on bad shapes or an unknown forced expert."""
        P, y = _check_fit_args("BestExpertGate", X, P=expert_probs, y=y, expert_names=expert_names)
        self.expert_names_ = list(expert_names)
        self.losses_ = ({n: score_forecast(y, P[:, j], self.criterion) for j, n in enumerate(self.expert_names_)}
                        if len(y) else {})
        if self.expert is not None and self.expert not in self.expert_names_:
            raise ValueError(f"BestExpertGate: expert={self.expert!r} is not one of {self.expert_names_}")
        if self.expert is None and not self.losses_:
            raise ValueError("BestExpertGate.fit: no rows to choose an expert by")
        if self.expert is not None:
            self.chosen_ = self.expert
            return self
        # The first expert listed is the incumbent; another replaces it only when its loss is lower by more
        # than switch_z standard errors: with ~0.005 AUC of noise on an inner window, a plain argmin picks a
        # weaker expert in a fair share of units (issue 12: `best` scored 0.5421 against trend's 0.5459).
        first = self.expert_names_[0]
        challenger = min(self.expert_names_, key=self.losses_.__getitem__)
        margin = switch_margin(y, self.criterion, self.switch_z, self.horizon)
        self.chosen_ = challenger if self.losses_[challenger] < self.losses_[first] - margin else first
        return self

    def predict_weights(self, X: pd.DataFrame, expert_probs=None) -> np.ndarray:
        """(n, E): 1 in the chosen expert's column."""
        W = np.zeros((len(X), len(self.expert_names_)))
        W[:, self.expert_names_.index(self.chosen_)] = 1.0
        return W


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


class GateMLP(nn.Module):
    """(B, F) inputs + (B,) asset codes -> (B, E) gate logits: Linear(F + emb, hidden) -> ReLU ->
    Linear(hidden, E), plus a free per-expert ``prior`` bias. With ``zero_init`` (the likelihood objective)
    the output layer starts at zero, so an untrained gate is the constant softmax(prior) (uniform). Asset codes < 0 (unknown asset) get the
    mean embedding."""

    def __init__(self, n_inputs: int, n_experts: int, num_assets: int, emb_dim: int = 4, hidden: int = 16,
                 zero_init: bool = True):
        super().__init__()
        self.embedding = nn.Embedding(max(num_assets, 1), emb_dim)
        self.net = nn.Sequential(nn.Linear(n_inputs + emb_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_experts))
        if zero_init:
            nn.init.zeros_(self.net[2].weight)
            nn.init.zeros_(self.net[2].bias)
        self.prior = nn.Parameter(torch.zeros(n_experts))

    def forward(self, x: torch.Tensor, asset_ids: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(asset_ids.clamp(min=0))
        mean = self.embedding.weight.mean(dim=0, keepdim=True).expand_as(emb)
        emb = torch.where((asset_ids >= 0)[:, None], emb, mean)
        return self.net(torch.cat([x, emb], dim=1)) + self.prior


def _masked_top_k(probs: torch.Tensor, k: int) -> torch.Tensor:
    """The renormalised top-k of (B, E) softmax probabilities, as :func:`top_k_weights` but differentiable
    through the kept entries (the mask itself is chosen without gradient)."""
    if k >= probs.shape[1]:
        return probs
    idx = torch.topk(probs.detach(), k, dim=1).indices
    mask = torch.zeros_like(probs).scatter_(1, idx, 1.0)
    kept = probs * mask
    return kept / kept.sum(dim=1, keepdim=True).clamp_min(1e-12)


class MLPGate(_ConvexGate, PersistMixin, BaseEstimator):
    """Trainable gate (see module docstring).

    Args:
        top_k: experts per row (default 2); training uses the same renormalised top-k as inference.
        objective: 'likelihood' (mixture BCE, default) or 'oracle' (seed 003).
        balance: 'switch' or 'entropy' load-balancing term; balance_coef: its coefficient (0 disables it).
        expert_inputs: also feed the experts' standardised logit P(up) to the network.
        epochs: most epochs; patience: epochs without improvement of the validation loss before
            stopping (the best epoch's parameters are kept); val_fraction: time-ordered tail of the
            rows' timestamps used for that (0: no early stopping, all epochs);
            purge_bars: timestamps dropped before that tail (the label horizon).
        lr, batch_size, weight_decay: Adam mini-batch training; weight decay on the network and
            embedding, not on the per-expert prior bias.
        hidden, emb_dim: hidden units and asset embedding width.
        random_state: seed.

    fit(X, expert_probs (n, E) out-of-fold P(up), y (n,), expert_names) -> self.
    Fitted: module_, columns_ (fingerprint / factor inputs), mean_, std_, asset_codes_, expert_names_,
    oracle_share_ (share of rows each expert was most right on; a diagnostic), history_ (per epoch:
    train loss, validation loss), best_epoch_.
    """

    def __init__(self, top_k: int = 2, objective: str = "likelihood", balance: str = "switch",
                 balance_coef: float = 0.001, expert_inputs: bool = True, epochs: int = 60, patience: int = 5,
                 val_fraction: float = 0.2, purge_bars: int = 0, lr: float = 1e-2, batch_size: int = 2048,
                 weight_decay: float = 1e-3, hidden: int = 16, emb_dim: int = 4, random_state: int = 0):
        self.top_k = top_k
        self.objective = objective
        self.balance = balance
        self.balance_coef = balance_coef
        self.expert_inputs = expert_inputs
        self.epochs = epochs
        self.patience = patience
        self.val_fraction = val_fraction
        self.purge_bars = purge_bars
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.hidden = hidden
        self.emb_dim = emb_dim
        self.random_state = random_state

    def _raw(self, X: pd.DataFrame, P: np.ndarray | None) -> np.ndarray:
        parts = [X[self.columns_].to_numpy(np.float64)] if self.columns_ else []
        if self.expert_inputs:
            if P is None:
                raise ValueError("MLPGate: this gate reads the experts' P(up); pass expert_probs")
            parts.append(expert_logits(P))
        return np.column_stack(parts) if parts else np.zeros((len(X), 0))

    def _inputs(self, X: pd.DataFrame, P: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor]:
        Z = (self._raw(X, P) - self.mean_) / self.std_
        Z = np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0)
        codes = np.array([self.asset_codes_.get(int(a), -1) for a in X[ASSET_ID].to_numpy()], dtype=np.int64)
        return torch.as_tensor(Z, dtype=torch.float32), torch.as_tensor(codes)

    def balance_loss(self, probs: torch.Tensor) -> torch.Tensor:
        """Load-balancing term of a batch of gate probabilities (B, E)."""
        e = probs.shape[1]
        if self.balance == "switch":
            f = torch.nn.functional.one_hot(probs.argmax(dim=1), e).float().mean(dim=0)
            return e * (f * probs.mean(dim=0)).sum()
        mean = probs.mean(dim=0)
        return (mean * torch.log(mean + 1e-9)).sum()  # = -entropy of the mean routing

    def _loss(self, logits, Pt, yt, target) -> tuple[torch.Tensor, torch.Tensor]:
        """(objective term, objective + balance term) of a batch."""
        probs = torch.softmax(logits, dim=1)
        if self.objective == "likelihood":
            w = _masked_top_k(probs, self.top_k)
            p = (w * Pt).sum(dim=1).clamp(_EPS, 1 - _EPS)
            fit = nn.functional.binary_cross_entropy(p, yt)
        else:
            fit = nn.functional.cross_entropy(logits, target)
        return fit, fit + self.balance_coef * self.balance_loss(probs)

    def _split(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Row positions (train, validation): validation = last ``val_fraction`` of the timestamps, with
        ``purge_bars`` timestamps dropped before it."""
        n = len(X)
        times = X[BAR_TIME].to_numpy(np.int64) if BAR_TIME in X.columns else np.arange(n)
        uniq = np.unique(times)
        cut = int(len(uniq) * (1.0 - self.val_fraction))
        if self.val_fraction <= 0 or cut - self.purge_bars < 1 or cut >= len(uniq):
            return np.arange(n), np.empty(0, dtype=np.int64)
        return np.flatnonzero(times < uniq[cut - self.purge_bars]), np.flatnonzero(times >= uniq[cut])

    def fit(self, X: pd.DataFrame, expert_probs: np.ndarray, y, expert_names) -> "MLPGate":
        """Train on rows X (n, ...), out-of-fold expert probabilities (n, E) and labels y (n,).

        Raises:
            ValueError: shapes disagree, bad top_k / objective / balance, or no input at all (no
                fingerprint column and expert_inputs=False).
        """
        require_context(X, "MLPGate", (ASSET_ID,))
        P, y = _check_fit_args("MLPGate", X, expert_probs, y, expert_names)
        if self.balance not in ("switch", "entropy"):
            raise ValueError(f"MLPGate: balance={self.balance!r}; expected 'switch' or 'entropy'")
        if self.objective not in ("likelihood", "oracle"):
            raise ValueError(f"MLPGate: objective={self.objective!r}; expected 'likelihood' or 'oracle'")
        top_k_weights(np.ones((1, P.shape[1])), self.top_k)
        self.expert_names_ = list(expert_names)
        self.columns_ = [c for c in X.columns if c.startswith(FINGERPRINT_PREFIX) or c == FACTOR]
        if not self.columns_ and not self.expert_inputs:
            raise ValueError(f"MLPGate: X has no fingerprint ('{FINGERPRINT_PREFIX}*') column and expert_inputs is "
                             f"off; columns {list(X.columns)}")
        raw = self._raw(X, P)
        self.mean_ = np.nan_to_num(np.nanmean(raw, axis=0))
        self.std_ = np.nanstd(raw, axis=0)
        self.std_[~(self.std_ > 1e-12)] = 1.0
        self.asset_codes_ = {int(a): i for i, a in enumerate(np.unique(X[ASSET_ID].to_numpy()))}
        target = np.argmin(np.abs(P - y[:, None]), axis=1)  # the oracle: expert most right per row
        self.oracle_share_ = dict(zip(self.expert_names_, np.bincount(target, minlength=P.shape[1]) / len(target)))
        torch.manual_seed(self.random_state)
        gen = torch.Generator().manual_seed(self.random_state)
        Z, codes = self._inputs(X, P)
        Pt = torch.as_tensor(P, dtype=torch.float32)
        yt = torch.as_tensor(y, dtype=torch.float32)
        t = torch.as_tensor(target)
        tr, va = self._split(X)
        tr_t, va_t = torch.as_tensor(tr), torch.as_tensor(va)
        self.module_ = GateMLP(Z.shape[1], P.shape[1], len(self.asset_codes_), self.emb_dim, self.hidden,
                               zero_init=self.objective == "likelihood")
        decayed = [p for n, p in self.module_.named_parameters() if n != "prior"]
        opt = torch.optim.Adam([{"params": decayed, "weight_decay": self.weight_decay},
                                {"params": [self.module_.prior], "weight_decay": 0.0}], lr=self.lr)
        self.history_, best, best_state, bad = [], np.inf, None, 0
        self.best_epoch_ = self.epochs - 1
        for epoch in range(self.epochs):
            self.module_.train()
            perm = tr_t[torch.randperm(len(tr_t), generator=gen)]
            total = 0.0
            for i in range(0, len(perm), self.batch_size):
                b = perm[i:i + self.batch_size]
                _, loss = self._loss(self.module_(Z[b], codes[b]), Pt[b], yt[b], t[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
            val = np.nan
            if len(va):
                self.module_.eval()
                with torch.no_grad():
                    val = float(self._loss(self.module_(Z[va_t], codes[va_t]), Pt[va_t], yt[va_t], t[va_t])[0])
            self.history_.append((total / max(len(perm), 1), val))
            if len(va):
                if val < best - 1e-7:
                    best, bad, self.best_epoch_ = val, 0, epoch
                    best_state = {k: v.detach().clone() for k, v in self.module_.state_dict().items()}
                else:
                    bad += 1
                    if bad > self.patience:
                        break
        if best_state is not None:
            self.module_.load_state_dict(best_state)
        self.module_.eval()
        return self

    def predict_gate_probs(self, X: pd.DataFrame, expert_probs=None) -> np.ndarray:
        """Dense softmax gate probabilities (n, E) before top-k."""
        Z, codes = self._inputs(X, expert_probs)
        with torch.no_grad():
            return torch.softmax(self.module_(Z, codes), dim=1).numpy().astype(np.float64)

    def predict_weights(self, X: pd.DataFrame, expert_probs=None) -> np.ndarray:
        """Top-k weights (n, E), rows sum to 1 (``expert_probs`` (n, E) required with expert_inputs)."""
        return top_k_weights(self.predict_gate_probs(X, expert_probs), self.top_k)
