"""fleet.data."""
