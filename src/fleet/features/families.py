"""The registry of extra feature families: what an expert (or the gate) can ask the pipeline for.

Every unit computes the base features (technical features of :mod:`fleet.features.technical`, the
FFD log close, the market factor). An expert spec (:mod:`fleet.models.specs`) names the *extra*
families it needs on top; each family here says:

* ``name``      what specs and ``ModelConfig.feature_groups()`` call it;
* ``compute``   ``(frame, features) -> (n_bars, k) DataFrame``, causal, NaN during its warm-up; ``features``: the
  run's :class:`~fleet.features.spec.FeatureSpec` (horizon, OU window, return horizons);
* ``columns``   input columns it needs (``close``); ``optional``: output column -> the further input
  columns it needs, computed only when they are present (close-only data gets fewer features, never
  invented ones; serving asks a request for them when the model has that column);
* ``warmup``    ``(features, bar) -> bars`` a value needs to equal the value computed on a long history
  (full windows): what serving asks a request for and what the history check adds;
* ``prefix``    of its output columns (the trend expert leaves these columns out, see
  :func:`extra_prefixes`); ``scaled``: False leaves the family unscaled by the per-asset
  preprocessor (the fingerprint, so the rule gate's thresholds keep their units).

Adding a family: a function in a module of ``features/`` plus one :class:`FeatureFamily` row in
:data:`FAMILIES`. The order of :data:`FAMILIES` is the column order of the design matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fleet.features.factor_returns import FACTOR_RETURN_PREFIX, factor_return_warmup, factor_returns
from fleet.features.fingerprint import FINGERPRINT_PREFIX, fingerprint, fingerprint_warmup
from fleet.features.ou import SDE_PREFIX, ou_warmup, rolling_ou
from fleet.features.spec import FeatureSpec
from fleet.features.stress import STRESS_PREFIX, stress_features, stress_warmup


@dataclass(frozen=True)
class FeatureFamily:
    """One extra feature family (see the module docstring for the fields)."""

    name: str
    compute: Callable[[pd.DataFrame, FeatureSpec], pd.DataFrame]
    columns: tuple[str, ...]
    optional: Mapping[str, tuple[str, ...]]
    warmup: Callable[[FeatureSpec, pd.Timedelta | None], int]
    prefix: str
    scaled: bool = True


def _fingerprint_warmup(features: FeatureSpec, bar: pd.Timedelta | None) -> int:
    if bar is None:
        raise ValueError("fingerprint warm-up: the bar length is needed (bar)")
    return fingerprint_warmup(bar)


FAMILIES: tuple[FeatureFamily, ...] = (
    FeatureFamily("stress", compute=lambda frame, p: stress_features(frame), columns=("close",),
                  optional={"stress_volume_shock": ("volume",)}, warmup=lambda p, bar: stress_warmup(),
                  prefix=STRESS_PREFIX),
    FeatureFamily("sde", compute=lambda frame, p: rolling_ou(np.log(frame["close"]), window=p.sde_window,
                                                            horizon=p.horizon),
                  columns=("close",), optional={}, warmup=lambda p, bar: ou_warmup(p.sde_window), prefix=SDE_PREFIX),
    FeatureFamily("fingerprint", compute=lambda frame, p: fingerprint(frame), columns=("close",),
                  optional={"fp_spread": ("high", "low"), "fp_volume_z": ("volume",)}, warmup=_fingerprint_warmup,
                  prefix=FINGERPRINT_PREFIX, scaled=False),
    # the market factor summed over the return horizons; reads the frame's market_factor column, which the
    # pipeline adds from the run's factor (not a column of the data, so not in `columns`)
    FeatureFamily("factor", compute=lambda frame, p: factor_returns(frame, p.return_horizons), columns=("close",),
                  optional={}, warmup=lambda p, bar: factor_return_warmup(p.return_horizons),
                  prefix=FACTOR_RETURN_PREFIX),
)
FAMILY_NAMES: tuple[str, ...] = tuple(f.name for f in FAMILIES)


def family(name: str) -> FeatureFamily:
    """The registered family ``name``; ValueError naming the known ones otherwise."""
    for f in FAMILIES:
        if f.name == name:
            return f
    raise ValueError(f"feature family {name!r}: unknown; expected one of {list(FAMILY_NAMES)}")


def selected(groups: tuple[str, ...]) -> list[FeatureFamily]:
    """The families named in ``groups``, in registry order (ValueError on an unknown name)."""
    for g in groups:
        family(g)
    return [f for f in FAMILIES if f.name in groups]


def extra_prefixes() -> tuple[str, ...]:
    """Column prefixes of every extra family (``stress_``, ``sde_``, ``fp_``)."""
    return tuple(f.prefix for f in FAMILIES)


def unscaled_prefixes() -> tuple[str, ...]:
    """Column prefixes the per-asset preprocessor leaves unscaled (mean 0, std 1)."""
    return tuple(f.prefix for f in FAMILIES if not f.scaled)


def input_columns(feature_names) -> set[str]:
    """Input columns the extra-family features among ``feature_names`` need (``close`` plus the optional
    columns of those present, e.g. ``fp_spread`` -> high, low)."""
    names = set(feature_names)
    out = set()
    for f in FAMILIES:
        if any(n.startswith(f.prefix) for n in names):
            out.update(f.columns)
        for column, needs in f.optional.items():
            if column in names:
                out.update(needs)
    return out


def compute_families(frame: pd.DataFrame, features: FeatureSpec) -> list[pd.DataFrame]:
    """The families of ``features.groups`` on one asset's bars, each (n_bars, n_family_features), in registry order."""
    return [f.compute(frame, features) for f in selected(features.groups)]


def full_warmup(features: FeatureSpec, bar: pd.Timedelta | None) -> int:
    """Longest full-window warm-up of the families of ``features.groups`` at bar length ``bar``, in bars (0 for
    none). Raises ValueError when ``bar`` is None and the fingerprint family is among them."""
    return max((f.warmup(features, bar) for f in selected(features.groups)), default=0)
