"""The design matrix of one training unit for one walk-forward fold.

Everything fitted here — the FFD order d and the per-asset feature scaling — is fitted on
the fold's training window only (rows with timestamp < ``fold.train_end``); the test rows
are transformed with those training statistics. That is the no-look-ahead rule of
ARCHITECTURE.md, and ``tests/test_dataset.py`` perturbs the future to check it.

Row filters, per asset (AFML ch. 7 purging, with the label window measured on the asset's
own bars so data gaps cannot leak a label into the test block):

* training rows: the label's end bar ``< fold.train_end`` — the whole label window lies inside
  the training window, so no fitted thing (not even a label) sees a price from the embargo gap
  or the test block;
* test rows: ``fold.test_start <= t < fold.test_end`` and the label's end bar
  ``<= timeline_end`` (labels never reach into the hold-out).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fleet.errors import DataError
from fleet.evaluation.splits import Fold
from fleet.features.families import unscaled_prefixes
from fleet.features.fracdiff import choose_d
from fleet.features.labels import binary_label, forward_log_return, make_labels
from fleet.features.pipeline import AssetPreprocessor, asset_features, bar_times
from fleet.features.spec import FeatureSpec
from fleet.models._context import ASSET_ID, BAR_TIME

# AssetPreprocessor (with the rest of the per-asset pipeline) lives in fleet.features.pipeline; the name stays
# importable here because older runs' pickles name fleet.training.dataset.AssetPreprocessor.
__all__ = ["AssetPreprocessor", "UnitDataset", "build_unit_dataset"]

@dataclass
class UnitDataset:
    """Training and test rows of a unit for one fold.

    ``X_train`` / ``X_test``: (n_rows, n_features + 1) scaled features plus ``asset_id``,
    sorted by (timestamp, asset_id): the panel layout.
    ``train_meta`` / ``test_meta``: the same rows' ``timestamp``, ``symbol``, ``y`` and
    ``forward_return`` (log-return over the label horizon).
    """

    X_train: pd.DataFrame
    y_train: np.ndarray
    train_meta: pd.DataFrame
    X_test: pd.DataFrame
    y_test: np.ndarray
    test_meta: pd.DataFrame
    preprocessors: dict[str, AssetPreprocessor]
    skipped_assets: dict[str, str] = field(default_factory=dict)
    skipped_features: tuple[str, ...] = ()

    @property
    def feature_names(self) -> list[str]:
        return list(self.X_train.columns)


def _label_end(index: pd.DatetimeIndex, horizon: int) -> pd.Series:
    """Timestamp of the bar where each row's label window ends (NaT for the last bars)."""
    ends = pd.Series(index, index=index).shift(-horizon)
    return ends


