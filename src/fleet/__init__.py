"""fleet: Ray-distributed fleet training of multi-asset trading models.

Python API (docs/python-api.md), loaded on first use so that ``import fleet`` stays as light as before::

    import fleet
    run = fleet.train(frame_or_path, days=180, folds=2)   # -> fleet.Run
    run.results["asset"]; run.predictions; run.predict(bars)
    run = fleet.load_run("runs/2026-01-01T00-00-00")

Errors are :mod:`fleet.errors` exceptions (``fleet.errors.DataError`` ...), never ``sys.exit``.
"""

# Neither torch nor Ray is imported here: `import fleet` and `fleet --help` stay fast. The OpenMP load
# order (torch before scikit-learn where a CNN or the MLP gate is trained) is kept by those code paths,
# see fleet/models/_openmp.py.

from fleet._version import __version__

__all__ = ["train", "load_run", "Run", "FleetConfig", "errors", "__version__"]


def train(data=None, config=None, **kwargs):
    """Train a fleet and return its :class:`fleet.Run`; see :func:`fleet.api.train`."""
    from fleet.api import train as _train

    return _train(data, config, **kwargs)


def load_run(path):
    """Open a finished run directory as a :class:`fleet.Run`; see :func:`fleet.api.load_run`."""
    from fleet.api import load_run as _load_run

    return _load_run(path)


def __getattr__(name):
    # Lazy attributes: fleet.Run, fleet.FleetConfig, fleet.errors without importing them up front.
    if name == "Run":
        from fleet.api import Run

        return Run
    if name == "FleetConfig":
        from fleet.config import FleetConfig

        return FleetConfig
    if name == "errors":
        import fleet.errors as errors

        return errors
    raise AttributeError(f"module 'fleet' has no attribute {name!r}")
