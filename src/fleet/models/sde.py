"""SDEExpert: Ornstein–Uhlenbeck / drift-diffusion P(up), calibrated.

The stochastic model itself is fitted per bar by maximum likelihood on a rolling window with
the exact AR(1) discretisation (:func:`fleet.features.ou.rolling_ou`): it gives, in closed
form, P(log price higher after the label horizon) (``sde_p_up``), the mean-reversion speed
``sde_theta`` (1/bar; exposed as a feature to every expert and the gate) and the distance to
the OU mean in stationary standard deviations (``sde_z``). This expert then calibrates those
closed-form numbers to the labels with a (weakly regularised) logistic regression on the
``sde_*`` columns plus asset one-hots, so its output is a probability on the label's scale.
"""

from __future__ import annotations

from fleet.models._tabular import _PrefixLogit


class SDEExpert(_PrefixLogit):
    """Calibrated OU closed-form P(up) (scikit-learn contract).

    Args:
        C: inverse L2 regularisation strength of the calibration.
        class_weight: None (default) or 'balanced'.
        asset_aware: per-asset intercepts (one-hot asset ids); False leaves them out.

    Raises:
        ValueError: in ``fit`` when X has no ``sde_*`` column (enable the 'sde' feature group).
    """

    _prefixes = ("sde_",)
    _name = "sde"

    def __init__(self, C: float = 1.0, class_weight: str | None = None, asset_aware: bool = True):
        self.C = C
        self.class_weight = class_weight
        self.asset_aware = asset_aware
