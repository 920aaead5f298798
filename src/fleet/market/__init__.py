"""fleet.market."""
