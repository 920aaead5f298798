"""Gates of the mixture of experts: which experts answer for a row, and with what weight.

Both gates are estimators over the same input X (n, features + context; they read the ``fp_*``
fingerprint columns, the asset id and, when present, ``market_factor``) and return weights of
shape (n, E) whose rows have exactly ``top_k`` non-zero entries summing to 1 (top-k routing,
renormalised; ties broken by expert order).

* :class:`RuleGate` — seed 003's static rules on the fingerprint (warm start / v0): no fitting
  beyond remembering the expert names.
* :class:`MLPGate` — seed 003 v1: fingerprint (+ market factor), standardised, concatenated with a
  learned asset embedding -> MLP 64 -> 32 -> E -> softmax. Trained on *out-of-fold* expert
  probabilities (see :mod:`fleet.models.moe`) with the "oracle" cross-entropy toward the expert
  that was most right on each row (smallest |p - y|), plus a load-balancing term with coefficient
  ``balance_coef``: 'switch' = E * sum_e f_e * P_e (Switch Transformer, Fedus et al. 2021; f_e =
  share of rows whose top expert is e, P_e = mean gate probability of e) or 'entropy' = minus the
  entropy of the mean gate distribution (seed 003's entropy term, applied to the batch mean so
  that it spreads load rather than blurring every row).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from torch import nn

from fleet.features.fingerprint import FINGERPRINT_PREFIX
from fleet.models._context import ASSET_ID, require_context
from fleet.models._io import PersistMixin

FACTOR = "market_factor"


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


def _fingerprint(X: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return X[columns].to_numpy(dtype=np.float64)


class RuleGate(PersistMixin, BaseEstimator):
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

    def predict_weights(self, X: pd.DataFrame) -> np.ndarray:
        """Top-k weights (n, E), rows sum to 1."""
        s = self.scores(X)
        return top_k_weights(s / s.sum(axis=1, keepdims=True), min(self.top_k, s.shape[1]))


class GateMLP(nn.Module):
    """(B, F) fingerprint + (B,) asset codes -> (B, E) gate logits; MLP 64 -> 32 -> E (seed 003).

    Asset codes < 0 (unknown asset) get the mean embedding.
    """

    def __init__(self, n_inputs: int, n_experts: int, num_assets: int, emb_dim: int = 4):
        super().__init__()
        self.embedding = nn.Embedding(max(num_assets, 1), emb_dim)
        self.net = nn.Sequential(nn.Linear(n_inputs + emb_dim, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(),
                                 nn.Linear(32, n_experts))

    def forward(self, x: torch.Tensor, asset_ids: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(asset_ids.clamp(min=0))
        mean = self.embedding.weight.mean(dim=0, keepdim=True).expand_as(emb)
        emb = torch.where((asset_ids >= 0)[:, None], emb, mean)
        return self.net(torch.cat([x, emb], dim=1))


class MLPGate(PersistMixin, BaseEstimator):
    """Trainable gate (see module docstring).

    Args:
        top_k: experts per row (default 2).
        balance: 'switch' or 'entropy' load-balancing term.
        balance_coef: its coefficient (0 disables it).
        epochs, lr, batch_size, weight_decay: full/mini-batch Adam training.
        emb_dim: asset embedding width.
        random_state: seed.

    fit(X, expert_probs (n, E) out-of-fold P(up), y (n,), expert_names) -> self.
    Fitted: module_, columns_ (gate inputs), mean_, std_, asset_codes_, expert_names_, oracle_share_
    (share of rows each expert was most right on), history_.
    """

    def __init__(self, top_k: int = 2, balance: str = "switch", balance_coef: float = 0.1, epochs: int = 100,
                 lr: float = 1e-2, batch_size: int = 4096, weight_decay: float = 1e-4, emb_dim: int = 4,
                 random_state: int = 0):
        self.top_k = top_k
        self.balance = balance
        self.balance_coef = balance_coef
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.emb_dim = emb_dim
        self.random_state = random_state

    def _inputs(self, X: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
        Z = (X[self.columns_].to_numpy(np.float64) - self.mean_) / self.std_
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

    def fit(self, X: pd.DataFrame, expert_probs: np.ndarray, y, expert_names) -> "MLPGate":
        """Train on rows X (n, ...), out-of-fold expert probabilities (n, E) and labels y (n,).

        Raises:
            ValueError: shapes disagree, bad top_k / balance, or X has no fingerprint column.
        """
        require_context(X, "MLPGate", (ASSET_ID,))
        P = np.asarray(expert_probs, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if P.ndim != 2 or len(P) != len(X) or len(y) != len(X) or P.shape[1] != len(expert_names):
            raise ValueError(f"MLPGate.fit: expert_probs {P.shape}, y {y.shape}, X {X.shape}, "
                             f"{len(expert_names)} experts: expected (n, E), (n,), n rows")
        if self.balance not in ("switch", "entropy"):
            raise ValueError(f"MLPGate: balance={self.balance!r}; expected 'switch' or 'entropy'")
        top_k_weights(np.ones((1, P.shape[1])), self.top_k)
        self.expert_names_ = list(expert_names)
        self.columns_ = [c for c in X.columns if c.startswith(FINGERPRINT_PREFIX) or c == FACTOR]
        if not self.columns_:
            raise ValueError(f"MLPGate: X has no fingerprint ('{FINGERPRINT_PREFIX}*') column; columns {list(X.columns)}")
        raw = X[self.columns_].to_numpy(np.float64)
        self.mean_ = np.nanmean(raw, axis=0)
        self.std_ = np.nanstd(raw, axis=0)
        self.std_[~(self.std_ > 0)] = 1.0
        self.mean_ = np.nan_to_num(self.mean_)
        self.asset_codes_ = {int(a): i for i, a in enumerate(np.unique(X[ASSET_ID].to_numpy()))}
        target = np.argmin(np.abs(P - y[:, None]), axis=1)  # the oracle: expert most right per row
        self.oracle_share_ = dict(zip(self.expert_names_, np.bincount(target, minlength=P.shape[1]) / len(target)))
        torch.manual_seed(self.random_state)
        gen = torch.Generator().manual_seed(self.random_state)
        Z, codes = self._inputs(X)
        t = torch.as_tensor(target)
        self.module_ = GateMLP(Z.shape[1], P.shape[1], len(self.asset_codes_), self.emb_dim)
        opt = torch.optim.Adam(self.module_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.history_ = []
        self.module_.train()
        for _ in range(self.epochs):
            perm = torch.randperm(len(Z), generator=gen)
            for i in range(0, len(Z), self.batch_size):
                b = perm[i:i + self.batch_size]
                logits = self.module_(Z[b], codes[b])
                probs = torch.softmax(logits, dim=1)
                ce = nn.functional.cross_entropy(logits, t[b])
                loss = ce + self.balance_coef * self.balance_loss(probs)
                opt.zero_grad()
                loss.backward()
                opt.step()
            self.history_.append(float(loss.detach()))
        self.module_.eval()
        return self

    def predict_gate_probs(self, X: pd.DataFrame) -> np.ndarray:
        """Dense softmax gate probabilities (n, E) before top-k."""
        Z, codes = self._inputs(X)
        with torch.no_grad():
            return torch.softmax(self.module_(Z, codes), dim=1).numpy().astype(np.float64)

    def predict_weights(self, X: pd.DataFrame) -> np.ndarray:
        """Top-k weights (n, E), rows sum to 1."""
        return top_k_weights(self.predict_gate_probs(X), self.top_k)

