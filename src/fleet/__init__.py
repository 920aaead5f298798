"""fleet: Ray-distributed fleet training of multi-asset trading models.

Python API (docs/python-api.md), loaded on first use so that ``import fleet`` stays as light as before::

    import fleet
    run = fleet.train(frame_or_path, days=180, folds=2)   # -> fleet.Run
    run.results["asset"]; run.predictions; run.predict(bars)
    run = fleet.load_run("runs/2026-01-01T00-00-00")

Errors are :mod:`fleet.errors` exceptions (``fleet.errors.DataError`` ...), never ``sys.exit``.
"""

# PyTorch's OpenMP runtime must load before scikit-learn's vendored one: when scikit-learn's
# libgomp is loaded first, a later `import torch` makes HistGradientBoosting fits 3-4x slower
# (measured here: the same 20k-row fit took 1.1 s instead of 0.28 s). Every fleet process —
# CLI driver, Ray actors, Serve replicas — imports this package first, so the order holds
# everywhere; torch is a dependency and was imported by the model layer anyway.
import torch as _torch  # noqa: F401  (import order, see above)

__version__ = "0.1.0"

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
