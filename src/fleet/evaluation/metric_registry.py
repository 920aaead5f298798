"""The metric registry: every figure of the results files, what it means, its unit, how people read it and where.

One :class:`Metric` per figure: its name (the CSV column), a one-sentence definition, its unit, its
:class:`Format` (scale, decimals, sign, suffix: the console and the HTML report print it alike), whether higher
is better, and where people see it (``console``, ``report``). A figure with a bootstrap standard error has a
``<name>_se`` column too, registered here from its figure. The results tables, the policy comparison, the
forced-entry report and the expert tables take their columns from here, the console and the report their
formats, titles and order; :data:`LABELS` names the columns that label rows (asset, cluster, fold, ...).

The column order of each results file is part of the file format, so it is kept in :data:`RESULTS_LAYOUT`,
:data:`POLICY_LAYOUT` and :data:`FORCED_LAYOUT` (names of this registry, checked on import); the order people
read figures in is the registry's own order (:func:`shown`). Definitions follow docs/validation.md "Metrics".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["FORCED_LAYOUT", "Format", "LABELS", "METRICS", "Metric", "POLICY_LAYOUT", "RESULTS_LAYOUT", "SORT_BY",
           "cell", "human", "people_order", "results_columns", "se_columns", "shown", "text"]

#: What is printed for a missing figure (NaN: e.g. a Sharpe ratio of a hold-out too short to annualise).
MISSING = "–"


@dataclass(frozen=True)
class Format:
    """How people read a figure: ``value * scale`` to ``decimals`` places, ``+`` on positive values when
    ``signed``, then ``suffix``; a ``loss`` (a drawdown, stored >= 0) is printed negative. Thousands are
    separated and millions or more get an ``M`` / ``B`` suffix (:func:`human`): never an exponent."""

    scale: float = 1.0
    decimals: int = 3
    signed: bool = False
    suffix: str = ""
    loss: bool = False

    def number(self, value: float) -> str:
        """The figure ``value`` (in its stored unit) as text, without its standard error."""
        v = -value * self.scale if self.loss else value * self.scale
        return human(v, self.decimals, signed=self.signed or self.loss) + self.suffix

    def with_se(self, value: float, se: float) -> str:
        """``value ± se``, the standard error to the figure's own decimals and scale (``+0.070 ± 0.018``)."""
        v = -value * self.scale if self.loss else value * self.scale
        return (f"{human(v, self.decimals, signed=self.signed or self.loss)} ± "
                f"{human(abs(se * self.scale), self.decimals)}{self.suffix}")


#: A probability-like score (AUC, precision): 0.540.
SCORE = Format(decimals=3)
#: A correlation: +0.070.
CORR = Format(decimals=3, signed=True)
#: A ratio read to two places (Sharpe, ICIR, t statistic): +1.25.
RATIO = Format(decimals=2, signed=True)
#: A simple return in percent with its sign: +29.4%.
PERCENT = Format(scale=100.0, decimals=1, signed=True, suffix="%")
#: A loss stored as a positive fraction, shown negative: a max drawdown of 0.176 reads -17.6%.
LOSS = Format(scale=100.0, decimals=1, suffix="%", loss=True)
#: A share of capital or of rows in percent: 28%.
SHARE = Format(scale=100.0, decimals=0, suffix="%")
#: A share read to one place: 44.5%.
SHARE1 = Format(scale=100.0, decimals=1, suffix="%")
#: A return in basis points with its sign: +14.6 bps.
BPS = Format(scale=1e4, decimals=1, signed=True, suffix=" bps")
#: A count: 12,345.
COUNT = Format(decimals=0)
#: An amount read to one place (round trips): 890.2.
AMOUNT = Format(decimals=1)
#: A weight in [0, 1]: 0.40.
WEIGHT = Format(decimals=2)


