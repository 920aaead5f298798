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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from fleet.config_experts import (MoEConfig, PatternConfig, SDEConfig, TabularExpertConfig, TrendConfig,  # noqa: F401
                                  _Section)
from fleet.errors import ConfigError
from fleet.models import specs as _specs


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



class DataConfig(_Section):
    """Input data. ``path=None`` runs on the built-in synthetic market."""

    path: str | None = Field(None, description="directory of per-symbol parquet/CSV files, or one long-format file")
    symbols: list[str] | None = Field(None, description="train only these symbols (default: all in the data)")
    days: int = Field(730, gt=0, description="keep the last N calendar days of the data: one window, ending at the latest bar of any asset, for every asset")


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
    """Labels: y = 1 when the forward log return over ``horizon`` bars is above zero (``fixed_horizon``), or
    when the profit-take barrier is touched first / the vertical barrier closes up (``triple_barrier``,
    AFML ch. 3; :mod:`fleet.features.labels`)."""

    horizon: int = Field(4, ge=1, description="forward-return horizon, bars (the vertical barrier)")
    method: str = Field("fixed_horizon", pattern="^(fixed_horizon|triple_barrier)$",
                        description="fixed_horizon sign label, or the triple-barrier label")
    profit_take: float = Field(1.0, gt=0.0, description="triple barrier: profit-take at this multiple of the "
                               "rolling volatility of h-bar returns")
    stop_loss: float = Field(1.0, gt=0.0, description="triple barrier: stop-loss at this multiple of it")
    vol_window: int = Field(100, ge=2, description="triple barrier: EWM span (bars) of the volatility estimate")


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
    cluster_on: str = Field("returns", pattern="^(returns|residual|ffd)$",
                            description="what is correlated: raw returns, residual returns after the market "
                            "factor (fitted on the same window), or FFD log prices (seed 001)")
    min_cluster_size: int = Field(1, ge=1, description="a cluster with fewer assets joins its nearest cluster")
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



# Expert names come from the table of expert specs (fleet.models.specs.EXPERTS), the one place that lists them.
CNN_EXPERTS = tuple(s.name for s in _specs.EXPERTS if s.resource == _specs.GPU)
KNOWN_EXPERTS = _specs.EXPERT_NAMES
NOT_POSSIBLE_EXPERTS = _specs.NOT_POSSIBLE




class ModelConfig(_Section):
    """The model trained inside each unit.

    Default experts: ``trend`` only, so plain ``fleet train`` stays as fast as the single GBM and
    serving stays exact with any request window; the mixture is opt-in with ``--experts`` (the CNN
    experts cost minutes per unit on CPU).
    """

    experts: list[str] = Field(default_factory=lambda: ["trend"])
    asset_aware: bool = Field(True, description="experts see which asset a row belongs to (TrendExpert: asset id "
                              "as a categorical; CNN experts: asset embedding; stress/SDE: per-asset intercepts); "
                              "false: the asset-agnostic ablation")
    trend: TrendConfig = Field(default_factory=TrendConfig)
    pattern: PatternConfig = Field(default_factory=PatternConfig)
    stress: TabularExpertConfig = Field(default_factory=TabularExpertConfig)
    sde: SDEConfig = Field(default_factory=SDEConfig)
    momentum: TabularExpertConfig = Field(default_factory=TabularExpertConfig)
    moe: MoEConfig = Field(default_factory=MoEConfig)

    @field_validator("experts")
    @classmethod
    def _known_experts(cls, experts: list[str]) -> list[str]:
        impossible = [f"{e} ({_specs.NOT_POSSIBLE[e]})" for e in experts if e in _specs.NOT_POSSIBLE]
        why = f"not possible: {'; '.join(impossible)}" if impossible else None
        for e in experts if why is None else ():
            try:
                _specs.expert_spec(e)  # the table of expert specs, read when validating
            except ValueError as err:
                why = str(err)
                break
        if why is None and (not experts or len(set(experts)) != len(experts)):
            why = f"expected a non-empty list of distinct names from {[s.name for s in _specs.EXPERTS]}"
        if why is not None:  # a custom error: the message without the validation library's prefix
            raise PydanticCustomError("expert_names", "{why}", {"why": why})
        return experts

    def active_experts(self) -> list[str]:
        """Experts actually trained: all of them, or only the first when the MoE is disabled."""
        return list(self.experts) if self.moe.enabled else list(self.experts[:1])

    def uses_cnn(self) -> bool:
        """True when a ``gpu``-kind expert (a CNN) is trained: the unit then wants a GPU when there is one."""
        return any(_specs.expert_spec(e).resource == _specs.GPU for e in self.active_experts())

    def feature_groups(self) -> tuple[str, ...]:
        """Extra per-bar feature families the experts and gate need (from their specs): 'stress', 'sde',
        'fingerprint' (the gate's, with several experts)."""
        return _specs.feature_groups(self.active_experts())


