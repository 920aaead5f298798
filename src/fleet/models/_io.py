"""Save / load of fitted estimators (pickle; torch modules are moved to CPU before pickling)."""

from __future__ import annotations

import pickle
from pathlib import Path


def save_estimator(estimator, path) -> None:
    """Pickle ``estimator`` to ``path`` (parent directories are created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("wb") as fh:
        pickle.dump(estimator, fh, protocol=pickle.HIGHEST_PROTOCOL)


def load_estimator(path, cls):
    """Load a pickled estimator and check it is a ``cls``.

    Raises:
        TypeError: the file holds something else.
    """
    with Path(path).open("rb") as fh:
        obj = pickle.load(fh)
    if not isinstance(obj, cls):
        raise TypeError(f"{path}: holds a {type(obj).__name__}, expected {cls.__name__}")
    return obj


class PersistMixin:
    """``save(path)`` / ``cls.load(path)`` for every expert, gate and ensemble (one implementation)."""

    def save(self, path) -> None:
        """Pickle this fitted estimator to ``path``."""
        save_estimator(self, path)

    @classmethod
    def load(cls, path):
        """Load an estimator saved with :meth:`save`; TypeError if the file holds another class."""
        return load_estimator(path, cls)