@dataclass(frozen=True)
class Metric:
    """One figure of the results files.

    Attributes:
        name: the CSV column. definition: one sentence. unit: the stored unit (the CSV holds the stored value).
        fmt: how the console and the report print it. higher_is_better: True / False, None for a descriptive
            figure (a count, an exposure). shown: where people see it besides the CSV (``console``, ``report``).
        se: the figure has a bootstrap standard error column ``<name>_se``.
    """

    name: str
    definition: str
    unit: str
    fmt: Format
    higher_is_better: bool | None = None
    shown: frozenset[str] = frozenset()
    se: bool = False

    def text(self, value, se=None) -> str:
        """The figure for people: :data:`MISSING` when absent, ``value ± se`` when ``se`` is finite."""
        if not _finite(value):
            return MISSING
        return self.fmt.with_se(float(value), float(se)) if _finite(se) else self.fmt.number(float(value))

    def tone(self, value) -> str:
        """``pos`` / ``neg`` for a signed figure's sign (a loss is ``neg`` when there is one), else ``""``."""
        if not _finite(value) or not (self.fmt.signed or self.fmt.loss):
            return ""
        v = -float(value) if self.fmt.loss else float(value)
        return "pos" if v > 0 else "neg" if v < 0 else ""


_BOTH = frozenset({"console", "report"})
_REPORT = frozenset({"report"})
_SIMPLE = "simple return (0.10 = +10 %)"


def _figures() -> tuple[Metric, ...]:
    """The registry's figures in the order people read them (console and report)."""
    return (*_signal_figures(), *_forced_entry_figures(), *_expert_and_matched_figures(), *_book_figures())


def _signal_figures() -> tuple[Metric, ...]:
    """The figures of a group's predictions and its marked-to-market curve (results*.csv)."""
    m = Metric
    return (
        m("auc", "ROC AUC of p_up for the up label over the group's rows pooled (Mann-Whitney).",
          "probability (0.5: no skill)", SCORE, True, _BOTH, se=True),
        m("auc_per_asset", "Mean of each asset's ROC AUC within each fold: timing alone, no cross-sectional level.",
          "probability (0.5: no skill)", SCORE, True, _BOTH, se=True),
        m("rank_ic", "Spearman correlation of p_up with the forward log return over the group's rows.",
          "correlation", CORR, True, _BOTH, se=True),
        m("icir", "Mean / std (ddof=1) of the per-fold IC; empty with fewer than five folds.", "ratio", RATIO,
          True, _BOTH),
        m("sharpe_net", "Sharpe ratio of the marked-to-market curve net of costs: mean / std of the per-bar simple "
          "return x sqrt(bars per year), against cash.", "annualised ratio", RATIO, True, _BOTH, se=True),
        m("sharpe", "Sharpe ratio of the marked-to-market curve before costs.", "annualised ratio", RATIO, True,
          _REPORT),
        m("ann_return_net", "Compounded growth of the net curve per year, minus 1.", _SIMPLE, PERCENT, True, _BOTH),
        m("max_dd_net", "Largest fall of the net equity from its running peak (1 at ruin).", "fraction lost",
          LOSS, False, _BOTH),
        m("expectancy", "Net P&L of the curve per round trip: the net P&L summed over the group's asset-bars / "
          "round_trips.", "simple return of the capital traded", BPS, True, _BOTH),
        m("round_trips", "The book's total turnover / 2 (one round trip buys and sells the whole capital once).",
          "round trips", AMOUNT, None, _BOTH),
        m("exposure", "Mean fraction of capital held by the book.", "fraction of capital", SHARE, None, _BOTH),
        m("ic", "Pearson correlation of p_up with the forward log return over the group's rows.", "correlation",
          CORR, True, _REPORT, se=True),
        m("precision", "Share of the signalled bars whose forward return is > 0.", "fraction", SCORE, True, _REPORT),
        m("recall", "Share of the up bars that were signalled.", "fraction", SCORE, None, _REPORT),
        m("signals", "Bars with an entry signal: a tranche opened by the fixed rule, a position opened or flipped by "
          "a tuned policy.", "bars", COUNT, None, _REPORT),
        m("folds", "Walk-forward folds with rows in the group.", "folds", COUNT, None, _REPORT),
        m("n", "Prediction rows in the group.", "rows", COUNT, None, _REPORT),
        m("ann_return", "Compounded growth of the curve before costs per year, minus 1.", _SIMPLE, PERCENT, True),
        m("max_dd", "Largest fall of the equity before costs from its running peak.", "fraction lost", LOSS, False),
        m("turnover", "Mean |change of exposure| per bar, the closing of what is open at a segment's end included.",
          "fraction of capital per bar", SHARE1, None),
    )


