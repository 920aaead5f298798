"""Cost-aware trading policies: hysteresis and an expected-return threshold, tuned on out-of-fold rows.

The fixed policy (``p_up > threshold`` on every bar, a 1/h tranche per signal held h bars) spends a
small edge on turnover. The policies here trade a full position that is held until an exit rule
fires, so a position costs one round trip however long it is held:

* **Hysteresis** (a Schmitt trigger; in trading, the "no-trade band" of Garleanu & Pedersen 2013,
  "Dynamic trading with predictable returns and transaction costs", J. Finance 68(6)): enter long
  when ``p > theta_in``, exit when ``p < theta_out`` (``theta_out <= theta_in``) once the position
  has been held ``min_hold`` bars. ``sides="both"`` mirrors the rule: short when ``p < 1 - theta_in``,
  cover when ``p > 1 - theta_out``; a position flips when the other side's entry fires.
* **Expected-return threshold**: trade when the expected log return over the label horizon,
  ``(2 q - 1) * m`` with ``q`` the calibrated P(up) and ``m`` the typical |h-bar move| (mean absolute
  forward return of the rows the policy was fitted on; the edge of a bet that wins or loses ``m``
  with probability ``q``), clears ``k`` x the round-trip cost ``2 c``; exit when the expected
  return is no longer positive (``q < 1/2``). That is hysteresis on ``q`` with ``theta_in = 1/2 +
  k c / m`` and ``theta_out = 1/2``. Calibration: isotonic regression (Zadrozny & Elkan 2002) or
  Platt scaling (Platt 1999) fitted on the out-of-fold rows (``sklearn.isotonic`` /
  ``sklearn.linear_model``); the rows are already out of fold and purged, which is what
  ``CalibratedClassifierCV(cv="prefit")`` would need and cannot purge by itself. The candidates
  are scored on a cross-fitted calibration (other rows than those scored); the policy is served
  with the map fitted on all of them.

:func:`fit_policy` chooses among a grid of both kinds on the unit's inner out-of-fold predictions
(never on the test block): the candidate with the largest (timing or net) P&L of the unit's
equal-weight book per timestamp whose t is at least ``min_t``, traded only when Hansen's SPA test
over the whole grid rejects "no candidate beats staying flat" at the run's level shared among its
units; else the ``flat`` policy (never trade). :mod:`fleet.evaluation.policy_check` says why each
of these is needed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from fleet.errors import ConfigError, DataError
from fleet.evaluation.policy_check import (apply_calibration, crossfit_calibrated, fit_calibration, per_timestamp_mean,
                                          spa_test, t_stat, timestamp_codes, unit_level)
from fleet.evaluation.trading import book_pnl, exposure, segments_of

__all__ = ["KINDS", "TradingPolicy", "apply_positions", "fit_policy", "hysteresis_positions", "policy_comparison"]

KINDS = ("fixed", "hysteresis", "expected_return", "flat")
#: Quantiles of the out-of-fold P(up) (long only) or of |P(up) - 1/2| (both sides) tried as entry levels.
ENTRY_QUANTILES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
#: Exit levels: these quantiles, kept when below the entry level.
EXIT_QUANTILES = (0.3, 0.5, 0.7, 0.9)
#: Minimum holds in multiples of the label horizon (rounded, at least 1 bar).
HOLD_MULTIPLES = (0.25, 1, 4)
#: Multiples k of the round-trip cost the expected return must clear.
COST_MULTIPLES = (1.0, 2.0, 4.0)


def hysteresis_positions(p, *, theta_in: float, theta_out: float, min_hold: int, sides: str = "long",
                         segment=None) -> np.ndarray:
    """Positions of the hysteresis rule over one asset's bars, in time order.

    Args:
        p: shape (n,), the score the rule reads (P(up), or a calibrated P(up)), in time order.
        theta_in, theta_out: entry and exit levels, ``theta_out <= theta_in`` (both in [0, 1]).
        min_hold: bars a position is held at least before the exit rule may close it (>= 1); a flip to
            the other side is an exit too.
        sides: ``"long"`` or ``"both"`` (short below ``1 - theta_in``, cover above ``1 - theta_out``).
        segment: shape (n,), segment ids (:func:`fleet.evaluation.metrics.segments_of`); every segment
            starts flat (no position is carried across a gap). None: one segment.

    Returns:
        float64 array (n,) in {-1, 0, 1}: the position held over the bar (t, t+1], decided from p[t].

    Raises:
        ConfigError: levels out of order or out of [0, 1], min_hold < 1, unknown sides.
    """
    if sides not in ("long", "both"):
        raise ConfigError(f"sides={sides!r}: expected 'long' or 'both'")
    if not (0.0 <= theta_out <= theta_in <= 1.0):
        raise ConfigError(f"theta_in={theta_in}, theta_out={theta_out}: expected 0 <= theta_out <= theta_in <= 1")
    if int(min_hold) < 1:
        raise ConfigError(f"min_hold={min_hold}: expected an integer number of bars >= 1")
    p = np.asarray(p, dtype=np.float64)
    n = p.size
    seg = np.zeros(n, dtype=np.int64) if segment is None else np.asarray(segment, dtype=np.int64)
    both = sides == "both"
    long_in, long_out = (p > theta_in).tolist(), (p < theta_out).tolist()
    short_in = (p < 1.0 - theta_in).tolist() if both else [False] * n
    short_out = (p > 1.0 - theta_out).tolist() if both else [False] * n
    seg_l = seg.tolist()
    out = [0.0] * n
    pos, held, prev_seg, hold = 0, 0, None, int(min_hold)
    for t in range(n):
        if seg_l[t] != prev_seg:
            pos, held, prev_seg = 0, 0, seg_l[t]
        if pos == 0:
            pos = 1 if long_in[t] else (-1 if short_in[t] else 0)
            held = 0
        elif held >= hold:
            if pos == 1 and (long_out[t] or short_in[t]):
                pos, held = (-1 if short_in[t] else 0), 0
            elif pos == -1 and (short_out[t] or long_in[t]):
                pos, held = (1 if long_in[t] else 0), 0
        held += 1
        out[t] = float(pos)
    return np.asarray(out, dtype=np.float64)


@dataclass(frozen=True)
class TradingPolicy:
    """A fitted (or fixed) trading policy: what a unit's model is served with.

    Attributes:
        kind: ``fixed`` (``p > theta_in``: a 1/h tranche per signal, held ``horizon`` bars), ``hysteresis``,
            ``expected_return`` (hysteresis on the calibrated P(up), levels from the cost, see the module
            docstring) or ``flat`` (never trade: no candidate cleared ``min_t`` on the rows it was fitted on).
        sides: ``long`` or ``both``.
        theta_in, theta_out: entry / exit levels on the score (for ``expected_return``: on the calibrated P(up)).
        min_hold: bars a position is held at least. horizon: label horizon, bars (the fixed rule's hold).
        cost_bps: cost per side the policy was chosen with, basis points.
        calibration: ``{"method": "isotonic", "x": [...], "y": [...]}`` (piecewise-linear map of P(up)),
            ``{"method": "sigmoid", "a": ., "b": .}`` (q = 1 / (1 + exp(-(a logit(p) + b)))) or None.
        move: typical |h-bar log return| m (expected_return only). cost_multiple: k.
        fit: what the choice was based on (rows, candidates, chosen candidate's out-of-fold net P&L per bar,
            its t, turnover); empty for a fixed policy.
    """

    kind: str
    sides: str = "long"
    theta_in: float = 0.55
    theta_out: float = 0.55
    min_hold: int = 1
    horizon: int = 1
    cost_bps: float = 10.0
    calibration: dict | None = None
    move: float | None = None
    cost_multiple: float | None = None
    fit: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"policy kind={self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.sides not in ("long", "both"):
            raise ConfigError(f"policy sides={self.sides!r}: expected 'long' or 'both'")

    @classmethod
    def fixed(cls, threshold: float, *, horizon: int, sides: str = "long", cost_bps: float = 10.0) -> "TradingPolicy":
        """Today's rule: a tranche of 1/h on every bar with ``p > threshold`` (and short below 1 - threshold)."""
        return cls(kind="fixed", sides=sides, theta_in=float(threshold), theta_out=float(threshold),
                   min_hold=int(horizon), horizon=int(horizon), cost_bps=float(cost_bps))

    def calibrated(self, p) -> np.ndarray:
        """The calibrated P(up) of ``p`` (shape (n,)); ``p`` itself without a calibration."""
        return apply_calibration(self.calibration, p)

    def entry_signal(self, p) -> np.ndarray:
        """The entry decision of each bar from flat: int8 (n,), 1 long / -1 short / 0 none (what serving states)."""
        q = self.calibrated(p)
        if self.kind == "flat":
            return np.zeros(q.shape, dtype=np.int8)
        out = (q > self.theta_in).astype(np.int8)
        if self.sides == "both":
            out[q < 1.0 - self.theta_in] = -1
        return out

    def positions(self, p, segment=None, allow=None) -> np.ndarray:
        """Position (fraction of capital, signed) over each bar of one asset, in time order, shape (n,).

        Fixed: the 1/h tranche book of the signed entry signals (:func:`fleet.evaluation.metrics.exposure`);
        hysteresis / expected_return: :func:`hysteresis_positions` of the (calibrated) score; flat: zeros.
        ``allow``: bool (n,), the fixed rule's bets a meta-labelling model keeps (:mod:`fleet.models.meta`).
        """
        p = np.asarray(p, dtype=np.float64)
        if self.kind == "flat":
            return np.zeros(p.size)
        if self.kind == "fixed":
            entry = self.entry_signal(p) * (1 if allow is None else np.asarray(allow, dtype=np.int8))
            return exposure(entry, horizon=self.horizon, segment=segment)
        return hysteresis_positions(self.calibrated(p), theta_in=self.theta_in, theta_out=self.theta_out,
                                    min_hold=self.min_hold, sides=self.sides, segment=segment)

    def to_dict(self) -> dict:
        """JSON-ready dict (stored in the model artifact, stated in the HTTP response)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TradingPolicy":
        """Inverse of :meth:`to_dict`. Raises DataError on unknown keys."""
        try:
            return cls(**d)
        except TypeError as err:
            raise DataError(f"trading policy: malformed dict ({err}); "
                            "expected the keys of TradingPolicy.to_dict") from err


def _candidates(p: np.ndarray, move: float, *, horizon: int, sides: str, cost_bps: float,
                calibration: dict) -> list[TradingPolicy]:
    """The grid :func:`fit_policy` searches (hysteresis levels from quantiles of the scores)."""
    holds = sorted({max(1, int(round(m * horizon))) for m in HOLD_MULTIPLES})
    base = dict(sides=sides, horizon=horizon, cost_bps=cost_bps)
    score = np.abs(p - 0.5) if sides == "both" else p  # both sides: levels are 1/2 + a quantile of |p - 1/2|
    shift = 0.5 if sides == "both" else 0.0
    out = []
    exits = [float(np.quantile(score, qo)) for qo in EXIT_QUANTILES]
    if sides == "both":  # the exit may lie on either side of 1/2 (below: a long is kept until p < 1/2 - d)
        exits = sorted({0.5 + sign * d for d in exits for sign in (1.0, -1.0)})
    for qi in ENTRY_QUANTILES:
        t_in = float(np.quantile(score, qi)) + shift
        for t_out in exits:
            if t_out > t_in or t_out < 1.0 - t_in - 1e-12 and sides == "both":
                continue
            out += [TradingPolicy(kind="hysteresis", theta_in=t_in, theta_out=t_out, min_hold=h, **base)
                    for h in holds]
    c = cost_bps / 1e4
    if move > 0:
        for k in COST_MULTIPLES:
            t_in = 0.5 + k * c / move
            if t_in < 1.0:
                out += [TradingPolicy(kind="expected_return", theta_in=t_in, theta_out=0.5, min_hold=h,
                                      calibration=calibration, move=move, cost_multiple=k, **base) for h in holds]
    return out


def _rows_checked(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` sorted by (symbol, timestamp) after the column and finiteness checks of :func:`fit_policy`."""
    need = ("symbol", "timestamp", "p_up", "y", "forward_return", "return_1", "bar_number")
    missing = [c for c in need if c not in rows.columns]
    if missing:
        raise DataError(f"fit_policy: rows lack column(s) {missing} (found {list(rows.columns)})")
    rows = rows.sort_values(["symbol", "timestamp"], kind="mergesort")
    if not (np.isfinite(rows["p_up"].to_numpy(dtype=np.float64)).all()
            and np.isfinite(rows["return_1"].to_numpy(dtype=np.float64)).all()):
        raise DataError("fit_policy: p_up and return_1 must be finite on every out-of-fold row")
    return rows


def _score_grid(cands: list[TradingPolicy], p: np.ndarray, q: np.ndarray, r1: np.ndarray, seg: np.ndarray,
                codes: np.ndarray, n_ts: int, *, cost_bps: float, select: str) -> tuple[np.ndarray, list[dict]]:
    """Per-timestamp scored P&L of every candidate, shape (n_ts, K), and each candidate's figures.

    ``p``: the rows' P(up) (the hysteresis rules read it); ``q``: their cross-fitted calibrated P(up) (the
    expected-return rules read it instead of their own calibration, which was fitted on all rows).
    """
    scored_ts = np.empty((n_ts, len(cands)))
    move_1 = np.expm1(r1)  # the bar's simple return, in the units of the book's P&L
    info = []
    for j, cand in enumerate(cands):
        if cand.kind == "expected_return":
            x = replace(cand, calibration=None).positions(q, seg)
        else:
            x = cand.positions(p, seg)
        net = book_pnl(r1, x, cost_bps=cost_bps, segment=seg)[1]
        timing = net - float(x.mean()) * move_1  # less a constant position of the same mean exposure
        scored = timing if select == "timing" else net
        scored_ts[:, j] = per_timestamp_mean(scored, codes, n_ts)
        info.append({"net_per_bar": float(net.mean()), "timing_per_bar": float(timing.mean()),
                     "net_per_timestamp": float(per_timestamp_mean(net, codes, n_ts).mean()),
                     "scored_per_timestamp": float(scored_ts[:, j].mean()), "t": t_stat(scored_ts[:, j]),
                     "t_stacked": t_stat(scored), "turnover": float(np.abs(np.diff(np.r_[0.0, x])).mean()),
                     "exposure": float(np.abs(x).mean())})
    return scored_ts, info


def _choose(cands: list[TradingPolicy], scored_ts: np.ndarray, figures: list[dict], flat: TradingPolicy, info: dict,
            *, min_t: float, spa_alpha: float, seed: int) -> TradingPolicy:
    """The decision of :func:`fit_policy` from :func:`_score_grid`'s output; ``info`` holds select and level."""
    ok = [j for j, f in enumerate(figures)
          if f["t"] >= min_t and f["net_per_timestamp"] > 0 and f["scored_per_timestamp"] > 0]
    top = max(ok or range(len(cands)), key=lambda j: figures[j]["scored_per_timestamp"], default=None)
    if top is not None:
        info.update(figures[top], candidate=f"{cands[top].kind} in={cands[top].theta_in:.4g} "
                    f"out={cands[top].theta_out:.4g} hold={cands[top].min_hold}")
    if not ok:
        info["reason"] = (f"no candidate's {info['select']} P&L per timestamp reached t >= {min_t:g} "
                          "with a positive net")
        return replace(flat, fit=info)
    if spa_alpha < 1.0:
        level = info["level"]
        info.update(spa_test(scored_ts, level=level, seed=seed))
        if info["spa_p"] > level:
            info["reason"] = f"SPA p-value {info['spa_p']:.4g} > spa_alpha / n_units = {level:.4g}"
            return replace(flat, fit=info)
    return replace(cands[top], fit=info)


def _asset_segments(rows: pd.DataFrame) -> np.ndarray:
    """Segment id (n,) of each row (rows grouped by symbol): rows share an id while they are consecutive bars
    (``bar_number``) of one asset; a new symbol starts a new segment."""
    sym = rows["symbol"].to_numpy()
    return segments_of(rows["bar_number"].to_numpy()) + np.cumsum(np.r_[0, sym[1:] != sym[:-1]]) * 10 ** 9


def fit_policy(rows: pd.DataFrame, *, cost_bps: float, horizon: int, sides: str = "long",
               calibration: str = "isotonic", min_t: float = 2.0, select: str = "timing", spa_alpha: float = 0.05,
               n_units: int = 1, seed: int = 0) -> TradingPolicy:
    """Choose a cost-aware policy on out-of-fold predictions of the training window.

    Each candidate of the grid is scored on the P&L of the unit's equal-weight book: its per-row P&L averaged over
    the assets present at each timestamp (:func:`fleet.evaluation.policy_check.per_timestamp_mean`).
    ``select="timing"`` (default) scores its *timing* P&L: the net P&L per bar less what a constant position of
    the same mean exposure earns gross (``net[t] - mean(x) * return_1[t]``; without it a training window that
    rose picks the rule closest to buy-and-hold). ``select="net"`` scores the net P&L itself. The expected-return
    rules are scored on a cross-fitted calibration (:func:`fleet.evaluation.policy_check.crossfit_calibrated`);
    the policy served carries the map fitted on all rows.

    A candidate qualifies when the t of its per-timestamp score is >= ``min_t`` and its per-timestamp net P&L is
    positive; the qualifier with the largest mean score is chosen. It is traded only when Hansen's SPA test over
    the whole grid against staying flat (:func:`fleet.evaluation.policy_check.spa_test`) has a p-value <=
    ``spa_alpha / n_units`` (the run's level shared among its units); else the policy is ``flat``.

    Args:
        rows: (n, ...) out-of-fold rows with columns symbol, timestamp, p_up (out-of-fold P(up)), y (0/1),
            forward_return (h-bar log return), return_1 (1-bar log return of the bar after), bar_number
            (position of the bar in the asset's data; consecutive numbers = consecutive bars).
        cost_bps: cost per side, basis points. horizon: label horizon h, bars.
        sides: ``long`` or ``both``. calibration: ``isotonic`` or ``sigmoid`` (Platt).
        min_t: the t the chosen candidate's per-timestamp score must reach.
        select: ``timing`` or ``net`` (above).
        spa_alpha: the run's level for the SPA test, in (0, 1]; 1 skips the test (``min_t`` alone decides).
        n_units: training units in the run (the level is divided by it). seed: the SPA bootstrap's seed.

    Returns:
        The chosen :class:`TradingPolicy`; ``fit`` records rows, timestamps, candidates, the chosen (or, when
        flat, the best-scoring) candidate's figures (net and timing P&L per bar and per timestamp, ``t`` per
        timestamp, ``t_stacked`` over the stacked per-bar rows, turnover, exposure), the SPA p-value, its
        replications and block length, ``spa_alpha``, ``n_units``, the unit's level and, when flat, the reason.

    Raises:
        DataError: missing columns or non-finite values. ConfigError: unknown select, spa_alpha outside (0, 1],
        n_units < 1.
    """
    if select not in ("timing", "net"):
        raise ConfigError(f"policy select={select!r}: expected 'timing' or 'net'")
    level = unit_level(spa_alpha, n_units)
    rows = _rows_checked(rows)
    p = rows["p_up"].to_numpy(dtype=np.float64)
    y = rows["y"].to_numpy(dtype=np.float64)
    seg = _asset_segments(rows)
    flat = TradingPolicy(kind="flat", sides=sides, horizon=horizon, cost_bps=cost_bps)
    info = {"rows": int(len(rows)), "min_t": float(min_t), "select": select, "spa_alpha": float(spa_alpha),
            "n_units": int(n_units), "level": level}
    if len(rows) < 2 or len(np.unique(y)) < 2:
        return replace(flat, fit={**info, "reason": "too few rows / one class"})
    codes, n_ts = timestamp_codes(rows["timestamp"])
    move = float(np.nanmean(np.abs(rows["forward_return"].to_numpy(dtype=np.float64))))  # NaN: window not inside
    cands = _candidates(p, move, horizon=horizon, sides=sides, cost_bps=cost_bps,
                        calibration=fit_calibration(p, y, calibration))
    q = crossfit_calibrated(p, y, codes, n_ts, horizon=horizon, method=calibration)
    scored_ts, figures = _score_grid(cands, p, q, rows["return_1"].to_numpy(dtype=np.float64), seg, codes, n_ts,
                                     cost_bps=cost_bps, select=select)
    info.update(timestamps=n_ts, candidates=len(cands))
    return _choose(cands, scored_ts, figures, flat, info, min_t=min_t, spa_alpha=spa_alpha, seed=seed)


def apply_positions(preds: pd.DataFrame, policy: TradingPolicy | dict | None) -> pd.DataFrame:
    """Positions of ``policy`` on prediction rows (any order), per asset in time order.

    Args:
        preds: rows with symbol, timestamp, p_up, bar_number (gaps start flat), optionally ``meta_keep`` (bool:
            the bets a meta-labelling model keeps; the fixed rule only).
        policy: a :class:`TradingPolicy` or its dict; None returns ``preds`` unchanged.

    Returns:
        A copy with ``position`` (float, signed fraction of capital over the bar after the row), ``signal``
        (int8: 1 on the bars where a position is opened or flipped, i.e. a trade, else 0; for the fixed rule the
        bars that open a tranche) and ``forced_entry`` (False: forced entry is for the fixed long rule only).
    """
    if policy is None:
        return preds
    pol = policy if isinstance(policy, TradingPolicy) else TradingPolicy.from_dict(policy)
    out = preds.copy()
    position = np.zeros(len(out))
    signal = np.zeros(len(out), dtype=np.int8)
    order = out.sort_values(["symbol", "timestamp"], kind="mergesort").index
    for _, g in out.loc[order].groupby("symbol", sort=False):
        pos = out.index.get_indexer(g.index)
        seg = segments_of(g["bar_number"].to_numpy())
        allow = g["meta_keep"].to_numpy(dtype=bool) if "meta_keep" in g else None
        x = pol.positions(g["p_up"].to_numpy(), seg, allow)
        prev = np.where(np.r_[True, seg[1:] != seg[:-1]], 0.0, np.r_[0.0, x[:-1]])
        if pol.kind == "fixed":
            opened = (pol.entry_signal(g["p_up"].to_numpy()) != 0) & (True if allow is None else allow)
        else:
            opened = (x != 0) & (np.sign(x) != np.sign(prev))
        position[pos], signal[pos] = x, opened.astype(np.int8)
    out["position"], out["signal"], out["forced_entry"] = position, signal, False
    return out


def policy_comparison(predictions: pd.DataFrame, *, threshold: float, cost_bps: float, horizon: int,
                      sides: str = "long", bars_per_year: float | None = None, reps: int = 0,
                      seed: int = 0, levels: tuple[str, ...] = ("all", "asset")) -> pd.DataFrame:
    """Natural (the fixed threshold rule) and the units' own policies side by side, on the same P(up).

    Args:
        predictions: out-of-sample rows with the units' policy applied (``position``, ``signal``) and symbol,
            timestamp, fold, p_up, y, forward_return, return_1, bar_number.
        threshold, cost_bps, horizon, sides: the fixed rule (``p_up > threshold``, 1/h tranches held h bars).
        reps, seed: bootstrap draws behind ``sharpe_net_se`` (:func:`fleet.evaluation.metrics.summarise`).
        levels: "all" (the fleet's rows) and / or "asset" (each asset's); a fleet computed in pieces gives the
            same table through :func:`order_policy_rows` of the pieces.

    Returns:
        Rows (asset, policy) for every asset and ``ALL`` (the equal-weight fleet), policy ``fixed`` then
        ``tuned``, with the columns of the results tables, so both policies read alike: the metric registry's
        :data:`~fleet.evaluation.metric_registry.POLICY_LAYOUT` -- signals (bars that open a tranche or a
        position), round_trips (turnover / 2), turnover (mean |change of exposure| per bar), exposure,
        expectancy (the curve's net P&L per round trip), sharpe, sharpe_net, sharpe_net_se, ann_return_net,
        max_dd_net.
    """
    from fleet.evaluation.metric_registry import POLICY_LAYOUT
    from fleet.evaluation.metrics import summarise

    natural = apply_positions(predictions.drop(columns=["position", "signal", "meta_keep"], errors="ignore"),
                              TradingPolicy.fixed(threshold, horizon=horizon, sides=sides, cost_bps=cost_bps))
    kw = dict(threshold=threshold, cost_bps=cost_bps, horizon=horizon, bars_per_year=bars_per_year, reps=reps,
              seed=seed)
    cols = list(POLICY_LAYOUT)
    parts = []
    for name, rows in (("fixed", natural), ("tuned", predictions)):
        each = summarise(rows, "symbol", **kw) if "asset" in levels else None
        pooled = summarise(rows, [], **kw).assign(symbol="ALL") if "all" in levels else None
        parts.append(pd.concat([pooled, each], ignore_index=True)[["symbol", *cols]].assign(policy=name))
    return order_policy_rows(pd.concat(parts, ignore_index=True))


def order_policy_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`policy_comparison` in its order: ALL first, then the assets; fixed before tuned."""
    out = rows.copy()
    cols = [c for c in out.columns if c not in ("symbol", "policy")]
    out["_all"] = out["symbol"] != "ALL"
    out = out.sort_values(["_all", "symbol", "policy"], kind="stable").drop(columns="_all").reset_index(drop=True)
    return out[["symbol", "policy", *[c for c in cols if c != "_all"]]]
