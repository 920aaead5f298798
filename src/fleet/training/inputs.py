"""A run's inputs, checked before anything is written: the panel, its history and the asset registry."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from fleet.config import FleetConfig
from fleet.data.bars import BarCache
from fleet.data.load import load_panel
from fleet.data.panel import Panel
from fleet.data.registry import AssetRegistry, sync_registry
from fleet.data.stage import stage_bars, stage_synthetic
from fleet.data.synthetic import sign_hit_rate, synthetic_market
from fleet.data.uri import display_location
from fleet.errors import DataError
from fleet.features.fracdiff import MIN_ADF_POINTS, ffd_weights
from fleet.features.spec import FeatureSpec

Echo = Callable[[str], None]


def required_bars(config: FleetConfig) -> int:
    """Fewest bars per asset the configuration can work with.

    Fold 0 trains on the first of ``folds + 1`` equal blocks, and that block must hold the FFD
    order search (the widest FFD window on the d grid + 30 bars for the ADF test, AFML ch. 5) or
    the feature warm-up, whichever is longer (they overlap), plus the purge + embargo gap;
    every block needs at least 200 bars.
    """
    f = config.features
    warmup = max(max(f.return_horizons), f.vol_window + 1, f.rsi_window + 1, f.volume_window)
    gap = config.labels.horizon + config.validation.embargo_bars
    grid = np.arange(f.d_step, f.max_d + 1e-12, f.d_step)
    widest = max(ffd_weights(float(d), threshold=f.ffd_threshold, max_width=f.ffd_max_width).size for d in grid)
    per_block = max(200, max(widest + MIN_ADF_POINTS, warmup) + gap)
    return (config.validation.folds + 1) * per_block


#: ``--days`` when it is not given, on bars shorter than :data:`DAILY` (two years of hourly crypto).
INTRADAY_DAYS = 730
#: Bars at least this long count as daily: the window then takes the whole history.
DAILY = pd.Timedelta(hours=20)


def default_days(full: Panel) -> int:
    """``--days`` when it is not given: every day of the history (:func:`full_span`) on daily or longer bars, where
    :data:`INTRADAY_DAYS` holds about 500 bars, too few for the folds' FFD windows and warm-ups; else
    :data:`INTRADAY_DAYS`. ``full``: the panel before any window is applied."""
    return full_span(full) if full.bar >= DAILY else INTRADAY_DAYS


def load_inputs(config: FleetConfig, echo: Echo, frame: pd.DataFrame | None = None, *,
                cache: BarCache | None = None, features: FeatureSpec | None = None) -> tuple[Panel, str]:
    """The validated panel and a one-line description of where it came from.

    ``frame``: a long DataFrame given to :func:`fleet.train`, validated like a long-format file; it
    replaces ``data.path``. ``cache``: None holds every asset's bars in the panel; else each asset is
    validated into the bar cache as it is read (:mod:`fleet.data.stage`) and the panel is lean (close and
    volume, ``Panel.frame_columns``): read the full bars with ``cache.reader(panel)``. ``features``: the run's
    feature settings (what the ``--days`` hint checks with; None: ``FeatureSpec.from_config(config)``).

    ``config.data.days`` None (not given) is set here, once the bar length is known (:func:`default_days`).

    Raises:
        DataError: bad input, or an asset with fewer bars than :func:`required_bars` (the message
            names the smallest ``--days`` that passes this and :func:`check_history`).
    """
    need = required_bars(config)
    if frame is not None or config.data.path:
        source = frame if frame is not None else config.data.path
        full = (load_panel(source, symbols=config.data.symbols, days=None) if cache is None
                else stage_bars(source, cache, symbols=config.data.symbols))
        if config.data.days is None:
            config.data.days = default_days(full)
            echo(f"--days not given: {config.data.days:,} days ("
                 + ("every day of the history, on daily bars)" if full.bar >= DAILY else "two years of intraday bars)"))
        panel = full.last_days(config.data.days)  # what load_panel(days=...) returns
        where = "in-memory DataFrame" if frame is not None else display_location(config.data.path)
        short = sorted((len(panel.frames[s]), s) for s in panel.symbols if len(panel.frames[s]) < need)
        if short:
            raise DataError(f"{where}: {_some(short, 'bars')} in the last {config.data.days} days, but "
                            f"{config.validation.folds} folds need at least {need} bars per asset; "
                            f"{_days_hint(config, full, full_span(full), need, features)}")
        return panel, f"{where} (last {config.data.days:,} days, one window for every asset)"
    if config.data.days is None:
        config.data.days = INTRADAY_DAYS  # the synthetic market is hourly
    params = dict(n_clusters=config.synthetic.n_clusters, assets_per_cluster=config.synthetic.assets_per_cluster,
                  days=config.data.days, seed=config.seed, signal_strength=config.synthetic.signal_strength)
    market = (synthetic_market(**params) if cache is None
              else stage_synthetic(cache, symbols=config.data.symbols, **params))
    echo(f"No --data given: the built-in synthetic market, {len(market.panel.symbols)} assets in "
         f"{config.synthetic.n_clusters} clusters, {config.data.days:,} days of hourly bars, "
         + (f"with a weak planted signal: an hourly return has the sign of the one before it "
            f"{sign_hit_rate(market.signal_strength):.1%} of the time."
            if market.signal_strength else "with no planted signal (signal_strength 0)."))
    echo(f"  A sound result: AUC a little above 0.5, and costs of {config.policy.cost_bps:g} bps per side eating "
         "most of so small an edge (a net Sharpe near or below 0); an AUC far above it points to look-ahead."
         if market.signal_strength else
         "  A sound result: AUC within noise of 0.5 and a net loss after costs; any edge found is an error.")
    panel = market.panel
    if config.data.symbols:
        panel = panel.subset(config.data.symbols)
    have = min(len(f) for f in panel.frames.values())
    if have < need:
        raise DataError(f"synthetic market: --days {config.data.days} gives {have} bars per asset, but "
                        f"{config.validation.folds} folds need at least {need} (FFD window, warm-up and "
                        f"purge in every block); {_days_hint(config, _synthetic_panels(config), None, need, features)}")
    return panel, f"synthetic market (seed={config.seed}, {config.data.days} days)"


def _synthetic_panels(config: FleetConfig):
    """``--days`` -> (the synthetic panel a run would get, the assets a shortfall refuses: all)."""
    def panel_for_days(days: int) -> tuple[Panel, list[str]]:
        s = config.synthetic
        panel = synthetic_market(n_clusters=s.n_clusters, assets_per_cluster=s.assets_per_cluster, days=days,
                                 seed=config.seed, signal_strength=s.signal_strength).panel
        panel = panel.subset(config.data.symbols) if config.data.symbols else panel
        return panel, panel.symbols
    return panel_for_days


def _cut_by_days(full: Panel, panel: Panel) -> list[str]:
    """Assets of ``panel`` whose data hold earlier bars in ``full`` (their history was cut by --days)."""
    return [s for s in panel.symbols if len(panel.frames[s]) and full.frames[s].index[0] < panel.frames[s].index[0]]


def full_span(full: Panel) -> int:
    """Whole days the longest asset of ``full`` covers (the largest useful ``--days``)."""
    from fleet.training.history import span_days

    return span_days(full)


def _some(items: list[tuple[int, str]], unit: str) -> str:
    """'A has 15 bars, B 1440, C 1440 and 7 more' from sorted (count, name) pairs: at most three named."""
    (n0, s0), rest = items[0], items[1:3]
    more = len(items) - 3
    return (f"{s0} has {n0} {unit}" + "".join(f", {s} {n}" for n, s in rest)
            + (f" and {more} more" if more > 0 else ""))


def _days_hint(config: FleetConfig, source, hi: int | None, min_bars: int, features: FeatureSpec | None) -> str:
    """'use --days N (...)' with the smallest N that passes, or what else to do.

    ``source``: the loaded panel, or ``--days`` -> (synthetic panel, assets to check) when ``hi`` is None.
    ``features``: the run's feature settings (None: ``FeatureSpec.from_config(config)``).
    """
    from fleet.training.history import smallest_days

    features = features or FeatureSpec.from_config(config)

    folds = config.validation.folds
    if hi is None:  # synthetic (hourly, one timeline): folds + 1 blocks that each clear need.sure always pass
        from fleet.training.history import history_need

        need = history_need(features, ("open", "high", "low", "close", "volume"), pd.Timedelta(hours=1))
        block = max(need.sure, min_bars) + config.labels.horizon + config.validation.embargo_bars + 2
        hi = max(config.data.days + 1, int(np.ceil(((folds + 1) * block) / 24 + config.validation.holdout_days)) + 1)
        upto = f"{hi} days"
    else:
        upto = f"the data's {hi} days"
    days = smallest_days(source, config, lo=config.data.days, hi=hi, min_bars=min_bars, features=features)
    if days is None:
        return f"no --days value up to {upto} is enough for {folds} folds: use fewer --folds"
    # Not "or more": between need.floor and need.sure the outcome follows the FFD order each window's
    # ADF search picks, so a slightly larger value can fail again (daily equities, 3 folds: 4189 passes,
    # 4207 to 4292 do not); from need.sure on, every value passes.
    return f"use --days {days} (the smallest value that works with {folds} folds), or fewer --folds"


def check_history(config: FleetConfig, panel: Panel, features: FeatureSpec | None = None) -> dict[int, dict[str, str]]:
    """The up-front history check (:mod:`fleet.training.history`), before anything is written.

    Every asset must be trainable (FFD order search, feature warm-ups, 200 training rows) in
    every fold it takes part in. An asset that falls short because ``--days`` cut its history
    (the data hold earlier bars; on the synthetic market, always) makes the window too short: the
    run is refused, naming the smallest ``--days`` that passes (searched with the same splitter)
    or saying that none does. An asset that is short because its data start late (a late
    listing) is left out of the folds where it is short, as before.

    ``features``: the run's feature settings (None: ``FeatureSpec.from_config(config)``).

    Returns:
        fold index -> {symbol: reason} of the late-listed assets to leave out of that fold.

    Raises:
        DataError: the window is too short (one line naming the assets, the bars and the --days to use).
    """
    from fleet.training.history import MIN_TRAIN_ROWS, history_need, history_shortfalls, splitter_of, union_timeline

    features = features or FeatureSpec.from_config(config)
    short = history_shortfalls(panel, config, history_need(features, tuple(panel.columns), panel.bar))
    if not short:
        return {}
    symbols = sorted({s for _, s in short})
    if config.data.path:
        full = load_panel(config.data.path, symbols=config.data.symbols, days=None)
        cut = [s for s in symbols if s in _cut_by_days(full, panel)]
        source, hi, where = full, full_span(full), display_location(config.data.path)
    else:
        cut, source, hi, where = symbols, _synthetic_panels(config), None, "synthetic market"
    if not cut:
        late: dict[int, dict[str, str]] = {}
        for (k, s), why in short.items():
            late.setdefault(k, {})[s] = why
        return late
    ends = [f.train_end for f in splitter_of(config, panel.bar).folds(union_timeline(panel))]
    first: dict[str, tuple[int, str]] = {}  # asset -> (bars, label) in its first short fold
    for k, s in sorted(short):
        if s in cut and s not in first:
            first[s] = (int(panel.frames[s].index.searchsorted(ends[k], side="left")), f"{s} (fold {k})")
    raise DataError(f"{where}: --days {config.data.days} is too short for {config.validation.folds} folds: "
                    f"{_some(sorted(first.values()), 'bars')} before the training end, too few for the FFD "
                    f"order search, feature warm-ups and {MIN_TRAIN_ROWS} training rows; "
                    f"{_days_hint(config, source, hi, required_bars(config), features)}")


def run_registry(config: FleetConfig, symbols: list[str], source: str, notes: list[str], echo: Echo) -> AssetRegistry:
    """The asset registry of a run: the shared file ``config.registry`` read and extended under its lock
    (:func:`~fleet.data.registry.sync_registry`), or, without one, this run's own ids (said once, in the notes).

    Raises:
        DataError: the registry file is corrupted or renumbered. ConfigError: it cannot be locked or written.
    """
    if not config.registry:
        notes.append("no --registry: asset ids are this run's own (sorted symbols) and are not stable across "
                     "runs; pass --registry PATH (or registry: in the fleet spec) to keep them")
        echo("  " + notes[-1])
        return AssetRegistry.from_symbols(symbols, source=source)
    registry, before = sync_registry(config.registry, symbols, source=source)
    change = ("created" if before is None else f"extended from version {before}" if before != registry.version
              else "unchanged")
    echo(f"Asset registry: {config.registry} version {registry.version} ({len(registry)} symbols, {change})")
    return registry

