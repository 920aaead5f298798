"""Convolutional experts: PatternExpert (TCN) and ArchetypeExpert (TCN with a kernel-bank stem).

Both are :class:`ConvExpert`: a scikit-learn estimator around :class:`~fleet.models.tcn.TemporalConvNet`
in the style of skorch — ``__init__`` only stores parameters; ``fit`` validates, seeds, calls
:meth:`ConvExpert.initialize` (builds ``module_``, ``optimizer_``, ``criterion_`` in that order,
sizes inferred from the data) and runs the one training loop, whose steps are small overridable
hooks (:meth:`get_loss`, :meth:`train_step`, :meth:`validation_loss`).

Data: X (n, n_features + context) rows of a unit (see :mod:`fleet.models._context`). Each row's
input is its asset's trailing ``window`` bars of the standardised feature columns (``fp_*``
fingerprint columns, unscaled, are left out), shape (channels, window), cut from a
:class:`~fleet.models._context.WindowStore` that holds the training rows and, at predict time,
the rows being predicted: never a later bar than the row's own.

Training: the most recent ``max_train_windows`` rows (time order; the cap keeps CPU runs short),
of which the last ``val_fraction`` of timestamps is the validation tail for early stopping
(``patience`` epochs), separated from the fitting rows by ``purge_bars`` timestamps; the best
epoch's weights are kept. Seeds: ``torch.manual_seed(random_state)`` and a seeded shuffling
generator. Device: CUDA with bf16 autocast when ``device='auto'`` finds a GPU, else CPU float32.

Asset embedding: indexed by the registry id itself (``asset_id``), with ``num_assets`` rows (default:
the largest id in the training rows + 1), so a row means the same asset in every unit and every run
that shares the asset registry (``fleet train --registry``). Unknown-asset policy (``unknown_asset``):
'mean' (default) gives an asset not seen in fit the mean of the embeddings of the assets that were
(rows of ids never trained are left out of that mean); 'error' raises UnknownSymbolError.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from fleet.errors import UnknownSymbolError
from fleet.features.fingerprint import FINGERPRINT_PREFIX
from fleet.models._context import ASSET_ID, BAR_TIME, WindowStore, require_context
from fleet.models._io import PersistMixin
from fleet.models.kernels import kernel_bank
from fleet.models.tcn import TemporalConvNet

STEM_CHANNEL = "ffd_log_close"  # the price-level-like channel the kernel-bank templates read


class ConvExpert(PersistMixin, ClassifierMixin, BaseEstimator):
    """P(up) from each row's trailing window with a TCN (see module docstring).

    Args:
        window: bars per input window L (default 64).
        hidden, levels, kernel_size, emb_dim, dropout: network shape.
        archetype: None for the plain PatternExpert, or a seed-003 archetype whose kernel bank
            initialises a learnable first layer.
        epochs, batch_size, lr, weight_decay, patience: training loop.
        max_train_windows: most recent training rows used (CPU budget), None = all.
        val_fraction: time-ordered validation tail for early stopping (0 disables it).
        purge_bars: timestamps dropped between fitting rows and the validation tail (label horizon).
        unknown_asset: 'mean' or 'error'.
        asset_aware: learn an asset embedding; False builds the network without one (every
            asset gets the same input, the asset-agnostic ablation; ``unknown_asset`` is then moot).
        device: 'auto', 'cpu' or 'cuda'.
        num_threads: torch CPU threads during fit/predict (None = torch's default).
        random_state: seed.

    Fitted attributes: module_ (TemporalConvNet, on CPU after fit), features_, asset_codes_ (registry id ->
    embedding row: the id itself), num_assets_ (embedding rows),
    store_ (last ``window`` bars per asset), device_, history_ (per-epoch losses), best_epoch_,
    n_train_windows_, samples_per_second_, classes_.
    """

    def __init__(self, window: int = 64, hidden: int = 16, levels: int = 3, kernel_size: int = 3, emb_dim: int = 8,
                 dropout: float = 0.1, archetype: str | None = None, epochs: int = 3, batch_size: int = 256,
                 lr: float = 3e-3, weight_decay: float = 1e-4, patience: int = 2,
                 max_train_windows: int | None = 4096, val_fraction: float = 0.2, purge_bars: int = 0,
                 unknown_asset: str = "mean", asset_aware: bool = True, device: str = "auto",
                 num_threads: int | None = None, random_state: int = 0, num_assets: int | None = None):
        self.window = window
        self.hidden = hidden
        self.levels = levels
        self.kernel_size = kernel_size
        self.emb_dim = emb_dim
        self.dropout = dropout
        self.archetype = archetype
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.max_train_windows = max_train_windows
        self.val_fraction = val_fraction
        self.purge_bars = purge_bars
        self.unknown_asset = unknown_asset
        self.asset_aware = asset_aware
        self.device = device
        self.num_threads = num_threads
        self.random_state = random_state
        self.num_assets = num_assets

    # ------------------------------------------------------------------ data
    def _codes(self, X: pd.DataFrame) -> np.ndarray:
        ids = X[ASSET_ID].to_numpy(dtype=np.int64)
        if not getattr(self, "asset_aware", True):  # (models pickled before the switch are asset-aware)
            return np.zeros(len(ids), dtype=np.int64)  # ignored: the network has no embedding
        codes = np.array([self.asset_codes_.get(int(a), -1) for a in ids], dtype=np.int64)
        if (codes < 0).any() and self.unknown_asset == "error":
            unknown = sorted({int(a) for a in ids[codes < 0]})
            raise UnknownSymbolError(f"asset ids {unknown} were not in this model's training data; it knows ids "
                                     f"{sorted(self.asset_codes_)} (unknown_asset='error')")
        return codes

    def _windows(self, store: WindowStore, X: pd.DataFrame) -> np.ndarray:
        return store.windows(X[ASSET_ID].to_numpy(np.int64), X[BAR_TIME].to_numpy(np.int64), self.window)

    def _device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("ConvExpert: device='cuda' but torch sees no CUDA device; use device='auto' or 'cpu'")
        return torch.device(self.device)

    # ------------------------------------------------------------------ skorch-style steps
    def initialize(self, n_channels: int, num_assets: int) -> "ConvExpert":
        """Build ``module_`` then ``optimizer_`` then ``criterion_`` (fixed order, seeded in fit)."""
        stem, stem_channel = None, 0
        if self.archetype is not None:
            _, stem = kernel_bank(self.archetype)
            stem_channel = self.features_.index(STEM_CHANNEL) if STEM_CHANNEL in self.features_ else 0
        self.module_ = TemporalConvNet(n_channels, num_assets=num_assets if self.asset_aware else 0,
                                       asset_emb_dim=self.emb_dim,
                                       hidden=self.hidden, levels=self.levels, kernel_size=self.kernel_size,
                                       stem_kernels=stem, stem_channel=stem_channel,
                                       dropout=self.dropout).to(self.device_)
        self.optimizer_ = torch.optim.AdamW(self.module_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        self.criterion_ = torch.nn.BCEWithLogitsLoss(reduction="none")
        return self

    def _autocast(self):
        if self.device_.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def get_loss(self, logits, yb, wb) -> torch.Tensor:
        """Weighted mean binary cross-entropy of one batch."""
        return (self.criterion_(logits.float(), yb) * wb).sum() / wb.sum()

    def train_step(self, xb, ab, yb, wb) -> float:
        """One optimiser step on a batch; returns the loss."""
        self.module_.train()
        self.optimizer_.zero_grad(set_to_none=True)
        with self._autocast():
            logits = self.module_(xb, ab)
        loss = self.get_loss(logits, yb, wb)
        loss.backward()
        self.optimizer_.step()
        return float(loss.detach())

    def _logits(self, W: np.ndarray, codes: np.ndarray) -> np.ndarray:
        self.module_.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(W), max(self.batch_size, 1024)):
                xb = torch.as_tensor(W[i:i + 1024]).to(self.device_)
                ab = torch.as_tensor(codes[i:i + 1024]).to(self.device_)
                with self._autocast():
                    out.append(self.module_(xb, ab).float().cpu().numpy())
        return np.concatenate(out) if out else np.empty(0, dtype=np.float32)

    def validation_loss(self, W, codes, y) -> float:
        """Mean BCE on the validation tail."""
        z = self._logits(W, codes)
        p = np.clip(1 / (1 + np.exp(-z)), 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    # ------------------------------------------------------------------ estimator API
    def check_params(self) -> None:
        """The checks that need no data and no device (window, epochs, unknown_asset); ValueError otherwise. Run by
        ``fit`` and, before any unit is prepared, by :func:`fleet.training.graph.check_config` (in the driver, which
        may have no GPU: the device is checked where the expert fits)."""
        if self.window < 2 or self.epochs < 1:
            raise ValueError(f"ConvExpert: window={self.window} (>= 2) and epochs={self.epochs} (>= 1) expected")
        if self.unknown_asset not in ("mean", "error"):
            raise ValueError(f"ConvExpert: unknown_asset={self.unknown_asset!r}; expected 'mean' or 'error'")

    def _time_split(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Row positions (fit, validation): the most recent ``max_train_windows`` rows by ``bar_time``; the
        last ``val_fraction`` of their timestamps validate, ``purge_bars`` timestamps before them are dropped."""
        times = X[BAR_TIME].to_numpy(np.int64)
        order = np.argsort(times, kind="stable")
        if self.max_train_windows is not None:
            order = order[-int(self.max_train_windows):]
        uniq = np.unique(times[order])
        fit_rows, val_rows = order, order[:0]
        if self.val_fraction > 0 and len(uniq) >= 10:
            cut = int(len(uniq) * (1 - self.val_fraction))
            val_rows = order[times[order] >= uniq[cut]]
            fit_rows = order[times[order] < uniq[max(cut - self.purge_bars, 1)]]
        return fit_rows, val_rows

    def _set_embedding_rows(self, X: pd.DataFrame) -> np.ndarray:
        """The asset ids of X (sorted, unique); sets ``asset_codes_`` and ``num_assets_`` (the embedding's rows:
        ``num_assets``, or the largest id + 1). ValueError for an id outside the embedding."""
        ids = np.unique(X[ASSET_ID].to_numpy(np.int64))
        size = int(ids.max()) + 1 if self.num_assets is None else int(self.num_assets)
        if ids.min() < 0 or ids.max() >= size:
            raise ValueError(f"ConvExpert: asset ids {ids.min()}..{ids.max()} outside the embedding's "
                             f"0..{size - 1} (num_assets: the registry's size)")
        # The embedding row of an asset is its registry id: the same row in every unit and run.
        self.asset_codes_ = {int(a): int(a) for a in ids}
        self.num_assets_ = size
        return ids

    def _train_epochs(self, gen: np.random.Generator, fit: tuple, val: tuple) -> None:
        """Mini-batch training with early stopping. ``fit`` = (windows (n, C, window), asset codes (n,), labels (n,),
        sample weights (n,)), batches shuffled by ``gen`` each epoch; ``val`` = (windows, codes, labels) of the
        validation rows, whose BCE (the mean training loss when there are none) stops training after ``patience``
        epochs without improvement. Sets ``history_``, ``best_epoch_``, ``samples_per_second_`` and leaves the
        module at the best epoch's weights."""
        import time

        W, codes, y, w = fit
        Wv, cv, yv = val
        self.history_, best, best_state, bad = [], np.inf, None, 0
        t0, seen = time.perf_counter(), 0
        for epoch in range(self.epochs):
            perm = gen.permutation(len(W))
            losses = []
            for i in range(0, len(perm), self.batch_size):
                b = perm[i:i + self.batch_size]
                losses.append(self.train_step(torch.as_tensor(W[b]).to(self.device_),
                                              torch.as_tensor(codes[b]).to(self.device_),
                                              torch.as_tensor(y[b]).to(self.device_),
                                              torch.as_tensor(w[b]).to(self.device_)))
                seen += len(b)
            vloss = self.validation_loss(Wv, cv, yv) if len(yv) else float(np.mean(losses))
            self.history_.append({"epoch": epoch, "train_loss": float(np.mean(losses)), "val_loss": vloss})
            if vloss < best - 1e-6:
                best, bad, self.best_epoch_ = vloss, 0, epoch
                best_state = {k: v.detach().clone() for k, v in self.module_.state_dict().items()}
            else:
                bad += 1
                if bad > self.patience:
                    break
        self.samples_per_second_ = seen / max(time.perf_counter() - t0, 1e-9)
        if best_state is not None:
            self.module_.load_state_dict(best_state)

    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> "ConvExpert":
        """Fit on rows X (n, features + context), labels y (n,) in {0, 1}; returns self.

        Raises:
            ValueError: X lacks the context columns, a parameter is out of range, or device='cuda'
                without CUDA.
        """
        require_context(X, type(self).__name__)
        self.check_params()
        torch.manual_seed(self.random_state)
        gen = np.random.default_rng(self.random_state)
        threads = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        try:
            self.device_ = self._device()
            y = np.asarray(y, dtype=np.float32)
            w = np.ones(len(y), np.float32) if sample_weight is None else np.asarray(sample_weight, np.float32)
            self.features_ = [c for c in X.columns if c not in (ASSET_ID, BAR_TIME)
                              and not c.startswith(FINGERPRINT_PREFIX)]
            ids = self._set_embedding_rows(X)
            store = WindowStore(self.features_).add(X)
            self.store_ = store.tail(self.window)
            fit_rows, val_rows = self._time_split(X)
            Xs = X.iloc[fit_rows]
            W, codes = self._windows(store, Xs), self._codes(Xs)
            Wv, cv = self._windows(store, X.iloc[val_rows]), self._codes(X.iloc[val_rows])
            self.initialize(W.shape[1], self.num_assets_)
            known = torch.zeros(self.num_assets_, dtype=torch.bool)
            known[torch.as_tensor(ids)] = True
            self.module_.known_assets = known.to(self.device_)  # buffer: the mean embedding uses these rows only
            self.n_train_windows_ = len(W)
            self._train_epochs(gen, (W, codes, y[fit_rows], w[fit_rows]), (Wv, cv, y[val_rows]))
            self.module_.to("cpu")
            self.device_ = torch.device("cpu") if self.device_.type == "cuda" else self.device_
            self.classes_ = np.array([0, 1])
        finally:
            torch.set_num_threads(threads)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """(n, 2) probabilities; row i's window = its asset's last ``window`` bars with time <= its own,
        from the stored training tail plus the rows of X."""
        require_context(X, type(self).__name__)
        store = WindowStore(self.features_)
        store.times = dict(self.store_.times)
        store.values = dict(self.store_.values)
        store.add(X)
        threads = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        try:
            self.device_ = torch.device("cpu")
            z = self._logits(self._windows(store, X), self._codes(X))
        finally:
            torch.set_num_threads(threads)
        p = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def history_bars(self) -> int:
        """Bars of an asset's history a prediction reads (the window); serving passes that many rows."""
        return int(self.window)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("optimizer_", None)  # not needed to predict; keeps the pickle small
        if "module_" in state and next(state["module_"].parameters()).device.type != "cpu":
            warnings.warn("ConvExpert: moving CUDA weights to CPU for pickling", stacklevel=2)
            state["module_"] = state["module_"].to("cpu")
        return state

    def __setstate__(self, state):
        # Older pickles: before the registry-sized embedding (its asset_codes_, id -> 0..n-1, still index its
        # table) and before the asset_aware switch existed (asset-aware).
        state.setdefault("num_assets", None)
        state.setdefault("asset_aware", True)
        super().__setstate__(state)


class PatternExpert(ConvExpert):
    """The plain asset-aware TCN expert (no kernel-bank stem). Same parameters as ConvExpert."""


class ArchetypeExpert(ConvExpert):
    """TCN whose learnable first layer starts from a seed-003 kernel bank (``archetype`` required)."""
