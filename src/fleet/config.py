"""Typed configuration of a fleet run: the one place where defaults live.

A run is described by a :class:`FleetConfig`, loaded from a YAML fleet spec (see
``fleet/crypto10.yaml``) and/or overridden field by field from the command line.
Every section forbids unknown keys, so a typo in a YAML file is an error naming the
field rather than a silently ignored setting.

Units used throughout: bars (one row of the input data, e.g. one hour), days
(calendar days of 24 h), basis points (1 bp = 1e-4) and log-returns.
"""

from __future__ import annotations

import copy
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fleet.errors import ConfigError


class Strategy(str, Enum):
    """How assets are grouped into training units."""

    islands = "islands"  # one model per asset (seed 002)
    hierarchical = "hierarchical"  # one model per correlation cluster (seed 001)
    global_ = "global"  # one model for the whole fleet


class Backend(str, Enum):
    """Where training units run."""

    local = "local"  # in-process loop
    ray = "ray"  # a pool of Ray actors, one unit per actor call


class FactorMethod(str, Enum):
    """How the market factor is extracted from the dominant cluster."""

    pca = "pca"
    mean = "mean"
    weighted_mean = "weighted_mean"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False, validate_assignment=True)


class DataConfig(_Section):
    """Input data. ``path=None`` runs on the built-in synthetic market."""

    path: str | None = Field(None, description="directory of per-symbol parquet/CSV files, or one long-format file")
    symbols: list[str] | None = Field(None, description="train only these symbols (default: all in the data)")
    days: int = Field(730, gt=0, description="keep the last N calendar days of each asset")


class SyntheticConfig(_Section):
    """Shape of the built-in synthetic market (used when ``data.path`` is unset)."""

    n_clusters: int = Field(3, ge=1)
    assets_per_cluster: int = Field(3, ge=1)
    signal_strength: float = Field(0.08, ge=0.0, lt=1.0, description="AR(1) momentum coefficient of hourly returns")


class FeatureConfig(_Section):
    """Per-asset features (all causal)."""

    return_horizons: list[int] = Field(default_factory=lambda: [1, 4, 12, 24], description="log-return look-backs, bars")
    vol_window: int = Field(24, ge=2, description="rolling volatility window, bars")
    rsi_window: int = Field(14, ge=2, description="Wilder RSI window, bars")
    volume_window: int = Field(168, ge=2, description="volume z-score window, bars")
    max_d: float = Field(0.65, gt=0.0, le=2.0, description="cap on the FFD order d")
    d_step: float = Field(0.05, gt=0.0, le=1.0, description="grid step of the FFD order search")
    ffd_threshold: float = Field(1e-4, gt=0.0, lt=1.0, description="FFD weight cut-off (AFML ch. 5)")
    ffd_max_width: int = Field(2048, ge=2, description="longest FFD window, bars")

    @model_validator(mode="after")
    def _horizons_positive(self) -> "FeatureConfig":
        if not self.return_horizons or any(h < 1 for h in self.return_horizons):
            raise ValueError(f"return_horizons={self.return_horizons}: expected a non-empty list of bars >= 1")
        return self


class LabelConfig(_Section):
    """Labels: y = 1 when the forward log return over ``horizon`` bars is above zero."""

    horizon: int = Field(4, ge=1, description="forward-return horizon, bars")


class ValidationConfig(_Section):
    """Purged walk-forward validation (AFML ch. 7)."""

    folds: int = Field(5, ge=1, description="number of walk-forward test blocks")
    embargo_bars: int = Field(8, ge=0, description="bars dropped between the purged training window and the test block")
    holdout_days: float = Field(0.0, ge=0.0, description="final days kept out of every fold")


