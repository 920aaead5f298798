"""fleet.models: experts, gates, the mixture of experts (scikit-learn contract), the table of expert
specs (:mod:`fleet.models.specs`) and the served artifact (:mod:`fleet.models.artifact`).

Names are loaded on first use (``from fleet.models import TrendExpert`` imports only the trend
module), so that reading the expert table loads neither scikit-learn nor torch.
"""

from __future__ import annotations

import importlib

_HOME = {
    "ASSET_ID": "_context", "BAR_TIME": "_context", "build_expert": "factory", "build_model": "factory",
    "BestExpertGate": "gate", "RuleGate": "gate", "SelectGate": "gate", "StackGate": "gate", "top_k_weights": "gate",
    "MLPGate": "gate_mlp", "MixtureOfExpertsEnsemble": "moe", "ArchetypeExpert": "pattern", "ConvExpert": "pattern",
    "PatternExpert": "pattern", "MomentumExpert": "momentum", "SDEExpert": "sde", "StressExpert": "stress",
    "TrendExpert": "trend",
    "UnitModel": "artifact", "EXPERTS": "specs", "ExpertSpec": "specs",
}

__all__ = sorted(_HOME)


def __getattr__(name):
    if name in _HOME:
        return getattr(importlib.import_module(f"fleet.models.{_HOME[name]}"), name)
    raise AttributeError(f"module 'fleet.models' has no attribute {name!r}")
