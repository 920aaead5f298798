"""fleet.data: loading and validating bars, the asset registry and the synthetic market.

The lowest layer: it imports nothing else from fleet but ``fleet.errors``.
"""

from fleet.data.load import load_panel
from fleet.data.panel import Panel
from fleet.data.registry import AssetRegistry
from fleet.data.synthetic import SyntheticMarket, synthetic_market

__all__ = ["AssetRegistry", "Panel", "SyntheticMarket", "load_panel", "synthetic_market"]
