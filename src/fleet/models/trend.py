"""TrendExpert: gradient boosting on per-bar features, aware of which asset a row belongs to.

Asset-aware: in a multi-asset unit the asset id is passed to the booster as a
*native categorical* feature, so trees can branch on the asset ("if asset is SOL and rsi > 70")
while sharing statistical strength across the unit's assets. ``asset_aware=False`` drops it (the
asset-agnostic ablation): the model then cannot tell assets apart.

Learners (``learner``):

* ``"hgb"``: scikit-learn's :class:`~sklearn.ensemble.HistGradientBoostingClassifier` (default;
  no extra dependency).
* ``"lightgbm"``: :class:`lightgbm.LGBMClassifier` (optional extra ``fleet[lightgbm]``), the same
  histogram GBDT (Ke et al. 2017, "LightGBM: A Highly Efficient Gradient Boosting Decision Tree")
  with the same hyper-parameters mapped one to one (num_leaves, min_child_samples, reg_lambda).
  OpenMP: ``lib_lightgbm.so`` links the system ``libgomp.so.1``; torch's wheel ships a library
  with the same soname, so one OpenMP runtime serves torch and LightGBM whichever loads first (torch
  first where a CNN or the MLP gate is trained, see :mod:`fleet.models._openmp`; lightgbm first
  takes the soname from the system library). What must not happen is scikit-learn's vendored
  ``libgomp-*.so`` loading before torch (the 3-4x HGB slow-down of :mod:`fleet.models._openmp`).

Many assets: HistGradientBoosting takes a categorical feature with at most 255 levels (its
``max_bins``). With more assets in a unit, the 254 assets with the most training rows keep a level
of their own and the others share level 254 ("other"; ties broken by the smaller registry id), the
infrequent-category pooling of scikit-learn's ``OrdinalEncoder(max_categories=...)``. Pooled assets
get the trees' shared, asset-agnostic branches; nothing is fitted on labels, so the encoding cannot
leak. LightGBM's categorical has no such cap: every asset keeps its own level.

Early stopping (``early_stopping=True``): the number of boosting iterations is chosen on a purged,
time-ordered validation tail, never on scikit-learn's random split (which would put rows from
after a fitting row's label window into validation and vice versa). Rows are ordered by their
``bar_time`` context column; the last ``validation_fraction`` of the distinct timestamps is the
tail, and the ``purge_bars`` timestamps before it are dropped so no fitting row's label window
reaches into it (AFML ch. 7 purging; ``purge_bars`` = the label horizon). The booster is fitted on
the head with the tail's log-loss tracked per iteration, stopping after ``n_iter_no_change``
iterations without improvement (at most ``max_iter``); the best iteration count n* is kept, and the
model is **refitted on the whole window with n* iterations**. Refit rather than keep the head model
because the tail is the most recent fifth of the window, the bars closest to the test block: the
head model would never see them. (Using n* unchanged on 1/(1 - fraction) more rows slightly
under-fits rather than over-fits, the safe side for near-noise labels.)
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier

from fleet.errors import UnknownSymbolError
from fleet.models._context import ASSET_ID, BAR_TIME
from fleet.models._io import PersistMixin

#: Most levels HistGradientBoosting accepts for a categorical feature (its max_bins).
HGB_MAX_CATEGORIES = 255
LEARNERS = ("hgb", "lightgbm")
#: Fewest distinct timestamps for which early stopping is attempted (else max_iter is used).
MIN_ES_TIMESTAMPS = 20


def lightgbm_available() -> bool:
    """True when the optional ``lightgbm`` package can be imported."""
    try:
        import lightgbm  # noqa: F401
    except ImportError:
        return False
    return True


def encode_assets(ids: np.ndarray, max_levels: int | None) -> dict[int, int]:
    """Category code per asset id from the training rows' ids (n,).

    Every distinct id gets its own code 0..k-1 (ids in increasing order) when ``max_levels`` is
    None or k <= max_levels. Otherwise the ``max_levels - 1`` ids with the most rows keep codes
    0..max_levels-2 (ordered by decreasing count, then increasing id) and all others share code
    ``max_levels - 1``.
    """
    uniq, counts = np.unique(np.asarray(ids, dtype=np.int64), return_counts=True)
    if max_levels is None or len(uniq) <= max_levels:
        return {int(a): i for i, a in enumerate(uniq)}
    order = np.lexsort((uniq, -counts))  # by count desc, then id asc
    codes = {int(uniq[j]): max_levels - 1 for j in order}
    for i, j in enumerate(order[:max_levels - 1]):
        codes[int(uniq[j])] = i
    return codes


def time_tail_split(times: np.ndarray, fraction: float, purge: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Purged, time-ordered (fit, validation) row masks over ``times`` (n,) (any sortable values).

    The validation tail holds every row whose time is among the last ``fraction`` of the distinct
    times; fitting rows are those at least ``purge`` distinct times before the tail's first time.
    Returns None when there are fewer than ``MIN_ES_TIMESTAMPS`` distinct times or nothing is left
    to fit on.
    """
    uniq = np.unique(times)
    if len(uniq) < MIN_ES_TIMESTAMPS:
        return None
    cut = int(len(uniq) * (1.0 - fraction))
    cut = min(max(cut, 1), len(uniq) - 1)
    head_end = cut - int(purge)
    if head_end < 1:
        return None
    return times < uniq[head_end], times >= uniq[cut]


