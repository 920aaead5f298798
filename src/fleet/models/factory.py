"""Builds the estimator a training unit fits, from the typed configuration.

The one seam between configuration and models: the training unit asks for "the model"
and gets an unfitted estimator with the scikit-learn contract (``fit(X, y,
sample_weight=None)`` / ``predict_proba`` of shape (n, 2)). The mixture of experts plugs in
here without touching units or backends.
"""

from __future__ import annotations

from fleet.config import ModelConfig
from fleet.models.trend import TrendExpert


def build_model(config: ModelConfig, *, seed: int):
    """Return an unfitted estimator for ``config.experts``.

    Args:
        config: the ``model`` section of the fleet configuration.
        seed: random seed of the unit (same seed -> same model on every backend).

    Raises:
        ConfigError: via config validation when an unknown expert is named.
    """
    # Only the TrendExpert exists yet; the mixture of experts (issue 3) replaces this branch.
    t = config.trend
    return TrendExpert(max_iter=t.max_iter, learning_rate=t.learning_rate, max_leaf_nodes=t.max_leaf_nodes,
                       min_samples_leaf=t.min_samples_leaf, l2_regularization=t.l2_regularization,
                       random_state=seed)
