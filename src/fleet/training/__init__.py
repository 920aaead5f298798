"""fleet.training."""
