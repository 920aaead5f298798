"""Configuration sections of the experts and the gate (TrendConfig, PatternConfig, the tabular experts'
sections, MoEConfig), and the base every section of :class:`fleet.config.FleetConfig` builds on.

Kept apart from ``config.py`` so each module stays a readable size; ``fleet.config`` re-exports them.
Defaults live in these field declarations only, never in the code that reads them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from fleet.models.specs import (GATE_NAMES, SELECT_BASE_RATE_MODES, gate_spec, gates_help, select_base_rate_mode,
                               top_k_default_help)
from fleet.settings import setting


class _Section(BaseModel):
    # defer_build: the validators are built on first use, not at import (`fleet --help` builds none).
    model_config = ConfigDict(extra="forbid", use_enum_values=False, validate_assignment=True, defer_build=True)



class TrendConfig(_Section):
    """TrendExpert: gradient-boosting hyper-parameters (:mod:`fleet.models.trend`).

    Heavily regularised by default (small trees, large leaves): next-hours direction labels are
    mostly noise, and looser settings overfit (in-sample AUC ~0.75 vs ~0.52 out of sample on the
    synthetic market; 100/8/1000 gave the best out-of-sample AUC on synthetic and real crypto folds).
    """

    learner: str = setting("hgb", pattern="^(hgb|lightgbm)$", group="Model",
                           help="TrendExpert's booster: scikit-learn HistGradientBoosting, or LightGBM (pip install "
                           "'fleet[lightgbm]').", details="A missing lightgbm package is refused up front.")
    max_iter: int = Field(100, ge=1, description="boosting iterations (the ceiling with early_stopping)")
    learning_rate: float = Field(0.05, gt=0.0, le=1.0)
    max_leaf_nodes: int = Field(8, ge=2)
    min_samples_leaf: int = Field(1000, ge=1)
    l2_regularization: float = Field(1.0, ge=0.0)
    early_stopping: bool = setting(False, group="Model",
                                   help="TrendExpert: choose the boosting iterations on a purged time-ordered tail of "
                                   "the training window, then refit on the whole window.",
                                   details="The tail is `model.trend.validation_fraction` of the window's timestamps, "
                                   "the patience `model.trend.n_iter_no_change`, and `max_iter` the ceiling.")
    validation_fraction: float = Field(0.2, gt=0.0, lt=1.0, description="share of the training window's "
                                       "timestamps in the early-stopping tail")
    n_iter_no_change: int = Field(10, ge=1, description="early-stopping patience, iterations")

    @model_validator(mode="after")
    def _lightgbm_installed(self) -> "TrendConfig":
        if self.learner == "lightgbm":
            import importlib.util

            if importlib.util.find_spec("lightgbm") is None:
                raise ValueError("learner='lightgbm' needs the lightgbm package: pip install 'fleet[lightgbm]' "
                                 "(or use learner hgb)")
        return self


class PatternConfig(_Section):
    """Convolutional experts (PatternExpert and the archetype experts).

    Reduced for CPU by default (the full-size network would take hours per fold on 2 cores):
    16 hidden channels, 3 residual levels, at most 4096 most-recent training windows per fit,
    3 epochs with early stopping (patience 1) on a 20 % time-ordered validation tail.
    """

    window: int = Field(64, ge=2, description="bars per input window")
    hidden: int = Field(16, ge=1, description="channels of the residual blocks")
    levels: int = Field(3, ge=1, description="residual blocks (dilations 1, 2, 4, ...)")
    emb_dim: int = Field(8, ge=1, description="asset embedding width (learned per-asset vector, "
                         "Guo & Berkhahn 2016 entity embeddings)")
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(3e-3, gt=0.0)
    patience: int = Field(1, ge=0, description="epochs without validation improvement before stopping")
    max_train_windows: int | None = Field(4096, ge=1, description="most recent training windows per fit (None = all)")
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="time-ordered validation tail for early stopping")
    unknown_asset: str = Field("mean", pattern="^(mean|error)$", description="unseen asset: mean embedding or error")


class TabularExpertConfig(_Section):
    """Stress / SDE experts: logistic regressions on their feature family."""

    C: float = Field(0.1, gt=0.0, description="inverse L2 regularisation")


class SDEConfig(TabularExpertConfig):
    """SDE expert: rolling OU maximum-likelihood window and its calibration."""

    C: float = Field(1.0, gt=0.0)
    window: int = Field(168, ge=10, description="rolling OU fit window, bars")


class MoEConfig(_Section):
    """The gate, its training and the guard."""

    enabled: bool = setting(True, name="moe_enabled", flags=("--moe",), group="Model",
                            help="--no-moe: only the first of --experts, no gate.")
    gate: Literal[GATE_NAMES] = setting("select", group="Model", help=f"Gate of the mixture: {', '.join(GATE_NAMES)}.",
                                        details=f"{gates_help()}.")
    top_k: int | None = setting(None, ge=1, group="Model", unset=top_k_default_help(),
                                help="Experts each row is routed to by a routing gate (renormalised weights).",
                                details="Capped at the number of experts.")

    @field_validator("gate", mode="before")
    @classmethod
    def _known_gate(cls, value: str) -> str:
        try:
            gate_spec(value)  # the table of gate specs, read when validating
        except ValueError as err:
            raise PydanticCustomError("unknown_name", "{message}", {"message": str(err)}) from None
        return value

    gate_objective: str = Field("likelihood", pattern="^(likelihood|oracle)$",
                                description="mlp gate: mixture log-likelihood (Jacobs et al. 1991), or the per-row "
                                "oracle target (the expert closest to the label)")
    balance: str = Field("switch", pattern="^(switch|entropy)$", description="load-balancing term of the MLP gate")
    balance_coef: float = setting(0.001, ge=0.0, group="Model",
                                  help="Coefficient of the MLP gate's load-balancing term.",
                                  details="The mixture's log-loss differences are about 0.001 nats: a large term "
                                  "forces uniform weights.")
    gate_weight_decay: float = Field(1e-3, ge=0.0,
                                     description="MLP gate: Adam weight decay (not on the per-expert bias)")
    gate_epochs: int = Field(60, ge=1, description="MLP gate: most epochs (early stopping on a time-ordered 20 % tail)")
    stack_C: float = Field(1.0, gt=0.0, description="stack gate: inverse L2 regularisation of the logistic regression")
    select_rounds: int = Field(50, ge=1, description="select gate: most copies in the ensemble (the weights are "
                               "multiples of 1/rounds; with the equal start every expert keeps at least 1/rounds)")
    select_criterion: str = Field("log_loss", pattern="^(asset_auc|auc|calibrated|log_loss)$",
                                  description="select gate: the loss each copy must lower: log_loss (the mixture's "
                                  "own likelihood, the default; like the pooled AUC it also rewards an expert that "
                                  "knows which asset drifts up), asset_auc (the mean over (inner block, "
                                  "asset) groups of the AUC inside the group: timing only), auc (pooled over the "
                                  "unit's rows) or calibrated")
    select_start: str = Field("equal", pattern="^(equal|best)$",
                              description="select gate: start from one copy of every expert (equal, the default; "
                              "with no out-of-fold row the equal weights answer) or from the best single expert "
                              "(best)")
    select_base_rate: str = Field("choose", pattern=f"^({'|'.join(SELECT_BASE_RATE_MODES)})$",
                                  description="select gate: the out-of-fold base rate P(up) as a constant candidate, "
                                  "so that the log-loss shrinks over-confident experts with it rather than with copies "
                                  "of the narrowest expert. choose (the default): it only chooses the experts' "
                                  "weights, which are served renormalised to 1; mix: it is served too, each unit "
                                  "compressed toward its own base rate; off: experts only. true/false are read as "
                                  "mix/off")

    @field_validator("select_base_rate", mode="before")
    @classmethod
    def _base_rate_bool(cls, value):
        # YAML's true/false keep their old meaning; any other value is left to the pattern
        return select_base_rate_mode(value) if isinstance(value, bool) else value

    criterion: str = Field("asset_auc", pattern="^(asset_auc|auc|calibrated|log_loss)$",
                           description="how --gate best, the guard and the best expert it compares against score a "
                           "forecast on the inner out-of-fold rows: asset_auc (the default: the mean over (inner "
                           "block, asset) groups of the AUC inside the group, so timing within each asset and not "
                           "which asset drifted up), auc (pooled over the unit's assets: rewards both), calibrated "
                           "(log-loss after Platt recalibration) or log_loss (raw; prefers weak, well-calibrated "
                           "experts)")
    inner_folds: int = setting(3, ge=1, group="Model",
                               help="Inner out-of-fold blocks of each training window that the gate learns from.",
                               details="K: the window is cut into K + 1 time blocks, block k predicted by experts "
                               "fitted on blocks < k.")
    guard: bool = setting(True, group="Model",
                          help="Fall back to the best single expert when the cross-fitted gate loses to it.",
                          details="Guards mlp, stack and rule; `best` is that expert, and `select` keeps a copy of an "
                          "expert only where the out-of-fold loss falls.")
    switch_z: float = Field(0.0, ge=0.0, description="--gate best keeps the first expert listed unless another beats "
                            "it on the inner out-of-fold rows by more than this many standard errors of the "
                            "criterion's AUC (Hanley & McNeil 1982, at AUC 0.5, counting n / horizon rows for "
                            "overlapping labels, AFML ch. 4.4; for asset_auc each block's assets are summed as if "
                            "perfectly correlated, a conservative bound, fleet.models.criteria), "
                            "and the guard keeps a gate only when it beats the best expert by as much; 0 = plain "
                            "argmin (the default)")
    recalibrate: str = setting("off", pattern="^(asset|off)$", group="Model",
                               help="Per-asset level of the mixture: off, or asset (each asset's mean P(up) set to its "
                               "up-rate).",
                               details="off (the default): the gate's mixture as it is; asset: each asset's "
                               "mixture P(up) gets the logit intercept that sets its mean on the inner out-of-fold "
                               "rows to its up-rate there (calibration in the large): it can move the pooled AUC, "
                               "which mixes each asset's level with timing, and leaves every asset's own ranking, so "
                               "its per-asset AUC, unchanged.")
    min_inner_rows: int = Field(500, ge=1, description="an inner fold whose experts would be fitted on fewer rows is "
                                "skipped; with none left the first expert answers alone (the select gate's equal start "
                                "keeps equal weights)")
