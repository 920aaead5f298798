"""fleet.features: fractional differentiation, technical features and labels.

Everything here works on one asset at a time and is causal, except the labels, which look
``horizon`` bars ahead by design.
"""

from fleet.features.fracdiff import FFDChoice, choose_d, ffd_weights, frac_diff_ffd
from fleet.features.labels import binary_label, forward_log_return
from fleet.features.technical import FEATURE_REQUIREMENTS, technical_features, warmup_bars

__all__ = [
    "FEATURE_REQUIREMENTS",
    "FFDChoice",
    "binary_label",
    "choose_d",
    "ffd_weights",
    "forward_log_return",
    "frac_diff_ffd",
    "technical_features",
    "warmup_bars",
]
