"""The tables of expert and gate specs: everything the rest of fleet knows about an expert or a gate, in one row.

Each :class:`ExpertSpec` gives

* ``name``            what ``--experts`` / ``model.experts`` call it;
* ``estimator``       ``"module:Class"`` of its scikit-learn estimator (``fit(X, y)`` / ``predict_proba`` -> (n, 2)),
  imported when the expert is built;
* ``config_section``  the :class:`fleet.config.ModelConfig` field holding its hyper-parameters: the section's fields
  are the estimator's parameters of the same names (``Expert(**section.model_dump(), **context)``);
* ``context``         which run-level values (:class:`BuildContext`) the estimator also takes;
* ``extra``           parameters that are neither in the section nor run-level (the archetype's name);
* ``feature_fields``  fields of the section that set the expert's feature family, not the estimator;
* ``feature_groups``  extra feature families it needs (:data:`fleet.features.families.FAMILIES`);
* ``resource``        ``"cpu"`` or ``"gpu"``: a ``gpu`` expert is a torch network that asks for a GPU
  when the cluster has one (``resources.cnn_num_gpus``) and needs torch's OpenMP runtime loaded
  before scikit-learn's (:func:`fleet.models._openmp.torch_first`);
* ``rule_hints``      rule-gate regime -> score bonus (:data:`fleet.models.gate.REGIMES`);
* ``summary``         one line for ``fleet train --help``.

Each :class:`GateSpec` gives the gate's estimator, which ``model.moe`` fields it takes, whether the guard checks it,
whether it needs torch, its default ``top_k`` and how the console describes it.

``fleet.config`` (names, feature groups, GPU use, validation), ``models/factory.py`` (building), ``models/moe.py``
(the guard), ``models/gate.py`` (the rule gate), the driver's console line, the report and ``cli.py`` (``--experts``
help, ``--gate`` choices) read these tables; no other module lists expert or gate names.
Adding an expert: its estimator module in ``models/`` (its parameters named as its config section's fields) and one
row here. Estimators are imported when built, so that listing experts and gates (``fleet --help``, config validation)
loads no torch.

This module imports nothing from fleet at import time and nothing heavy (it is read at start-up).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

CPU, GPU = "cpu", "gpu"


def closest_name(name: object, known) -> str | None:
    """The name of ``known`` closest to ``name`` (:func:`difflib.get_close_matches`), or None when none is close."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return close[0] if close else None


def unknown_name(kind: str, name: object, known) -> str:
    """The refusal of an unknown ``kind`` name: ``unknown expert 'momentun' (did you mean 'momentum'?)``, the
    closest of ``known`` by :func:`difflib.get_close_matches`, or the known names when none is close."""
    close = closest_name(name, known)
    hint = f"did you mean {close!r}?" if close else f"expected one of {', '.join(known)}"
    return f"unknown {kind} {name!r} ({hint})"


def _import(path: str) -> type:
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)


@dataclass(frozen=True)
class BuildContext:
    """Run-level values an estimator takes besides its config section.

    Args:
        asset_aware: the experts see which asset a row belongs to (``model.asset_aware``).
        seed: random seed of the unit (the estimators' ``random_state``).
        horizon: label horizon in bars (``purge_bars``: the purge before an estimator's own validation tail).
        num_threads: CPU threads of a torch estimator (the unit's CPU reservation), None = torch's default.
    """

    asset_aware: bool = True
    seed: int = 0
    horizon: int = 1
    num_threads: int | None = None

    def params(self, names: tuple[str, ...]) -> dict:
        """The estimator parameters ``names`` (of asset_aware, random_state, purge_bars, horizon, num_threads)."""
        values = {"asset_aware": self.asset_aware, "random_state": self.seed, "purge_bars": self.horizon,
                  "horizon": self.horizon, "num_threads": self.num_threads}
        return {n: values[n] for n in names}


def _no_extra() -> dict:
    return {}


