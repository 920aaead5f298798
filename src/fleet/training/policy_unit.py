"""A unit's trading policy: chosen on the training window's inner out-of-fold predictions, applied to its rows.

The one place where a unit gets out-of-fold P(up) on its own training window for the policy:

* a mixture (:class:`~fleet.models.moe.MixtureOfExpertsEnsemble` with several experts) already has them:
  the experts' inner out-of-fold P(up) (``oof_index_``, ``oof_probs_``) combined by the fitted gate — the
  rows the gate itself was fitted on (the default ``best`` gate only picks a column);
* any other model (a single expert) gets them from the same blocked inner folds
  (:meth:`MixtureOfExpertsEnsemble.inner_oof` with the model as its one expert: ``inner_folds + 1``
  time-ordered blocks, each predicted by a clone fitted on the timestamps before it, less the label
  horizon and the embargo).

No row of the fold's test block is ever used: the policy is a function of the training window only
(``tests/test_costaware.py`` perturbs the test block and checks that the parameters do not move).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from fleet.config import FleetConfig
from fleet.config_policy import PolicyKind
from fleet.evaluation.costaware import TradingPolicy, fit_policy

__all__ = ["oof_predictions", "unit_meta", "unit_policy"]


def oof_predictions(model, X: pd.DataFrame, y: np.ndarray, config: FleetConfig) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold P(up) on the training window: ``(row positions in X (n_oof,), p_up (n_oof,))``.

    Args:
        model: the unit's fitted model (its unfitted clone is refitted per inner block when it is not a
            mixture with inner out-of-fold rows).
        X, y: the unit's training rows (with the ``asset_id`` / ``bar_time`` context columns) and labels.
    """
    from fleet.models.moe import MixtureOfExpertsEnsemble

    if isinstance(model, MixtureOfExpertsEnsemble) and len(getattr(model, "oof_index_", ())):
        idx = model.oof_index_
        return idx, model.predict_details(X.iloc[idx], model.oof_probs_)[0]  # as served, the per-asset level too
    m = config.model.moe
    inner = MixtureOfExpertsEnsemble([("model", clone(model))], inner_folds=m.inner_folds,
                                     purge_bars=config.labels.horizon, embargo_bars=config.validation.embargo_bars,
                                     min_inner_rows=m.min_inner_rows)
    idx, P, *_ = inner.inner_oof(X, y)
    return idx, (P[:, 0] if len(idx) else np.empty(0))


def unit_policy(config: FleetConfig, model, X_train: pd.DataFrame, y_train: np.ndarray, train_meta: pd.DataFrame,
                frames: dict[str, pd.DataFrame], *, n_units: int = 1) -> TradingPolicy | None:
    """The unit's policy: None for the plain fixed long rule (the driver applies it, as before), a fixed
    long/short :class:`TradingPolicy`, or the tuned one (:func:`fleet.evaluation.costaware.fit_policy` on
    :func:`oof_predictions`).

    ``n_units``: training units in the run (``TrainingUnit.run_units``); the tuned policy's SPA test runs at
    ``policy.spa_alpha / n_units``, seeded with ``config.seed``."""
    from fleet.training.bars import bar_columns

    pc, horizon = config.policy, config.labels.horizon
    if pc.kind is PolicyKind.fixed:
        if pc.sides.value == "long" and not pc.meta_label:
            return None
        return TradingPolicy.fixed(pc.threshold, horizon=horizon, sides=pc.sides.value, cost_bps=pc.cost_bps)
    idx, p = oof_predictions(model, X_train, y_train, config)
    rows = train_meta.iloc[idx].reset_index(drop=True).assign(p_up=p)
    rows["return_1"], rows["bar_number"] = bar_columns(rows, frames)
    rows = rows[np.isfinite(rows["return_1"].to_numpy())]
    return fit_policy(rows, cost_bps=pc.cost_bps, horizon=horizon, sides=pc.sides.value, calibration=pc.calibration,
                      min_t=pc.min_t, select=pc.select, spa_alpha=pc.spa_alpha, n_units=n_units, seed=config.seed)


def unit_meta(config: FleetConfig, model, X_train: pd.DataFrame, y_train: np.ndarray, train_meta: pd.DataFrame,
              frames: dict[str, pd.DataFrame]):
    """The unit's meta-labelling model (:class:`fleet.models.meta.MetaLabeler`) or None (``policy.meta_label`` off).

    Fitted on :func:`oof_predictions`: the primary's out-of-fold P(up) and, as the bet's outcome, the triple-barrier
    return when ``labels.method`` is ``triple_barrier`` (the label the primary learnt), else the h-bar forward return
    (rows whose window is not inside the training window are left out).
    """
    from fleet.features.labels import triple_barrier
    from fleet.models.meta import MetaLabeler

    pc, lab = config.policy, config.labels
    if not pc.meta_label:
        return None
    idx, p = oof_predictions(model, X_train, y_train, config)
    meta = train_meta.iloc[idx].reset_index(drop=True)
    ret = meta["forward_return"].to_numpy(dtype=np.float64, copy=True)
    if lab.method == "triple_barrier":
        for s in meta["symbol"].unique():
            tb = triple_barrier(frames[s]["close"], horizon=lab.horizon, profit_take=lab.profit_take,
                                stop_loss=lab.stop_loss, vol_span=lab.vol_window)
            mask = (meta["symbol"] == s).to_numpy()
            ret[mask] = tb["ret"].reindex(pd.DatetimeIndex(meta.loc[mask, "timestamp"])).to_numpy()
    ok = np.isfinite(ret)
    X = X_train.iloc[idx].reset_index(drop=True)
    return MetaLabeler(threshold=pc.threshold, sides=pc.sides.value).fit(X.loc[ok], p[ok], ret[ok])
