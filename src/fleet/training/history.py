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
:func:`history_shortfalls` applies it to every asset and fold, :func:`smallest_days` finds the
smallest ``--days`` that passes with the same fold splitter: it checks every value where the outcome
can change, each one cheaply (values that keep the same bars are checked once, and a check stops at
its first short asset); the FFD order always comes from ``choose_d`` itself, as in the unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Hashable

import numpy as np
import pandas as pd

from fleet.config import FleetConfig
from fleet.data.panel import Panel, union_timeline  # noqa: F401  (the folds' timeline; imported from here too)
from fleet.evaluation.splits import PurgedWalkForward
from fleet.features.fracdiff import MIN_ADF_POINTS, choose_d, ffd_weights
from fleet.features.technical import warmup_bars
from fleet.features.pipeline import feature_group_warmup
from fleet.features.spec import FeatureSpec
from fleet.market.fold import MIN_CLUSTER_BARS  # bars an asset needs before a fold's training end to be clustered

#: Training rows an asset needs in a fold (``build_unit_dataset``'s ``min_train_rows``).
MIN_TRAIN_ROWS = 200


@dataclass(frozen=True)
class HistoryNeed:
    """Bars (per asset, before a fold's training end) a run's feature settings need.

    Attributes:
        widest: widest FFD window on the d grid, bars.
        ffd_search: bars the FFD order search needs (widest + MIN_ADF_POINTS).
        warmup: first row at which every non-FFD feature is defined (technical + extra families).
        features: the run's feature settings (the FFD search's grid; ``horizon``, the label horizon).
        min_rows: training rows needed.
    """

    widest: int
    ffd_search: int
    warmup: int
    features: FeatureSpec
    min_rows: int = MIN_TRAIN_ROWS

    @property
    def horizon(self) -> int:
        """Label horizon, bars: the last ``horizon`` bars before the training end have no label inside it."""
        return self.features.horizon

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


def history_need(features: FeatureSpec, columns: tuple[str, ...], bar: pd.Timedelta) -> HistoryNeed:
    """The :class:`HistoryNeed` of a run's feature settings for data with these columns and bar length."""
    f = features
    grid = [0.0, *np.arange(f.d_step, f.max_d + 1e-12, f.d_step).tolist(), float(f.max_d)]
    widest = max(ffd_weights(float(d), threshold=f.ffd_threshold, max_width=f.ffd_max_width).size for d in grid)
    tech = warmup_bars(return_horizons=f.return_horizons, vol_window=f.vol_window, rsi_window=f.rsi_window,
                       volume_window=f.volume_window, columns=columns)
    groups, _ = feature_group_warmup(features, columns=tuple(columns), bar=bar)
    return HistoryNeed(widest=int(widest), ffd_search=int(widest) + MIN_ADF_POINTS, warmup=max(tech, groups),
                       features=features)


def asset_shortfall(close: pd.Series, n_bars: int, need: HistoryNeed) -> str | None:
    """Why one asset cannot be trained on its first ``n_bars`` bars, or None when it can.

    Args:
        close: the asset's closes (its first ``n_bars`` are the fold's training window).
        n_bars: bars before the fold's training end.
        need: what the run's feature settings need (its ``features`` give the FFD order search).
    """
    if n_bars >= need.sure:
        return None
    if n_bars < need.floor:
        return f"{n_bars} bars before its training end, at least {need.floor} needed"
    f = need.features
    choice = choose_d(np.log(close.iloc[:n_bars]), max_d=f.max_d, step=f.d_step, threshold=f.ffd_threshold,
                      max_width=f.ffd_max_width)
    rows = need.rows(n_bars, choice.width)
    if rows >= need.min_rows:
        return None
    return (f"{n_bars} bars before its training end leave {rows} training rows after the warm-up (FFD width "
            f"{choice.width} at d={choice.d:g}), at least {need.min_rows} needed")


def splitter_of(config: FleetConfig, bar: pd.Timedelta) -> PurgedWalkForward:
    """The run's fold splitter (same arguments as the driver's)."""
    return PurgedWalkForward(config.validation.folds, horizon=config.labels.horizon,
                             embargo_bars=config.validation.embargo_bars, bar=bar,
                             holdout=pd.Timedelta(days=config.validation.holdout_days))


def history_shortfalls(panel: Panel, config: FleetConfig, need: HistoryNeed,
                       symbols=None) -> dict[tuple[int, str], str]:
    """(fold index, symbol) -> reason, for every asset that cannot be trained in a fold.

    Folds come from the run's splitter on the panel's union timeline; ``need``: :func:`history_need` of the
    run's feature settings for the panel's columns and bar. Only ``symbols`` are checked when given. Cost: a
    few index look-ups per asset and fold, plus one ``choose_d`` where the bars fall between ``need.floor``
    and ``need.sure``.
    """
    folds = splitter_of(config, panel.bar).folds(union_timeline(panel))
    out: dict[tuple[int, str], str] = {}
    for symbol in (panel.symbols if symbols is None else symbols):
        frame = panel.frames[symbol]
        for fold in folds:
            n = int(frame.index.searchsorted(fold.train_end, side="left"))
            reason = asset_shortfall(frame["close"], n, need)
            if reason is not None:
                out[(fold.index, symbol)] = reason
    return out


