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

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from fleet.config_experts import (MoEConfig, PatternConfig, SDEConfig, TabularExpertConfig, TrendConfig,  # noqa: F401
                                  _Section)
from fleet.config_policy import PolicyConfig
from fleet.errors import ConfigError
import fleet.models.specs as _specs
from fleet.settings import KeywordMap, setting, to_dotted


class Strategy(str, Enum):
    """How assets are grouped into training units."""

    islands = "islands"  # one model per asset
    hierarchical = "hierarchical"  # one model per correlation cluster
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

    path: str | None = setting(None, name="data", group="Data", unset="built-in synthetic market",
                               help="Directory of per-symbol parquet/CSV files, or one long-format file; a local "
                               "path or an s3:// / gs:// URI.", details="Layout and checks: [data.md](data.md).")
    symbols: list[str] | None = setting(None, group="Data", unset="all in the data", help="Comma-separated symbols "
                                        "to train.")
    days: int | None = setting(None, gt=0, group="Data", unit="days",
                               unset="730 on intraday bars, all the history on daily bars",
                               help="Keep the last N calendar days of the data: one window, ending at the latest bar "
                               "of any asset, for every asset.", details="An asset whose data ends early keeps what it "
                               "has inside the window. Unset, the window follows the bar length: two years of "
                               "intraday bars, or every day of daily (and longer) bars, which two years would hold "
                               "too few of for the folds.")


class SyntheticConfig(_Section):
    """Shape of the built-in synthetic market (used when ``data.path`` is unset)."""

    n_clusters: int = Field(3, ge=1)
    assets_per_cluster: int = Field(3, ge=1)
    signal_strength: float = Field(0.08, ge=0.0, lt=1.0, description="AR(1) momentum coefficient of hourly returns")


class FeatureConfig(_Section):
    """Per-asset features (all causal)."""

    return_horizons: list[int] = Field(default_factory=lambda: [1, 4, 12, 24],
                                       description="log-return look-backs, bars")
    vol_window: int = Field(24, ge=2, description="rolling volatility window, bars")
    rsi_window: int = Field(14, ge=2, description="Wilder RSI window, bars")
    volume_window: int = Field(168, ge=2, description="volume z-score window, bars")
    max_d: float = setting(0.65, gt=0.0, le=2.0, group="Model",
                           help="Cap on the FFD order d (each asset takes the smallest d whose series passes the ADF "
                           "test).", details="Fractional differencing with a fixed-width window, AFML ch. 5.")
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

    horizon: int = setting(4, ge=1, group="Validation", unit="bars",
                           help="Label horizon: y = 1 when the forward log return over this many bars is above zero.",
                           details="Also the vertical barrier of the triple-barrier label; training rows are purged "
                           "on each label's end.")
    method: str = setting("fixed_horizon", name="labels", pattern="^(fixed_horizon|triple_barrier)$",
                          group="Validation", help="Label: the sign of the horizon's return, or the triple-barrier "
                          "label (AFML ch. 3).",
                          details="triple_barrier: profit-take / stop-loss at `labels.profit_take` / "
                          "`labels.stop_loss` times an EWM volatility of horizon-bar returns, vertical barrier at "
                          "`--horizon`; training rows are purged on each label's actual end ([policy.md](policy.md)).")
    profit_take: float = Field(1.0, gt=0.0, description="triple barrier: profit-take at this multiple of the "
                               "rolling volatility of h-bar returns")
    stop_loss: float = Field(1.0, gt=0.0, description="triple barrier: stop-loss at this multiple of it")
    vol_window: int = Field(100, ge=2, description="triple barrier: EWM span (bars) of the volatility estimate")


class ValidationConfig(_Section):
    """Purged walk-forward validation (AFML ch. 7)."""

    folds: int = setting(5, ge=1, group="Validation",
                         help="Purged walk-forward folds: expanding training windows, test blocks split on timestamps.")
    embargo_bars: int = setting(8, ge=0, flags=("--embargo",), group="Validation", unit="bars",
                                help="Bars dropped between the purged training window and each test block.")
    holdout_days: float = setting(0.0, ge=0.0, group="Validation", unit="days",
                                  help="Final days kept out of every fold and predicted once, at the end, by the "
                                  "last fold's models.", details="Written to `holdout_predictions/` and "
                                  "`results_holdout.csv`: the only untouched test of a run.")