class MarketConfig(_Section):
    """Alignment, clustering and the market factor (seed 001)."""

    clusters: int | None = Field(3, ge=1, description="number of clusters (Ward linkage on 1-|corr|)")
    distance_threshold: float | None = Field(None, gt=0.0, description="cut the dendrogram at this distance instead")
    factor_method: FactorMethod = FactorMethod.pca
    max_ffill: int = Field(3, ge=0, description="longest gap forward-filled when aligning, bars")
    min_overlap: float = Field(0.5, gt=0.0, le=1.0, description="fraction of the grid each asset must cover")

    @model_validator(mode="after")
    def _one_cut(self) -> "MarketConfig":
        if self.distance_threshold is not None:
            # A threshold replaces the fixed count; keeping both would be ambiguous.
            object.__setattr__(self, "clusters", None)
        elif self.clusters is None:
            raise ValueError("set either clusters or distance_threshold")
        return self


class TrendConfig(_Section):
    """TrendExpert: gradient-boosting hyper-parameters (:mod:`fleet.models.trend`).

    Heavily regularised by default (small trees, large leaves): next-hours direction labels are
    mostly noise, and looser settings overfit (in-sample AUC ~0.75 vs ~0.52 out of sample on the
    synthetic market; 100/8/1000 gave the best out-of-sample AUC on synthetic and real crypto folds).
    """

    learner: str = Field("hgb", pattern="^(hgb|lightgbm)$", description="hgb (scikit-learn "
                         "HistGradientBoosting) or lightgbm (optional extra: pip install 'fleet[lightgbm]')")
    max_iter: int = Field(100, ge=1, description="boosting iterations (the ceiling with early_stopping)")
    learning_rate: float = Field(0.05, gt=0.0, le=1.0)
    max_leaf_nodes: int = Field(8, ge=2)
    min_samples_leaf: int = Field(1000, ge=1)
    l2_regularization: float = Field(1.0, ge=0.0)
    early_stopping: bool = Field(False, description="choose the iteration count on a purged time-ordered "
                                 "validation tail of the training window, then refit on the whole window")
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


CNN_EXPERTS = ("pattern", "crypto_hft", "equity_intraday", "equity_daily", "futures_trend", "low_vol_etf")
KNOWN_EXPERTS = ("trend", "stress", "sde", *CNN_EXPERTS)
NOT_POSSIBLE_EXPERTS = {"options_skew": "needs implied-volatility surfaces; the data has no implied vols (seed 003)"}


