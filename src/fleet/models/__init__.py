"""fleet.models: experts, gates and the mixture of experts (scikit-learn contract)."""

from fleet.models._context import ASSET_ID, BAR_TIME
from fleet.models.factory import build_expert, build_model
from fleet.models.gate import BestExpertGate, MLPGate, RuleGate, StackGate, top_k_weights
from fleet.models.moe import MixtureOfExpertsEnsemble
from fleet.models.pattern import ArchetypeExpert, ConvExpert, PatternExpert
from fleet.models.sde import SDEExpert
from fleet.models.stress import StressExpert
from fleet.models.trend import TrendExpert

__all__ = ["ASSET_ID", "BAR_TIME", "ArchetypeExpert", "BestExpertGate", "ConvExpert", "MLPGate", "MixtureOfExpertsEnsemble",
           "PatternExpert", "RuleGate", "SDEExpert", "StackGate", "StressExpert", "TrendExpert", "build_expert", "build_model",
           "top_k_weights"]
