"""How sure is a figure? A stationary block bootstrap over timestamps, and the weighted statistics it resamples.

Rows of a run are not independent: labels over h bars overlap (López de Prado 2018, AFML ch. 4.4), a P&L series
is autocorrelated through its positions, and the assets of one timestamp move together. The stationary bootstrap
(Politis & Romano 1994, "The stationary bootstrap", JASA 89) resamples blocks of consecutive timestamps of random
(geometric) length; every row of a drawn timestamp comes along, so the cross-asset correlation is kept. The mean
block length is Politis & White's (2004) optimal one (Patton, Politis & White 2009 correction) of a per-timestamp
series of the rows (``arch.bootstrap.optimal_block_length``), and the draws are ``arch.bootstrap.StationaryBootstrap``.

A draw is represented by how often it takes each timestamp (a count matrix), so each statistic is a *weighted*
statistic of the original rows: AUC as a weighted Mann-Whitney statistic, IC as a weighted Pearson correlation,
Sharpe ratio as a weighted mean over standard deviation. All draws of one statistic are computed at once.
The Rank IC of a draw is the weighted Pearson correlation of the original ranks (ranks are not recomputed per draw).
"""

from __future__ import annotations

import functools

import numpy as np

from fleet.errors import ConfigError, DataError

__all__ = ["TimestampBootstrap", "format_with_se", "percentile_interval", "sharpe_se_lo", "weighted_auc",
           "weighted_group_mean_auc", "weighted_mean_over_sd", "weighted_pearson", "weighted_pearsons"]


#: Default bound on the (draw, score block) cells of the AUC draws' class counts held at once. Small chunks (a few
#: MiB per array, one draw at a time for a pooled group of many rows) stay in the CPU caches through the cumulative
#: sums, and each draw's figure is the same whatever the chunk.
CHUNK_CELLS = 262_144


class TimestampBootstrap:
    """Stationary block bootstrap draws over the distinct timestamps of a set of rows.

    Args:
        stamps: shape (n,), each row's timestamp (any sortable values, e.g. int64 ns); several rows may share one.
        reps: number of draws (>= 2).
        series: shape (n,), a per-row series whose per-timestamp mean chooses the block length (e.g. the forward
            return, whose h-bar overlap sets the dependence); None, or ``block`` given: not used.
        block: mean block length in timestamps; None: ``optimal_block_length(per-timestamp mean of series)``,
            at least 1.
        seed: the draws' random generator seed.

    Attributes:
        inverse: (n,) each row's position among the sorted distinct timestamps.
        counts: (reps, T) how often each distinct timestamp is drawn; every row sums to T.
        block: the mean block length used.

    Raises:
        ConfigError: reps < 2 or block < 1. DataError: no rows, or ``series`` of another length than ``stamps``.
    """

    def __init__(self, stamps, *, reps: int = 200, series=None, block: float | None = None, seed: int = 0):
        from arch.bootstrap import optimal_block_length

        if int(reps) < 2:
            raise ConfigError(f"bootstrap reps={reps!r}: expected an integer >= 2")
        stamps = np.asarray(stamps)
        if stamps.ndim != 1 or stamps.size == 0:
            raise DataError(f"bootstrap: expected a non-empty (n,) array of timestamps, got shape {stamps.shape}")
        uniq, self.inverse = np.unique(stamps, return_inverse=True)
        n_t = uniq.size
        if block is None:
            block = 1.0
            if series is not None and n_t >= 10:
                v = np.asarray(series, dtype=np.float64)
                if v.shape != stamps.shape:
                    raise DataError(f"bootstrap: series has shape {v.shape}, expected {stamps.shape} like stamps")
                per_t = np.bincount(self.inverse, weights=v, minlength=n_t) / np.bincount(self.inverse, minlength=n_t)
                if np.ptp(per_t) > 0:
                    block = max(1.0, float(optimal_block_length(per_t)["stationary"].iloc[0]))
        if not float(block) >= 1.0:
            raise ConfigError(f"bootstrap block={block!r}: expected a mean block length >= 1 timestamp")
        self.block = float(min(block, n_t))
        self.counts = stationary_counts(n_t, self.block, int(reps), int(seed))

    def row_weights(self, rows=None) -> np.ndarray:
        """(reps, m): each draw's weight of the rows ``rows`` (positions into ``stamps``; None: all n rows)."""
        inv = self.inverse if rows is None else self.inverse[rows]
        return self.counts[:, inv]


