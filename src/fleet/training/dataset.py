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

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fleet.config import FeatureConfig
from fleet.errors import DataError
from fleet.evaluation.splits import Fold
from fleet.features.fracdiff import choose_d, frac_diff_ffd
from fleet.features.labels import binary_label, forward_log_return
from fleet.features.technical import technical_arrays
from fleet.features.fingerprint import FINGERPRINT_PREFIX, fingerprint
from fleet.features.ou import rolling_ou
from fleet.features.stress import stress_features
from fleet.models._context import ASSET_ID, BAR_TIME

FACTOR = "market_factor"
FFD = "ffd_log_close"


@dataclass(frozen=True)
class AssetPreprocessor:
    """What was fitted for one asset on one fold's training window.

    Attributes:
        symbol, asset_id: the asset and its registry id.
        d: FFD order chosen by the ADF search on the training window (AFML ch. 5).
        adf_p_value: ADF p-value of the FFD series at ``d``.
        d_capped: True when no d up to ``max_d`` passed the test and ``d = max_d``.
        mean, std: per-feature training mean / standard deviation (std 0 replaced by 1
            so constant features stay finite), keyed by feature name.
    """

    symbol: str
    asset_id: int
    d: float
    adf_p_value: float
    d_capped: bool
    mean: dict[str, float]
    std: dict[str, float]

    def scale(self, features: pd.DataFrame) -> pd.DataFrame:
        """Standardise raw features (n_bars, n_features) with the training statistics.

        Returns (n_bars, len(mean)) in the order of ``mean``'s keys, (x - mean) / std per column,
        computed on one float64 array (no per-column pandas alignment: this runs per request).
        Raises KeyError when a fitted feature is missing from ``features``.
        """
        cols = list(self.mean)
        mean = np.array([self.mean[c] for c in cols], dtype=np.float64)
        std = np.array([self.std[c] for c in cols], dtype=np.float64)
        values = features[cols].to_numpy(dtype=np.float64)
        return pd.DataFrame((values - mean) / std, index=features.index, columns=cols)

    def scale_arrays(self, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """:meth:`scale` on feature name -> (n_bars,) arrays: the same (x - mean) / std per value,
        returned in the order of ``mean``'s keys. Raises KeyError for a missing fitted feature."""
        return {c: (np.asarray(features[c], dtype=np.float64) - self.mean[c]) / self.std[c] for c in self.mean}


def factor_at(factor: pd.Series, index: pd.DatetimeIndex) -> np.ndarray:
    """The market factor at each timestamp of ``index``, shape (len(index),); 0 (neutral) where
    ``factor`` has no such timestamp or holds NaN. Same values as ``factor.reindex(index).fillna(0)``
    (exact timestamp match, any resolution), without building a Series."""
    pos = factor.index.get_indexer(index)
    values = factor.to_numpy(dtype=np.float64)[pos]
    values[(pos < 0) | np.isnan(values)] = 0.0
    return values


def asset_features(frame: pd.DataFrame, *, d: float, factor: pd.Series | None,
                   config: FeatureConfig, groups: tuple[str, ...] = (), horizon: int = 1,
                   sde_window: int = 168, last: int | None = None) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Raw (unscaled) features of one asset, one row per bar, all causal.

    Shared by training and serving so both compute exactly the same numbers (serving calls the
    array form :func:`asset_feature_arrays`, which this wraps).

    Args:
        frame: (n_bars, k) bars of one asset, UTC index, ``close`` (+ open/high/low/volume).
        d: FFD order for the ``ffd_log_close`` feature.
        factor: market factor on a UTC grid (standardised units); re-indexed to the asset's
            bars, gaps filled with 0 (neutral). ``None`` leaves the feature out.
        config: feature parameters.
        groups: extra feature families the model needs (``ModelConfig.feature_groups()``):
            'stress' (:mod:`fleet.features.stress`), 'sde' (rolling OU, :mod:`fleet.features.ou`,
            with ``horizon`` and ``sde_window`` bars) and 'fingerprint' (:mod:`fleet.features.fingerprint`,
            left unscaled by the preprocessor so the rule gate's thresholds keep their units).
        last: compute only the last ``last`` bars (>= 1), for serving, which answers for the newest
            bar: the technical features and FFD read only their windows (RSI still every bar, see
            :func:`~fleet.features.technical.technical_features`), the factor is looked up for those
            bars only. The values are those of the full computation (``tests/test_fast_features.py``
            checks it on real and synthetic bars). The extra families (``groups``) are still computed
            on every bar and then cut. ``None`` (training): every bar.

    Returns:
        (features, skipped): features of shape (n_bars, n_features) with NaN warm-up rows
        (with ``last``: the last min(last, n_bars) rows), and the names of technical features left
        out for lack of columns (e.g. ``volume_z`` on close-only data).
    """
    values, skipped = asset_feature_arrays({str(c): frame[c].to_numpy() for c in frame.columns}, frame.index,
                                           d=d, factor=factor, config=config, groups=groups, horizon=horizon,
                                           sde_window=sde_window, last=last)
    k = len(next(iter(values.values())))
    return pd.DataFrame(values, index=frame.index[len(frame) - k:]), skipped


def _group_features(frame: pd.DataFrame, groups: tuple[str, ...], *, horizon: int,
                    sde_window: int) -> list[pd.DataFrame]:
    """The extra feature families of ``groups``, each (n_bars, n_family_features), in a fixed order."""
    parts = []
    if "stress" in groups:
        parts.append(stress_features(frame))
    if "sde" in groups:
        parts.append(rolling_ou(np.log(frame["close"]), window=sde_window, horizon=horizon))
    if "fingerprint" in groups:
        parts.append(fingerprint(frame))
    return parts


def asset_feature_arrays(columns: Mapping[str, np.ndarray], index: pd.DatetimeIndex, *, d: float,
                         factor: pd.Series | None, config: FeatureConfig, groups: tuple[str, ...] = (),
                         horizon: int = 1, sde_window: int = 168,
                         last: int | None = None) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """:func:`asset_features` on plain arrays: the one implementation training and serving share.

    Args:
        columns: column name -> (n_bars,) values of one asset, oldest first (``close`` required).
        index: (n_bars,) UTC timestamps of those bars (factor lookup; the extra families).
        d, factor, config, groups, horizon, sde_window, last: as for :func:`asset_features`.

    Returns:
        (features, skipped): feature name -> float64 array of shape (min(last, n_bars),) (n_bars when
        ``last`` is None), in the column order of :func:`asset_features`; skipped as there.

    Raises:
        DataError, ConfigError: invalid values or parameters (see ``technical_features``).
    """
    out, skipped = technical_arrays(
        columns, return_horizons=tuple(config.return_horizons), vol_window=config.vol_window,
        rsi_window=config.rsi_window, volume_window=config.volume_window, last=last)
    log_close = np.log(np.asarray(columns["close"], dtype=np.float64))
    out[FFD] = frac_diff_ffd(log_close, d, threshold=config.ffd_threshold, max_width=config.ffd_max_width,
                             last=last).to_numpy()
    k = out[FFD].shape[0]
    tail = index[len(index) - k:]
    if factor is not None:
        out[FACTOR] = factor_at(factor, tail)
    if groups:
        frame = pd.DataFrame(dict(columns), index=index)
        for part in _group_features(frame, groups, horizon=horizon, sde_window=sde_window):
            for name in part.columns:
                out[name] = part[name].to_numpy(dtype=np.float64)[len(index) - k:]
    return out, tuple(skipped)


def feature_group_warmup(groups: tuple[str, ...], *, columns: tuple[str, ...], bar: pd.Timedelta, horizon: int,
                         sde_window: int) -> tuple[int, int]:
    """Warm-up of the extra feature families, in bars: (first row with no NaN, longest rolling window).

    Measured on a synthetic random walk with the given columns and bar spacing (exact for these
    rolling features, which have fixed ``min_periods``); the second number is how many bars a
    value needs to equal the value computed on a long history (full windows), for serving parity.
    """
    if not groups:
        return 0, 0
    n = 3000
    rng = np.random.default_rng(0)
    close = np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    data = {"close": close}
    if "high" in columns and "low" in columns:
        data["high"], data["low"] = close * 1.01, close * 0.99
    if "volume" in columns:
        data["volume"] = rng.lognormal(size=n)
    frame = pd.DataFrame(data, index=pd.date_range("2020-01-01", periods=n, freq=bar, tz="UTC"))
    parts = _group_features(frame, groups, horizon=horizon, sde_window=sde_window)
    ok = pd.concat(parts, axis=1).notna().all(axis=1).to_numpy()
    first = int(np.argmax(ok)) if ok.any() else n
    full = 0
    if "stress" in groups:
        full = max(full, 168 + 24)
    if "sde" in groups:
        full = max(full, sde_window + 1)
    if "fingerprint" in groups:
        bpd = max(1.0, pd.Timedelta(days=1) / bar)
        full = max(full, int(round(30 * bpd)) + 1, 720 + 8)
    return first, full


def bar_times(index: pd.DatetimeIndex) -> np.ndarray:
    """The ``bar_time`` context column: int64 nanoseconds since the epoch, UTC (any index resolution)."""
    idx = index.tz_convert("UTC") if index.tz is not None else index
    return idx.as_unit("ns").asi8.astype(np.int64)


@dataclass
class UnitDataset:
    """Training and test rows of a unit for one fold.

    ``X_train`` / ``X_test``: (n_rows, n_features + 1) scaled features plus ``asset_id``,
    sorted by (timestamp, asset_id) — the panel layout of seed 001.
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


def build_unit_dataset(*, assets: dict[str, int], frames: dict[str, pd.DataFrame], fold: Fold,
                       timeline_end: pd.Timestamp, factor: pd.Series | None, features: FeatureConfig,
                       horizon: int, min_train_rows: int = 200, groups: tuple[str, ...] = (),
                       sde_window: int = 168) -> UnitDataset:
    """Assemble the fold's design matrix for the unit's assets.

    Args:
        assets: symbol -> registry id of the unit's assets.
        frames: symbol -> bars (at least the unit's assets).
        fold: the walk-forward fold (train/test boundaries).
        timeline_end: last timestamp before the hold-out; test labels may not reach past it.
        factor: market factor for this fold (fitted on its training window) or None.
        features: feature parameters.
        horizon: label horizon, bars.
        min_train_rows: an asset with fewer usable training rows in this fold is left out of the
            fold (recorded in ``skipped_assets`` with the reason) rather than failing the unit.
        groups, sde_window: extra feature families, see :func:`asset_features`.

    Every row also carries the context column ``bar_time`` (int64 ns, UTC): with ``asset_id`` it lets
    the convolutional experts cut each row's trailing window of that asset's bars (see
    :mod:`fleet.models._context`; windows of test rows reach back into training-period bars — past
    data — and never forward).
    """
    train_parts, test_parts, prep = [], [], {}
    skipped_assets: dict[str, str] = {}
    skipped_features: tuple[str, ...] = ()
    for symbol in sorted(assets):
        frame = frames[symbol]
        index = frame.index
        fwd = forward_log_return(frame["close"], horizon)
        label_end = _label_end(index, horizon)
        in_train_window = index < fold.train_end
        if in_train_window.sum() < min_train_rows:
            skipped_assets[symbol] = f"{int(in_train_window.sum())} bars before {fold.train_end} (< {min_train_rows})"
            continue
        try:
            choice = choose_d(np.log(frame["close"][in_train_window]), max_d=features.max_d, step=features.d_step,
                              threshold=features.ffd_threshold, max_width=features.ffd_max_width)
        except DataError as err:
            skipped_assets[symbol] = f"FFD order not estimable on the training window: {err}"
            continue
        raw, skipped_features = asset_features(frame, d=choice.d, factor=factor, config=features, groups=groups,
                                               horizon=horizon, sde_window=sde_window)
        valid = raw.notna().all(axis=1).to_numpy() & fwd.notna().to_numpy()
        ends = pd.DatetimeIndex(label_end)  # vectorised comparisons (NaT: False); to_numpy() would box Timestamps
        train_rows = valid & in_train_window & (ends < fold.train_end)
        test_rows = (valid & (index >= fold.test_start) & (index < fold.test_end) & (ends <= timeline_end))
        if train_rows.sum() < min_train_rows:
            skipped_assets[symbol] = f"{int(train_rows.sum())} usable training rows (< {min_train_rows})"
            continue
        train_raw = raw[train_rows]
        mean = train_raw.mean()
        std = train_raw.std(ddof=0).replace(0.0, 1.0)
        unscaled = [c for c in raw.columns if c.startswith(FINGERPRINT_PREFIX)]
        mean[unscaled], std[unscaled] = 0.0, 1.0
        p = AssetPreprocessor(symbol=symbol, asset_id=int(assets[symbol]), d=float(choice.d),
                              adf_p_value=float(choice.p_value), d_capped=bool(choice.capped),
                              mean={k: float(v) for k, v in mean.items()},
                              std={k: float(v) for k, v in std.items()})
        prep[symbol] = p
        scaled = p.scale(raw)
        scaled[ASSET_ID] = p.asset_id
        scaled[BAR_TIME] = bar_times(index)
        y = binary_label(fwd)
        for rows, parts in ((train_rows, train_parts), (test_rows, test_parts)):
            block = scaled[rows].copy()
            block["__symbol"] = symbol
            block["__y"] = y[rows].to_numpy()
            block["__fwd"] = fwd[rows].to_numpy()
            parts.append(block)

    def assemble(parts):
        if not parts:
            return None
        df = pd.concat(parts).rename_axis("timestamp").reset_index()
        return df.sort_values(["timestamp", ASSET_ID], kind="mergesort").reset_index(drop=True)

    train, test = assemble(train_parts), assemble(test_parts)
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

    def split(df):
        meta = pd.DataFrame({"timestamp": df["timestamp"], "symbol": df["__symbol"].astype(str),
                             "y": df["__y"].astype(np.int64), "forward_return": df["__fwd"]})
        return df[feature_cols].reset_index(drop=True), df["__y"].to_numpy(dtype=np.int64), meta

    X_train, y_train, train_meta = split(train)
    X_test, y_test, test_meta = split(test)
    return UnitDataset(X_train=X_train, y_train=y_train, train_meta=train_meta, X_test=X_test, y_test=y_test,
                       test_meta=test_meta, preprocessors=prep, skipped_assets=skipped_assets,
                       skipped_features=tuple(skipped_features))
