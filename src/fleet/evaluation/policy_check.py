"""What keeps the tuned policy's search honest: a cross-fitted calibration, the t of the fleet P&L per timestamp,
and Hansen's SPA test over the candidate grid and the run's units.

:func:`fleet.evaluation.costaware.fit_policy` searches a grid of rules on a unit's inner out-of-fold rows and
keeps the best. Three things would make that search find an edge in noise:

* **Correlated assets.** The rows of a unit's assets at one timestamp are not independent draws: a t computed on
  all per-bar P&L stacked together is inflated by about ``sqrt(1 + (N - 1) rho)`` for N assets with pairwise
  correlation rho. :func:`per_timestamp_mean` averages each candidate's P&L over the assets that have a row at a
  timestamp (the equal-weight book of the unit), and the t is taken over that series (:func:`t_stat`).
* **Many candidates.** The best of a grid of several dozen rules reaches t ~ 2 by chance. :func:`spa_test` runs
  Hansen's test for superior predictive ability (Hansen 2005, "A test for superior predictive ability", J. Bus.
  Econ. Stat. 23(4); ``arch.bootstrap.SPA``) against the benchmark "stay flat" (loss 0), each candidate's loss
  being minus its per-timestamp P&L, with a stationary bootstrap over timestamps (Politis & Romano 1994), the mean
  block length from ``arch.bootstrap.optimal_block_length`` (Politis & White 2004); computed as ``arch`` does,
  with faster bootstrap means (:func:`spa_pvalue`). Its null is that no candidate
  earns more than staying flat in expectation.
* **Many units.** A run trades when any of its units trades, so the level each unit tests at is the run's level
  divided by the number of units in the run (Bonferroni): :func:`unit_level`.

The calibration of P(up) that the expected-return candidates read is fitted on other rows than those it scores
(:func:`crossfit_calibrated`).
"""

from __future__ import annotations

import math

import numpy as np

from fleet.errors import ConfigError, DataError

__all__ = ["apply_calibration", "crossfit_calibrated", "fit_calibration", "per_timestamp_mean", "spa_pvalue",
           "spa_reps", "spa_test", "t_stat", "timestamp_codes", "unit_level"]

#: Bootstrap replications of the SPA test: at least this many ...
MIN_REPS = 1000
#: ... and enough that the p-value's resolution (1 / reps) is a tenth of the level tested at, up to this many.
MAX_REPS = 10_000