@dataclass(frozen=True)
class ExpertSpec:
    """One expert (see the module docstring for the fields)."""

    name: str
    estimator: str
    config_section: str
    context: tuple[str, ...] = ("asset_aware",)
    extra: Callable[[], Mapping[str, object]] = _no_extra
    feature_fields: tuple[str, ...] = ()
    feature_groups: tuple[str, ...] = ()
    resource: str = CPU
    rule_hints: Mapping[str, int] = field(default_factory=dict)
    summary: str = ""

    @property
    def uses_torch(self) -> bool:
        """True for the torch networks (the ``gpu`` kind)."""
        return self.resource == GPU

    def estimator_class(self) -> type:
        """The estimator's class, imported now (torch's OpenMP runtime first for a torch network)."""
        if self.uses_torch:
            from fleet.models._openmp import torch_first

            torch_first()
        return _import(self.estimator)

    def params(self, section, context: BuildContext) -> dict:
        """The estimator's parameters: the section's fields (less ``feature_fields``), the run-level values of
        ``context`` and ``extra``."""
        return {**section.model_dump(exclude=set(self.feature_fields)), **context.params(self.context),
                **self.extra()}

    def build(self, section, context: BuildContext):
        """An unfitted estimator from its config ``section`` (a pydantic model) and the run-level ``context``."""
        return self.estimator_class()(**self.params(section, context))


def _trend_extra() -> dict:
    # The trend expert leaves the extra families out, so that it is the same model inside a mixture as alone.
    from fleet.features.families import extra_prefixes

    return {"exclude_prefixes": extra_prefixes()}


_CNN_CONTEXT = ("asset_aware", "random_state", "purge_bars", "num_threads")
_PATTERN = "fleet.models.pattern:"


def _archetype(name: str, hints: Mapping[str, int], market: str) -> ExpertSpec:
    return ExpertSpec(name, _PATTERN + "ArchetypeExpert", "pattern", _CNN_CONTEXT,
                      extra=lambda: {"archetype": name}, resource=GPU, rule_hints=hints,
                      summary=f"the temporal CNN with the kernel bank of {market}")


EXPERTS: tuple[ExpertSpec, ...] = (
    ExpertSpec("trend", "fleet.models.trend:TrendExpert", "trend", ("asset_aware", "random_state", "purge_bars"),
               extra=_trend_extra, rule_hints={"strong_trend": 2, "steady_trend": 1},
               summary="gradient boosting (HistGradientBoosting or LightGBM) on the technical features"),
    ExpertSpec("stress", "fleet.models.stress:StressExpert", "stress", feature_groups=("stress",),
               rule_hints={"high_vol": 2},
               summary="logistic regression on drawdown, vol-of-vol, downside share and skew"),
    ExpertSpec("sde", "fleet.models.sde:SDEExpert", "sde", feature_fields=("window",), feature_groups=("sde",),
               rule_hints={"low_vol": 2, "moderate_vol": 1, "mean_reverting": 2},
               summary="logistic regression on a rolling Ornstein-Uhlenbeck fit of log prices"),
    ExpertSpec("pattern", _PATTERN + "PatternExpert", "pattern", _CNN_CONTEXT, resource=GPU,
               rule_hints={"high_vol": 1},
               summary="temporal convolutional network (Bai, Kolter & Koltun 2018) with an asset embedding"),
    _archetype("crypto_hft", {"high_vol": 3}, "high-volatility crypto"),
    _archetype("equity_intraday", {"steady_trend": 3}, "intraday equities"),
    _archetype("equity_daily", {"moderate_vol": 2}, "daily equities"),
    _archetype("futures_trend", {"strong_trend": 3}, "trending futures"),
    _archetype("low_vol_etf", {"low_vol": 3}, "low-volatility ETFs"),
    # no rule hint: no regime of the rule gate speaks for it (the rule gate scores it 1 everywhere)
    ExpertSpec("momentum", "fleet.models.momentum:MomentumExpert", "momentum", feature_groups=("factor",),
               summary="logistic regression on the asset's and the market factor's returns over the return horizons"),
)

#: The experts whose CNN starts from an archetype's kernel bank (:func:`fleet.models.kernels.kernel_bank`).
ARCHETYPES: tuple[str, ...] = tuple(s.name for s in EXPERTS if s.estimator == _PATTERN + "ArchetypeExpert")

