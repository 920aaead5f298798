"""The hold-out: the last fold's models predict the final days kept out of every fold."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from fleet.config import FleetConfig
from fleet.market.fold import FoldMarket
from fleet.training.unit import UnitResult


def predict_holdout(results: list[UnitResult], frames: Mapping[str, pd.DataFrame], final: FoldMarket, *,
                    timeline_end: pd.Timestamp, config: FleetConfig) -> pd.DataFrame:
    """The last fold's models predict the hold-out: every bar after ``timeline_end`` whose label
    (h bars ahead, on the asset's own bars) is in the data.

    ``frames``: symbol -> the asset's bars over the run's window (``Panel.frames``, or the run's
    :class:`~fleet.data.bars.BarReader`, which reads each asset from the bar cache when asked for).

    Features are computed on the asset's whole history (they are causal); the models, the FFD order,
    the scaling and the market-factor loadings were all fitted on the last fold's training window, which
    ends before the last test block, itself before the hold-out: nothing fitted has seen a hold-out bar.

    Returns:
        Rows in the layout of the walk-forward predictions (timestamp, symbol, fold = the last fold's index,
        p_up, signal = p_up > threshold, y, forward_return, return_1, bar_number, cluster, and per expert
        p_<expert>, w_<expert>); empty when the hold-out holds no labelled bar.
    """
    from fleet.evaluation.costaware import apply_positions
    from fleet.features.labels import binary_label, forward_log_return
    from fleet.training.bars import bar_columns

    horizon = config.labels.horizon
    names = config.model.active_experts()
    parts = []
    for r in results:
        if r.model is None:
            continue
        for symbol in sorted(r.model.preprocessors):
            frame = frames[symbol]
            fwd = forward_log_return(frame["close"], horizon)
            X = r.model.design_matrix(symbol, frame, final.factor)
            ok = (X.notna().all(axis=1) & fwd.notna() & (frame.index > timeline_end)).to_numpy()
            if not ok.any():
                continue
            Xh = X.loc[ok]
            est = r.model.estimator
            if hasattr(est, "predict_details"):
                p_up, expert_p, weights = est.predict_details(Xh)
            else:
                p_up = est.predict_proba(Xh)[:, 1]
                expert_p, weights = p_up[:, None], np.ones((len(p_up), 1))
            rows = pd.DataFrame({"timestamp": frame.index[ok], "symbol": symbol, "fold": r.fold, "p_up": p_up})
            rows["signal"] = (p_up > config.policy.threshold).astype(np.int8)
            rows["y"] = binary_label(fwd[ok]).to_numpy().astype(np.int64)
            rows["forward_return"] = fwd[ok].to_numpy()
            rows["return_1"], rows["bar_number"] = bar_columns(rows, frames)
            rows["cluster"] = int(final.clusters.cluster_map[symbol])
            for j, name in enumerate(names):
                rows[f"p_{name}"] = expert_p[:, j]
                rows[f"w_{name}"] = weights[:, j]
            if getattr(r.model, "meta", None) is not None:
                rows["meta_keep"] = r.model.meta.allow(Xh, p_up)
            parts.append(apply_positions(rows, getattr(r.model, "policy", None)))
    if not parts:
        return pd.DataFrame(columns=["timestamp", "symbol", "fold", "p_up", "signal", "y", "forward_return",
                                     "return_1", "bar_number", "cluster"])
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)

