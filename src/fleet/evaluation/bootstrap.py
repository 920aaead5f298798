"""How sure is an AUC difference? A paired block bootstrap over time for two forecasts of the same rows.

The AUC compared across models is the ROC AUC pooled over the assets of each walk-forward fold, averaged over
the folds. Two models scored on the same rows share most of their noise (the same labels, the same market days),
so the standard error of their *difference* is far smaller than that of either AUC; and rows are not independent:
labels over h bars overlap (López de Prado 2018, AFML ch. 4.4) and the assets of one bar move together. Resampling
whole blocks of consecutive bars, with both forecasts scored on each draw, keeps both dependences (the
non-overlapping block bootstrap, Carlstein 1986; Künsch 1989; Lahiri 2003, "Resampling Methods for Dependent Data",
ch. 2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from fleet.models.criteria import per_asset_auc

__all__ = ["fold_auc", "paired_auc_se"]


def fold_auc(rows: pd.DataFrame, col: str, asset: str | None = None) -> float:
    """ROC AUC of ``rows[col]`` for ``rows['y']`` in each ``fold``, averaged over the folds.

    With ``asset`` (a column naming each row's asset, e.g. ``symbol``): the per-asset AUC instead, the mean over the
    (fold, asset) groups with both classes of the AUC inside the group (the definition of
    :func:`fleet.evaluation.metrics.per_asset_auc`), which scores timing and not which asset drifted up.
    """
    if asset is not None:
        return per_asset_auc(rows["y"].to_numpy(), rows[col].to_numpy(), pd.factorize(rows[asset])[0],
                             pd.factorize(rows["fold"])[0])
    return float(np.mean([roc_auc_score(g["y"], g[col]) for _, g in rows.groupby("fold")]))


def paired_auc_se(rows: pd.DataFrame, a: str, b: str, block: int, time: str = "bar_time", reps: int = 200,
                  seed: int = 0, asset: str | None = None) -> float:
    """Standard error of ``fold_auc(rows, a, asset) - fold_auc(rows, b, asset)`` by a paired block bootstrap over
    time (all assets of a drawn bar together, so their correlation is kept).

    In every fold the distinct values of ``rows[time]`` are cut into consecutive blocks of ``block`` bars; a draw
    takes as many blocks as there are, with replacement, and scores both forecasts on the same drawn rows.

    Args:
        rows: one row per (asset, bar), shape (n, ≥ 5): ``fold``, ``time`` (any sortable bar stamp, e.g. int64 ns),
            ``y`` (0/1 labels) and the two forecasts ``a`` and ``b`` (P(up) or any score).
        block: bars per block; 10 label horizons is what ``benchmarks/gates.py`` and ``benchmarks/quality.py`` use.
        reps: bootstrap draws. seed: their random generator's seed.
        asset: None for the pooled figure; a column naming each row's asset for the per-asset one (each draw's
            figure is then the mean over its (fold, asset) groups with both classes).

    Returns:
        The standard deviation (ddof 1) of the ``reps`` differences, in AUC units; 0 for identical forecasts.

    Raises:
        ValueError: a missing column, block < 1, reps < 2, a fold with one class only, or (scikit-learn's) a
            draw with one class only, which only a fold of a few blocks can give.
    """
    missing = [c for c in ("fold", time, "y", a, b, *([asset] if asset else [])) if c not in rows.columns]
    if missing:
        raise ValueError(f"paired_auc_se: rows lack the columns {missing}")
    if int(block) < 1 or int(reps) < 2:
        raise ValueError(f"paired_auc_se: block={block}, reps={reps}: expected block >= 1 and reps >= 2")
    rng = np.random.default_rng(seed)
    folds = []
    for f, g in rows.groupby("fold"):
        y = g["y"].to_numpy()
        if len(np.unique(y)) < 2:
            raise ValueError(f"paired_auc_se: fold {f} has one class only; an AUC needs both")
        stamp = g[time].to_numpy()
        blk = np.searchsorted(np.unique(stamp), stamp) // int(block)
        members = [np.flatnonzero(blk == k) for k in range(int(blk.max()) + 1)]
        ids = pd.factorize(g[asset])[0] if asset else None
        folds.append((y, g[a].to_numpy(), g[b].to_numpy(), members, ids))
    diffs = np.empty(int(reps))
    for r in range(int(reps)):
        drawn = [np.concatenate([m[k] for k in rng.integers(0, len(m), size=len(m))]) for *_, m, _ in folds]
        if asset is None:
            diffs[r] = np.mean([roc_auc_score(y[i], pa[i]) - roc_auc_score(y[i], pb[i])
                                for (y, pa, pb, _, _), i in zip(folds, drawn)])
        else:  # one figure over every fold's drawn rows: the mean of their (fold, asset) group AUCs
            y, pa, pb, ids = (np.concatenate([f[j][i] for f, i in zip(folds, drawn)]) for j in (0, 1, 2, 4))
            fold_of = np.repeat(np.arange(len(drawn)), [len(i) for i in drawn])
            diffs[r] = per_asset_auc(y, pa, ids, fold_of) - per_asset_auc(y, pb, ids, fold_of)
    return float(np.std(diffs, ddof=1))
