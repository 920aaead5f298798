"""The validated multi-asset bar container every later layer reads.

A :class:`Panel` is built by :func:`fleet.data.load.load_panel` (files) or
:func:`fleet.data.synthetic.synthetic_market` (generated data); both guarantee the
invariants listed on the class, so downstream code never re-validates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fleet.errors import ConfigError, DataError, UnknownSymbolError

OPTIONAL_COLUMNS = ("open", "high", "low", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
# Order of the columns of every frame: the usual OHLCV reading order.
CANONICAL_COLUMNS = ("open", "high", "low", "close", "volume")

# Calendars used by Panel.bars_per_year (days per year).
CALENDAR_DAYS_PER_YEAR = 365
TRADING_DAYS_PER_YEAR = 252
# A 24/7 market has 2/7 ~ 28.6 % of its bars on Saturday/Sunday; a weekday market has
# none, bar the odd vendor glitch. 5 % separates the two robustly.
WEEKEND_SHARE_24_7 = 0.05


def infer_bar(frames: Mapping[str, pd.DataFrame]) -> pd.Timedelta:
    """Infer the bar length of a panel: the median timestamp difference over all assets.

    The differences of every asset are pooled before taking the median, so a few gaps
    (exchange outages, weekends of a weekday market) do not change the answer.

    Args:
        frames: symbol -> frame indexed by a sorted DatetimeIndex (any unit / time zone).

    Returns:
        The bar length as a ``pd.Timedelta`` (e.g. ``Timedelta("1h")`` for hourly bars).

    Raises:
        DataError: no asset has two or more bars, so no difference exists.
    """
    diffs = [np.diff(frame.index.as_unit("ns").asi8) for frame in frames.values() if len(frame) > 1]
    diffs = [d for d in diffs if d.size]
    if not diffs:
        raise DataError(
            f"cannot infer the bar length: every asset ({', '.join(sorted(frames)) or 'none'}) "
            "has fewer than 2 bars; expected at least 2 timestamps per asset"
        )
    median_ns = float(np.median(np.concatenate(diffs)))
    return pd.Timedelta(int(round(median_ns)), unit="ns")


def _as_symbol_list(symbols) -> list[str]:
    # A bare string is one symbol, not an iterable of one-letter symbols.
    if isinstance(symbols, str):
        return [symbols]
    if not isinstance(symbols, Iterable):
        raise ConfigError(f"symbols must be a list of symbol names, got {type(symbols).__name__}")
    return list(dict.fromkeys(symbols))


# eq=False: the generated __eq__ would compare dicts of DataFrames, which raises.
@dataclass(frozen=True, eq=False)
class Panel:
    """Validated multi-asset bars.

    Attributes:
        frames: symbol -> DataFrame of shape (n_bars_of_that_asset, len(columns)), indexed by a
            tz-aware UTC ``DatetimeIndex`` named ``"timestamp"`` (sorted ascending, unique;
            microsecond unit when built by fleet's loader or generator), float64 columns:
            ``"close"`` always, plus those of :data:`OPTIONAL_COLUMNS` listed in ``columns``.
            Prices in the quote currency, volume in base-asset units. No NaN/inf anywhere.
            Assets need not share a calendar (different starts, ends and gaps).
        sources: symbol -> source file path as str (``"synthetic"`` for generated data).
        columns: the columns every frame has, in OHLCV order, e.g. ``("close",)`` or
            ``("open", "high", "low", "close", "volume")``.
        dropped_columns: optional columns that some but not all files had (left out so all
            assets share one schema).
        bar: inferred bar length: the median timestamp difference over all assets
            (:func:`infer_bar`). Kept unchanged by :meth:`subset` and :meth:`last_days`, so
            every slice of one data set reports the same bar.
        frame_columns: the columns the frames hold when that is fewer than ``columns``: a lean
            panel (:func:`fleet.data.stage.stage_bars`) keeps ``close`` and ``volume`` only, the
            driver's share of the bars, while ``columns`` still names the data's columns and the
            full frames are read from the bar cache (:class:`fleet.data.bars.BarReader`).
            None: the frames hold ``columns``.

    Raises:
        DataError: on construction, when ``columns`` lacks ``"close"`` or names an unknown
            column, or a frame lacks one of ``columns`` or has no tz-aware DatetimeIndex.
            (Values are validated by the loader, not here, to keep construction cheap.)
    """

    frames: dict[str, pd.DataFrame]
    sources: dict[str, str]
    columns: tuple[str, ...]
    dropped_columns: tuple[str, ...] = ()
    bar: pd.Timedelta = pd.Timedelta(hours=1)
    frame_columns: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        if self.frame_columns is not None:
            object.__setattr__(self, "frame_columns", tuple(self.frame_columns))
        object.__setattr__(self, "dropped_columns", tuple(self.dropped_columns))
        object.__setattr__(self, "bar", pd.Timedelta(self.bar))
        if "close" not in self.columns:
            raise DataError(f"Panel: columns {self.columns} lack 'close'; every panel needs closes")
        unknown = [c for c in self.columns if c not in CANONICAL_COLUMNS]
        if unknown:
            raise DataError(
                f"Panel: unknown columns {unknown}; expected some of {', '.join(CANONICAL_COLUMNS)}"
            )
        held = self.columns if self.frame_columns is None else self.frame_columns
        if not set(held) <= set(self.columns) or "close" not in held:
            raise DataError(f"Panel: frame_columns {held} must include 'close' and be among columns {self.columns}")
        for symbol, frame in self.frames.items():
            missing = [c for c in held if c not in frame.columns]
            if missing:
                raise DataError(f"Panel: frame of {symbol} lacks columns {missing}")
            if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
                raise DataError(
                    f"Panel: frame of {symbol} must be indexed by a tz-aware UTC DatetimeIndex, "
                    f"got {type(frame.index).__name__}"
                )

    @property
    def symbols(self) -> list[str]:
        """Symbols held, sorted."""
        return sorted(self.frames)

    def missing_columns(self) -> tuple[str, ...]:
        """Optional columns this panel lacks, in :data:`OPTIONAL_COLUMNS` order.

        Feature code uses it to say which features it had to leave out (e.g. close-only
        equities lack ``("open", "high", "low", "volume")``).
        """
        return tuple(c for c in OPTIONAL_COLUMNS if c not in self.columns)

    def bars_per_year(self) -> float:
        """Number of bars in one year, for annualising (e.g. Sharpe ratio * sqrt of this).

        Rule:
          * bars of 7 days or longer: 365 days / bar (weekends are irrelevant);
          * 24/7 markets -- at least 5 % of all bars fall on a Saturday or Sunday (UTC;
            a 24/7 market has 2/7): 365 days / bar, so 8760 for 1h bars, 365 for daily bars;
          * weekday markets (equities) -- fewer weekend bars: 252 trading days times the
            median number of bars per (asset, UTC date), so 252 for daily bars and
            e.g. 252 * 7 for hourly bars of a 7-bar session.

        Returns:
            Bars per year as a float (8760.0 for hourly crypto, 252.0 for daily equities).
        """
        if self.bar >= pd.Timedelta(days=7) or not self.frames:
            return pd.Timedelta(days=CALENDAR_DAYS_PER_YEAR) / self.bar
        n_bars = 0
        n_weekend = 0
        for frame in self.frames.values():
            n_bars += len(frame)
            n_weekend += int(np.count_nonzero(frame.index.day_of_week >= 5))
        if n_bars == 0 or n_weekend / n_bars >= WEEKEND_SHARE_24_7:
            return pd.Timedelta(days=CALENDAR_DAYS_PER_YEAR) / self.bar
        day_ns = pd.Timedelta(days=1).value
        counts = []
        for frame in self.frames.values():
            if len(frame):
                days = frame.index.as_unit("ns").asi8 // day_ns
                counts.append(np.unique(days, return_counts=True)[1])
        bars_per_day = float(np.median(np.concatenate(counts)))
        return TRADING_DAYS_PER_YEAR * bars_per_day

    def subset(self, symbols) -> Panel:
        """Panel restricted to ``symbols`` (a list of names, or one name as a str).

        Returns:
            A new Panel sharing the frames (copy-on-write keeps them safe), same columns,
            dropped_columns and bar.

        Raises:
            UnknownSymbolError: some symbols are not in the panel; names them and the known ones.
            ConfigError: ``symbols`` is empty.
        """
        wanted = _as_symbol_list(symbols)
        if not wanted:
            raise ConfigError(f"subset: no symbols given; the panel holds {', '.join(self.symbols)}")
        unknown = [s for s in wanted if s not in self.frames]
        if unknown:
            raise UnknownSymbolError(
                f"unknown symbol(s) {', '.join(map(repr, unknown))}: "
                f"the panel holds {', '.join(self.symbols)}"
            )
        keep = sorted(wanted)
        return Panel(
            frames={s: self.frames[s] for s in keep},
            sources={s: self.sources.get(s, "") for s in keep},
            columns=self.columns,
            dropped_columns=self.dropped_columns,
            bar=self.bar,
            frame_columns=self.frame_columns,
        )

    def last_days(self, days: float) -> Panel:
        """Keep the last ``days`` days of the fleet's calendar: rows with ``ts > panel_end - days``,
        where ``panel_end`` is the latest bar of any asset.

        One calendar window for every asset, so the walk-forward folds cut on the union timeline
        span ``days`` and every asset's training window grows with them. An asset whose data end
        earlier (AVAXUSDT ends two months before BTCUSDT in the shared data) keeps only the bars it
        has inside the window.

        Args:
            days: look-back in calendar days (int or float), must be > 0.

        Raises:
            ConfigError: ``days`` is not a number > 0.
            DataError: an asset has no bar inside the window (its name, its last bar and the
                panel's end are in the message).
        """
        if isinstance(days, bool) or not isinstance(days, (int, float, np.integer, np.floating)):
            raise ConfigError(f"days={days!r} is not a number; expected a number of days > 0")
        if not days > 0:
            raise ConfigError(f"days={days} must be > 0 (the number of most recent days to keep)")
        span = pd.Timedelta(days=float(days))
        ends = [f.index[-1] for f in self.frames.values() if len(f)]
        cut = max(ends) - span if ends else None
        frames, empty = {}, []
        for symbol, frame in self.frames.items():
            if len(frame):
                # Frames are sorted, so the kept rows are a suffix: slice instead of masking.
                start = int(frame.index.searchsorted(cut, side="right"))
                if start == len(frame):
                    empty.append(f"{symbol} (last bar {frame.index[-1]:%Y-%m-%d %H:%M})")
                frame = frame.iloc[start:]
            frames[symbol] = frame
        if empty:
            raise DataError(
                f"--days {days:g}: {', '.join(empty)} has no bar in the last {days:g} days of the data "
                f"(which end {max(ends):%Y-%m-%d %H:%M}); use a larger --days or leave it out with --symbols")
        return Panel(
            frames=frames,
            sources=dict(self.sources),
            columns=self.columns,
            dropped_columns=self.dropped_columns,
            bar=self.bar,
            frame_columns=self.frame_columns,
        )

    def dollar_volume(self) -> pd.Series | None:
        """Mean traded value per bar of each asset: symbol -> mean(close * volume).

        Units: quote currency per bar (USDT per hour for hourly crypto). Used to pick the
        dominant cluster when no BTC symbol is present.

        Returns:
            float64 Series indexed by sorted symbol, named ``"dollar_volume"``; ``None`` when
            the panel has no ``volume`` column (e.g. close-only equities).
        """
        if "volume" not in self.columns:
            return None
        values = {
            s: float(np.mean(f["close"].to_numpy() * f["volume"].to_numpy())) if len(f) else np.nan
            for s, f in self.frames.items()
        }
        series = pd.Series(values, dtype="float64", name="dollar_volume")
        return series.sort_index()

    def __repr__(self) -> str:
        n_bars = sum(len(f) for f in self.frames.values())
        return (
            f"Panel({len(self.frames)} symbols, {n_bars} bars, bar={self.bar}, "
            f"columns={self.columns}, dropped_columns={self.dropped_columns})"
        )


def union_timeline(panel: Panel) -> pd.DatetimeIndex:
    """Sorted distinct timestamps of every asset (the timeline the folds are cut on), UTC, in the assets' time unit
    when they share one (else nanoseconds)."""
    frames = list(panel.frames.values())
    values = np.unique(np.concatenate([f.index.as_unit("ns").asi8 for f in frames]))
    units = {getattr(f.index, "unit", "ns") for f in frames}
    out = pd.DatetimeIndex(values.astype("datetime64[ns]")).tz_localize("UTC")
    return out.as_unit(units.pop()) if len(units) == 1 else out
