"""The up-front history check of ``fleet train``: can every asset be trained in every fold?

A unit prepares each asset's design matrix on the fold's training window (``training/dataset.py``):

1. the FFD order search (:func:`fleet.features.fracdiff.choose_d`) needs the widest FFD window on
   the d grid plus ``MIN_ADF_POINTS`` (30) bars before the fold's training end (hard: it fails
   otherwise, whatever d would come out);
2. the first rows are warm-up: the FFD window of the chosen d (width - 1 bars), the technical
   features (volume z-score window, return look-backs, vol / RSI windows) and the extra families
   of the mixture (fingerprint 30-day windows, stress, the rolling OU window of the SDE expert),
   whichever is longest; the last ``horizon`` bars have no label inside the window;
3. what is left must hold ``MIN_TRAIN_ROWS`` (200) training rows, or the asset is skipped, and a
   unit whose assets are all skipped fails.

:func:`asset_shortfall` decides this for one asset and one fold exactly as the unit will: when the
bars clear the worst case (the widest FFD window as warm-up), yes; below the FFD search's need, no;
in between it runs the same ``choose_d`` on the same bars and counts the rows at that d.
:func:`history_shortfalls` applies it to every asset and fold, :func:`smallest_days` searches the
smallest ``--days`` that passes with the same fold splitter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from fleet.config import FleetConfig
from fleet.data.panel import Panel
from fleet.evaluation.splits import PurgedWalkForward
from fleet.features.fracdiff import MIN_ADF_POINTS, choose_d, ffd_weights
from fleet.features.technical import warmup_bars
from fleet.features.pipeline import feature_group_warmup
from fleet.market.fold import MIN_CLUSTER_BARS  # bars an asset needs before a fold's training end to be clustered

#: Training rows an asset needs in a fold (``build_unit_dataset``'s ``min_train_rows``).
MIN_TRAIN_ROWS = 200


@dataclass(frozen=True)
class HistoryNeed:
    """Bars (per asset, before a fold's training end) a configuration needs.

    Attributes:
        widest: widest FFD window on the d grid, bars.
        ffd_search: bars the FFD order search needs (widest + MIN_ADF_POINTS).
        warmup: first row at which every non-FFD feature is defined (technical + extra families).
        horizon: label horizon, bars.
        min_rows: training rows needed.
    """

    widest: int
    ffd_search: int
    warmup: int
    horizon: int
    min_rows: int = MIN_TRAIN_ROWS

    def rows(self, n_bars: int, ffd_width: int) -> int:
        """Training rows of an asset with ``n_bars`` bars before the training end at FFD width ``ffd_width``."""
        return n_bars - self.horizon - max(ffd_width - 1, self.warmup)

    @property
    def floor(self) -> int:
        """Fewer bars than this never work (whatever d is chosen)."""
        return max(MIN_CLUSTER_BARS, self.ffd_search, self.warmup + self.horizon + self.min_rows)

    @property
    def sure(self) -> int:
        """This many bars always work (the widest FFD window taken as warm-up)."""
        return max(self.floor, max(self.widest - 1, self.warmup) + self.horizon + self.min_rows)


def history_need(config: FleetConfig, columns: tuple[str, ...], bar: pd.Timedelta) -> HistoryNeed:
    """The :class:`HistoryNeed` of ``config`` for data with these columns and bar length."""
    f = config.features
    grid = [0.0, *np.arange(f.d_step, f.max_d + 1e-12, f.d_step).tolist(), float(f.max_d)]
    widest = max(ffd_weights(float(d), threshold=f.ffd_threshold, max_width=f.ffd_max_width).size for d in grid)
    tech = warmup_bars(return_horizons=f.return_horizons, vol_window=f.vol_window, rsi_window=f.rsi_window,
                       volume_window=f.volume_window, columns=columns)
    groups, _ = feature_group_warmup(config.model.feature_groups(), columns=tuple(columns), bar=bar,
                                     horizon=config.labels.horizon, sde_window=config.model.sde.window,
                                     return_horizons=tuple(f.return_horizons))
    return HistoryNeed(widest=int(widest), ffd_search=int(widest) + MIN_ADF_POINTS, warmup=max(tech, groups),
                       horizon=config.labels.horizon)


def asset_shortfall(close: pd.Series, n_bars: int, need: HistoryNeed, config: FleetConfig) -> str | None:
    """Why one asset cannot be trained on its first ``n_bars`` bars, or None when it can.

    Args:
        close: the asset's closes (its first ``n_bars`` are the fold's training window).
        n_bars: bars before the fold's training end.
    """
    if n_bars >= need.sure:
        return None
    if n_bars < need.floor:
        return f"{n_bars} bars before its training end, at least {need.floor} needed"
    f = config.features
    choice = choose_d(np.log(close.iloc[:n_bars]), max_d=f.max_d, step=f.d_step, threshold=f.ffd_threshold,
                      max_width=f.ffd_max_width)
    rows = need.rows(n_bars, choice.width)
    if rows >= need.min_rows:
        return None
    return (f"{n_bars} bars before its training end leave {rows} training rows after the warm-up (FFD width "
            f"{choice.width} at d={choice.d:g}), at least {need.min_rows} needed")


def union_timeline(panel: Panel) -> pd.DatetimeIndex:
    """Sorted distinct timestamps of every asset (the timeline the folds are cut on)."""
    values = np.unique(np.concatenate([f.index.as_unit("ns").asi8 for f in panel.frames.values()]))
    return pd.DatetimeIndex(values.astype("datetime64[ns]")).tz_localize("UTC")


def splitter_of(config: FleetConfig, bar: pd.Timedelta) -> PurgedWalkForward:
    """The run's fold splitter (same arguments as the driver's)."""
    return PurgedWalkForward(config.validation.folds, horizon_bars=config.labels.horizon,
                             embargo_bars=config.validation.embargo_bars, bar=bar,
                             holdout=pd.Timedelta(days=config.validation.holdout_days))


def history_shortfalls(panel: Panel, config: FleetConfig, need: HistoryNeed | None = None,
                       symbols=None) -> dict[tuple[int, str], str]:
    """(fold index, symbol) -> reason, for every asset that cannot be trained in a fold.

    Folds come from the run's splitter on the panel's union timeline. Only ``symbols`` are
    checked when given. Cost: a few index look-ups per asset and fold, plus one ``choose_d``
    (~0.04 s) where the bars fall between ``need.floor`` and ``need.sure``.
    """
    need = need or history_need(config, tuple(panel.columns), panel.bar)
    folds = splitter_of(config, panel.bar).folds(union_timeline(panel))
    out: dict[tuple[int, str], str] = {}
    for symbol in (panel.symbols if symbols is None else symbols):
        frame = panel.frames[symbol]
        for fold in folds:
            n = int(frame.index.searchsorted(fold.train_end, side="left"))
            reason = asset_shortfall(frame["close"], n, need, config)
            if reason is not None:
                out[(fold.index, symbol)] = reason
    return out


def _fold0_bars(panel: Panel, config: FleetConfig, symbols) -> int:
    """Fewest bars any of ``symbols`` has before fold 0's training end (the smallest window of all)."""
    fold0 = splitter_of(config, panel.bar).folds(union_timeline(panel))[0]
    return min(int(panel.frames[s].index.searchsorted(fold0.train_end, side="left")) for s in symbols)