class PatternConfig(_Section):
    """Convolutional experts (PatternExpert and the archetype experts).

    Reduced for CPU by default (the full seed-000 network would take hours per fold on 2 cores):
    16 hidden channels, 3 residual levels, at most 4096 most-recent training windows per fit,
    3 epochs with early stopping (patience 1) on a 20 % time-ordered validation tail.
    """

    window: int = Field(64, ge=2, description="bars per input window")
    hidden: int = Field(16, ge=1, description="channels of the residual blocks")
    levels: int = Field(3, ge=1, description="residual blocks (dilations 1, 2, 4, ...)")
    emb_dim: int = Field(8, ge=1, description="asset embedding width (seed 000)")
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
    """The gate, its training and the guard (seed 003; issue 12)."""

    enabled: bool = Field(True, description="false: only the first expert of `experts`, no gate (seed 003 compatibility)")
    gate: str = Field("best", pattern="^(rule|mlp|stack|best)$",
                      description="best (the default: the unit's single expert with the best inner out-of-fold "
                      "score, the first expert unless another is clearly better; it beat mlp and the GBM alone on "
                      "crypto_1h, see README), mlp (trained gate, mixture likelihood, guarded), stack (logistic "
                      "regression on the experts' logit P(up)) or rule (seed-003 static rules)")
    top_k: int | None = Field(None, ge=1, description="experts per row of the rule / mlp gate (capped at the number "
                              "of experts); None: 2 for rule, all experts (dense) for mlp")
    gate_objective: str = Field("likelihood", pattern="^(likelihood|oracle)$",
                                description="mlp gate: mixture log-likelihood, or seed 003's per-row oracle target")
    balance: str = Field("switch", pattern="^(switch|entropy)$", description="load-balancing term of the MLP gate")
    balance_coef: float = Field(0.001, ge=0.0, description="coefficient of the load-balancing term (the mixture's "
                                "log-loss differences are ~0.001 nats: a large term forces uniform weights)")
    gate_weight_decay: float = Field(1e-3, ge=0.0, description="MLP gate: Adam weight decay (not on the per-expert bias)")
    gate_epochs: int = Field(60, ge=1, description="MLP gate: most epochs (early stopping on a time-ordered 20 % tail)")
    stack_C: float = Field(1.0, gt=0.0, description="stack gate: inverse L2 regularisation of the logistic regression")
    criterion: str = Field("auc", pattern="^(auc|calibrated|log_loss)$",
                           description="how --gate best and the guard score a forecast on the inner out-of-fold rows: "
                           "auc (pooled over the unit's assets), calibrated (log-loss after Platt recalibration) or "
                           "log_loss (raw; prefers weak, well-calibrated experts)")
    inner_folds: int = Field(3, ge=1, description="inner out-of-fold blocks of the training window (K; the window is "
                             "cut into K + 1 time blocks, block k predicted by experts fitted on blocks < k)")
    guard: bool = Field(True, description="fall back to the best single expert when the cross-fitted gate loses to it")
    switch_z: float = Field(1.0, ge=0.0, description="--gate best keeps the first expert listed unless another beats "
                            "it on the inner out-of-fold rows by more than this many AUC standard errors (Hanley & "
                            "McNeil 1982, at AUC 0.5), and the guard keeps a gate only when it beats the best expert by "
                            "as much; 0 = plain argmin (measured: 0 picked weaker experts on noise)")
    min_inner_rows: int = Field(500, ge=1, description="an inner fold whose experts would be fitted on fewer rows is "
                                "skipped; with none left the first expert answers alone")


class ModelConfig(_Section):
    """The model trained inside each unit.

    Default experts: ``trend`` only, so plain ``fleet train`` stays as fast as the single GBM and
    serving stays exact with any request window; the mixture is opt-in with ``--experts`` (the CNN
    experts cost minutes per unit on CPU).
    """

    experts: list[str] = Field(default_factory=lambda: ["trend"])
    asset_aware: bool = Field(True, description="experts see which asset a row belongs to (TrendExpert: asset id "
                              "as a categorical; CNN experts: asset embedding; stress/SDE: per-asset intercepts); "
                              "false: the asset-agnostic ablation (seed 000)")
    trend: TrendConfig = Field(default_factory=TrendConfig)
    pattern: PatternConfig = Field(default_factory=PatternConfig)
    stress: TabularExpertConfig = Field(default_factory=TabularExpertConfig)
    sde: SDEConfig = Field(default_factory=SDEConfig)
    moe: MoEConfig = Field(default_factory=MoEConfig)

    @model_validator(mode="after")
    def _known_experts(self) -> "ModelConfig":
        impossible = [f"{e} ({NOT_POSSIBLE_EXPERTS[e]})" for e in self.experts if e in NOT_POSSIBLE_EXPERTS]
        if impossible:
            raise ValueError(f"experts={self.experts}: not possible: {'; '.join(impossible)}")
        unknown = [e for e in self.experts if e not in KNOWN_EXPERTS]
        if unknown or not self.experts or len(set(self.experts)) != len(self.experts):
            raise ValueError(f"experts={self.experts}: expected a non-empty list of distinct names from "
                             f"{list(KNOWN_EXPERTS)}")
        return self

    def active_experts(self) -> list[str]:
        """Experts actually trained: all of them, or only the first when the MoE is disabled."""
        return list(self.experts) if self.moe.enabled else list(self.experts[:1])

    def uses_cnn(self) -> bool:
        """True when a convolutional expert is trained (the unit then wants a GPU when there is one)."""
        return any(e in CNN_EXPERTS for e in self.active_experts())

    def feature_groups(self) -> tuple[str, ...]:
        """Extra per-bar feature families the experts and gate need: 'stress', 'sde', 'fingerprint'."""
        active = self.active_experts()
        groups = []
        if "stress" in active:
            groups.append("stress")
        if "sde" in active:
            groups.append("sde")
        if len(active) > 1:
            groups.append("fingerprint")
        return tuple(groups)


