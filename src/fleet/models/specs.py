"""The table of expert specs: everything the rest of fleet knows about an expert, in one row.

Each :class:`ExpertSpec` gives

* ``name``            what ``--experts`` / ``model.experts`` call it;
* ``build``           ``(name, section, *, asset_aware, seed, horizon, num_threads) -> unfitted estimator``
  with the scikit-learn contract (``fit(X, y)`` / ``predict_proba`` -> (n, 2));
* ``config_section``  the :class:`fleet.config.ModelConfig` field holding its hyper-parameters
  (passed to ``build`` as ``section``);
* ``feature_groups``  extra feature families it needs (:data:`fleet.features.families.FAMILIES`);
* ``resource``        ``"cpu"`` or ``"gpu"``: a ``gpu`` expert is a torch network that asks for a GPU
  when the cluster has one (``resources.cnn_num_gpus``) and needs torch's OpenMP runtime loaded
  before scikit-learn's (:func:`fleet.models._openmp.torch_first`);
* ``rule_hints``      rule-gate regime -> score bonus (:data:`fleet.models.gate.REGIMES`);
* ``summary``         one line for ``fleet train --help``.

``fleet.config`` (expert names, feature groups, GPU use), ``models/factory.py`` (building),
``models/gate.py`` (the rule gate) and ``cli.py`` (``--experts`` help) read this table.
Adding an expert: its estimator module in ``models/`` and one row here (its builder imports the
module when called, so that listing experts — ``fleet --help``, config validation — loads no torch).

This module imports nothing from fleet at import time and nothing heavy (it is read at start-up).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

CPU, GPU = "cpu", "gpu"


@dataclass(frozen=True)
class ExpertSpec:
    """One expert (see the module docstring for the fields)."""

    name: str
    build: Callable[..., object]
    config_section: str
    feature_groups: tuple[str, ...] = ()
    resource: str = CPU
    rule_hints: Mapping[str, int] = field(default_factory=dict)
    summary: str = ""

    @property
    def uses_torch(self) -> bool:
        """True for the torch networks (the ``gpu`` kind)."""
        return self.resource == GPU


def _build_trend(name, section, *, asset_aware, seed, horizon, num_threads):
    from fleet.features.families import extra_prefixes
    from fleet.models.trend import TrendExpert

    t = section
    # The trend expert leaves the extra families out so that it is the same model inside a mixture as alone:
    # with them it scored 0.5442 against 0.5459 alone (crypto_1h, 730 days, 5 folds, hierarchical).
    return TrendExpert(learner=t.learner, max_iter=t.max_iter, learning_rate=t.learning_rate,
                       max_leaf_nodes=t.max_leaf_nodes, min_samples_leaf=t.min_samples_leaf,
                       l2_regularization=t.l2_regularization, early_stopping=t.early_stopping,
                       validation_fraction=t.validation_fraction, n_iter_no_change=t.n_iter_no_change,
                       purge_bars=horizon, asset_aware=asset_aware, num_threads=None,
                       random_state=seed, exclude_prefixes=extra_prefixes())


def _build_stress(name, section, *, asset_aware, seed, horizon, num_threads):
    from fleet.models.stress import StressExpert

    return StressExpert(C=section.C, asset_aware=asset_aware)


def _build_sde(name, section, *, asset_aware, seed, horizon, num_threads):
    from fleet.models.sde import SDEExpert

    return SDEExpert(C=section.C, asset_aware=asset_aware)


def _build_momentum(name, section, *, asset_aware, seed, horizon, num_threads):
    from fleet.models.momentum import MomentumExpert

    return MomentumExpert(C=section.C, asset_aware=asset_aware)


def _build_cnn(name, section, *, asset_aware, seed, horizon, num_threads):
    from fleet.models._openmp import torch_first

    torch_first()
    from fleet.models.pattern import ArchetypeExpert, PatternExpert

    p = section
    kw = dict(window=p.window, hidden=p.hidden, levels=p.levels, emb_dim=p.emb_dim, epochs=p.epochs,
              batch_size=p.batch_size, lr=p.lr, patience=p.patience, max_train_windows=p.max_train_windows,
              val_fraction=p.val_fraction, purge_bars=horizon, unknown_asset=p.unknown_asset,
              asset_aware=asset_aware, num_threads=num_threads, random_state=seed)
    return PatternExpert(**kw) if name == "pattern" else ArchetypeExpert(archetype=name, **kw)


def _archetype(name: str, hints: Mapping[str, int], market: str) -> ExpertSpec:
    return ExpertSpec(name, _build_cnn, "pattern", resource=GPU, rule_hints=hints,
                      summary=f"the temporal CNN with the kernel bank of {market}")


EXPERTS: tuple[ExpertSpec, ...] = (
    ExpertSpec("trend", _build_trend, "trend", rule_hints={"strong_trend": 2, "steady_trend": 1},
               summary="gradient boosting (HistGradientBoosting or LightGBM) on the technical features"),
    ExpertSpec("stress", _build_stress, "stress", feature_groups=("stress",), rule_hints={"high_vol": 2},
               summary="logistic regression on drawdown, vol-of-vol, downside share and skew"),
    ExpertSpec("sde", _build_sde, "sde", feature_groups=("sde",),
               rule_hints={"low_vol": 2, "moderate_vol": 1, "mean_reverting": 2},
               summary="logistic regression on a rolling Ornstein-Uhlenbeck fit of log prices"),
    ExpertSpec("pattern", _build_cnn, "pattern", resource=GPU, rule_hints={"high_vol": 1},
               summary="temporal convolutional network (Bai, Kolter & Koltun 2018) with an asset embedding"),
    _archetype("crypto_hft", {"high_vol": 3}, "high-volatility crypto"),
    _archetype("equity_intraday", {"steady_trend": 3}, "intraday equities"),
    _archetype("equity_daily", {"moderate_vol": 2}, "daily equities"),
    _archetype("futures_trend", {"strong_trend": 3}, "trending futures"),
    _archetype("low_vol_etf", {"low_vol": 3}, "low-volatility ETFs"),
    # no rule hint: no seed-003 regime speaks for it (the rule gate scores it 1 everywhere)
    ExpertSpec("momentum", _build_momentum, "momentum", feature_groups=("factor",),
               summary="logistic regression on the asset's and the market factor's returns over the return horizons"),
)

#: Experts asked for that cannot be built from the data at hand, with the reason.
NOT_POSSIBLE: dict[str, str] = {"options_skew": "needs implied-volatility surfaces; the data has no implied vols (seed 003)"}

#: Extra feature families a mixture's gate reads (the rule gate's regimes, the MLP gate's inputs).
GATE_FEATURE_GROUPS: tuple[str, ...] = ("fingerprint",)

#: Gates that are torch networks (their training needs torch's OpenMP runtime first, like a CNN).
TORCH_GATES: tuple[str, ...] = ("mlp",)

#: Gates the guard leaves alone: ``best`` is the best single expert, ``select`` adds a copy of an expert only where
#: the out-of-fold loss falls (a cross-fitted guard on top moved its AUC by -0.0009..+0.0006, docs/benchmarks.md 3c).
UNGUARDED_GATES: tuple[str, ...] = ("best", "select")

#: The select gate's ``model.moe.select_base_rate`` values (:class:`fleet.models.gate.SelectGate`'s ``base_rate``).
SELECT_BASE_RATE_MODES = ("choose", "mix", "off")


def select_base_rate_mode(value) -> str:
    """``value`` as one of :data:`SELECT_BASE_RATE_MODES`; ``True`` = 'mix' and ``False`` = 'off', the option's values
    (YAML's true/false) before 'choose' existed.

    Raises:
        ValueError: another value.
    """
    if isinstance(value, bool) or type(value).__name__ == "bool_":  # numpy's bool too
        return "mix" if value else "off"
    if value not in SELECT_BASE_RATE_MODES:
        raise ValueError(f"base_rate={value!r}: expected one of {', '.join(SELECT_BASE_RATE_MODES)}")
    return str(value)


EXPERT_NAMES: tuple[str, ...] = tuple(s.name for s in EXPERTS)


def expert_spec(name: str) -> ExpertSpec:
    """The spec of expert ``name``.

    Raises:
        ValueError: an unknown name (listing the known ones) or one that is not possible (with why).
    """
    for s in EXPERTS:
        if s.name == name:
            return s
    if name in NOT_POSSIBLE:
        raise ValueError(f"expert={name!r}: not possible: {NOT_POSSIBLE[name]}")
    raise ValueError(f"expert={name!r}: unknown; expected one of {list(EXPERT_NAMES)}")


def feature_groups(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Extra feature families the experts ``names`` need (in the order they are named), plus the gate's
    when there are several. Only the set matters: the pipeline computes families in registry order."""
    wanted = [g for n in names for g in expert_spec(n).feature_groups]
    if len(names) > 1:
        wanted += GATE_FEATURE_GROUPS
    return tuple(dict.fromkeys(wanted))
