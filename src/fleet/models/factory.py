"""Builds the estimator a training unit fits, from the typed configuration.

The one seam between configuration and models: the training unit asks for "the model" and gets
an unfitted estimator with the scikit-learn contract (``fit(X, y, sample_weight=None)`` /
``predict_proba`` of shape (n, 2)). One expert -> that expert alone; several -> a
:class:`~fleet.models.moe.MixtureOfExpertsEnsemble` with the configured gate.
"""

from __future__ import annotations

from fleet.config import CNN_EXPERTS, ModelConfig
from fleet.features.fingerprint import FINGERPRINT_PREFIX
from fleet.features.stress import STRESS_PREFIX
from fleet.models.gate import BestExpertGate, MLPGate, RuleGate, StackGate
from fleet.models.moe import MixtureOfExpertsEnsemble
from fleet.models.pattern import ArchetypeExpert, PatternExpert
from fleet.models.sde import SDEExpert
from fleet.models.stress import StressExpert
from fleet.models.trend import TrendExpert


#: Feature families computed for the other experts and the gate of a mixture (stress, SDE, fingerprint).
#: The trend expert leaves them out so that it is the same model inside a mixture as alone: with them it
#: scored 0.5442 against 0.5459 alone (crypto_1h, 730 days, 5 folds, hierarchical; benchmarks/quality.py).
MIXTURE_ONLY_PREFIXES = (STRESS_PREFIX, "sde_", FINGERPRINT_PREFIX)


def build_expert(name: str, config: ModelConfig, *, seed: int, horizon: int = 1, num_threads: int | None = None):
    """One unfitted expert by name (see ``fleet.config.KNOWN_EXPERTS``).

    Raises:
        ValueError: unknown name.
    """
    if name == "trend":
        t = config.trend
        return TrendExpert(learner=t.learner, max_iter=t.max_iter, learning_rate=t.learning_rate,
                           max_leaf_nodes=t.max_leaf_nodes, min_samples_leaf=t.min_samples_leaf,
                           l2_regularization=t.l2_regularization, early_stopping=t.early_stopping,
                           validation_fraction=t.validation_fraction, n_iter_no_change=t.n_iter_no_change,
                           purge_bars=horizon, asset_aware=config.asset_aware, num_threads=None,
                           random_state=seed, exclude_prefixes=MIXTURE_ONLY_PREFIXES)
    if name == "stress":
        return StressExpert(C=config.stress.C, asset_aware=config.asset_aware)
    if name == "sde":
        return SDEExpert(C=config.sde.C, asset_aware=config.asset_aware)
    if name in CNN_EXPERTS:
        p = config.pattern
        kw = dict(window=p.window, hidden=p.hidden, levels=p.levels, emb_dim=p.emb_dim, epochs=p.epochs,
                  batch_size=p.batch_size, lr=p.lr, patience=p.patience, max_train_windows=p.max_train_windows,
                  val_fraction=p.val_fraction, purge_bars=horizon, unknown_asset=p.unknown_asset,
                  asset_aware=config.asset_aware,
                  num_threads=num_threads, random_state=seed)
        return PatternExpert(**kw) if name == "pattern" else ArchetypeExpert(archetype=name, **kw)
    raise ValueError(f"expert={name!r}: unknown")


def build_gate(config: ModelConfig, n_experts: int, *, seed: int, horizon: int = 1):
    """The unfitted gate named by ``config.moe.gate`` (rule | mlp | stack | best)."""
    m = config.moe
    if m.gate == "rule":
        return RuleGate(top_k=min(m.top_k or 2, n_experts))
    k = min(m.top_k or n_experts, n_experts)
    if m.gate == "stack":
        return StackGate(C=m.stack_C)
    if m.gate == "best":
        return BestExpertGate(criterion=m.criterion, switch_z=m.switch_z, horizon=horizon)
    return MLPGate(top_k=k, objective=m.gate_objective, balance=m.balance, balance_coef=m.balance_coef,
                   epochs=m.gate_epochs, weight_decay=m.gate_weight_decay, purge_bars=horizon, random_state=seed)


def build_model(config: ModelConfig, *, seed: int, horizon: int = 1, embargo: int = 0, num_threads: int | None = None):
    """Return an unfitted estimator for ``config.experts``.

    Args:
        config: the ``model`` section of the fleet configuration.
        seed: random seed of the unit (same seed -> same model on every backend).
        horizon: label horizon in bars (purge before each inner out-of-fold block).
        embargo: further bars dropped there (the outer folds' embargo).
        num_threads: CPU threads for torch experts (the unit's CPU reservation).
    """
    names = config.active_experts()
    experts = [(n, build_expert(n, config, seed=seed, horizon=horizon, num_threads=num_threads)) for n in names]
    if len(experts) == 1:
        return experts[0][1]
    m = config.moe
    return MixtureOfExpertsEnsemble(experts, gate=build_gate(config, len(experts), seed=seed, horizon=horizon),
                                    inner_folds=m.inner_folds, purge_bars=horizon, embargo_bars=embargo, guard=m.guard,
                                    criterion=m.criterion, min_inner_rows=m.min_inner_rows,
                                    switch_z=m.switch_z)
