"""fleet.models: experts and (later) the gate and mixture of experts."""

from fleet.models.factory import build_model
from fleet.models.trend import ASSET_ID, TrendExpert

__all__ = ["ASSET_ID", "TrendExpert", "build_model"]