class MarketConfig(_Section):
    """Alignment, clustering and the market factor."""

    clusters: int | None = setting(3, ge=1, group="Model", help="Number of Ward clusters on 1-|corr|.")
    distance_threshold: float | None = setting(None, gt=0.0, group="Model",
                                               help="Cut the dendrogram at this distance instead of --clusters.")
    factor_method: FactorMethod = setting(FactorMethod.pca, group="Model",
                                          help="Market factor of the dominant cluster: first principal component, "
                                          "mean, or dollar-volume weighted mean.")
    cluster_on: str = setting("returns", pattern="^(returns|residual|ffd)$", group="Model",
                              help="What the clustering correlates: raw returns, residual returns after the market "
                              "factor, or FFD log prices.",
                              details="residual: after the market factor fitted on the same window, clustered on "
                              "(1 - corr)/2; ffd: FFD log prices (AFML ch. 5).")
    min_cluster_size: int = setting(1, ge=1, group="Model", unit="assets",
                                    help="A cluster with fewer assets joins its nearest cluster (average distance).")
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

    experts: list[str] = setting(default_factory=lambda: ["trend"], group="Model",
                                 help=f"Comma-separated experts: {', '.join(_specs.EXPERT_NAMES)} (several -> mixture "
                                 "of experts).", details="The experts, gates and guard: [mixture.md](mixture.md).")
    asset_aware: bool = setting(True, group="Model", help="Experts see which asset a row belongs to; "
                                "--no-asset-aware is the asset-agnostic ablation.",
                                details="TrendExpert: the asset id as a categorical; CNN experts: an asset embedding; "
                                "stress/SDE: per-asset intercepts. The MLP gate keeps its asset embedding.")
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


class EvaluationConfig(_Section):
    """How results are measured and repeated."""

    bars_per_year: float | None = setting(None, gt=0.0, group="Output", unit="bars/year",
                                          unset="inferred: 8760 hourly 24/7, 252 daily equities",
                                          help="Bars per year for annualising.",
                                          details="Inferred from the bar spacing by `Panel.bars_per_year`.")
    seeds: int = setting(1, ge=1, group="Validation",
                         help="Repeat the run with seeds seed..seed+N-1; --out then holds seed<k>/ runs and "
                         "results_seeds.csv (mean, std).")
    bootstrap_reps: int = setting(200, ge=0, group="Validation",
                                  help="Stationary block bootstrap draws over timestamps behind the standard errors "
                                  "of the results tables (0: none).")
    report: bool = setting(False, group="Output", help="Write the HTML report (as `fleet report`) into "
                           "RUN_DIR/report/ at the end of the run.",
                           details="The report and its figures: [run-directory.md](run-directory.md).")
    book_k: int | None = setting(None, ge=1, group="Output", unit="assets", unset="max(1, assets / 5)",
                                 help="Assets held by the fleet's top-k dropout long book (results_book.csv).")
    book_drop: int | None = setting(None, ge=0, group="Output", unit="assets", unset="max(1, k / 5)",
                                    help="Assets the top-k book sells (and buys) at most per rebalance.")


