"""The per-asset feature pipeline shared by training and serving.

One implementation computes an asset's raw features (:func:`asset_feature_arrays`, wrapped by
:func:`asset_features`): the technical features (:mod:`fleet.features.technical`), the FFD log close
(:mod:`fleet.features.fracdiff`), the market factor looked up at the asset's bars, and the extra
families an expert asks for (:mod:`fleet.features.families`). :class:`AssetPreprocessor` holds what
was fitted per asset on a fold's training window (FFD order, feature scaling); the served artifact
(:class:`fleet.models.artifact.UnitModel`) keeps one per asset and calls this module per request, so
training and serving compute exactly the same numbers.

Nothing here imports :mod:`fleet.config`: every setting comes from the run's
:class:`fleet.features.features.FeatureSpec` (built once from the configuration, stored with the served model).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fleet.features.factor_returns import FACTOR_COLUMN as FACTOR
from fleet.features.families import compute_families, full_warmup
from fleet.features.fracdiff import frac_diff_ffd
from fleet.features.spec import FeatureSpec
from fleet.features.technical import technical_arrays
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


def asset_features(frame: pd.DataFrame, *, d: float, factor: pd.Series | None, features: FeatureSpec,
                   last: int | None = None) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Raw (unscaled) features of one asset, one row per bar, all causal.

    Shared by training and serving so both compute exactly the same numbers (serving calls the
    array form :func:`asset_feature_arrays`, which this wraps).

    Args:
        frame: (n_bars, k) bars of one asset, UTC index, ``close`` (+ open/high/low/volume).
        d: FFD order for the ``ffd_log_close`` feature.
        factor: market factor on a UTC grid (standardised units); re-indexed to the asset's
            bars, gaps filled with 0 (neutral). ``None`` leaves the feature out.
        features: the run's feature settings (windows, FFD cut-off, return horizons) and the extra feature
            families the model needs (``features.groups``): 'stress' (:mod:`fleet.features.stress`), 'sde'
            (rolling OU, :mod:`fleet.features.ou`, with ``features.horizon`` and ``features.sde_window`` bars),
            'fingerprint' (:mod:`fleet.features.fingerprint`, left unscaled by the preprocessor so the rule
            gate's thresholds keep their units) and 'factor' (:mod:`fleet.features.factor_returns`).
        last: compute only the last ``last`` bars (>= 1), for serving, which answers for the newest
            bar: the technical features and FFD read only their windows (RSI still every bar, see
            :func:`~fleet.features.technical.technical_features`), the factor is looked up for those
            bars only. The values are those of the full computation (``tests/test_fast_features.py``
            checks it on real and synthetic bars). The extra families (``features.groups``) are still computed
            on every bar and then cut. ``None`` (training): every bar.

    Returns:
        (features, skipped): features of shape (n_bars, n_features) with NaN warm-up rows
        (with ``last``: the last min(last, n_bars) rows), and the names of technical features left
        out for lack of columns (e.g. ``volume_z`` on close-only data).
    """
    values, skipped = asset_feature_arrays({str(c): frame[c].to_numpy() for c in frame.columns}, frame.index,
                                           d=d, factor=factor, features=features, last=last)
    k = len(next(iter(values.values())))
    return pd.DataFrame(values, index=frame.index[len(frame) - k:]), skipped


def asset_feature_arrays(columns: Mapping[str, np.ndarray], index: pd.DatetimeIndex, *, d: float,
                         factor: pd.Series | None, features: FeatureSpec,
                         last: int | None = None) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """:func:`asset_features` on plain arrays: the one implementation training and serving share.

    Args:
        columns: column name -> (n_bars,) values of one asset, oldest first (``close`` required).
        index: (n_bars,) UTC timestamps of those bars (factor lookup; the extra families).
        d, factor, features, last: as for :func:`asset_features`.

    Returns:
        (values, skipped): feature name -> float64 array of shape (min(last, n_bars),) (n_bars when
        ``last`` is None), in the column order of :func:`asset_features`; skipped as there.

    Raises:
        DataError, ConfigError: invalid values or parameters (see ``technical_features``).
    """
    out, skipped = technical_arrays(
        columns, return_horizons=tuple(features.return_horizons), vol_window=features.vol_window,
        rsi_window=features.rsi_window, volume_window=features.volume_window, last=last)
    log_close = np.log(np.asarray(columns["close"], dtype=np.float64))
    out[FFD] = frac_diff_ffd(log_close, d, threshold=features.ffd_threshold, max_width=features.ffd_max_width,
                             last=last).to_numpy()
    k = out[FFD].shape[0]
    tail = index[len(index) - k:]
    if factor is not None:
        out[FACTOR] = factor_at(factor, tail)
    if features.groups:
        frame = pd.DataFrame(dict(columns), index=index)
        if factor is not None:  # the 'factor' family sums it over the return horizons
            frame[FACTOR] = factor_at(factor, index)
        for part in compute_families(frame, features):
            for name in part.columns:
                out[name] = part[name].to_numpy(dtype=np.float64)[len(index) - k:]
    return out, tuple(skipped)


def feature_group_warmup(features: FeatureSpec, *, columns: tuple[str, ...], bar: pd.Timedelta) -> tuple[int, int]:
    """Warm-up of the extra feature families ``features.groups``, in bars: (first row with no NaN, longest rolling
    window); (0, 0) when there are none.

    The first number is measured on a synthetic random walk with the given columns and bar spacing
    (exact for these rolling features, which have fixed ``min_periods``); the second is how many bars a
    value needs to equal the value computed on a long history (full windows), for serving parity, and
    comes from each family's ``warmup`` in :data:`fleet.features.families.FAMILIES`.
    """
    if not features.groups:
        return 0, 0
    n = 3000
    rng = np.random.default_rng(0)
    close = np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    data = {"close": close}
    if "high" in columns and "low" in columns:
        data["high"], data["low"] = close * 1.01, close * 0.99
    if "volume" in columns:
        data["volume"] = rng.lognormal(size=n)
    data[FACTOR] = rng.normal(size=n)  # the run's factor at the bars (the 'factor' family reads it)
    frame = pd.DataFrame(data, index=pd.date_range("2020-01-01", periods=n, freq=bar, tz="UTC"))
    ok = pd.concat(compute_families(frame, features), axis=1).notna().all(axis=1).to_numpy()
    first = int(np.argmax(ok)) if ok.any() else n
    return first, full_warmup(features, bar)


def bar_times(index: pd.DatetimeIndex) -> np.ndarray:
    """The ``bar_time`` context column: int64 nanoseconds since the epoch, UTC (any index resolution)."""
    idx = index.tz_convert("UTC") if index.tz is not None else index
    return idx.as_unit("ns").asi8.astype(np.int64)