#: ``panel_for_days(d)``: the panel ``--days d`` gives and the assets whose shortfall refuses the run.
PanelForDays = Callable[[int], tuple[Panel, list[str]]]


@dataclass(frozen=True)
class _Window:
    """What one ``--days`` value gives the history check.

    Attributes:
        key: equal keys mean the same panel (checked once).
        bars: asset to check -> bars it has before each fold's training end, shape (folds,).
        close: asset -> its closes inside the window, shape (bars in the window,), first bar first.
        starts: asset -> a key of where its window starts (caches FFD widths across values), or None.
        error: the splitter's error on a window with no asset to check (raised if the search reaches it).
    """

    key: Hashable
    bars: dict[str, tuple[int, ...]]
    close: Callable[[str], np.ndarray]
    starts: dict[str, int] | None = None
    error: Exception | None = None

    @property
    def fold0(self) -> int:
        """Fewest bars any asset to check has before fold 0's training end (10**12 when none)."""
        return min((b[0] for b in self.bars.values()), default=10**12)


class _PanelWindows:
    """Windows built by ``panel_for_days`` (any source, e.g. a synthetic market generated per value)."""

    def __init__(self, panel_for_days: PanelForDays, config: FleetConfig, min_bars: int):
        self.panel_for_days, self.config, self.min_bars = panel_for_days, config, min_bars
        self.columns: tuple[str, ...] = ()
        self.bar = pd.Timedelta(hours=1)
        self._memo: dict[int, _Window | None] = {}

    def at(self, days: int) -> _Window | None:
        """The window of ``--days days``, or None when that value cannot be used at all."""
        if days not in self._memo:
            self._memo[days] = self._make(days)
        return self._memo[days]

    def _make(self, days: int) -> _Window | None:
        error = None
        try:
            panel, keep = self.panel_for_days(days)
            if min(len(f) for f in panel.frames.values()) < self.min_bars:
                return None
            splitter = splitter_of(self.config, panel.bar)
            if keep:
                folds = splitter.folds(union_timeline(panel))
            else:
                folds = []
                try:
                    splitter.folds(union_timeline(panel))
                except Exception as err:  # noqa: BLE001 -- raised only if the search gets this far
                    error = err
        except Exception:  # noqa: BLE001 -- e.g. the splitter finds a fold empty: not enough days
            return None
        self.columns, self.bar = tuple(panel.columns), panel.bar
        bars = {s: tuple(int(panel.frames[s].index.searchsorted(f.train_end, side="left")) for f in folds)
                for s in keep}
        return _Window(key=days, bars=bars, close=lambda s: panel.frames[s]["close"].to_numpy(), error=error)


class _SuffixWindows:
    """The windows of one loaded panel: ``--days d`` keeps each asset's bars after ``end - d`` days
    (:meth:`Panel.last_days`) and the assets to check are those it cuts. Worked out on the index
    arrays, without building a panel per value; values that keep the same bars share one window.
    """

    def __init__(self, full: Panel, config: FleetConfig, min_bars: int):
        self.full, self.min_bars = full, min_bars
        self.columns, self.bar = tuple(full.columns), full.bar
        self.ns = {s: f.index.as_unit("ns").asi8 for s, f in full.frames.items()}
        self.close = {s: f["close"].to_numpy() for s, f in full.frames.items()}
        union = union_timeline(full)
        self.union_ns = union.as_unit("ns").asi8
        # The same instants without the time zone: the splitter's comparisons cost half on a naive index.
        self.union = union.tz_localize(None)
        self.end = max(f.index[-1] for f in full.frames.values() if len(f))
        self.splitter = splitter_of(config, full.bar)
        self._memo: dict[int, _Window | None] = {}

    def at(self, days: int) -> _Window | None:
        """The window of ``--days days``, or None when that value cannot be used at all."""
        cut = (self.end - pd.Timedelta(days=float(days))).value  # as Panel.last_days: rows with ts > cut
        u0 = int(np.searchsorted(self.union_ns, cut, side="right"))  # every asset's window starts at union[u0]
        if u0 not in self._memo:
            self._memo[u0] = self._make(u0, cut)
        return self._memo[u0]

    def _make(self, u0: int, cut: int) -> _Window | None:
        starts = {s: int(np.searchsorted(ns, cut, side="right")) for s, ns in self.ns.items()}
        left = {s: self.ns[s].size - starts[s] for s in self.ns}
        if any(self.ns[s].size and not left[s] for s in self.ns) or min(left.values()) < self.min_bars:
            return None  # an asset with no bar in the window (last_days refuses), or the loader's coarse check
        keep = [s for s in self.full.symbols if left[s] and starts[s] > 0]
        error, ends = None, []
        try:
            ends = [f.train_end.value for f in self.splitter.folds(self.union[u0:])]
        except Exception as err:  # noqa: BLE001 -- e.g. a fold is empty: not enough days
            if keep:
                return None
            error = err
        bars = {s: tuple(max(0, int(np.searchsorted(self.ns[s], e, side="left")) - starts[s]) for e in ends)
                for s in keep}
        return _Window(key=u0, bars=bars, close=lambda s: self.close[s][starts[s]:], starts=starts, error=error)


