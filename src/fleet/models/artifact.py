"""The served artifact: one unit's fitted model plus what it needs to compute its inputs again.

A run directory's ``models/<group>.pkl`` holds a pickled :class:`UnitModel`. Training writes it
(:func:`fleet.training.unit.train_unit`, last fold); serving and :func:`fleet.load_run` read it with
:func:`load_unit_model`. It stands on the estimators (:mod:`fleet.models`) and the feature pipeline
(:mod:`fleet.features.pipeline`) only, so serving never imports training.

Old runs: this class used to live in ``fleet.training.unit`` and the per-asset preprocessor
in ``fleet.training.dataset``, and the MLP gate in ``fleet.models.gate``; pickles name those paths.
:func:`load_unit_model` maps them to the new homes (:data:`MOVED`) without importing training, and the
old modules keep aliases for a plain ``pickle.load``.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fleet.features.pipeline import AssetPreprocessor, asset_feature_arrays, bar_times
from fleet.features.spec import FeatureSpec

#: (old module, name) -> (module, name) of classes that moved; what old pickles name.
MOVED: dict[tuple[str, str], tuple[str, str]] = {
    ("fleet.training.unit", "UnitModel"): ("fleet.models.artifact", "UnitModel"),
    ("fleet.training.dataset", "AssetPreprocessor"): ("fleet.features.pipeline", "AssetPreprocessor"),
    ("fleet.models.gate", "MLPGate"): ("fleet.models.gate_mlp", "MLPGate"),
    ("fleet.models.gate", "GateMLP"): ("fleet.models.gate_mlp", "GateMLP"),
}


@dataclass
class UnitModel:
    """The fitted model of a unit plus what is needed to compute its inputs again.

    Attributes:
        group: unit group name; assets: symbol -> registry id.
        estimator: fitted estimator (scikit-learn contract, ``predict_proba`` -> (n, 2)).
        preprocessors: per-asset FFD order and feature scaling fitted on the training window.
        feature_names: input columns in order (``asset_id`` last).
        trained_until: end of the training data, UTC: a fold's training window's end (exclusive), or for a model
            refitted on all the data (``--refit``) the last bar it was trained on.
        config: the resolved run configuration as a dict.
        policy: the unit's trading policy (:meth:`fleet.evaluation.costaware.TradingPolicy.to_dict`), chosen on
            the training window; None: the run's fixed long rule ``p_up > policy.threshold``.
        meta: the meta-labelling model (:class:`fleet.models.meta.MetaLabeler`) that filters the fixed rule's
            bets, or None.
        features: the feature settings the unit was trained with (:class:`~fleet.features.spec.FeatureSpec`);
            serving computes the model's inputs with them. Artifacts written without one get it from their
            stored ``config`` when loaded (:func:`load_unit_model`).
    """

    group: str
    assets: dict[str, int]
    estimator: object
    preprocessors: dict[str, AssetPreprocessor]
    feature_names: list[str]
    trained_until: pd.Timestamp
    config: dict
    policy: dict | None = None
    meta: object | None = None
    features: FeatureSpec | None = None

    def design_matrix(self, symbol: str, frame: pd.DataFrame, factor: pd.Series | None, *,
                      last: int | None = None) -> pd.DataFrame:
        """Scaled model inputs for every bar of ``frame``, exactly as in training.

        Args:
            symbol: one of the unit's assets.
            frame: (n_bars, k) bars of that asset, UTC index, ``close`` (+ open/high/low/volume).
            factor: market factor on a UTC grid (gaps -> 0, see ``asset_features``), or None.
            last: only the last ``last`` bars (serving's fast path, see ``asset_features``); None: all.

        Returns:
            (n_bars, n_features) frame with columns ``feature_names`` (``asset_id`` last); warm-up rows hold NaN.
            With ``last``: its last min(last, n_bars) rows.

        Raises:
            UnknownSymbolError: the unit does not serve ``symbol``.
        """
        columns = self.design_columns(symbol, {str(c): frame[c].to_numpy() for c in frame.columns}, frame.index,
                                      factor, last=last)
        k = len(columns[self.feature_names[0]])
        return pd.DataFrame(columns, index=frame.index[len(frame) - k:])

    def design_columns(self, symbol: str, columns: dict[str, np.ndarray], index: pd.DatetimeIndex,
                       factor: pd.Series | None, *, last: int | None = None) -> dict[str, np.ndarray]:
        """:meth:`design_matrix` as plain arrays (what serving stacks across a batch, no DataFrame per request).

        Args:
            columns: column name -> (n_bars,) values of the asset's bars, oldest first; index: their UTC times.
            symbol, factor, last: as for :meth:`design_matrix`.

        Returns:
            feature name -> (min(last, n_bars),) array, in ``feature_names`` order: float64 features,
            int64 ``asset_id`` and (if used) int64 ``bar_time`` (ns since the epoch, UTC).

        Raises:
            UnknownSymbolError: the unit does not serve ``symbol``.
            ValueError: the model has no feature settings (``features`` is None: built without them and not
                loaded by :func:`load_unit_model`).
        """
        from fleet.errors import UnknownSymbolError

        if symbol not in self.preprocessors:
            raise UnknownSymbolError(f"symbol {symbol!r} is not served by unit {self.group!r}; "
                                     f"it serves {sorted(self.preprocessors)}")
        if self.features is None:
            raise ValueError(f"unit {self.group!r}: the model has no feature settings (UnitModel.features is None)")
        prep = self.preprocessors[symbol]
        raw, _ = asset_feature_arrays(columns, index, d=prep.d, factor=factor, features=self.features, last=last)
        X = prep.scale_arrays(raw)
        k = len(next(iter(X.values())))
        X["asset_id"] = np.full(k, prep.asset_id, dtype=np.int64)
        if "bar_time" in self.feature_names:
            X["bar_time"] = bar_times(index[len(index) - k:])
        return {name: X[name] for name in self.feature_names}

    def predict_proba_bars(self, symbol: str, frame: pd.DataFrame, factor: pd.Series | None) -> pd.Series:
        """P(up) for every bar of ``frame`` (n_bars,) of one asset; NaN during feature warm-up."""
        X = self.design_matrix(symbol, frame, factor)
        ok = X.notna().all(axis=1).to_numpy()
        out = pd.Series(np.nan, index=frame.index, name="p_up")
        if ok.any():
            out[ok] = self.estimator.predict_proba(X.loc[ok])[:, 1]
        return out


class _Unpickler(pickle.Unpickler):
    """Resolves the classes of :data:`MOVED` at their new homes (no import of their old modules)."""

    def find_class(self, module: str, name: str):
        module, name = MOVED.get((module, name), (module, name))
        return super().find_class(module, name)


def load_unit_model(data: bytes, source: str = "model") -> UnitModel:
    """Unpickle a :class:`UnitModel` from ``data`` (the bytes of ``models/<group>.pkl``).

    Models pickled under older class paths (``fleet.training.unit.UnitModel`` ...) load too (:data:`MOVED`).
    A model stored without its feature settings gets them here, once, from its stored configuration
    (:meth:`FeatureSpec.from_config` of the ``features``, ``model`` and ``labels`` sections of ``model.config``):
    the one place an artifact's spec is rebuilt.
    Torch is imported first when the model holds torch modules (OpenMP load order,
    :mod:`fleet.models._openmp`).

    Raises:
        TypeError: ``data`` holds something other than a UnitModel (``source`` names it in the message).
        ValueError: a model without feature settings whose stored configuration cannot give them (names
            ``source``).
    """
    if b"torch" in data:  # a CNN expert or the MLP gate: torch's OpenMP runtime before scikit-learn's
        from fleet.models._openmp import torch_first

        torch_first()
    obj = _Unpickler(io.BytesIO(data)).load()
    if not isinstance(obj, UnitModel):
        raise TypeError(f"{source}: holds a {type(obj).__name__}, expected a UnitModel")
    if obj.features is None:
        try:
            obj.features = _stored_spec(obj.config)
        except Exception as err:  # a section that no longer validates (pydantic), a missing key, not a mapping
            raise ValueError(f"{source}: the model stores no feature settings and its stored config cannot give "
                             f"them ({type(err).__name__}: {err})") from None
    return obj


def _stored_spec(config: dict) -> FeatureSpec:
    """The :class:`FeatureSpec` of a stored config dict (``FleetConfig.to_dict()``), read from its ``features``,
    ``model`` (absent: a single-model run, no extra families) and ``labels.horizon`` only, so a run whose other
    sections have since changed still loads."""
    from types import SimpleNamespace

    from fleet.config import FeatureConfig, ModelConfig

    return FeatureSpec.from_config(SimpleNamespace(
        features=FeatureConfig(**config["features"]),
        model=ModelConfig(**config["model"]) if "model" in config else None,
        labels=SimpleNamespace(horizon=int(config["labels"]["horizon"]))))