@functools.lru_cache(maxsize=4)
def stationary_counts(n_t: int, block: float, reps: int, seed: int) -> np.ndarray:
    """How often each of ``n_t`` timestamps is drawn in each of ``reps`` stationary-bootstrap draws of mean block
    length ``block`` (``arch.bootstrap.StationaryBootstrap`` seeded with ``numpy.random.default_rng(seed)``):
    float64 (reps, n_t), every row summing to n_t; read-only.

    The draws depend on these four numbers only, not on the timestamps or the series that chose the block, so
    the figures of one set of rows scored in two places (an asset's results row and its exposure-matched
    benchmark) share one computation: the last few are kept (``functools.lru_cache``).
    """
    from arch.bootstrap import StationaryBootstrap

    bs = StationaryBootstrap(block, np.arange(n_t), seed=np.random.default_rng(seed))
    draws = [pos[0] for pos, _ in bs.bootstrap(reps)]
    flat = np.concatenate([d + k * n_t for k, d in enumerate(draws)])
    counts = np.bincount(flat, minlength=reps * n_t).reshape(reps, n_t).astype(np.float64)
    counts.setflags(write=False)
    return counts


def weighted_auc(y, score, W) -> np.ndarray:
    """ROC AUC of ``score`` for labels ``y`` under each row of weights ``W`` (a weighted Mann-Whitney statistic).

    AUC = sum over (positive i, negative j) of w_i w_j [s_i > s_j] (ties count 1/2) / (sum w_pos * sum w_neg); with
    integer weights this is ``sklearn.metrics.roc_auc_score`` on the rows repeated by their weights.

    Args:
        y: shape (n,), 0/1 labels. score: shape (n,). W: shape (reps, n) non-negative weights (or (n,)).

    Returns:
        float64 (reps,) (a float for 1-D W); NaN where a draw has no positive or no negative weight.
    """
    one = np.ndim(W) == 1
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    n = W.shape[1]
    out = _counted_auc(y, score, np.zeros(n, dtype=np.int64), W, np.arange(n), pooled=True)
    return out[0] if one else out


def weighted_group_mean_auc(y, score, groups, W) -> np.ndarray:
    """The per-asset AUC of each draw: the mean, over the groups with both classes in that draw, of
    :func:`weighted_auc` inside each group.

    Args:
        y, score: shape (n,). groups: shape (n,) integer group codes (e.g. one per (fold, asset)). W: (reps, n).

    Returns:
        float64 (reps,); NaN for a draw in which no group has both classes.
    """
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    if not np.size(groups):
        return np.full(W.shape[0], np.nan)
    return _counted_auc(y, score, groups, W, np.arange(W.shape[1]), pooled=False)


def weighted_pearson(a, b, W) -> np.ndarray:
    """Pearson correlation of ``a`` and ``b`` (both (n,)) under each row of weights ``W`` (reps, n): (reps,).

    Computed from weighted sums of the inputs centred on their unweighted means: one matrix product of ``W`` with
    the (n, 5) columns a, b, a^2, b^2, ab, so the (reps, n) weights are read once and never copied. NaN where a
    draw leaves either input without spread.
    """
    return weighted_pearsons([(a, b)], W)[0]


def weighted_pearsons(pairs, W) -> list[np.ndarray]:
    """:func:`weighted_pearson` of several pairs ``[(a, b), ...]`` (each (n,)) under the same weights ``W``
    (reps, n), from one matrix product: a list of (reps,) arrays, one per pair."""
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    return counted_pearsons(pairs, W, np.arange(W.shape[1]))


def weighted_mean_over_sd(v, W) -> np.ndarray:
    """Mean / standard deviation of ``v`` (T,) under each row of weights ``W`` (reps, T): (reps,), the per-period
    Sharpe ratio of each draw (the standard deviation with the ``n / (n - 1)`` correction of a sample of n =
    sum of weights). NaN where a draw has no spread."""
    v = np.asarray(v, dtype=np.float64)
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    tot = W.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (W @ v) / tot
        var = (W * (v[None, :] - m[:, None]) ** 2).sum(axis=1) / (tot - 1.0)
        return np.where(var > 0, m / np.sqrt(var), np.nan)


