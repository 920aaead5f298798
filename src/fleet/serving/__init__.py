"""fleet.serving."""
