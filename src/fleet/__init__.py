"""fleet: Ray-distributed fleet training of multi-asset trading models."""

__version__ = "0.1.0"