def sharpe_se_lo(sharpe_per_bar: float, n_bars: int, bars_per_year: float | None = None) -> float:
    """Standard error of a Sharpe ratio from iid returns, Lo (2002), "The statistics of Sharpe ratios", FAJ 58(4),
    eq. 9: ``sqrt((1 + SR^2 / 2) / T)`` for the per-bar ratio SR over T bars, times ``sqrt(bars_per_year)`` for an
    annualised one. NaN with fewer than 2 bars or a NaN ratio."""
    if n_bars < 2 or not np.isfinite(sharpe_per_bar):
        return float("nan")
    se = float(np.sqrt((1.0 + 0.5 * sharpe_per_bar ** 2) / n_bars))
    return se * float(np.sqrt(bars_per_year)) if bars_per_year else se


def percentile_interval(draws, level: float = 0.9) -> tuple[float, float]:
    """The equal-tailed percentile interval of bootstrap ``draws`` (NaN draws left out) at ``level`` (0.9: the 5th
    and 95th percentiles); (NaN, NaN) with fewer than 2 finite draws."""
    d = np.asarray(draws, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return float("nan"), float("nan")
    lo, hi = np.quantile(d, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


def bootstrap_se(draws) -> float:
    """Sample standard deviation (ddof=1) of the finite bootstrap ``draws``; NaN with fewer than 2."""
    d = np.asarray(draws, dtype=np.float64)
    d = d[np.isfinite(d)]
    return float(d.std(ddof=1)) if d.size >= 2 else float("nan")


def format_with_se(value: float, se: float, *, scale: float = 1.0, signed: bool = False, suffix: str = "") -> str:
    """``value ± se`` with the digits the standard error supports: the se rounded to two significant digits and
    the value to the same decimal place (``0.5123 ± 0.0042``; ``+1.2 ± 1.1``). ``scale`` multiplies both (100 for
    percent, 1e4 for basis points); without a finite se the value is printed to 4 significant digits."""
    if value is None or not np.isfinite(value):
        return "–"
    v = float(value) * scale
    sign = "+" if signed else ""
    if se is None or not np.isfinite(se) or se <= 0:
        return f"{v:{sign}.1f}{suffix}" if scale != 1.0 else f"{v:{sign}.4g}{suffix}"
    s = float(se) * scale
    decimals = max(0, 1 - int(np.floor(np.log10(s))))
    return f"{v:{sign}.{decimals}f} ± {s:.{decimals}f}{suffix}"


def _block_counts(codes, score, y, inverse, n_t: int):
    """Sparse (B, T) matrices of the positive and the negative rows per (block, timestamp), where a block is a run
    of tied scores inside one group (rows sorted by (group, score)); with each block's group-start flag."""
    from scipy import sparse

    order = np.lexsort((score, codes))
    g, s = codes[order], score[order]
    new_group = np.r_[True, g[1:] != g[:-1]]
    new_block = new_group | np.r_[True, s[1:] != s[:-1]]
    block = np.empty(order.size, dtype=np.int64)
    block[order] = np.cumsum(new_block) - 1
    n_b = int(new_block.sum())
    positives = sparse.csr_matrix((y.astype(np.float64), (block, inverse)), shape=(n_b, n_t))
    negatives = sparse.csr_matrix((1.0 - y.astype(np.float64), (block, inverse)), shape=(n_b, n_t))
    return positives, negatives, new_group[new_block]


def counted_aucs(y, score, groups, counts, inverse, *, cells: int = CHUNK_CELLS) -> tuple[np.ndarray, np.ndarray]:
    """The pooled AUC and the per-group mean AUC of every bootstrap draw, from the draws' timestamp counts.

    Row i weighs ``counts[k, inverse[i]]`` in draw k, as in :func:`weighted_auc` / :func:`weighted_group_mean_auc`
    on ``W = counts[:, inverse]``, and the results are the same numbers: the weighted class counts of each block of
    tied scores are sums of whole numbers, here formed as sparse (block x timestamp) products with the counts, so
    the (reps, n) weights are never built (a pooled group has many rows per timestamp).

    Args:
        y: (n,) 0/1 labels. score: (n,). groups: (n,) integer codes (e.g. one per (fold, asset)).
        counts: (reps, T) draws' counts per distinct timestamp. inverse: (n,) each row's timestamp position.
        cells: at most this many (draw, block) cells are held at once.

    Returns:
        (pooled (reps,), group mean (reps,)); NaN where a draw has no positive or no negative weight (pooled) or no
        group with both classes (group mean).
    """
    pooled = _counted_auc(y, score, np.zeros(np.size(y), dtype=np.int64), counts, inverse, pooled=True, cells=cells)
    return pooled, _counted_auc(y, score, groups, counts, inverse, pooled=False, cells=cells)


def _counted_auc(y, score, groups, counts, inverse, *, pooled: bool, cells: int = CHUNK_CELLS) -> np.ndarray:
    """The pooled AUC (``pooled``: one group) or the per-group mean AUC of each draw, as :func:`counted_aucs`."""
    y = np.asarray(y, dtype=np.float64)
    C = np.asarray(counts, dtype=np.float64)
    positives, negatives, first = _block_counts(np.asarray(groups, dtype=np.int64),
                                                np.asarray(score, dtype=np.float64), y,
                                                np.asarray(inverse, dtype=np.int64), C.shape[1])
    step = max(1, cells // max(positives.shape[0], 1))
    out = []
    for lo in range(0, C.shape[0], step):
        Ct = np.ascontiguousarray(C[lo:lo + step].T)  # (T, k)
        pos, neg = (np.ascontiguousarray(np.asarray(m @ Ct).T) for m in (positives, negatives))  # (k, B)
        out.append(_auc_from_blocks(pos, neg, first, pooled=pooled))
    return np.concatenate(out)


def _auc_from_blocks(pos: np.ndarray, neg: np.ndarray, first: np.ndarray, *, pooled: bool) -> np.ndarray:
    """Mann-Whitney AUC per group from the weighted class counts of its blocks, (k, B) for k draws, ascending score
    within each group (``first``: a block starts a group); (k,): the pooled AUC (one group) or the mean over the
    groups with both classes. ``neg`` is overwritten.

    A group's numerator is the sum over its blocks of pos x (negatives below the block + half the block's own),
    with the negatives below counted from the group's start: cum - neg / 2 - before, where cum is the running sum
    of ``neg`` over all blocks and ``before`` its value at the group's start; ``before`` is taken out once per
    group (before x the group's positives) rather than per block. With whole-number counts every term is a
    multiple of 1/2 far below 2^53, so the sums are exact in any order.
    """
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], first.size] - 1
    cum = np.cumsum(neg, axis=1)
    before = np.where(starts > 0, cum[:, np.maximum(starts - 1, 0)], 0.0)  # (k, G)
    neg_sum = cum[:, ends] - before
    pos_sum = np.add.reduceat(pos, starts, axis=1)
    neg *= 0.5
    cum -= neg
    cum *= pos
    num = np.add.reduceat(cum, starts, axis=1) - before * pos_sum
    den = pos_sum * neg_sum
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(den > 0, num / den, np.nan)
        if pooled:
            return per[:, 0]
        ok = np.isfinite(per)
        return np.where(ok, per, 0.0).sum(axis=1) / ok.sum(axis=1)


def counted_pearsons(pairs, counts, inverse) -> list[np.ndarray]:
    """:func:`weighted_pearsons` under ``W = counts[:, inverse]`` without building W: each weighted sum is the
    counts (reps, T) times the per-timestamp sums of the rows (T,), one matrix product for every pair."""
    inverse = np.asarray(inverse, dtype=np.int64)
    C = np.asarray(counts, dtype=np.float64)
    n_t = C.shape[1]
    cols, scales = [np.ones(inverse.size)], []
    for a, b in pairs:
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        a, b = a - a.mean(), b - b.mean()
        cols += [a, b, a * a, b * b, a * b]
        scales.append((max(float((a * a).mean()), 1e-300), max(float((b * b).mean()), 1e-300), a.size))
    per_t = np.column_stack([np.bincount(inverse, weights=c, minlength=n_t) for c in cols])
    S = C @ per_t
    tot = S[:, 0]
    out = []
    for i, (sa, sb, n) in enumerate(scales):
        if n < 2:
            out.append(np.full(C.shape[0], np.nan))
            continue
        sa_, sb_, saa, sbb, sab = (S[:, 1 + 5 * i + j] for j in range(5))
        with np.errstate(invalid="ignore", divide="ignore"):
            ma, mb = sa_ / tot, sb_ / tot
            va = saa / tot - ma * ma
            vb = sbb / tot - mb * mb
            r = (sab / tot - ma * mb) / np.sqrt(va * vb)
        ok = (va > 1e-12 * sa) & (vb > 1e-12 * sb)  # no spread: a variance at rounding level of the inputs' scale
        out.append(np.where(ok, np.clip(r, -1.0, 1.0), np.nan))
    return out
