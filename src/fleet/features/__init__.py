"""fleet.features."""