#: Experts asked for that cannot be built from the data at hand, with the reason.
NOT_POSSIBLE: dict[str, str] = {"options_skew": "needs implied-volatility surfaces; the data has no implied vols"}

#: Extra feature families a mixture's gate reads (the rule gate's regimes, the MLP gate's inputs).
GATE_FEATURE_GROUPS: tuple[str, ...] = ("fingerprint",)

EXPERT_NAMES: tuple[str, ...] = tuple(s.name for s in EXPERTS)


def expert_spec(name: str) -> ExpertSpec:
    """The spec of expert ``name``.

    Raises:
        ValueError: an unknown name (with the closest known one) or one that is not possible (with why).
    """
    for s in EXPERTS:
        if s.name == name:
            return s
    if name in NOT_POSSIBLE:
        raise ValueError(f"expert {name!r} is not possible: {NOT_POSSIBLE[name]}")
    raise ValueError(unknown_name("expert", name, [s.name for s in EXPERTS]))


def feature_groups(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Extra feature families the experts ``names`` need (in the order they are named), plus the gate's
    when there are several. Only the set matters: the pipeline computes families in registry order."""
    wanted = [g for n in names for g in expert_spec(n).feature_groups]
    if len(names) > 1:
        wanted += GATE_FEATURE_GROUPS
    return tuple(dict.fromkeys(wanted))


# ---------------------------------------------------------------------------------------------------- the gates


def _no_words(moe, top_k) -> str:
    return ""


@dataclass(frozen=True)
class GateSpec:
    """One gate of the mixture.

    Fields: ``name`` (what ``--gate`` / ``model.moe.gate`` call it); ``estimator`` (``"module:Class"``, imported
    when built); ``params`` (estimator parameter -> its ``model.moe`` field); ``context`` (run-level values of
    :class:`BuildContext` it takes); ``guarded`` (the guard may replace it by the best single expert;
    ``unguarded_reason`` says why not); ``uses_torch`` (a torch network: torch's OpenMP runtime first);
    ``top_k`` (experts per row when ``model.moe.top_k`` is unset: a number, ``"all"``, or None for a gate that
    takes no ``top_k``); ``describe`` (``(moe, top_k) -> words`` after the name on the console); ``summary``
    (one line of help).
    """

    name: str
    estimator: str
    params: Mapping[str, str] = field(default_factory=dict)
    context: tuple[str, ...] = ()
    guarded: bool = True
    unguarded_reason: str = ""
    uses_torch: bool = False
    top_k: int | str | None = None
    describe: Callable[[object, int | None], str] = _no_words
    summary: str = ""

    def resolve_top_k(self, requested: int | None, n_experts: int) -> int | None:
        """Experts per row for ``n_experts`` experts: ``requested`` or the default, at most ``n_experts``; None
        for a gate that takes no ``top_k``."""
        if self.top_k is None:
            return None
        return min(requested or (n_experts if self.top_k == "all" else int(self.top_k)), n_experts)

    def estimator_class(self) -> type:
        """The gate's class, imported now (torch's OpenMP runtime first for a torch network)."""
        if self.uses_torch:
            from fleet.models._openmp import torch_first

            torch_first()
        return _import(self.estimator)

    def build(self, moe, n_experts: int, context: BuildContext):
        """An unfitted gate for ``n_experts`` experts from the ``model.moe`` section and the run-level ``context``."""
        params = {p: getattr(moe, f) for p, f in self.params.items()} | context.params(self.context)
        top_k = self.resolve_top_k(moe.top_k, n_experts)
        if top_k is not None:
            params["top_k"] = top_k
        return self.estimator_class()(**params)

    def owns(self, gate) -> bool:
        """True when the estimator ``gate`` is an instance of exactly this spec's class (not a subclass)."""
        return f"{type(gate).__module__}:{type(gate).__qualname__}" == self.estimator


#: The select gate's ``model.moe.select_base_rate`` values (:class:`fleet.models.gate.SelectGate`'s ``base_rate``),
#: with how the console names each.
BASE_RATE_WORDS: dict[str, str] = {"choose": ", the base rate a candidate, experts renormalised",
                                   "mix": ", the base rate a candidate and served", "off": ""}
SELECT_BASE_RATE_MODES: tuple[str, ...] = tuple(BASE_RATE_WORDS)


def select_base_rate_mode(value) -> str:
    """``value`` as one of :data:`SELECT_BASE_RATE_MODES`; ``True`` = 'mix' and ``False`` = 'off' (YAML's true/false
    are read as those).

    Raises:
        ValueError: another value.
    """
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy's bool too
        return "mix" if value else "off"
    if value not in SELECT_BASE_RATE_MODES:
        raise ValueError(f"base_rate={value!r}: expected one of {', '.join(SELECT_BASE_RATE_MODES)}")
    return str(value)


def _top_k_words(moe, top_k) -> str:
    return f", top-{top_k}"


def _select_words(moe, top_k) -> str:
    start = "equal weights" if moe.select_start == "equal" else "the best expert"
    return (f" (from {start}, up to {moe.select_rounds} copies, by {moe.select_criterion}"
            f"{BASE_RATE_WORDS[moe.select_base_rate]})")


def _best_words(moe, top_k) -> str:
    return f" (by {moe.criterion})"


_GATE = "fleet.models.gate:"

GATES: tuple[GateSpec, ...] = (
    GateSpec("rule", _GATE + "RuleGate", top_k=2, describe=_top_k_words,
             summary="static rules on the market-regime fingerprint (volatility, trend and liquidity regime -> "
                     "expert)"),
    GateSpec("mlp", "fleet.models.gate_mlp:MLPGate",
             {"objective": "gate_objective", "balance": "balance", "balance_coef": "balance_coef",
              "epochs": "gate_epochs", "weight_decay": "gate_weight_decay"}, ("purge_bars", "random_state"),
             uses_torch=True, top_k="all", describe=_top_k_words,
             summary="a trained MLP on the fingerprint, the market factor and the experts' logit P(up), fitted on "
                     "the mixture likelihood"),
    GateSpec("stack", _GATE + "StackGate", {"C": "stack_C"},
             summary="logistic stacking of the experts' logit P(up)"),
    GateSpec("best", _GATE + "BestExpertGate", {"criterion": "criterion", "switch_z": "switch_z"}, ("horizon",),
             guarded=False, unguarded_reason="the gate is the best expert", describe=_best_words,
             summary="the single expert with the best inner out-of-fold score"),
    GateSpec("select", _GATE + "SelectGate",
             {"rounds": "select_rounds", "criterion": "select_criterion", "start": "select_start",
              "base_rate": "select_base_rate"},
             guarded=False, unguarded_reason="the gate keeps a copy of an expert only where it lowers the out-of-fold "
                                             "loss", describe=_select_words,
             summary="ensemble selection (Caruana et al. 2004): constant weights by greedy forward selection that "
                     "lowers the mixture's log-loss on the inner out-of-fold rows"),
)

GATE_NAMES: tuple[str, ...] = tuple(g.name for g in GATES)


def gate_spec(name: str) -> GateSpec:
    """The spec of gate ``name``.

    Raises:
        ValueError: an unknown name (with the closest known one).
    """
    for g in GATES:
        if g.name == name:
            return g
    raise ValueError(unknown_name("gate", name, [g.name for g in GATES]))


def gate_of(gate) -> GateSpec | None:
    """The spec whose estimator ``gate`` is an instance of, or None (a gate built elsewhere)."""
    return next((g for g in GATES if g.owns(gate)), None)


def gates_help() -> str:
    """One sentence naming every gate with its summary, and which ones the guard checks."""
    guarded = [g.name for g in GATES if g.guarded]
    checked = f"; the guard checks {', '.join(guarded[:-1])} and {guarded[-1]}" if len(guarded) > 1 else ""
    return "; ".join(f"{g.name}: {g.summary}" for g in GATES) + checked


def top_k_default_help() -> str:
    """The gates' default ``top_k`` in words: ``2 for rule, all for mlp``."""
    return ", ".join(f"{g.top_k} for {g.name}" for g in GATES if g.top_k is not None)
