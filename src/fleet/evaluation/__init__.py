"""fleet.evaluation: purged walk-forward splits and out-of-sample metrics.

Never imports fleet.training / serving / cli (layer rule in ARCHITECTURE.md).
"""

from fleet.evaluation.metrics import METRIC_COLUMNS, signal_metrics, summarise
from fleet.evaluation.splits import Fold, PurgedWalkForward

__all__ = ["METRIC_COLUMNS", "Fold", "PurgedWalkForward", "signal_metrics", "summarise"]