def _forced_entry_figures() -> tuple[Metric, ...]:
    """The figures of the forced-entry report (forced_entry.csv)."""
    m = Metric
    return (
        m("days", "UTC days with predictions.", "days", COUNT, None, _BOTH),
        m("forced_days", "Days with a forced trade (at most one a day).", "days", COUNT, None, _BOTH),
        m("natural_trades", "Trades opened by the threshold rule.", "trades", COUNT, None, _BOTH),
        m("forced_trades", "Trades opened by forced daily entry.", "trades", COUNT, None, _BOTH),
        m("natural_mean_return", "Mean gross forward log return per natural trade.", "log return", BPS, True, _BOTH),
        m("forced_mean_return", "Mean gross forward log return per forced trade.", "log return", BPS, True, _BOTH),
        m("natural_win_rate", "Share of natural trades with a forward return > 0.", "fraction", SHARE1, True, _BOTH),
        m("forced_win_rate", "Share of forced trades with a forward return > 0.", "fraction", SHARE1, True, _BOTH),
        m("delta", "forced_mean_return - natural_mean_return.", "log return", BPS, True, _BOTH),
        m("delta_t", "Welch's t statistic of delta (NaN with fewer than two trades on a side).", "t statistic",
          RATIO, None, _BOTH),
    )


def _expert_and_matched_figures() -> tuple[Metric, ...]:
    """The expert telemetry (expert_auc.csv, expert_weights.csv) and the exposure-matched benchmark of each
    asset's book (results_per_asset.csv)."""
    m = Metric
    return (
        m("mean_weight", "Mean gate weight of the expert over the group's rows (a group's weights sum to 1).",
          "weight", WEIGHT, None, _BOTH),
        m("fallback_share", "Share of the group's rows predicted by units whose guard replaced the gate by their best "
          "single expert.", "fraction of rows", SHARE, None),
        m("sharpe_net_matched", "Net Sharpe ratio of a constant position at the book's mean exposure on the same "
          "bars.", "annualised ratio", RATIO, None, _REPORT),
        m("timing_sharpe", "sharpe_net - sharpe_net_matched: what the book's timing adds to holding its mean "
          "exposure.", "annualised ratio", RATIO, True, _REPORT),
        m("timing_sharpe_se", "Standard error of timing_sharpe from a stationary block bootstrap over timestamps "
          "(both curves scored on the same draws).", "annualised ratio", RATIO),
    )


