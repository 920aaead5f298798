"""fleet.evaluation: purged walk-forward splits, out-of-sample metrics and trading policies.

Never imports fleet.training / serving / cli (layer rule in ARCHITECTURE.md).
"""

from fleet.evaluation.metrics import (METRIC_COLUMNS, SUMMARY_COLUMNS, equity_returns, icir, information_coefficients,
                                      signal_metrics, summarise, trading_metrics)
from fleet.evaluation.policy import apply_forced_daily_entry, apply_policy, forced_entry_report
from fleet.evaluation.splits import Fold, PurgedWalkForward

__all__ = ["METRIC_COLUMNS", "SUMMARY_COLUMNS", "Fold", "PurgedWalkForward", "apply_forced_daily_entry", "apply_policy",
           "equity_returns", "forced_entry_report", "icir", "information_coefficients", "signal_metrics", "summarise",
           "trading_metrics"]