def _training_label(close: pd.Series, horizon: int, labels, fwd: pd.Series,
                    label_end: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(y, end of each label): the sign of ``fwd`` ending h bars later, or the configured method's."""
    if labels is None or labels.method == "fixed_horizon":
        return binary_label(fwd), label_end
    return make_labels(close, horizon, labels.method, profit_take=labels.profit_take, stop_loss=labels.stop_loss,
                       vol_span=labels.vol_window)


def build_unit_dataset(*, assets: dict[str, int], frames: dict[str, pd.DataFrame], fold: Fold,
                       timeline_end: pd.Timestamp, factor: pd.Series | None, features: FeatureSpec,
                       min_train_rows: int = 200, labels=None) -> UnitDataset:
    """Assemble the fold's design matrix for the unit's assets.

    Args:
        assets: symbol -> registry id of the unit's assets.
        frames: symbol -> bars (at least the unit's assets).
        fold: the walk-forward fold (train/test boundaries).
        timeline_end: last timestamp before the hold-out; test labels may not reach past it.
        factor: market factor for this fold (fitted on its training window) or None.
        features: the run's feature settings (:class:`~fleet.features.spec.FeatureSpec`); its ``horizon``
            (bars) is the label horizon.
        min_train_rows: an asset with fewer usable training rows in this fold is left out of the
            fold (recorded in ``skipped_assets`` with the reason) rather than failing the unit.
        labels: the ``labels`` section (:class:`fleet.config.LabelConfig`); None: the fixed-horizon sign label.
            With ``method = triple_barrier`` the training label is :func:`fleet.features.labels.triple_barrier`
            and a training row is kept when its label's *actual* end (the first barrier touched) is before
            ``fold.train_end`` (AFML ch. 7 purging on each label's end time); its ``forward_return`` in
            ``train_meta`` is NaN when the h-bar window is not inside the training window. Test rows keep
            the h-bar filter (their forward return is what the curve earns).

    Every row also carries the context column ``bar_time`` (int64 ns, UTC): with ``asset_id`` it lets
    the convolutional experts cut each row's trailing window of that asset's bars (see
    :mod:`fleet.models._context`; windows of test rows reach back into training-period bars — past
    data — and never forward).
    """
    train_parts, test_parts, prep = [], [], {}
    skipped_assets: dict[str, str] = {}
    skipped_features: tuple[str, ...] = ()
    for symbol in sorted(assets):
        out = _asset_rows(symbol, int(assets[symbol]), frames[symbol], fold=fold, timeline_end=timeline_end,
                          factor=factor, features=features, min_train_rows=min_train_rows, labels=labels)
        skipped_features = out.skipped_features if out.skipped_features is not None else skipped_features
        if out.reason is not None:
            skipped_assets[symbol] = out.reason
            continue
        prep[symbol] = out.preprocessor
        train_parts.append(out.train)
        test_parts.append(out.test)
    train, test = _assemble(train_parts), _assemble(test_parts)
    if train is None:
        by_reason: dict[str, list[str]] = {}
        for s, r in skipped_assets.items():
            by_reason.setdefault(r, []).append(s)
        raise DataError(f"fold {fold.index}: no asset of the unit has enough training data ("
                        + "; ".join(f"{', '.join(ss)}: {r}" for r, ss in by_reason.items())
                        + "); use more --days or fewer --folds")
    feature_cols = [c for c in train.columns if not c.startswith("__") and c != "timestamp"]
    if test is None:
        test = train.iloc[0:0]
    X_train, y_train, train_meta = _split(train, feature_cols)
    X_test, y_test, test_meta = _split(test, feature_cols)
    return UnitDataset(X_train=X_train, y_train=y_train, train_meta=train_meta, X_test=X_test, y_test=y_test,
                       test_meta=test_meta, preprocessors=prep, skipped_assets=skipped_assets,
                       skipped_features=tuple(skipped_features))


@dataclass
class _AssetRows:
    """One asset's part of a unit's fold: its rows and preprocessor, or why it sits the fold out."""

    reason: str | None = None
    skipped_features: tuple[str, ...] | None = None
    preprocessor: AssetPreprocessor | None = None
    train: pd.DataFrame | None = None
    test: pd.DataFrame | None = None


def _asset_rows(symbol: str, asset_id: int, frame: pd.DataFrame, *, fold: Fold, timeline_end: pd.Timestamp,
                factor: pd.Series | None, features: FeatureSpec, min_train_rows: int, labels=None) -> _AssetRows:
    """Fit one asset's preprocessor on the fold's training window and cut its scaled training and test rows
    (columns: features, ``asset_id``, ``bar_time``, ``__symbol``, ``__y``, ``__fwd``; UTC index)."""
    index, horizon = frame.index, features.horizon
    fwd = forward_log_return(frame["close"], horizon)
    label_end = _label_end(index, horizon)
    in_train_window = index < fold.train_end
    if in_train_window.sum() < min_train_rows:
        return _AssetRows(f"{int(in_train_window.sum())} bars before {fold.train_end} (< {min_train_rows})")
    try:
        choice = choose_d(np.log(frame["close"][in_train_window]), max_d=features.max_d, step=features.d_step,
                          threshold=features.ffd_threshold, max_width=features.ffd_max_width)
    except DataError as err:
        return _AssetRows(f"FFD order not estimable on the training window: {err}")
    raw, skipped_features = asset_features(frame, d=choice.d, factor=factor, features=features)
    valid = raw.notna().all(axis=1).to_numpy() & fwd.notna().to_numpy()
    ends = pd.DatetimeIndex(label_end)  # vectorised comparisons (NaT: False); to_numpy() would box Timestamps
    y, train_ends = _training_label(frame["close"], horizon, labels, fwd, label_end)
    valid &= y.notna().to_numpy()
    train_rows = valid & in_train_window & (pd.DatetimeIndex(train_ends) < fold.train_end)
    test_rows = (valid & (index >= fold.test_start) & (index < fold.test_end) & (ends <= timeline_end))
    if train_rows.sum() < min_train_rows:
        return _AssetRows(f"{int(train_rows.sum())} usable training rows (< {min_train_rows})", skipped_features)
    train_raw = raw[train_rows]
    mean = train_raw.mean()
    std = train_raw.std(ddof=0).replace(0.0, 1.0)
    unscaled = [c for c in raw.columns if c.startswith(unscaled_prefixes())]
    mean[unscaled], std[unscaled] = 0.0, 1.0
    p = AssetPreprocessor(symbol=symbol, asset_id=asset_id, d=float(choice.d),
                          adf_p_value=float(choice.p_value), d_capped=bool(choice.capped),
                          mean={k: float(v) for k, v in mean.items()},
                          std={k: float(v) for k, v in std.items()})
    scaled = p.scale(raw)
    scaled[ASSET_ID] = p.asset_id
    scaled[BAR_TIME] = bar_times(index)
    fwd_train = fwd.where(pd.Series(ends < fold.train_end, index=index))  # h-bar window inside the window
    blocks = []
    for rows, label, f in ((train_rows, y, fwd_train), (test_rows, binary_label(fwd), fwd)):
        block = scaled[rows].copy()
        block["__symbol"] = symbol
        block["__y"] = label[rows].to_numpy()
        block["__fwd"] = f[rows].to_numpy()
        blocks.append(block)
    return _AssetRows(None, skipped_features, p, *blocks)


def _assemble(parts: list[pd.DataFrame]) -> pd.DataFrame | None:
    """The assets' blocks as one frame sorted by (timestamp, asset_id); None when there are none."""
    if not parts:
        return None
    df = pd.concat(parts).rename_axis("timestamp").reset_index()
    return df.sort_values(["timestamp", ASSET_ID], kind="mergesort").reset_index(drop=True)


def _split(df: pd.DataFrame, feature_cols: list[str]) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """(X (n, features), y (n,) int64, meta with timestamp / symbol / y / forward_return) of assembled rows."""
    meta = pd.DataFrame({"timestamp": df["timestamp"], "symbol": df["__symbol"].astype(str),
                         "y": df["__y"].astype(np.int64), "forward_return": df["__fwd"]})
    return df[feature_cols].reset_index(drop=True), df["__y"].to_numpy(dtype=np.int64), meta
