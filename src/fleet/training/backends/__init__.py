"""fleet.training.backends."""