class PolicyConfig(_Section):
    """Trading policy applied to P(up)."""

    threshold: float = Field(0.55, gt=0.0, lt=1.0, description="go long when p_up > threshold")
    cost_bps: float = Field(10.0, ge=0.0, description="cost per side, basis points")
    forced_entry: bool = Field(False, description="forced daily entry (seed 002): per asset and UTC day with no "
                               "natural signal up to the cut-off bar, go long at the cut-off bar")
    forced_entry_cutoff: str | None = Field(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                                            description="UTC time of day HH:MM of the forced-entry decision bar "
                                            "(default: the day's last bar, 23:00 on hourly bars)")


class EvaluationConfig(_Section):
    """How results are measured and repeated."""

    bars_per_year: float | None = Field(None, gt=0.0, description="bars per year for annualising "
                                        "(default: inferred by Panel.bars_per_year: 8760 hourly 24/7, 252 daily equities)")
    seeds: int = Field(1, ge=1, description="repeat the run with seeds seed..seed+seeds-1 and report mean and std")
    report: bool = Field(False, description="write the HTML report (fleet report) into RUN_DIR/report/ at the end of "
                         "the run")


class ResourcesConfig(_Section):
    """Where and with what units run."""

    backend: Backend = Backend.local
    address: str | None = Field(None, description="Ray address of a running cluster (default: RAY_ADDRESS, else the "
                                "latest `ray start` cluster on this machine, else a new local Ray)")
    num_cpus: float = Field(1.0, gt=0.0, description="CPUs each unit's actor asks Ray for")
    num_gpus: float = Field(0.0, ge=0.0, description="GPUs (fractions allowed) each unit's actor asks Ray for")
    cnn_num_gpus: float = Field(0.5, ge=0.0, description="GPUs (fractions allowed) each step of a CNN expert (its "
                                "inner-fold and full-window fits) asks Ray for when the cluster has GPUs (the larger "
                                "of this and num_gpus); 1/cnn_num_gpus such steps share a GPU")