def _book_figures() -> tuple[Metric, ...]:
    """The figures of the fleet books (:mod:`fleet.evaluation.fleet_book`), in the order people read them: the fleet
    as one book (results_book.csv; the cs_* figures also on results_per_fold.csv's ALL rows)."""
    m = Metric
    ic = [(f"cs_{kind}", f"{name} correlation of p_up with the h-bar forward log return across the assets of each "
           "timestamp, averaged over the timestamps (Qlib's IC).") for kind, name in
          (("ic", "Pearson"), ("rank_ic", "Spearman"))]
    out = []
    for name, definition in ic:
        out += [m(name, definition, "correlation", CORR, True, _REPORT),
                m(f"{name}_std", f"Standard deviation over the timestamps of the per-timestamp {name}.", "correlation",
                  CORR, None),
                m(f"{name[:-2]}icir", f"Mean / std of the per-timestamp {name} (its information ratio).", "ratio",
                  RATIO, True),
                m(f"{name}_t", f"t statistic of the mean {name} with a Newey-West (HAC) standard error.",
                  "t statistic", RATIO, None, _REPORT)]
    out += [m(f"group_q{q}", f"Mean h-bar forward log return of the assets in p_up quintile {q} (1: lowest), "
              "per timestamp, averaged (Qlib's group return).", "log return", BPS, None) for q in range(1, 6)]
    return (
        *out,
        m("bars", "Timestamps of the book.", "bars", COUNT, None),
        m("k", "Assets the top-k dropout book holds.", "assets", COUNT, None, _REPORT),
        m("n_drop", "Held assets the top-k book sells (and replaces) at most per rebalance.", "assets", COUNT, None,
          _REPORT),
        m("sharpe_net_t", "t statistic of the book's mean net per-bar return (Newey-West).", "t statistic", RATIO,
          None, _REPORT),
        m("excess_ann_return", "Sum of the top-k book's per-bar net excess over the equal-weight fleet, per year.",
          "log-like sum of simple returns", PERCENT, True, _REPORT),
        m("information_ratio", "Annualised mean / std of the top-k book's per-bar excess over the fleet.",
          "annualised ratio", RATIO, True, _REPORT),
        m("excess_max_dd", "Largest fall of the summed excess from its running peak.", "fraction lost", LOSS, False,
          _REPORT),
        m("excess_t", "t statistic of the mean per-bar excess (Newey-West).", "t statistic", RATIO, None, _REPORT),
        m("beta", "Regression slope of the book's per-bar net return on the equal-weight fleet's.", "ratio", RATIO,
          None, _REPORT),
    )


def _registry() -> dict[str, Metric]:
    figures = _figures()
    out = {f.name: f for f in figures}
    for f in figures:
        if f.se:
            out[f"{f.name}_se"] = Metric(f"{f.name}_se", f"Standard error of {f.name} from a stationary block "
                                         "bootstrap over timestamps (NaN without draws).", f.unit, f.fmt)
    return out


#: name -> Metric, in the order people read them; ``<name>_se`` entries follow the figures.
METRICS: dict[str, Metric] = _registry()

#: Columns that label rows or the fields of a long table, not figures.
LABELS: dict[str, str] = {
    "symbol": "The asset's symbol; ALL: the equal-weight portfolio of the group's assets.",
    "cluster": "Cluster id (the per-asset table: the last fold's clustering).",
    "dominant": "The dominant cluster (clusters.json says why it was chosen).",
    "assets": "A cluster's members; SYM(k/n): in it in k of the n folds its rows come from.",
    "fold": "Walk-forward fold.",
    "policy": "fixed (the threshold rule) or tuned (the units' own policies).",
    "advice": "'disable forced entry' when forced trades do worse beyond the advice's bounds, else empty.",
    "level": "fleet, cluster or asset.",
    "name": "The group: all, a cluster id or a symbol.",
    "expert": "An expert's name, ensemble (the gate's mixture) or base_rate.",
    "metric": "A metric's name (this registry).",
    "mean": "Mean of the metric over the runs.",
    "std": "Sample standard deviation (ddof=1) of the metric over the runs.",
    "runs": "Runs that had the row.",
    "book": "A fleet book (results_book.csv): score (the cross-sectional IC rows), topk, long_short or benchmark.",
}

#: Figures of the per-asset and per-cluster results files in file order (after their label columns); the per-fold
#: and hold-out files leave ``folds`` out. The standard errors come after ``turnover`` in this order.
RESULTS_LAYOUT: tuple[str, ...] = (
    "precision", "recall", "auc", "auc_per_asset", "expectancy", "signals", "round_trips", "folds", "ic", "rank_ic",
    "icir", "sharpe", "sharpe_net", "ann_return", "ann_return_net", "max_dd", "max_dd_net", "exposure", "turnover")
RESULTS_LAYOUT = (*RESULTS_LAYOUT, *(f"{c}_se" for c in RESULTS_LAYOUT if METRICS[c].se), "n")
#: Figures of policy_comparison.csv in file order (after asset, policy).
POLICY_LAYOUT: tuple[str, ...] = ("signals", "round_trips", "turnover", "exposure", "expectancy", "sharpe",
                                  "sharpe_net", "sharpe_net_se", "ann_return_net", "max_dd_net")