class TrendExpert(PersistMixin, ClassifierMixin, BaseEstimator):
    """P(up) from tabular features with the asset id as a categorical feature (see module docstring).

    Follows the scikit-learn estimator contract: ``__init__`` only stores parameters,
    ``fit`` returns ``self``, fitted attributes end in ``_``.

    Args:
        learner: ``"hgb"`` (scikit-learn HistGradientBoosting) or ``"lightgbm"``.
        max_iter: boosting iterations; with early stopping, the ceiling.
        learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization: booster shape
            (LightGBM: learning_rate, num_leaves, min_child_samples, reg_lambda).
        early_stopping: choose the iteration count on a purged time-ordered tail, then refit.
        validation_fraction: share of the distinct timestamps in that tail, in (0, 1).
        n_iter_no_change: patience, iterations without a lower tail log-loss before stopping.
        purge_bars: distinct timestamps dropped between fitting rows and the tail (label horizon).
        asset_aware: pass the asset id as a categorical feature (False: no asset information).
        num_threads: LightGBM threads (None: its default, all cores; HGB uses OpenMP's default).
        random_state: seed of the booster (tie-breaking only with these settings).
        exclude_prefixes: columns starting with these are not features (in a mixture the factory leaves out the
            other experts' and the gate's families, so the trend expert is the same model as when trained alone).

    Input ``X``: DataFrame (n_samples, n_features + context): numeric feature columns plus an
    integer ``asset_id`` column (registry ids) and, for early stopping, ``bar_time`` (int64 ns);
    ``bar_time`` is never a feature.

    Fitted attributes:
        estimator_: the fitted booster (on the whole window).
        feature_names_: numeric feature columns in training order (asset_id not included).
        asset_codes_: dict registry id -> category code (several ids may share the pooled code
            above 255 assets with HGB); every training id is a key.
        n_iter_: boosting iterations of ``estimator_``.
        best_iter_: iterations chosen by early stopping (None without it).
        val_loss_: tail log-loss after 1..k iterations of the head model (None without it).
        classes_: array([0, 1]).

    Raises (fit): ValueError for an unknown learner, early stopping without ``bar_time``, or
    ``learner='lightgbm'`` without the package. UnknownSymbolError (predict): an asset id not seen
    in fit when ``asset_aware`` (an asset-agnostic model predicts any asset).
    """

    def __init__(self, learner: str = "hgb", max_iter: int = 100, learning_rate: float = 0.05,
                 max_leaf_nodes: int = 8, min_samples_leaf: int = 1000, l2_regularization: float = 1.0,
                 early_stopping: bool = False, validation_fraction: float = 0.2, n_iter_no_change: int = 10,
                 purge_bars: int = 0, asset_aware: bool = True, num_threads: int | None = None,
                 random_state: int = 0, exclude_prefixes: tuple[str, ...] = ()):
        self.learner = learner
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.purge_bars = purge_bars
        self.asset_aware = asset_aware
        self.num_threads = num_threads
        self.random_state = random_state
        self.exclude_prefixes = exclude_prefixes

    # ------------------------------------------------------------------ design matrix
    def _matrix(self, X: pd.DataFrame, *, fitting: bool) -> np.ndarray:
        if not isinstance(X, pd.DataFrame) or ASSET_ID not in X.columns:
            raise ValueError(f"TrendExpert expects a DataFrame with an '{ASSET_ID}' column, got "
                             f"{type(X).__name__} with columns {list(getattr(X, 'columns', []))}")
        ids = X[ASSET_ID].to_numpy(dtype=np.int64)
        if fitting:
            cap = HGB_MAX_CATEGORIES if self.learner == "hgb" else None
            self.asset_codes_ = encode_assets(ids, cap)
            skip = tuple(self.exclude_prefixes)
            self.feature_names_ = [c for c in X.columns
                                   if c not in (ASSET_ID, BAR_TIME) and not (skip and c.startswith(skip))]
        else:
            missing = [c for c in self.feature_names_ if c not in X.columns]
            if missing:
                raise ValueError(f"TrendExpert: columns {missing} seen in fit are missing at predict time")
        # Column by column: selecting a list of columns from a DataFrame costs ~0.5 ms per call
        # (label indexing), which a one-row serving request would pay on every prediction.
        cols = [X[c].to_numpy(dtype=np.float64) for c in self.feature_names_]
        if not self.asset_aware:
            return np.column_stack(cols) if cols else np.zeros((len(X), 0))
        unknown = sorted({int(a) for a in ids} - set(self.asset_codes_))
        if unknown:
            raise UnknownSymbolError(
                f"asset ids {unknown} were not in this model's training data; it knows ids "
                f"{sorted(self.asset_codes_)}")
        codes = (np.vectorize(self.asset_codes_.__getitem__, otypes=[np.float64])(ids) if len(ids)
                 else ids.astype(float))
        return np.column_stack(cols + [codes])

    # ------------------------------------------------------------------ boosters
    def _booster(self, n_iter: int):
        categorical = [len(self.feature_names_)] if self.asset_aware else None
        if self.learner == "hgb":
            return HistGradientBoostingClassifier(
                max_iter=n_iter, learning_rate=self.learning_rate, max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
                early_stopping=False, categorical_features=categorical, random_state=self.random_state)
        import lightgbm

        return lightgbm.LGBMClassifier(
            n_estimators=n_iter, learning_rate=self.learning_rate, num_leaves=self.max_leaf_nodes,
            min_child_samples=self.min_samples_leaf, reg_lambda=self.l2_regularization, max_bin=255,
            subsample=1.0, colsample_bytree=1.0, deterministic=True, force_row_wise=True,
            n_jobs=self.num_threads, random_state=self.random_state, verbose=-1)

    def _fit_booster(self, booster, Z, y, w, val=None):
        """Fit; with ``val = (Zv, yv, wv)`` also track the tail's log-loss (returned per iteration)."""
        cat = [len(self.feature_names_)] if self.asset_aware else "auto"
        if self.learner == "hgb":
            if val is None:
                booster.fit(Z, y, sample_weight=w)
                return None
            booster.set_params(early_stopping=True, n_iter_no_change=self.n_iter_no_change, scoring="loss",
                               tol=0.0)
            booster.fit(Z, y, sample_weight=w, X_val=val[0], y_val=val[1], sample_weight_val=val[2])
            # validation_score_[0] is the constant model's; scores are negated losses.
            return -np.asarray(booster.validation_score_[1:], dtype=np.float64)
        if val is None:
            booster.fit(Z, y, sample_weight=w, categorical_feature=cat)
            return None
        import lightgbm

        # lightgbm >= 4.7 names the validation set eval_X / eval_y (eval_set is deprecated there).
        newer = "eval_X" in inspect.signature(booster.fit).parameters
        evals = dict(eval_X=(val[0],), eval_y=(val[1],)) if newer else dict(eval_set=[(val[0], val[1])])
        booster.fit(Z, y, sample_weight=w, categorical_feature=cat, **evals,
                    eval_sample_weight=None if val[2] is None else [val[2]], eval_metric="binary_logloss",
                    callbacks=[lightgbm.early_stopping(self.n_iter_no_change, first_metric_only=True, verbose=False)])
        return np.asarray(booster.evals_result_["valid_0"]["binary_logloss"], dtype=np.float64)

    def check_params(self) -> None:
        """The checks that need no data (learner known and importable); ValueError otherwise. Run by ``fit`` and,
        before any unit is prepared, by :func:`fleet.training.graph.check_config`."""
        if self.learner not in LEARNERS:
            raise ValueError(f"TrendExpert: learner={self.learner!r}; expected one of {list(LEARNERS)}")
        if self.learner == "lightgbm" and not lightgbm_available():
            raise ValueError("TrendExpert: learner='lightgbm' needs the lightgbm package "
                             "(pip install 'fleet[lightgbm]'); or use learner='hgb'")

    def _check_params(self, X) -> None:
        self.check_params()
        if self.early_stopping:
            if not 0.0 < self.validation_fraction < 1.0:
                raise ValueError(f"TrendExpert: validation_fraction={self.validation_fraction}; expected (0, 1)")
            if BAR_TIME not in X.columns:
                raise ValueError(f"TrendExpert: early_stopping needs the '{BAR_TIME}' column to order rows in time")

    # ------------------------------------------------------------------ estimator API
    def fit(self, X: pd.DataFrame, y, sample_weight=None) -> "TrendExpert":
        """Fit on (n_samples, n_features + context) rows and binary labels y of shape (n_samples,)."""
        self._check_params(X)
        Z = self._matrix(X, fitting=True)
        y = np.asarray(y, dtype=np.int64)
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        n_iter = int(self.max_iter)
        self.best_iter_, self.val_loss_ = None, None
        if self.early_stopping:
            split = time_tail_split(X[BAR_TIME].to_numpy(np.int64), self.validation_fraction, self.purge_bars)
            if split is not None and len(np.unique(y[split[0]])) == 2 and len(np.unique(y[split[1]])) == 2:
                fit_rows, val_rows = split
                head = self._booster(n_iter)
                sub = (lambda m: None) if w is None else (lambda m: w[m])
                self.val_loss_ = self._fit_booster(head, Z[fit_rows], y[fit_rows], sub(fit_rows),
                                                   val=(Z[val_rows], y[val_rows], sub(val_rows)))
                self.best_iter_ = n_iter = int(np.argmin(self.val_loss_)) + 1
        self.estimator_ = self._booster(n_iter)
        self._fit_booster(self.estimator_, Z, y, w)
        self.n_iter_ = n_iter
        self.classes_ = np.asarray(self.estimator_.classes_)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities, shape (n_samples, 2): column 1 is P(up)."""
        return self.estimator_.predict_proba(self._matrix(X, fitting=False))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Most likely class (0/1), shape (n_samples,)."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __setstate__(self, state: dict) -> None:
        # Models pickled before the learner / early-stopping / asset_aware parameters existed were
        # asset-aware HGB models whose feature_names_ ended with the asset id column.
        if "learner" not in state:
            state = {"learner": "hgb", "early_stopping": False, "validation_fraction": 0.2, "n_iter_no_change": 10,
                     "purge_bars": 0, "asset_aware": True, "num_threads": None, **state}
            names = state.get("feature_names_")
            if names and names[-1] == ASSET_ID:
                state["feature_names_"] = names[:-1]
        super().__setstate__(state)
