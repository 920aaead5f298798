"""How the selecting gates and the guard score a forecast on a unit's inner out-of-fold rows.

:func:`score_forecast` turns P(up) ``p`` (n,) and labels ``y`` (n,) into a loss (lower is better) by one of:

* ``'asset_auc'`` — 1 minus the **per-asset AUC**: the mean, over the (inner block, asset) groups that hold both
  classes, of the ROC AUC inside the group. Inside one asset and one block only *timing* counts: a forecast that
  knows nothing but which asset drifted up over the block (a P(up) constant within each asset) scores exactly 0.5.
  The default of ``--gate best``, of the guard and of the best-expert choice the guard compares against.
* ``'auc'`` — 1 minus the ROC AUC **pooled** over every row of the unit's assets. It mixes each asset's level with
  timing: an expert that only ranks the assets by their drift over the window scores above 0.5 on it.
* ``'calibrated'`` — log-loss after a 2-parameter Platt recalibration; ``'log_loss'`` — the raw log-loss. Both
  reward the level too (a P(up) that knows each asset's up-rate lowers the log-loss).

The per-asset figure is :func:`fleet.evaluation.metrics.per_asset_auc`'s definition (the mean of each asset's AUC
within each fold) with the inner blocks as the folds. :func:`switch_margin` gives the noise scale of each AUC
figure (Hanley & McNeil 1982): :func:`auc_standard_error` for the pooled one, :func:`asset_auc_standard_error`
for the per-asset one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score

from fleet.models._gate_base import _EPS, expert_logits

__all__ = ["CRITERIA", "AUC_CRITERIA", "asset_auc_standard_error", "asset_groups", "auc_standard_error",
           "calibrated_log_loss", "forecast_scores", "group_aucs", "mixture_log_loss", "per_asset_auc",
           "score_forecast", "switch_margin"]

#: Every criterion :func:`score_forecast` knows; the AUC ones have a switch margin.
CRITERIA = ("asset_auc", "auc", "calibrated", "log_loss")
AUC_CRITERIA = ("asset_auc", "auc")


def mixture_log_loss(y, p) -> float:
    """Mean binary cross-entropy (nats) of P(up) ``p`` (n,) for labels ``y`` (n,) in {0, 1}."""
    return float(log_loss(np.asarray(y, dtype=np.int64), np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS),
                          labels=[0, 1]))


def calibrated_log_loss(y, p) -> float:
    """Log-loss (nats) of P(up) ``p`` (n,) after a 2-parameter logistic recalibration of its logit on the
    same rows (Platt 1999): a + b * logit(p), fitted by maximum likelihood (tiny L2, C = 1e4).

    It scores what a forecast can be made worth by a monotone map — its skill — and not the scale of its
    probabilities: an expert fitted on a short inner window is often over- or under-confident, and the raw
    log-loss then prefers a weak, well-calibrated expert to a stronger one. Two parameters on thousands of rows:
    the in-sample optimism is ~1/n.
    """
    y = np.asarray(y, dtype=np.int64)
    L = expert_logits(np.asarray(p, dtype=np.float64)[:, None])
    if len(np.unique(y)) < 2:
        return mixture_log_loss(y, p)
    m = LogisticRegression(C=1e4, max_iter=200).fit(L, y)
    return mixture_log_loss(y, m.predict_proba(L)[:, 1])


def asset_groups(assets, blocks=None) -> np.ndarray:
    """Group codes (n,) int64 in 0..G-1 of the (block, asset) pairs of the rows; ``assets`` (n,) asset ids,
    ``blocks`` (n,) inner-block index or None (one block). ValueError when the lengths differ."""
    a = np.asarray(assets, dtype=np.int64)
    b = np.zeros(len(a), dtype=np.int64) if blocks is None else np.asarray(blocks, dtype=np.int64)
    if b.shape != a.shape:
        raise ValueError(f"asset_groups: assets {a.shape} and blocks {b.shape}: expected the same length")
    ca, cb = pd.factorize(a)[0], pd.factorize(b)[0]
    return pd.factorize(cb * (int(ca.max(initial=0)) + 1) + ca)[0].astype(np.int64)


def group_aucs(y, p, groups) -> tuple[np.ndarray, np.ndarray]:
    """ROC AUC of ``p`` (n,) for labels ``y`` (n,) in {0, 1} inside each group of ``groups`` (n,) int codes.

    The Mann-Whitney form: AUC_g = (R1_g - n1_g (n1_g + 1) / 2) / (n1_g n0_g), R1_g the sum of the positives'
    ranks within the group (ties share the average rank, as in ``sklearn.metrics.roc_auc_score``). One vectorised
    pass, so that a selection loop can call it hundreds of times.

    Returns:
        (auc (G,), NaN for a group with one class; n1 (G,) positives; n0 (G,) negatives), G = max code + 1.
    """
    g, p = np.asarray(groups, dtype=np.int64), np.asarray(p, dtype=np.float64)
    order = np.lexsort((p, g))  # by group, then by score
    gs, ps, ys = g[order], p[order], np.asarray(y, dtype=np.float64)[order]
    # runs of equal (group, score): each member gets the run's average position, made 1-based within its group
    new = np.r_[True, (gs[1:] != gs[:-1]) | (ps[1:] != ps[:-1])] if len(gs) else np.zeros(0, dtype=bool)
    start = np.flatnonzero(new)
    end = np.r_[start[1:], len(gs)]
    run = np.cumsum(new) - 1
    ranks = (start[run] + end[run] + 1) / 2.0 - np.searchsorted(gs, gs, side="left")
    G = int(g.max()) + 1 if len(g) else 0
    n1 = np.bincount(gs, weights=ys, minlength=G)
    n0 = np.bincount(gs, minlength=G) - n1
    r1 = np.bincount(gs, weights=ranks * ys, minlength=G)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (r1 - n1 * (n1 + 1.0) / 2.0) / (n1 * n0)
    auc[(n1 == 0) | (n0 == 0)] = np.nan
    return auc, n1, n0


def per_asset_auc(y, p, assets, blocks=None) -> float:
    """The per-asset AUC (module docstring): mean of :func:`group_aucs` over the (block, asset) groups with both
    classes; NaN when none has both."""
    auc = group_aucs(y, p, asset_groups(assets, blocks))[0]
    auc = auc[np.isfinite(auc)]
    return float(auc.mean()) if auc.size else float("nan")


def score_forecast(y, p, criterion: str, assets=None, blocks=None) -> float:
    """Loss of P(up) ``p`` (n,) for labels ``y`` (n,) by ``criterion`` (module docstring). Lower is better.

    Args:
        assets, blocks: (n,) each row's asset id and inner block; ``assets`` is required by 'asset_auc' (blocks
            None: one block), ignored by the others.

    Returns:
        'asset_auc': 1 - :func:`per_asset_auc` (0.5 when no group holds both classes); 'auc': 1 - pooled ROC AUC
        (0.5 with one class); 'calibrated' / 'log_loss': nats.

    Raises:
        ValueError: another criterion, or 'asset_auc' without ``assets``.
    """
    if criterion == "asset_auc":
        if assets is None:
            raise ValueError("score_forecast: criterion 'asset_auc' needs each row's asset id (assets=)")
        a = per_asset_auc(y, p, assets, blocks)
        return 1.0 - a if np.isfinite(a) else 0.5
    if criterion == "auc":
        y = np.asarray(y)
        return 1.0 - float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else 0.5
    if criterion == "calibrated":
        return calibrated_log_loss(y, p)
    if criterion == "log_loss":
        return mixture_log_loss(y, p)
    raise ValueError(f"criterion={criterion!r}: expected one of {', '.join(CRITERIA)}")


def _hanley_mcneil_null_var(n1, n0, horizon: int):
    """Variance of an AUC at A = 0.5 (Hanley & McNeil 1982, eq. 2; the exact Mann-Whitney null variance
    (n + 1) / (12 n1 n0)), the class counts divided by ``horizon``; arrays or floats, inf where a class is empty."""
    h = float(max(int(horizon), 1))
    n1, n0 = np.asarray(n1, dtype=np.float64) / h, np.asarray(n0, dtype=np.float64) / h
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((n1 > 0) & (n0 > 0), (n1 + n0 + 1.0) / (12.0 * n1 * n0), np.inf)


def auc_standard_error(y, horizon: int = 1) -> float:
    """Standard error of a ROC AUC near 0.5 on labels ``y`` (n,), Hanley & McNeil (1982), eq. 2 at A = 0.5:
    sqrt((n1 + n0 + 1) / (12 n1 n0)), with the class counts divided by ``horizon``.

    Labels over ``horizon`` bars taken on every bar overlap: their average uniqueness is 1/horizon
    (López de Prado, AFML ch. 4.4), so the rows carry about n / horizon independent outcomes, and with
    forecasts as persistent as ours the plain formula understates the spread of the AUC by about
    sqrt(horizon) (tests/models/test_gate_mixture.py measures it on simulated overlapping labels). The noise scale
    of an AUC difference between two forecasts of the same rows (an upper bound: correlated forecasts
    differ by less). inf when a class is missing.
    """
    y = np.asarray(y)
    n1 = float((y == 1).sum())
    return float(np.sqrt(_hanley_mcneil_null_var(n1, len(y) - n1, horizon)))


def asset_auc_standard_error(y, assets, blocks=None, horizon: int = 1) -> float:
    """Standard error of the per-asset AUC (:func:`per_asset_auc`) near 0.5: a conservative bound.

    The figure is a mean of k group AUCs, A = (1/k) sum_g A_g, g over the (block, asset) groups with both classes.
    Each A_g has the Hanley & McNeil (1982) null standard error s_g = sqrt((n_g + 1) / (12 n1_g n0_g)) (class counts
    divided by ``horizon``, as in :func:`auc_standard_error`). If all k were independent, se(A) would be
    sqrt(sum_g s_g^2) / k, about s / sqrt(k). They are not: the assets of one block share the market's days (their
    returns, hence their labels, are correlated) and often the same features. So the groups of one block are summed
    as if perfectly correlated, sd(sum_a A_ba) <= sum_a s_ba (Minkowski's inequality: an upper bound at any
    correlation), and only the blocks, disjoint spans of time, are taken as independent:

        se(A) = sqrt( sum_b ( sum_{a in b} s_ba )^2 ) / k.

    With one block and one asset it is :func:`auc_standard_error`. With N similar assets in each of K blocks it
    is about the standard error of a single asset's AUC over K blocks, sqrt(N) times that of the pooled AUC: a
    margin in these units keeps the incumbent more often than the independent formula would.

    Args:
        y: (n,) labels in {0, 1}; assets: (n,) asset ids; blocks: (n,) inner blocks or None (one block);
        horizon: the labels' horizon, bars.

    Returns:
        The standard error (AUC units); inf when no group holds both classes.
    """
    blocks = np.zeros(len(np.asarray(assets)), dtype=np.int64) if blocks is None else np.asarray(blocks)
    g = asset_groups(assets, blocks)
    _, n1, n0 = group_aucs(y, np.zeros(len(g)), g)
    ok = (n1 > 0) & (n0 > 0)
    if not ok.any():
        return float("inf")
    s = np.sqrt(_hanley_mcneil_null_var(n1[ok], n0[ok], horizon))
    block_of = np.zeros(len(n1), dtype=np.int64)
    block_of[g] = pd.factorize(np.asarray(blocks))[0]  # every row of a group lies in one block
    per_block = np.bincount(block_of[ok], weights=s)
    return float(np.sqrt(np.sum(per_block ** 2)) / ok.sum())


def switch_margin(y, criterion: str, z: float, horizon: int = 1, assets=None, blocks=None) -> float:
    """How much lower a challenger's loss must be to replace the incumbent: ``z`` standard errors of the criterion's
    AUC under 'asset_auc' (:func:`asset_auc_standard_error`, needs ``assets``) or 'auc'
    (:func:`auc_standard_error`), for labels over ``horizon`` bars; 0 under the log-losses or with z <= 0."""
    if z <= 0 or criterion not in AUC_CRITERIA:
        return 0.0
    if criterion == "asset_auc":
        if assets is None:
            raise ValueError("switch_margin: criterion 'asset_auc' needs each row's asset id (assets=)")
        return float(z) * asset_auc_standard_error(y, assets, blocks, horizon)
    return float(z) * auc_standard_error(y, horizon)


def _pooled_auc(y, p) -> float:
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def forecast_scores(y, p, assets, blocks) -> dict:
    """What a unit records of one out-of-fold forecast ``p`` (n,) for labels ``y`` (n,): log-loss, pooled AUC,
    per-asset AUC over the (``blocks``, ``assets``) groups (:mod:`fleet.models.criteria`) and calibrated log-loss."""
    return {"log_loss": mixture_log_loss(y, p), "auc": _pooled_auc(y, p),
            "asset_auc": per_asset_auc(y, p, assets, blocks), "calibrated_log_loss": calibrated_log_loss(y, p)}