#: Figures of forced_entry.csv in file order (between asset and advice).
FORCED_LAYOUT: tuple[str, ...] = ("days", "forced_days", "natural_trades", "forced_trades", "natural_mean_return",
                                  "forced_mean_return", "natural_win_rate", "forced_win_rate", "delta", "delta_t")
#: Tables for people are sorted by this figure, best first.
SORT_BY = "sharpe_net"

_unknown = [c for c in (*RESULTS_LAYOUT, *POLICY_LAYOUT, *FORCED_LAYOUT) if c not in METRICS]
if _unknown:  # a layout may only name registered figures
    raise ImportError(f"metric_registry: layouts name unregistered metric(s) {_unknown}")


def results_columns(*, folds: bool = True) -> list[str]:
    """The figures of a results table in file order (:data:`RESULTS_LAYOUT`); ``folds=False`` for the per-fold
    and hold-out tables."""
    return [c for c in RESULTS_LAYOUT if folds or c != "folds"]


def se_columns() -> tuple[str, ...]:
    """The standard-error columns of the results tables, in file order."""
    return tuple(c for c in RESULTS_LAYOUT if c.endswith("_se"))


def shown(where: str) -> list[str]:
    """The figures shown on ``where`` (``console`` or ``report``), in the registry's order."""
    if where not in ("console", "report"):
        raise ValueError(f"where={where!r}: expected 'console' or 'report'")
    return [name for name, m in METRICS.items() if where in m.shown]


def _finite(value) -> bool:
    if value is None or isinstance(value, (str, bool, np.bool_)):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def human(value: float, decimals: int, *, signed: bool = False) -> str:
    """A number for people: ``decimals`` places with thousands separated (``12,345.6``), ``M`` / ``B`` for
    millions / billions (``203.4M``), never an exponent; ``+`` on positive values when ``signed``; -0 prints 0."""
    v = float(value)
    if round(v, decimals) == 0:  # no "-0.0" and no "+0.0"
        v = 0.0
    sign = "+" if signed and v != 0 else ""
    for size, suffix in ((1e9, "B"), (1e6, "M")):
        if abs(v) >= size:
            return f"{v / size:{sign},.{max(decimals, 1)}f}{suffix}"
    return f"{v:{sign},.{decimals}f}"


def _plain(value) -> str:
    """A number outside the registry (a label or another table's figure): an integer with separators, else four
    significant digits."""
    v = float(value)
    if v.is_integer():
        return f"{int(v):,}"
    return human(v, min(6, max(0, 3 - math.floor(math.log10(abs(v))))))


def cell(column: str, value, se=None) -> tuple[str, str]:
    """(text, css class) of one table cell, for the console and the report alike.

    A registered figure is printed with its :class:`Format` (and `` ± se`` when ``se`` is finite), its class
    ``pos`` / ``neg`` by sign; a missing figure is :data:`MISSING` (class ``na``); a boolean is a mark (``●``); text
    stays text (class ``text``); any other number is an integer with separators or four significant digits.
    """
    if isinstance(value, (bool, np.bool_)):
        return ("●" if value else "", "mark")
    if isinstance(value, str):
        return (value, "text")
    if not _finite(value):
        return ("", "text") if column in ("advice", "assets") else (MISSING, "na")
    metric = METRICS.get(column)
    if metric is None:
        return (_plain(value), "")
    return (metric.text(value, se), metric.tone(value))


def text(column: str, value, se=None) -> str:
    """The text of :func:`cell`."""
    return cell(column, value, se)[0]


def people_order(table):
    """Rows as people read them (console and report): ``symbol = "ALL"`` rows first, then by :data:`SORT_BY`, best
    first (missing last); a table without that column keeps its order. ``table``: a results frame; returns a
    reordered copy."""
    if SORT_BY not in table.columns:
        return table
    ranked = table.sort_values(SORT_BY, ascending=False, na_position="last", kind="stable")
    if "symbol" not in ranked.columns:
        return ranked
    return ranked.iloc[np.argsort((ranked["symbol"].astype(str) != "ALL").to_numpy(), kind="stable")]

