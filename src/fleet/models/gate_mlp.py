"""The MLP gate of the mixture of experts (a torch network; see :mod:`fleet.models.gate` for the others).

:class:`MLPGate` — a small network: fingerprint + market factor + the experts' logit P(up)
(standardised) + a learned asset embedding -> hidden layer -> E logits, plus a free per-expert
bias (the constant mixing weights, not weight-decayed) -> softmax -> top-k, renormalised.
Default objective ``likelihood``: the binary cross-entropy of the mixture
p(x) = sum_e w_e(x) P_e(x) (Jacobs, Jordan, Nowlan & Hinton 1991, "Adaptive mixtures of local
experts"); the rest of the method is described in :mod:`fleet.models.gate`'s docstring.

Torch is imported here, and this module is imported only by code that builds or unpickles an MLP
gate (:mod:`fleet.models._openmp` explains why torch must come before scikit-learn there).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from torch import nn

from fleet.features.fingerprint import FINGERPRINT_PREFIX
from fleet.models._context import ASSET_ID, BAR_TIME, require_context
from fleet.models._io import PersistMixin
from fleet.models._gate_base import _EPS, _check_fit_args, _ConvexGate, expert_logits, top_k_weights

FACTOR = "market_factor"


class GateMLP(nn.Module):
    """(B, F) inputs + (B,) asset codes -> (B, E) gate logits: Linear(F + emb, hidden) -> ReLU ->
    Linear(hidden, E), plus a free per-expert ``prior`` bias. With ``zero_init`` (the likelihood objective)
    the output layer starts at zero, so an untrained gate is the constant softmax(prior) (uniform). Asset
    codes < 0 (unknown asset) get the mean embedding."""

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
        objective: 'likelihood' (mixture BCE, default) or 'oracle' (cross-entropy toward the expert closest to the
            label).
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
        self._check_options(P.shape[1])
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
        self._train_epochs(opt, gen, (Z, codes, Pt, yt, t), tr_t, va_t)
        self.module_.eval()
        return self

    def _check_options(self, n_experts: int) -> None:
        """ValueError for an unknown ``balance`` or ``objective``, or a ``top_k`` invalid for ``n_experts``."""
        if self.balance not in ("switch", "entropy"):
            raise ValueError(f"MLPGate: balance={self.balance!r}; expected 'switch' or 'entropy'")
        if self.objective not in ("likelihood", "oracle"):
            raise ValueError(f"MLPGate: objective={self.objective!r}; expected 'likelihood' or 'oracle'")
        top_k_weights(np.ones((1, n_experts)), self.top_k)

    def _train_epochs(self, opt, gen: torch.Generator, data: tuple, tr_t: torch.Tensor, va_t: torch.Tensor) -> None:
        """Mini-batch epochs of ``module_`` with ``opt`` over the training rows ``tr_t`` (shuffled by ``gen``);
        ``data`` = (standardised inputs (n, F), asset codes (n,), expert P(up) (n, E), labels (n,), oracle targets
        (n,)). With validation rows ``va_t``, early stopping on their objective term after ``patience`` epochs
        without improvement, the best epoch's weights kept. Sets ``history_`` ((train loss, validation loss) per
        epoch) and ``best_epoch_`` (the last epoch without validation rows)."""
        Z, codes, Pt, yt, t = data
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
            if len(va_t):
                self.module_.eval()
                with torch.no_grad():
                    val = float(self._loss(self.module_(Z[va_t], codes[va_t]), Pt[va_t], yt[va_t], t[va_t])[0])
            self.history_.append((total / max(len(perm), 1), val))
            if len(va_t):
                if val < best - 1e-7:
                    best, bad, self.best_epoch_ = val, 0, epoch
                    best_state = {k: v.detach().clone() for k, v in self.module_.state_dict().items()}
                else:
                    bad += 1
                    if bad > self.patience:
                        break
        if best_state is not None:
            self.module_.load_state_dict(best_state)

    def predict_gate_probs(self, X: pd.DataFrame, expert_probs=None) -> np.ndarray:
        """Dense softmax gate probabilities (n, E) before top-k."""
        Z, codes = self._inputs(X, expert_probs)
        with torch.no_grad():
            return torch.softmax(self.module_(Z, codes), dim=1).numpy().astype(np.float64)

    def predict_weights(self, X: pd.DataFrame, expert_probs=None) -> np.ndarray:
        """Top-k weights (n, E), rows sum to 1 (``expert_probs`` (n, E) required with expert_inputs)."""
        return top_k_weights(self.predict_gate_probs(X, expert_probs), self.top_k)