class _ShortCheck:
    """Does a window leave any asset to check short in any fold? The same answer as a non-empty
    :func:`history_shortfalls`, found faster: cheap bar counts first, then the (asset, fold) pairs that
    were short for earlier values, most recent first (they usually are again), stopping at the first
    short asset. Each answer is :func:`asset_shortfall`'s (so the FFD order is ``choose_d``'s, as in
    the unit), kept per exact window of bars.
    """

    def __init__(self, need: HistoryNeed):
        self.need = need
        self.cache: dict[tuple[str, int, int], bool] = {}
        self.recent: list[tuple[str, int]] = []  # (asset, fold) pairs found short, most recent first

    def __call__(self, window: _Window) -> bool:
        need, bars = self.need, window.bars
        if any(n < need.floor for b in bars.values() for n in b):
            return True
        order = [(s, k) for k in range(max((len(b) for b in bars.values()), default=0)) for s in bars
                 if bars[s][k] < need.sure]
        rank = {pair: i for i, pair in enumerate(self.recent)}
        order.sort(key=lambda pair: rank.get(pair, len(rank)))  # stable: the others keep fold-major order
        for s, k in order:
            if self._short(window, s, bars[s][k]):
                self.recent = [(s, k)] + [pair for pair in self.recent if pair != (s, k)]
                return True
        return False

    def _short(self, window: _Window, symbol: str, n: int) -> bool:
        # (asset, first bar, bars) names the exact bars choose_d sees, whichever --days gave them.
        key = None if window.starts is None else (symbol, window.starts[symbol], n)
        if key in self.cache:
            return self.cache[key]
        short = asset_shortfall(pd.Series(window.close(symbol), copy=False), n, self.need) is not None
        if key is not None:
            self.cache[key] = short
        return short


def _first(windows, bound: int, a: int, b: int) -> int | None:
    """Smallest d in (a, b] whose fold-0 bars reach ``bound`` (binary search), None if b does not."""
    w = windows.at(b)
    if w is None or w.fold0 < bound:
        return None
    while b - a > 1:
        mid = (a + b) // 2
        w = windows.at(mid)
        if w is not None and w.fold0 >= bound:
            b = mid
        else:
            a = mid
    return b


def smallest_days(source: Panel | PanelForDays, config: FleetConfig, lo: int, hi: int,
                  min_bars: int = 0, *, features: FeatureSpec) -> int | None:
    """Smallest ``--days`` in (lo, hi] whose panel has no shortfall among the assets to check, or None.

    ``source``: the loaded data as a :class:`Panel` (``--days d`` keeps its last d days, and the assets
    to check are those that cuts), or ``panel_for_days(d)`` giving the panel the run would get with
    ``--days d`` and the assets whose shortfall would refuse it. Every asset also needs ``min_bars``
    bars in all (the loader's coarse check, ``inputs.required_bars``). ``features``: the run's feature settings.

    The bars an asset has before fold 0's training end grow with ``days`` (the first block is a fixed
    share of a timeline that grows with it), so two binary searches on that count find the first
    ``days`` clearing ``need.floor`` (below it nothing passes) and ``need.sure`` (from it everything
    passes). In between the outcome follows the d each window's ADF search picks, which need not be
    monotone in ``days`` (equities, 3 folds: 4189 passes, then 4207 to 4292 fail again), so every value
    is checked in turn and the first that passes is returned: the answer is exact. Each value costs
    little: values that keep the same bars are checked once, a check stops at its first short asset
    (usually one that was short for an earlier value), and its FFD order comes from ``choose_d``.
    Cost per value: the splitter's folds and usually one ``choose_d`` (a few ADF regressions).
    """
    if hi <= lo:
        return None
    windows = _SuffixWindows(source, config, min_bars) if isinstance(source, Panel) else \
        _PanelWindows(source, config, min_bars)
    if windows.at(hi) is None:
        return None
    need = history_need(features, windows.columns, windows.bar)
    start = _first(windows, need.floor, lo, hi)
    if start is None:
        return None
    end = _first(windows, need.sure, start - 1, hi) or hi
    short, seen = _ShortCheck(need), set()
    for d in range(start, end + 1):
        w = windows.at(d)
        if w is None or w.key in seen:
            continue  # unusable, or the same panel as a value that failed
        seen.add(w.key)
        if w.error is not None:
            raise w.error
        if not short(w):
            return d
    return None


def span_days(panel: Panel) -> int:
    """Whole days covered by the longest asset of ``panel`` (the largest useful ``--days``)."""
    return max(math.ceil((f.index[-1] - f.index[0]) / pd.Timedelta(days=1)) + 1
               for f in panel.frames.values() if len(f))
