"""A synthetic multi-asset market with known answers: planted clusters, factor and signal.

It is the default data of ``fleet train`` and the ground truth of the tests: clustering
should recover ``clusters``, the market factor should track ``factor``, and a model should
find at most the weak planted edge (and none when ``signal_strength=0``). A model that does
much better on it has look-ahead somewhere.

Generator (all hourly log-returns):
  * common market factor ``f_t``: GARCH(1,1) (Bollerslev 1986),
    ``sigma2_t = omega + alpha * eps_{t-1}^2 + beta * sigma2_{t-1}`` with alpha=0.08,
    beta=0.90 and omega set for an unconditional hourly volatility of 0.6 %, driven by
    Student-t(4) innovations scaled to unit variance: volatility clustering and fat tails,
    the two stylised facts of Cont (2001), "Empirical properties of asset returns".
  * dominant cluster 0: ``u_i = f_t + e_i``, idiosyncratic noise ``e_i ~ N(0, (0.3 * 0.6 %)^2)``;
  * follower cluster c > 0: ``u_i = beta_i * f_t + g_{c,t} + e_i`` with its own cluster factor
    ``g_c`` (an independent process of the same kind, 1.25x the market factor's volatility),
    ``beta_i ~ U(0.6, 1.4)`` and ``e_i ~ N(0, (0.4 * 0.6 %)^2)``. Within-cluster return
    correlations are ~0.85-0.95, across clusters ~0.2-0.7, so Ward clustering on 1 - |corr|
    recovers the clusters;
  * planted signal: AR(1) momentum applied recursively, ``r_{i,t} = u_{i,t} + s * r_{i,t-1}``
    (``scipy.signal.lfilter``), so the lag-1 autocorrelation of every asset is ``s``
    (Hamilton, Time Series Analysis, 1994, ch. 3.4) and the sign of the last return
    predicts the next one with probability about ``1/2 + arcsin(s)/pi`` (Gaussian orthant
    probability): ~52.5 % for s = 0.08. s = 0 gives no predictability at all.
  * bars: ``close = 100 * exp(cumsum r)``, ``open`` = previous close (100 for the first bar),
    ``high = max(open, close) * exp(|n|)``, ``low = min(open, close) * exp(-|n|)`` with
    ``n ~ N(0, (0.5 * asset vol)^2)``; traded value (close * volume) is log-normal, larger
    when ``|r|`` is large relative to the asset's own volatility, and ~10x larger for the
    dominant cluster, which therefore has the highest dollar volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fleet.data.panel import CANONICAL_COLUMNS, Panel
from fleet.errors import ConfigError

HOURLY_VOL = 0.006  # unconditional hourly volatility of every factor (log-return units)
GARCH_ALPHA = 0.08
GARCH_BETA = 0.90
STUDENT_DF = 4
DOMINANT_IDIO = 0.3  # idiosyncratic vol of cluster 0, as a multiple of HOURLY_VOL
FOLLOWER_IDIO = 0.4  # idiosyncratic vol of follower clusters, as a multiple of HOURLY_VOL
# Cluster factors move a bit more than the market factor, so that even a beta-1.4 follower
# correlates more with its own cluster than with the market.
CLUSTER_VOL = 1.25  # cluster-factor vol, as a multiple of HOURLY_VOL
BETA_RANGE = (0.6, 1.4)
WICK_SCALE = 0.5  # high/low wick size, as a multiple of the asset's return std
DOMINANT_DOLLAR_VOLUME = 5e7  # typical traded value per hour, quote currency
FOLLOWER_DOLLAR_VOLUME = 5e6
START_PRICE = 100.0


@dataclass(frozen=True, eq=False)
class SyntheticMarket:
    """A generated market and the answers planted in it.

    Attributes:
        panel: hourly 24/7 OHLCV bars, UTC, symbols ``C{c}S{k}``, sources ``"synthetic"``,
            bar 1h; shape (days * 24, 5) per asset.
        clusters: planted cluster of each symbol; cluster 0 is the dominant one.
        factor: planted common market factor as it enters every asset's return (the
            GARCH factor passed through the same AR(1) filter as the returns), hourly
            log-return units, index = the panel's timestamps, name ``"market_factor"``.
            Cluster-0 returns are ``factor + filtered noise``; follower returns load on it
            with their beta.
        signal_strength: the AR(1) coefficient s planted in every asset's returns.
        description: one paragraph, printed by the CLI when it runs on synthetic data.
    """

    panel: Panel
    clusters: dict[str, int]
    factor: pd.Series
    signal_strength: float
    description: str


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name}={value!r} must be an integer >= {minimum}")
    return int(value)


def _garch_t(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """k independent GARCH(1,1) paths with unit-variance Student-t shocks, shape (n, k)."""
    z = rng.standard_t(STUDENT_DF, size=(n, k)) / math.sqrt(STUDENT_DF / (STUDENT_DF - 2))
    var0 = HOURLY_VOL**2
    omega = var0 * (1.0 - GARCH_ALPHA - GARCH_BETA)
    eps = np.empty((n, k))
    var = np.full(k, var0)
    # The variance recursion is nonlinear in the shocks, so it cannot be vectorised over
    # time; it is vectorised over the k paths instead (~0.1 s for two years of hours).
    for t in range(n):
        e = np.sqrt(var) * z[t]
        eps[t] = e
        var = omega + GARCH_ALPHA * e * e + GARCH_BETA * var
    return eps


def _check_signal(signal_strength) -> float:
    """The AR(1) coefficient as a float in (-1, 1); ConfigError otherwise."""
    if isinstance(signal_strength, bool) or not isinstance(signal_strength, (int, float, np.number)):
        raise ConfigError(f"signal_strength={signal_strength!r} must be a number in (-1, 1)")
    s = float(signal_strength)
    if not -1.0 < s < 1.0:
        raise ConfigError(
            f"signal_strength={s} must be in (-1, 1): an AR(1) coefficient of 1 or more explodes"
        )
    return s


def _utc_start(start) -> pd.Timestamp:
    """``start`` as a UTC Timestamp (naive read as UTC); ConfigError when it is not a timestamp."""
    try:
        start_ts = pd.Timestamp(start)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"start={start!r} is not a timestamp (e.g. '2022-01-01'): {exc}") from None
    return start_ts.tz_localize("UTC") if start_ts.tz is None else start_ts.tz_convert("UTC")


def _bars(r: np.ndarray, *, dominant: bool, rng: np.random.Generator, index: pd.DatetimeIndex) -> pd.DataFrame:
    """OHLCV bars (n, 5) of one asset from its hourly log returns ``r`` (n,): close from ``START_PRICE``,
    open = previous close, wicks and dollar volume drawn from ``rng``."""
    n = len(r)
    close = START_PRICE * np.exp(np.cumsum(r))
    open_ = np.concatenate(([START_PRICE], close[:-1]))
    vol = float(np.std(r))
    wick_up = np.exp(np.abs(rng.normal(0.0, WICK_SCALE * vol, n)))
    wick_down = np.exp(-np.abs(rng.normal(0.0, WICK_SCALE * vol, n)))
    high = np.maximum(open_, close) * wick_up
    low = np.minimum(open_, close) * wick_down
    base = DOMINANT_DOLLAR_VOLUME if dominant else FOLLOWER_DOLLAR_VOLUME
    base *= math.exp(rng.uniform(-0.3, 0.3))
    # Busy hours trade more: log traded value rises with the size of the move (capped so a
    # t(4) outlier does not create an absurd spike).
    activity = np.minimum(np.abs(r) / vol, 10.0)
    dollar_volume = base * np.exp(rng.normal(0.0, 0.4, n) + 0.3 * activity)
    volume = dollar_volume / close
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume},
        index=index,
    )[list(CANONICAL_COLUMNS)]


def _hourly_index(start_ts: pd.Timestamp, n: int) -> pd.DatetimeIndex:
    """``n`` hourly UTC timestamps (microsecond unit) from ``start_ts``, named ``timestamp``."""
    index = pd.date_range(start_ts, periods=n, freq="h", name="timestamp").as_unit("us")
    # No freq attribute: loaded frames have none, and the two kinds must compare equal.
    return pd.DatetimeIndex(index, freq=None)


def _asset_shocks(rng: np.random.Generator, shocks: np.ndarray, per_cluster: int) -> tuple[list, dict, list]:
    """Each asset's unfiltered hourly log-return shocks from the factor shocks ``shocks`` (n, n_clusters)
    (column 0 the market, column c > 0 cluster c's factor): cluster 0 (dominant) is the market plus a
    small idiosyncratic term, the followers beta * market + the cluster factor + a larger one.

    Returns ``(symbols, clusters, raw)``: the symbols ``C<c>S<k>`` in cluster order, symbol -> cluster,
    and one (n,) array per symbol. Draws from ``rng`` in symbol order."""
    n, n_clusters = shocks.shape
    market = shocks[:, 0]
    symbols, clusters, raw = [], {}, []
    for c in range(n_clusters):
        for k in range(per_cluster):
            symbol = f"C{c}S{k}"
            if c == 0:
                u = market + rng.normal(0.0, DOMINANT_IDIO * HOURLY_VOL, n)
            else:
                beta = rng.uniform(*BETA_RANGE)
                idio = rng.normal(0.0, FOLLOWER_IDIO * HOURLY_VOL, n)
                u = beta * market + CLUSTER_VOL * shocks[:, c] + idio
            symbols.append(symbol)
            clusters[symbol] = c
            raw.append(u)
    return symbols, clusters, raw


def _panel(returns: np.ndarray, symbols: list, clusters: dict, *, rng: np.random.Generator,
           index: pd.DatetimeIndex, sink) -> Panel:
    """The synthetic :class:`Panel`: OHLCV bars of each symbol from its column of ``returns`` (n, assets),
    passed through ``sink(symbol, frame)`` when given (see :func:`synthetic_market`)."""
    keep = sink if sink is not None else (lambda symbol, frame: frame)
    frames = {symbol: keep(symbol, _bars(returns[:, j], dominant=clusters[symbol] == 0, rng=rng, index=index))
              for j, symbol in enumerate(symbols)}  # in order: the draws of rng follow the symbols
    held = tuple(next(iter(frames.values())).columns)
    return Panel(
        frames=frames,
        sources={sym: "synthetic" for sym in symbols},
        columns=CANONICAL_COLUMNS,
        bar=pd.Timedelta(hours=1),
        frame_columns=None if held == CANONICAL_COLUMNS else held,
    )


def synthetic_market(
    *,
    n_clusters: int = 3,
    assets_per_cluster: int = 3,
    days: int = 730,
    seed: int = 0,
    signal_strength: float = 0.08,
    start="2022-01-01",
    sink=None,
) -> SyntheticMarket:
    """Generate a market with planted clusters, a GARCH market factor and a weak AR(1) edge.

    The generator and its sources are described in the module docstring. Deterministic for
    a given ``seed`` (one ``np.random.default_rng(seed)`` draws everything in a fixed order).

    Args:
        n_clusters: planted clusters (cluster 0 dominant, the others followers), >= 1.
        assets_per_cluster: assets in each cluster, >= 1.
        days: length in days of hourly 24/7 bars (days * 24 bars), >= 1.
        seed: random seed, integer >= 0.
        signal_strength: AR(1) coefficient s of the hourly log returns, in (-1, 1);
            0 = pure noise (no predictability), default 0.08 = weak but learnable.
        start: first bar's timestamp (str or Timestamp; naive is read as UTC).
        sink: None, or ``sink(symbol, frame) -> frame`` called with each asset's bars as soon as they
            are generated; the panel keeps what it returns (the bar cache writes the bars and returns
            their close and volume, :func:`fleet.data.stage.stage_synthetic`, so the whole market's bars
            are never held at once). The values drawn do not depend on it.

    Returns:
        A :class:`SyntheticMarket` (panel of n_clusters * assets_per_cluster assets).

    Raises:
        ConfigError: a parameter is out of range (names it and the valid range).
    """
    n_clusters = _check_int("n_clusters", n_clusters, 1)
    per_cluster = _check_int("assets_per_cluster", assets_per_cluster, 1)
    days = _check_int("days", days, 1)
    seed = _check_int("seed", seed, 0)
    s = _check_signal(signal_strength)
    start_ts = _utc_start(start)

    n = days * 24
    rng = np.random.default_rng(seed)
    index = _hourly_index(start_ts, n)
    shocks = _garch_t(rng, n, n_clusters)  # column 0: market factor, c > 0: cluster factors
    market = shocks[:, 0]
    symbols, clusters, raw = _asset_shocks(rng, shocks, per_cluster)
    from scipy.signal import lfilter  # here, not at import: scipy.signal costs most of `import fleet.data`

    # Same filter for every asset: correlations between assets are unchanged by it.
    returns = lfilter([1.0], [1.0, -s], np.column_stack(raw), axis=0)
    factor = lfilter([1.0], [1.0, -s], market)
    panel = _panel(returns, symbols, clusters, rng=rng, index=index, sink=sink)
    return SyntheticMarket(
        panel=panel,
        clusters=clusters,
        factor=pd.Series(factor, index=index, name="market_factor"),
        signal_strength=s,
        description=_describe(n_clusters, per_cluster, days, seed, s, index[0]),
    )


def sign_hit_rate(s: float) -> float:
    """Share of bars whose return has the sign of the previous one under the planted AR(1) coefficient ``s``
    (Gaussian innovations: P(sign agrees) = 1/2 + arcsin(rho) / pi, Sheppard's formula for the orthant
    probability of a bivariate normal)."""
    return 0.5 + math.asin(s) / math.pi


def _describe(n_clusters: int, per_cluster: int, days: int, seed: int, s: float, start) -> str:
    hit = sign_hit_rate(s)
    if s == 0:
        edge = (
            "no planted signal (signal_strength=0): returns are unpredictable, so any edge a "
            "model reports is an error"
        )
    else:
        edge = (
            f"a weak planted signal: AR(1) momentum with coefficient {s:g} in every asset's hourly "
            f"returns (lag-1 autocorrelation ~{s:g}; the sign of the last return predicts the next "
            f"one about {hit:.1%} of the time), so a sound model finds a small edge and much more "
            "than that points to look-ahead"
        )
    return (
        f"Synthetic market (seed {seed}): {n_clusters * per_cluster} assets in {n_clusters} planted "
        f"clusters of {per_cluster} (symbols C<cluster>S<k>; cluster 0 is dominant and trades the "
        f"highest dollar volume), {days} days of hourly 24/7 bars from {start:%Y-%m-%d %H:%M} UTC. "
        "Returns share a market factor with GARCH(1,1) volatility (alpha 0.08, beta 0.90, ~0.6 % "
        "per hour) and fat-tailed Student-t(4) shocks; cluster 0 follows it one-for-one, follower "
        "clusters add their own cluster factor and betas of 0.6-1.4, plus idiosyncratic noise. "
        f"It carries {edge}."
    )