def fit_calibration(p: np.ndarray, y: np.ndarray, method: str) -> dict:
    """A calibration map of P(up), as :attr:`fleet.evaluation.costaware.TradingPolicy.calibration` stores it.

    Args:
        p: shape (n,), P(up) in [0, 1]. y: shape (n,), 0/1 labels. method: ``isotonic`` (Zadrozny & Elkan 2002,
            ``sklearn.isotonic.IsotonicRegression``) or ``sigmoid`` (Platt 1999: a logistic regression on logit p).

    Raises:
        ConfigError: unknown method.
    """
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
        return {"method": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    if method == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        z = np.log(np.clip(p, 1e-9, 1 - 1e-9) / np.clip(1 - p, 1e-9, 1))
        lr = LogisticRegression(C=1e6).fit(z[:, None], y)
        return {"method": "sigmoid", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
    raise ConfigError(f"calibration={method!r}: expected 'isotonic' or 'sigmoid'")


def apply_calibration(cal: dict | None, p: np.ndarray) -> np.ndarray:
    """The calibrated P(up) of ``p`` (shape (n,)) under ``cal`` (a :func:`fit_calibration` dict); ``p`` for None."""
    p = np.asarray(p, dtype=np.float64)
    if not cal:
        return p
    if cal["method"] == "isotonic":
        return np.interp(p, np.asarray(cal["x"], dtype=np.float64), np.asarray(cal["y"], dtype=np.float64))
    z = np.log(np.clip(p, 1e-9, 1 - 1e-9) / np.clip(1 - p, 1e-9, 1))
    return 1.0 / (1.0 + np.exp(-(cal["a"] * z + cal["b"])))


def crossfit_calibrated(p: np.ndarray, y: np.ndarray, codes: np.ndarray, n_ts: int, *, horizon: int,
                        method: str) -> np.ndarray:
    """Calibrated P(up) of every row from a calibration fitted on the other half of the rows' timestamps.

    Why: an isotonic map fitted on the rows it then scores has learnt which P(up) bins happened to go up on those
    very rows, so a rule that trades those bins looks profitable on them by construction. Cross-fitting (two
    time-ordered halves, each calibrated by a map fitted on the other; Chernozhukov et al. 2018's cross-fitting)
    keeps every candidate scored on all rows, which a single time split would halve. Both halves lie inside the
    unit's training window, so nothing after it is seen. The first half is calibrated on the second, whose labels
    start after it; the second on the rows of the first whose labels end before it (the last ``horizon``
    timestamps of the first half are left out of that fit). The served policy's calibration is fitted on all rows.

    Args:
        p: shape (n,), out-of-fold P(up). y: shape (n,), 0/1 labels (h-bar ahead).
        codes: shape (n,), each row's timestamp position among the ``n_ts`` sorted timestamps
            (:func:`timestamp_codes`). horizon: label horizon h, in bars (~ timestamps).
        method: ``isotonic`` or ``sigmoid``.

    Returns:
        float64 (n,); a half whose fitting rows hold a single class keeps its raw P(up).
    """
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    mid = n_ts // 2
    first = codes < mid
    q = p.copy()
    for scored, fitted in ((first, codes >= mid), (~first, codes < mid - int(horizon))):
        if scored.any() and fitted.sum() >= 2 and np.unique(y[fitted]).size == 2:
            q[scored] = apply_calibration(fit_calibration(p[fitted], y[fitted], method), p[scored])
    return q


def timestamp_codes(timestamps) -> tuple[np.ndarray, int]:
    """``(codes (n,), n_ts)``: each row's position among the sorted distinct timestamps, and their number."""
    uniq, codes = np.unique(np.asarray(timestamps), return_inverse=True)
    return codes.astype(np.int64).ravel(), int(uniq.size)


def per_timestamp_mean(values: np.ndarray, codes: np.ndarray, n_ts: int) -> np.ndarray:
    """The cross-asset mean of per-row ``values`` (n,) at each timestamp: shape (n_ts,), in time order.

    Each timestamp averages the rows that have it (the assets present then), i.e. the per-bar P&L of the
    equal-weight book of those assets. Raises DataError when a timestamp has no row.
    """
    counts = np.bincount(codes, minlength=n_ts)
    if (counts == 0).any():
        raise DataError("per_timestamp_mean: every code in 0 .. n_ts - 1 must have a row")
    return np.bincount(codes, weights=np.asarray(values, dtype=np.float64), minlength=n_ts) / counts


def t_stat(v: np.ndarray) -> float:
    """t statistic of the mean of ``v`` (n,): mean / (sd / sqrt(n)), sd with ddof=1; 0 when it has no spread."""
    v = np.asarray(v, dtype=np.float64)
    sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return float(v.mean() / sd * np.sqrt(v.size)) if sd > 0 else 0.0


def unit_level(alpha: float, n_units: int) -> float:
    """The level one unit's SPA test runs at: ``alpha / n_units`` (Bonferroni over the run's units).

    Raises:
        ConfigError: alpha outside (0, 1] or n_units < 1.
    """
    if not 0.0 < alpha <= 1.0:
        raise ConfigError(f"policy.spa_alpha={alpha}: expected a level in (0, 1]")
    if int(n_units) < 1:
        raise ConfigError(f"n_units={n_units}: expected the run's number of training units (>= 1)")
    return float(alpha) / int(n_units)


def spa_reps(level: float) -> int:
    """Bootstrap replications for a test at ``level``: ``10 / level`` within [MIN_REPS, MAX_REPS]."""
    return int(min(MAX_REPS, max(MIN_REPS, math.ceil(10.0 / level))))


def spa_test(pnl: np.ndarray, *, level: float, seed: int) -> dict:
    """Hansen's SPA test of "some candidate beats staying flat" on per-timestamp P&L.

    The arithmetic of ``arch.bootstrap.SPA(benchmark=0, models=-pnl, bootstrap="stationary", nested=True)``
    and its consistent p-value: the same stationary-bootstrap indices (``arch.bootstrap.StationaryBootstrap``,
    drawn with ``update_indices``), the variance of each candidate's mean from the bootstrap means, the
    ``log log T`` rule for which candidates are re-centred (Hansen 2005's consistent estimator). Only the
    bootstrap means are computed differently: as one matrix product per chunk of replications
    (replication-by-timestamp counts
    times the P&L), where ``arch`` resamples the whole (T, K) array once per replication, which on thousands of
    timestamps and several thousand replications takes minutes. The tests check the p-value against ``arch``'s.

    The candidates' columns are divided by their sample standard deviation first: ``arch``'s SPA compares raw
    mean loss differences, and the scaled columns make its statistic the largest t over the grid (Hansen's
    studentised statistic), so a rule with a large but noisy P&L does not dominate. Columns without spread (a
    rule that never trades) equal the benchmark and are left out, as are exact duplicates.

    Args:
        pnl: shape (T, K), per-timestamp P&L of K candidates (log-return units), in time order.
        level: the level the caller compares the p-value with (sets the replications, :func:`spa_reps`).
        seed: bootstrap seed (same seed -> same p-value).

    Returns:
        ``{"spa_p": the consistent p-value (1.0 when no column has spread or T < 8), "spa_block": mean block
        length (``arch.bootstrap.optimal_block_length``, median over the candidates), "spa_reps": replications,
        "spa_tested": columns tested}``.
    """
    from arch.bootstrap import optimal_block_length

    pnl = np.asarray(pnl, dtype=np.float64)
    sd = pnl.std(axis=0, ddof=1) if pnl.shape[0] > 1 else np.zeros(pnl.shape[1])
    keep = sd > 0
    _, first = np.unique(pnl[:, keep], axis=1, return_index=True)  # identical rules add nothing to the max
    cols = np.flatnonzero(keep)[np.sort(first)]
    out = {"spa_p": 1.0, "spa_block": None, "spa_reps": 0, "spa_tested": int(cols.size)}
    if cols.size == 0 or pnl.shape[0] < 8:
        return out
    scaled = pnl[:, cols] / sd[cols]
    block = float(np.nanmedian(optimal_block_length(scaled)["stationary"].to_numpy()))
    block = int(min(max(1, math.ceil(block if np.isfinite(block) else 1.0)), pnl.shape[0] // 4))
    reps = spa_reps(level)
    return {**out, "spa_p": spa_pvalue(scaled, block=block, reps=reps, seed=seed), "spa_block": block,
            "spa_reps": reps}


def spa_pvalue(d: np.ndarray, *, block: int, reps: int, seed: int, chunk: int = 256) -> float:
    """Consistent SPA p-value of loss differentials ``d`` (T, K) (benchmark loss minus each model's loss), as
    ``arch.bootstrap.SPA(..., nested=True, seed=seed).pvalues["consistent"]`` computes it (see :func:`spa_test`).
    """
    from arch.bootstrap import StationaryBootstrap

    d = np.asarray(d, dtype=np.float64)
    t = d.shape[0]
    bs = StationaryBootstrap(block, np.empty(t), seed=int(seed))
    means = np.empty((reps, d.shape[1]))
    for start in range(0, reps, chunk):
        n = min(chunk, reps - start)
        counts = np.stack([np.bincount(bs.update_indices(), minlength=t) for _ in range(n)]).astype(np.float64)
        means[start:start + n] = counts @ d / t
    mean = d.mean(axis=0)
    var = t * means.var(axis=0)  # bootstrap variance of sqrt(T) x each mean
    relevant = mean >= -np.sqrt(var / t * 2.0 * np.log(np.log(t)))
    centre = np.where(relevant, mean, 0.0)
    return float(((means - centre).max(axis=1) > mean.max()).mean())