def smallest_days(panel_for_days: Callable[[int], tuple[Panel, list[str]]], config: FleetConfig, lo: int,
                  hi: int, min_bars: int = 0) -> int | None:
    """Smallest ``--days`` in (lo, hi] whose panel has no shortfall among the assets to check, or None.

    ``panel_for_days(d)`` gives the panel the run would load with ``--days d`` and the assets whose
    shortfall would refuse the run (those cut by ``--days``); every asset also needs ``min_bars``
    bars in all (the loader's coarse check, ``inputs.required_bars``). The bars an asset
    has before fold 0's training end grow with ``days`` (the first block is a fixed share of a
    timeline that grows with it), so two binary searches on that count alone find the first
    ``days`` clearing ``need.floor`` (below it nothing passes) and ``need.sure`` (from it everything
    passes). In between the outcome depends on the d each window's ADF search picks, which need
    not be monotone in ``days``, so those values are tried one by one with the full check: the
    answer is exact. Cost: ~0.05-0.5 s per value tried.
    """
    def usable(d: int):
        try:
            p, keep = panel_for_days(d)
            if min(len(f) for f in p.frames.values()) < min_bars:
                return None
            return p, keep, (_fold0_bars(p, config, keep) if keep else 10**12)
        except Exception:  # noqa: BLE001 -- e.g. the splitter finds a fold empty: not enough days
            return None

    def first(bound: int, a: int, b: int) -> int | None:
        """Smallest d in (a, b] with fold-0 bars >= bound (binary search), None if b fails."""
        u = usable(b)
        if u is None or u[2] < bound:
            return None
        while b - a > 1:
            mid = (a + b) // 2
            u = usable(mid)
            if u is not None and u[2] >= bound:
                b = mid
            else:
                a = mid
        return b

    if hi <= lo:
        return None
    p0 = usable(hi)
    if p0 is None:
        return None
    need = history_need(config, tuple(p0[0].columns), p0[0].bar)
    start = first(need.floor, lo, hi)
    if start is None:
        return None
    end = first(need.sure, start - 1, hi) or hi
    for d in range(start, end + 1):
        u = usable(d)
        if u is not None and not history_shortfalls(u[0], config, need, symbols=u[1]):
            return d
    return None


def span_days(panel: Panel) -> int:
    """Whole days covered by the longest asset of ``panel`` (the largest useful ``--days``)."""
    return max(math.ceil((f.index[-1] - f.index[0]) / pd.Timedelta(days=1)) + 1 for f in panel.frames.values() if len(f))
