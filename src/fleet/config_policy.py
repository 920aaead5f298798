"""The trading policy's section of the configuration (``policy``): how P(up) becomes positions and what trading
costs. Part of :class:`fleet.config.FleetConfig`; defaults live in these field declarations.
"""

from __future__ import annotations

from enum import Enum

from pydantic import Field, model_validator

from fleet.config_experts import _Section
from fleet.settings import setting


class PolicyKind(str, Enum):
    """How P(up) becomes a position (:mod:`fleet.evaluation.costaware`)."""

    fixed = "fixed"  # p_up > threshold on every bar, a 1/h tranche held h bars
    tuned = "tuned"  # hysteresis / expected-return threshold chosen per unit on inner out-of-fold rows


class Sides(str, Enum):
    long = "long"
    both = "both"


class PolicyConfig(_Section):
    """Trading policy applied to P(up)."""

    kind: PolicyKind = setting(PolicyKind.fixed, name="policy", group="Policy & costs",
                               help="fixed: p_up > threshold on every bar; tuned: a rule chosen per unit on the "
                               "training window's inner out-of-fold predictions.",
                               details="fixed holds a 1/h tranche for h bars. tuned picks a hysteresis rule or an "
                               "expected-return threshold on the calibrated P(up), never on the test block, and keeps "
                               "it only when it passes Hansen's SPA test over the whole candidate grid against "
                               "staying flat (else the unit stays flat); `policy_comparison.csv` sets it beside the "
                               "fixed rule ([policy.md](policy.md)).")
    sides: Sides = setting(Sides.long, group="Policy & costs", help="Long only, or long and short (short when "
                           "p_up < 1 - threshold).")
    calibration: str = Field("isotonic", pattern="^(isotonic|sigmoid)$",
                             description="calibration of P(up) for the expected-return rule (tuned policy)")
    min_t: float = Field(2.0, ge=0.0, description="tuned policy: the chosen rule's out-of-fold P&L (timing or net, see "
                         "select) of the unit's equal-weight book, per timestamp, must have t >= min_t, else the unit "
                         "stays flat")
    select: str = Field("timing", pattern="^(timing|net)$",
                        description="tuned policy: rank candidate rules by their timing P&L (net P&L less a constant "
                        "position of the same mean exposure; a rising training window then picks no buy-and-hold "
                        "look-alike) or by their net P&L")
    spa_alpha: float = Field(0.05, gt=0.0, le=1.0, description="tuned policy: a run trades only when Hansen's SPA "
                             "test over the candidate rules, against staying flat, rejects at this level shared "
                             "among the run's units (1 skips the test)")
    meta_label: bool = setting(False, group="Policy & costs",
                               help="Meta-labelling (AFML 3.6): a secondary model, fitted on the inner out-of-fold "
                               "bets of the fixed rule, keeps only the bets it expects to pay.",
                               details="A logistic regression; works with `--policy fixed` and no forced entry.")
    threshold: float = setting(0.55, gt=0.0, lt=1.0, group="Policy & costs", help="Go long when p_up > threshold.")
    cost_bps: float = setting(10.0, ge=0.0, group="Policy & costs", unit="bps",
                              help="Trading cost per side, charged on turnover (each change of exposure).")
    forced_entry: bool = setting(False, group="Policy & costs",
                                 help="Forced daily entry: per asset and UTC day with no natural signal up to the "
                                 "cut-off bar, go long at the cut-off bar.",
                                 details="See [validation.md](validation.md), forced daily entry.")
    forced_entry_cutoff: str | None = setting(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                                              group="Policy & costs", unit="HH:MM", unset="the day's last bar",
                                              help="UTC time of day of the forced-entry decision bar.",
                                              details="By default the day's last bar: 23:00 on hourly bars.")

    @model_validator(mode="after")
    def _forced_needs_fixed_long(self) -> "PolicyConfig":
        if self.forced_entry and (self.kind is not PolicyKind.fixed or self.sides is not Sides.long):
            raise ValueError(f"forced_entry=True works with kind=fixed, sides=long only (got kind={self.kind.value}, "
                             f"sides={self.sides.value}); use --no-forced-entry")
        if self.meta_label and (self.kind is not PolicyKind.fixed or self.forced_entry):
            raise ValueError("meta_label=True filters the fixed rule's bets: use it with kind=fixed and no forced "
                             "entry")
        return self
