"""The feature settings of a run: one frozen record, built once from the configuration.

:class:`FeatureSpec` holds every setting the feature pipeline (:mod:`fleet.features.pipeline`) and the
extra families (:mod:`fleet.features.families`) read: the ``features`` section, the extra families the
experts and gate ask for, the label horizon (the OU forecast horizon of the ``sde`` family) and the
rolling OU window. :meth:`FeatureSpec.from_config` is its only constructor from a configuration; the
training driver builds it once per run, every training unit carries it, the dataset builder and the
history check read it, and each unit's served artifact (:class:`fleet.models.artifact.UnitModel`) stores
it, so serving computes its inputs from the artifact's spec and never from the configuration.

Nothing here imports :mod:`fleet.config`: :meth:`FeatureSpec.from_config` reads the configuration's sections by
attribute.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

@dataclass(frozen=True)
class FeatureSpec:
    """Every feature setting of a run (all windows and horizons in bars).

    Attributes:
        return_horizons: log-return look-backs of the technical features, bars (``features.return_horizons``).
        vol_window, rsi_window, volume_window: rolling volatility, Wilder RSI and volume z-score windows, bars.
        max_d, d_step: cap and grid step of the FFD order search (AFML ch. 5).
        ffd_threshold, ffd_max_width: FFD weight cut-off and longest FFD window, bars.
        groups: extra feature families the experts and gate need (``ModelConfig.feature_groups()``),
            names of :data:`fleet.features.families.FAMILY_NAMES`.
        horizon: label horizon, bars (``labels.horizon``; the ``sde`` family's forecast horizon).
        sde_window: rolling OU fit window of the ``sde`` family, bars (``model.sde.window``).
    """

    return_horizons: tuple[int, ...] = (1, 4, 12, 24)
    vol_window: int = 24
    rsi_window: int = 14
    volume_window: int = 168
    max_d: float = 0.65
    d_step: float = 0.05
    ffd_threshold: float = 1e-4
    ffd_max_width: int = 2048
    groups: tuple[str, ...] = ()
    horizon: int = 1
    sde_window: int = 168

    @classmethod
    def from_config(cls, config: Any) -> "FeatureSpec":
        """The spec of a configuration: a :class:`fleet.config.FleetConfig`, or any object with its sections
        ``features`` (:class:`fleet.config.FeatureConfig`), ``model`` (:class:`fleet.config.ModelConfig`, or
        None for a single-model configuration: no extra families) and ``labels`` (its ``horizon``, bars).
        """
        features, model = config.features, config.model
        settings = features.model_dump()
        settings["return_horizons"] = tuple(int(h) for h in features.return_horizons)
        if model is not None:
            settings.update(groups=tuple(model.feature_groups()), sde_window=int(model.sde.window))
        return cls(horizon=int(config.labels.horizon), **settings)

    def to_dict(self) -> dict:
        """The spec as JSON-ready values (tuples as lists); :meth:`from_dict` reads it back."""
        out = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureSpec":
        """The spec of :meth:`to_dict`'s output. Raises ValueError naming an unknown key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"FeatureSpec: unknown settings {unknown}; expected some of {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