class FleetConfig(_Section):
    """A whole fleet run. Defaults here are the defaults everywhere (CLI, YAML, library)."""

    name: str = "fleet"
    strategy: Strategy = Strategy.hierarchical
    seed: int = 0
    out: str | None = Field(None, description="run directory (default runs/<timestamp>)")
    registry: str | None = Field(None, description="asset registry JSON shared by runs (created if missing, "
                                 "extended with new symbols, never renumbered); None: per-run ids")
    data: DataConfig = Field(default_factory=DataConfig)
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    labels: LabelConfig = Field(default_factory=LabelConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    market: MarketConfig = Field(default_factory=MarketConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain JSON-ready data (enums as strings)."""
        return self.model_dump(mode="json")


#: Keyword overrides shared by ``fleet train`` options and :func:`fleet.train`: keyword -> dotted field.
#: The keyword is the option's name with ``-`` -> ``_`` (``--num-cpus`` -> ``num_cpus``).
OVERRIDES: dict[str, str] = {
    "data": "data.path", "symbols": "data.symbols", "days": "data.days", "strategy": "strategy",
    "backend": "resources.backend", "address": "resources.address", "num_cpus": "resources.num_cpus",
    "num_gpus": "resources.num_gpus", "cnn_num_gpus": "resources.cnn_num_gpus", "folds": "validation.folds", "horizon": "labels.horizon",
    "embargo_bars": "validation.embargo_bars", "holdout_days": "validation.holdout_days",
    "clusters": "market.clusters", "distance_threshold": "market.distance_threshold",
    "factor_method": "market.factor_method", "max_d": "features.max_d", "threshold": "policy.threshold",
    "cost_bps": "policy.cost_bps", "forced_entry": "policy.forced_entry",
    "forced_entry_cutoff": "policy.forced_entry_cutoff", "bars_per_year": "evaluation.bars_per_year",
    "seeds": "evaluation.seeds", "report": "evaluation.report", "experts": "model.experts",
    "gate": "model.moe.gate", "top_k": "model.moe.top_k", "balance_coef": "model.moe.balance_coef",
    "inner_folds": "model.moe.inner_folds", "guard": "model.moe.guard", "learner": "model.trend.learner",
    "early_stopping": "model.trend.early_stopping", "asset_aware": "model.asset_aware",
    "moe_enabled": "model.moe.enabled", "seed": "seed", "out": "out", "registry": "registry",
}
_LIST_OVERRIDES = ("symbols", "experts")  # "A,B" or ["A", "B"]


def dotted_overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword overrides (see :data:`OVERRIDES`) as the dotted overrides of :func:`build_config`.

    ``symbols`` and ``experts`` take a comma-separated string or a list; ``None`` values are kept
    (and skipped by :func:`build_config`), so unset options keep the spec's / default value.

    Raises:
        ConfigError: an unknown keyword (names the close matches).
    """
    import difflib

    out = {}
    for key, value in values.items():
        if key not in OVERRIDES:
            close = difflib.get_close_matches(key, list(OVERRIDES), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown override {key}={value!r}{hint} (known: {', '.join(OVERRIDES)})")
        if key in _LIST_OVERRIDES and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()] or None
        out[OVERRIDES[key]] = value
    return out


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    *parents, leaf = dotted.split(".")
    for key in parents:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted}={value!r}: '{key}' is not a section")
        node = child
    node[leaf] = value


def _format_validation_error(err: ValidationError, source: str) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(top level)"
        given = e.get("input")
        shown = "" if isinstance(given, dict) else f"={given!r}"
        parts.append(f"{field}{shown}: {e['msg']}")
    return f"{source}: invalid configuration: " + "; ".join(parts)


def build_config(raw: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
                 *, source: str = "configuration") -> FleetConfig:
    """Validate a raw mapping plus dotted overrides into a :class:`FleetConfig`.

    Args:
        raw: nested mapping as read from YAML (may be None or empty).
        overrides: ``{"validation.folds": 3, "strategy": "islands"}``; ``None`` values are skipped so
            CLI options left unset keep the YAML / default value.
        source: name used in error messages (the YAML path, or "command line").

    Raises:
        ConfigError: naming every invalid field, the value given and what was expected.
    """
    tree = copy.deepcopy(dict(raw or {}))
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_dotted(tree, dotted, value)
    try:
        return FleetConfig.model_validate(tree)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> FleetConfig:
    """Load a YAML fleet spec (optional) and apply CLI overrides.

    Args:
        path: YAML file whose top-level keys mirror :class:`FleetConfig` (``name``, ``strategy``,
            ``data``, ``validation`` ...). Relative ``data.path`` values are taken relative to the
            current working directory, like command-line paths; a relative ``registry`` is taken
            relative to the spec's own directory (the spec and its registry belong together, from
            wherever the run starts). An override (``--registry``) is taken as given.
        overrides: dotted-key overrides, see :func:`build_config`.

    Raises:
        ConfigError: the file is missing, is not YAML, is not a mapping, or holds invalid fields.
    """
    raw: dict[str, Any] = {}
    source = "command line"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"{p}: fleet spec not found (expected a YAML file such as fleet/crypto10.yaml)")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(f"{p}: not valid YAML: {err}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: expected a mapping of sections at the top level, got {type(loaded).__name__}")
        raw = loaded
        registry = raw.get("registry")
        if isinstance(registry, str) and registry and not Path(registry).expanduser().is_absolute():
            raw = {**raw, "registry": str(p.resolve().parent / registry)}
    return build_config(raw, overrides, source=source)
