"""fleet.market: what needs the whole fleet at once — alignment, clustering, market factor.

Imports only fleet.data / fleet.features / fleet.errors (layer rule in ARCHITECTURE.md).
"""

from fleet.market.align import align_log_returns
from fleet.market.clustering import ClusterResult, WardClusterer, cluster_assets, correlation_distance
from fleet.market.factor import FACTOR_METHODS, MarketFactor

__all__ = [
    "FACTOR_METHODS",
    "ClusterResult",
    "MarketFactor",
    "WardClusterer",
    "align_log_returns",
    "cluster_assets",
    "correlation_distance",
]
