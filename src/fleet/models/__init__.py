"""fleet.models."""