class PolicyKind(str, Enum):
    """How P(up) becomes a position (:mod:`fleet.evaluation.costaware`)."""

    fixed = "fixed"  # p_up > threshold on every bar, a 1/h tranche held h bars
    tuned = "tuned"  # hysteresis / expected-return threshold chosen per unit on inner out-of-fold rows


class Sides(str, Enum):
    long = "long"
    both = "both"


class PolicyConfig(_Section):
    """Trading policy applied to P(up)."""

    kind: PolicyKind = Field(PolicyKind.fixed, description="fixed threshold, or tuned per unit on the training "
                             "window's inner out-of-fold predictions (hysteresis / expected-return threshold)")
    sides: Sides = Field(Sides.long, description="long only, or both (short when p_up < 1 - threshold)")
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
    meta_label: bool = Field(False, description="meta-labelling (AFML 3.6): a secondary model, fitted on the inner "
                             "out-of-fold bets of the fixed rule, keeps only the bets it expects to pay")
    threshold: float = Field(0.55, gt=0.0, lt=1.0, description="go long when p_up > threshold")
    cost_bps: float = Field(10.0, ge=0.0, description="cost per side, basis points")
    forced_entry: bool = Field(False, description="forced daily entry: per asset and UTC day with no "
                               "natural signal up to the cut-off bar, go long at the cut-off bar")
    forced_entry_cutoff: str | None = Field(None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
                                            description="UTC time of day HH:MM of the forced-entry decision bar "
                                            "(default: the day's last bar, 23:00 on hourly bars)")

    @model_validator(mode="after")
    def _forced_needs_fixed_long(self) -> "PolicyConfig":
        if self.forced_entry and (self.kind is not PolicyKind.fixed or self.sides is not Sides.long):
            raise ValueError(f"forced_entry=True works with kind=fixed, sides=long only (got kind={self.kind.value}, "
                             f"sides={self.sides.value}); use --no-forced-entry")
        if self.meta_label and (self.kind is not PolicyKind.fixed or self.forced_entry):
            raise ValueError("meta_label=True filters the fixed rule's bets: use it with kind=fixed and no forced entry")
        return self


class EvaluationConfig(_Section):
    """How results are measured and repeated."""

    bars_per_year: float | None = Field(None, gt=0.0, description="bars per year for annualising "
                                        "(default: inferred by Panel.bars_per_year: 8760 hourly 24/7, 252 daily equities)")
    seeds: int = Field(1, ge=1, description="repeat the run with seeds seed..seed+seeds-1 and report mean and std")
    bootstrap_reps: int = Field(200, ge=0, description="stationary block bootstrap draws over timestamps behind every "
                                "standard error in the results tables (0: no standard errors)")
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
    "cost_bps": "policy.cost_bps", "forced_entry": "policy.forced_entry", "policy": "policy.kind",
    "sides": "policy.sides", "meta_label": "policy.meta_label", "labels": "labels.method", "cluster_on": "market.cluster_on",
    "min_cluster_size": "market.min_cluster_size",
    "forced_entry_cutoff": "policy.forced_entry_cutoff", "bars_per_year": "evaluation.bars_per_year",
    "seeds": "evaluation.seeds", "report": "evaluation.report", "bootstrap_reps": "evaluation.bootstrap_reps", "experts": "model.experts",
    "gate": "model.moe.gate", "top_k": "model.moe.top_k", "balance_coef": "model.moe.balance_coef",
    "inner_folds": "model.moe.inner_folds", "guard": "model.moe.guard", "recalibrate": "model.moe.recalibrate",
    "learner": "model.trend.learner",
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
    import yaml  # here, not at import: `fleet --help` reads no YAML
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
