"""Builds the estimator a training unit fits, from the typed configuration.

The one seam between configuration and models: the training unit asks for "the model" and gets
an unfitted estimator with the scikit-learn contract (``fit(X, y, sample_weight=None)`` /
``predict_proba`` of shape (n, 2)). One expert -> that expert alone; several -> a
:class:`~fleet.models.moe.MixtureOfExpertsEnsemble` with the configured gate. Experts are built
by their row of :data:`fleet.models.specs.EXPERTS` and gates by theirs of :data:`~fleet.models.specs.GATES`;
there is no per-expert or per-gate code here.

``config`` arguments are :class:`fleet.config.ModelConfig` objects (read by attribute; this module
does not import :mod:`fleet.config`, which itself reads the expert table).
"""

from __future__ import annotations

from fleet.models._openmp import torch_first
from fleet.models.specs import BuildContext, expert_spec, gate_spec


def _context(config, seed: int, horizon: int, num_threads: int | None) -> BuildContext:
    return BuildContext(asset_aware=config.asset_aware, seed=seed, horizon=horizon, num_threads=num_threads)


def build_expert(name: str, config, *, seed: int, horizon: int = 1, num_threads: int | None = None):
    """One unfitted expert by name: its estimator with its config section's fields as parameters, plus the
    run-level values its row asks for (see :data:`fleet.models.specs.EXPERTS`).

    Args:
        name: the expert; config: the ``model`` section (``ModelConfig``); seed: random seed;
        horizon: label horizon in bars (purge of the experts' own validation tails);
        num_threads: CPU threads for torch experts (the unit's CPU reservation).

    Raises:
        ValueError: unknown name.
    """
    spec = expert_spec(name)
    return spec.build(getattr(config, spec.config_section), _context(config, seed, horizon, num_threads))


def build_gate(config, n_experts: int, *, seed: int, horizon: int = 1):
    """The unfitted gate named by ``config.moe.gate`` for ``n_experts`` experts (its row of
    :data:`fleet.models.specs.GATES`)."""
    return gate_spec(config.moe.gate).build(config.moe, n_experts, _context(config, seed, horizon, None))


def needs_torch(config) -> bool:
    """True when the model of ``config`` (``ModelConfig``) holds a torch network: a CNN expert, or a torch gate
    of a mixture."""
    names = config.active_experts()
    return any(expert_spec(n).uses_torch for n in names) or (len(names) > 1 and gate_spec(config.moe.gate).uses_torch)


def has_gpu_steps(config, num_gpus: float = 0.0) -> bool:
    """True when a unit of the model of ``config`` (``ModelConfig``) may ask Ray for a GPU: a ``gpu`` expert
    (``ModelConfig.uses_cnn``), or every step asking for ``num_gpus`` > 0."""
    return num_gpus > 0 or config.uses_cnn()


def build_model(config, *, seed: int, horizon: int = 1, embargo: int = 0, num_threads: int | None = None):
    """Return an unfitted estimator for ``config.experts``.

    Args:
        config: the ``model`` section of the fleet configuration (``ModelConfig``).
        seed: random seed of the unit (same seed -> same model on every backend).
        horizon: label horizon in bars (purge before each inner out-of-fold block).
        embargo: further bars dropped there (the outer folds' embargo).
        num_threads: CPU threads for torch experts (the unit's CPU reservation).
    """
    if needs_torch(config):
        torch_first()  # before the first expert's scikit-learn import (fleet.models._openmp)
    names = config.active_experts()
    experts = [(n, build_expert(n, config, seed=seed, horizon=horizon, num_threads=num_threads)) for n in names]
    if len(experts) == 1:
        return experts[0][1]
    from fleet.models.moe import MixtureOfExpertsEnsemble

    m = config.moe
    return MixtureOfExpertsEnsemble(experts, gate=build_gate(config, len(experts), seed=seed, horizon=horizon),
                                    inner_folds=m.inner_folds, purge_bars=horizon, embargo_bars=embargo, guard=m.guard,
                                    criterion=m.criterion, min_inner_rows=m.min_inner_rows,
                                    switch_z=m.switch_z, recalibrate=m.recalibrate)
