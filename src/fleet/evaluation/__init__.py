"""fleet.evaluation: purged walk-forward splits, out-of-sample metrics and trading policies.

Never imports fleet.training / serving / cli (layer rule in ARCHITECTURE.md).
"""

from fleet.evaluation.metrics import (SE_COLUMNS, SUMMARY_COLUMNS, exposure, icir, information_coefficients,
                                      mark_to_market, per_asset_auc, portfolio_returns, segments_of, signal_metrics,
                                      summarise, trading_metrics)
from fleet.evaluation.policy import apply_forced_daily_entry, apply_policy, forced_entry_report
from fleet.evaluation.splits import Fold, PurgedWalkForward

__all__ = ["SE_COLUMNS", "SUMMARY_COLUMNS", "Fold", "PurgedWalkForward", "apply_forced_daily_entry", "apply_policy",
           "exposure", "forced_entry_report", "icir", "information_coefficients", "mark_to_market", "per_asset_auc",
           "portfolio_returns", "segments_of", "signal_metrics", "summarise", "trading_metrics"]
