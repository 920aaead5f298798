"""fleet.evaluation."""