class ResourcesConfig(_Section):
    """Where and with what units run."""

    backend: Backend = setting(Backend.local, group="Cluster",
                               help="Run units in-process, or on a pool of Ray actors (one step of a unit per actor "
                               "call).", details="`ray` keeps warm pools of actors, restarted by Ray if a worker "
                               "dies; each actor takes seconds to start, so on one machine it pays off for fleets of "
                               "multi-second units and for mixtures with a CNN ([clusters.md](clusters.md)).")
    address: str | None = setting(None, group="Cluster", unset="RAY_ADDRESS, else the latest `ray start` cluster on "
                                  "this machine, else a new local Ray",
                                  help="Ray cluster address, HOST:PORT of its head.",
                                  details="`ray job submit` sets RAY_ADDRESS; `--resume` accepts `--address` to "
                                  "finish a run on another cluster.")
    num_cpus: float = setting(1.0, gt=0.0, group="Cluster", unit="CPUs", help="CPUs each unit's Ray actor asks for.")
    num_gpus: float = setting(0.0, ge=0.0, group="Cluster", unit="GPUs", help="GPUs (fractions allowed) each unit's "
                              "Ray actor asks for.")
    cnn_num_gpus: float = setting(0.5, ge=0.0, group="Cluster", unit="GPUs",
                                  help="GPUs (fractions allowed) each step of a CNN expert asks for when the cluster "
                                  "has GPUs, so 1/f such steps share a GPU.",
                                  details="A CNN step is one inner-fold or full-window fit; it asks for the larger "
                                  "of this and `--num-gpus`.")


class FleetConfig(_Section):
    """A whole fleet run. Defaults here are the defaults everywhere (CLI, YAML, library)."""

    name: str = "fleet"
    strategy: Strategy = setting(Strategy.hierarchical, group="Model",
                                 help="Training units: one model per asset (islands), per correlation cluster "
                                 "(hierarchical) or for the whole fleet (global).",
                                 details="`benchmarks/paired.py RUN_A RUN_B` compares two strategies on the same rows "
                                 "with paired standard errors.")
    seed: int = setting(0, group="Validation", help="Random seed: the same seed gives the same results on any backend.")
    refit: bool = setting(False, group="Validation",
                          help="After the walk-forward, fit every unit once more on all the data up to the last bar "
                          "(before the hold-out); fleet serve and fleet.Run.predict then use these models.",
                          details="The same units and task graph, clustering and market factor fitted on the whole "
                          "window; with `--holdout-days` the window ends before the hold-out, which stays unseen. It "
                          "predicts no test block and is in no results table; its models are `models/refit/` "
                          "([serving.md](serving.md)). In a spec: `refit: true`.")
    out: str | None = setting(None, flags=("-o", "--out"), group="Output", unset="runs/<UTC timestamp>",
                              help="Run directory (must not exist), or an object-store URI s3://BUCKET/PREFIX or "
                              "gs://BUCKET/PREFIX (must be empty).", details="For an S3-compatible server add "
                              "`?endpoint_override=HOST:PORT&scheme=http` to the URI.")
    registry: str | None = setting(None, group="Data", unset="none: per-run ids", help="Asset registry JSON shared "
                                   "by runs: created if missing, extended with new symbols, never renumbered.",
                                   details="Relative to the current directory on the command line, to the spec's "
                                   "directory in a spec (`registry:`); extended under a file lock (`PATH.lock`) with "
                                   "appended ids and version + 1; a renumbered or corrupted file is refused. Without "
                                   "it a run numbers its own symbols (sorted) and says the ids are not stable.")
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


#: Keyword overrides shared by ``fleet train`` options and :func:`fleet.train`: keyword -> dotted field, read
#: from the settings of :class:`FleetConfig` when used (a field declared with ``setting`` is an override at once).
OVERRIDES: Mapping[str, str] = KeywordMap(lambda: FleetConfig)


def dotted_overrides(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword overrides (see :data:`OVERRIDES`) as the dotted overrides of :func:`build_config`.

    List settings (``symbols``, ``experts``) take a comma-separated string or a list; ``None`` values are kept
    (and skipped by :func:`build_config`), so unset options keep the spec's / default value.

    Raises:
        ConfigError: an unknown keyword (names the close matches).
    """
    return to_dotted(FleetConfig, values)


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
        msg = _unknown_key(e["loc"]) if e["type"] == "extra_forbidden" else e["msg"]
        parts.append(f"{field}{shown}: {msg}")
    return f"{source}: invalid configuration: " + "; ".join(parts)


def _unknown_key(loc: tuple) -> str:
    """A key the spec does not know, with the closest key of its section (``unknown key 'fold' (did you mean
    'folds'?)``)."""
    model = FleetConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return "unknown key"
        model = field.annotation
    return _specs.unknown_name("key", loc[-1], list(model.model_fields))


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
