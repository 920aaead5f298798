"""The inner out-of-fold steps of a mixture's fit (step 1 of :mod:`fleet.models.moe`), as pure functions.

A unit runs them in its own process (:meth:`fleet.models.moe.MixtureOfExpertsEnsemble.inner_oof`) or as separate
tasks of a task graph (:mod:`fleet.training.graph`): :func:`fit_inner` for every (expert, inner fold),
:func:`fit_full` for every expert on the whole window, and :func:`collect_oof` to stack the inner results.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

__all__ = ["collect_oof", "constant_experts", "fit_full", "fit_inner"]


def fit_inner(expert, X: pd.DataFrame, y, sample_weight, fold: dict) -> np.ndarray | None:
    """One expert's out-of-fold P(up) on one inner fold (a pure step, run in-process or as a Ray task).

    Args:
        expert: the unfitted expert (cloned here); X (n, features + context), y (n,), sample_weight (n,) or None:
            the unit's training window; fold: one entry of
            :meth:`~fleet.models.moe.MixtureOfExpertsEnsemble.inner_plan`.

    Returns:
        (len(fold["val_rows"]),) P(up) of a clone fitted on ``fold["fit_rows"]``; None for a skipped fold.
    """
    if not len(fold["val_rows"]):
        return None
    fit_rows, val_rows = fold["fit_rows"], fold["val_rows"]
    y = np.asarray(y, dtype=np.int64)
    sw = None if sample_weight is None else np.asarray(sample_weight)[fit_rows]
    return clone(expert).fit(X.iloc[fit_rows], y[fit_rows], sw).predict_proba(X.iloc[val_rows])[:, 1]


def fit_full(expert, X: pd.DataFrame, y, sample_weight=None):
    """A clone of ``expert`` fitted on the whole window (step 4; a pure step like :func:`fit_inner`)."""
    return clone(expert).fit(X, np.asarray(y, dtype=np.int64), sample_weight)


def constant_experts(P: np.ndarray, names: list[str]) -> list[str]:
    """Names of the experts whose column of ``P`` (n, E) out-of-fold P(up) of one inner block is one constant."""
    P = np.asarray(P, dtype=np.float64)
    return [n for j, n in enumerate(names) if len(P) and np.ptp(P[:, j]) < 1e-12]


def collect_oof(plan: list[dict], names: list[str], columns: dict):
    """Stack :func:`fit_inner` outputs into the out-of-fold matrix.

    Args:
        plan: :meth:`~fleet.models.moe.MixtureOfExpertsEnsemble.inner_plan`; names: the experts (E,) in order;
        columns: (expert name, block k) -> :func:`fit_inner` output for that fold.

    A block in which some expert's P(up) is one constant (:func:`constant_experts`) is left out, and its
    ``info`` says why: it cannot rank that expert against the others.

    Returns:
        (index (n_oof,), P (n_oof, E), block (n_oof,), starts {k: int64 ns}, folds: the plan's ``info`` dicts,
        (index, P) of every predicted block, the left-out ones included: the rows of the per-asset level, step 4).
    """
    index, probs, block, starts = [], [], [], {}
    fitted = [f for f in plan if len(f["val_rows"])]
    mats = {f["block"]: np.column_stack([columns[(n, f["block"])] for n in names]) for f in fitted}
    flat = {k: constant_experts(P, names) for k, P in mats.items()}
    # An inner fit that answers one constant P(up) (a tree that could not split on the inner rows) says nothing
    # of the expert's skill on the full window; comparing it there made `best` drop the trend expert in small
    # units (38 of 150 inner blocks of crypto_1h islands). Such blocks are left out; with none left the first
    # expert answers, as when no inner fold had enough rows.
    for f in fitted:
        k = f["block"]
        if flat[k]:
            f["info"]["skipped"] = (f"constant out-of-fold P(up) from {', '.join(flat[k])} (an inner fit too "
                                    "small to learn): the block cannot compare the experts")
            f["info"]["n_oof"] = 0
            continue
        index.append(f["val_rows"])
        probs.append(mats[k])
        block.append(np.full(len(f["val_rows"]), k))
        starts[k] = f["start"]
    folds = [f["info"] for f in plan]
    level = ((np.concatenate([f["val_rows"] for f in fitted]), np.vstack([mats[f["block"]] for f in fitted]))
             if fitted else (np.empty(0, dtype=np.int64), np.empty((0, len(names)))))
    if not index:
        return np.empty(0, dtype=np.int64), np.empty((0, len(names))), np.empty(0, dtype=np.int64), {}, folds, level
    return np.concatenate(index), np.vstack(probs), np.concatenate(block), starts, folds, level
