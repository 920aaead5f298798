"""Ray-free prediction from a run directory: load, validate a request, answer P(up) for its last bar.

The run directory written by ``fleet train`` is the only hand-off (ARCHITECTURE.md). Features
are computed here with the pipeline training uses (:meth:`fleet.models.artifact.UnitModel.design_matrix` ->
:mod:`fleet.features.pipeline` + the fitted per-asset scaling), with the feature settings each unit's artifact
stores (``UnitModel.features``, never rebuilt from the run's config), so a request made of bars from the training
data gets the same p_up as training to floating-point precision.

Which models: the refit's (``models/refit/``, written by ``fleet train --refit``) when the run has them, else the
last fold's (``models/``); :attr:`FleetPredictor.served_model` says which ("refit" or "fold <k>").

Market factor: the model's ``market_factor`` input is looked up in the served models' stored factor
(``market_factor.parquet``, the last fold's factor on the UTC grid, or the refit's) at each candle's exact
timestamp; a timestamp not on that grid (e.g. any bar after the run's data ended) gets 0, the
neutral value — the same rule as training (``asset_features`` fills gaps with 0).

How many candles: the last candle's features need ``max(FFD width - 1, technical warm-up) + 1``
bars (:meth:`FleetPredictor.required_bars`; the FFD width follows from the asset's fitted
order d). Wilder's RSI is recursive, so its value still depends (with weight decaying as
(1 - 1/n)^k) on bars before the window; ``recommended_bars`` adds enough bars for that memory to
fall below 1e-6, and sending the asset's whole history reproduces training exactly.

This module imports no Ray; :mod:`fleet.serving.app` wraps it in a Ray Serve deployment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fleet.errors import FleetError, InsufficientHistoryError, RequestError, RunDirectoryError, UnknownSymbolError
from fleet.features.fracdiff import ffd_weights
from fleet.features.technical import FEATURE_REQUIREMENTS, warmup_bars
from fleet.features.families import input_columns
from fleet.features.pipeline import FACTOR, feature_group_warmup
from fleet.features.spec import FeatureSpec
from fleet.models.artifact import UnitModel, load_unit_model
from fleet.serving.schema import CandleColumns, PredictRequest, PredictResponse, ServedPolicy
from fleet.store.layout import (ASSET_REGISTRY, MANIFEST, MARKET_FACTOR, MODELS_INDEX, REFIT_FACTOR, REFIT_INDEX,
                                REQUIRED_FILES, RESULTS_PER_ASSET, RunLayout)

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")


def _read(layout: RunLayout, relative: str, read):
    """``read(relative)`` through the run's layout; RunDirectoryError naming the file when it fails."""
    try:
        return read(relative)
    except Exception as err:  # parse errors, unpickling (can raise almost anything), I/O
        raise RunDirectoryError(f"{layout.describe(relative)}: cannot read the run directory's {relative} "
                                f"({type(err).__name__}: {err})") from None


def served_policy(model: UnitModel, config: dict):
    """``p_up -> (signal, ServedPolicy)`` for one unit: its stored policy, else the run's fixed long rule."""
    from fleet.evaluation.costaware import TradingPolicy

    pc = config.get("policy", {})
    stored = getattr(model, "policy", None)
    pol = (TradingPolicy.from_dict(stored) if stored else
           TradingPolicy.fixed(float(pc.get("threshold", 0.55)),
                               horizon=int(config.get("labels", {}).get("horizon", 1)),
                               cost_bps=float(pc.get("cost_bps", 10.0))))

    def answer(p: float) -> tuple[int, ServedPolicy]:
        q = float(pol.calibrated([p])[0]) if pol.calibration else None
        return int(pol.entry_signal([p])[0]), ServedPolicy(
            kind=pol.kind, sides=pol.sides, theta_in=pol.theta_in, theta_out=pol.theta_out, min_hold=pol.min_hold,
            cost_bps=pol.cost_bps, calibrated_p_up=q)
    return answer


@dataclass(frozen=True)
class AssetInfo:
    """Serving facts of one asset: its unit, id, the columns its model needs and the bars it needs."""

    symbol: str
    asset_id: int
    unit: str
    columns: tuple[str, ...]
    required_bars: int
    recommended_bars: int
    d: float


class FleetPredictor:
    """All unit models of one run, ready to answer requests.

    Args:
        run_dir: a directory written by ``fleet train``.

    Attributes:
        units: group -> the served :class:`UnitModel` (the refit's when the run has ``models/refit/``, else the
            last fold's). served_model: which: ``"refit"`` or ``"fold <k>"`` (k: the last fold's index).

    Raises:
        RunDirectoryError: the directory or one of :data:`REQUIRED_FILES` / a model file is missing or
            unreadable (the message names the file).
    """

    def __init__(self, run_dir: str | Path):
        run = Path(run_dir)
        layout = RunLayout(run)
        if not layout.exists():
            raise RunDirectoryError(f"{run}: no such run directory (expected the output of `fleet train --out DIR`)")
        missing = layout.missing(REQUIRED_FILES)
        if missing:
            raise RunDirectoryError(f"{run}: missing {missing[0]}; not a complete `fleet train` run directory")
        self.run_dir = run.resolve()
        self.model_version = run.resolve().name
        manifest = _read(layout, MANIFEST, layout.read_json)
        self.config = manifest.get("config", {})
        self.bar = pd.Timedelta(manifest.get("data", {}).get("bar", "1h"))
        self.threshold = float(self.config["policy"]["threshold"])
        self.experts = list(self.config.get("model", {}).get("experts", ["trend"]))
        # The refit's models (--refit) when the run has them, else the last fold's; each with its market factor.
        refit = layout.has(REFIT_INDEX)
        folds = manifest.get("folds") or [{}]
        self.served_model = "refit" if refit else f"fold {folds[-1].get('index', len(folds) - 1)}"
        self._load_units(layout, REFIT_INDEX if refit else MODELS_INDEX)
        factor_file = REFIT_FACTOR if refit else MARKET_FACTOR
        try:
            self.factor = layout.read_market_factor(factor_file).rename(FACTOR)
        except (OSError, KeyError, ValueError) as err:
            raise RunDirectoryError(f"{layout.describe(factor_file)}: unreadable ({err}); expected columns "
                                    "timestamp, market_factor") from None
        self.assets: dict[str, AssetInfo] = {}
        for group, model in self.units.items():
            for symbol, prep in model.preprocessors.items():
                columns = self._columns_needed(model)
                need = self._required(model.features, prep.d, columns)
                extra_first, extra_full = feature_group_warmup(model.features, columns=columns, bar=self.bar)
                need = max(need, extra_first + 1) + self._history(model) - 1
                self.assets[symbol] = AssetInfo(symbol=symbol, asset_id=int(prep.asset_id), unit=group,
                                                columns=columns, required_bars=need,
                                                recommended_bars=need + self._rsi_memory(model.features) + extra_full,
                                                d=float(prep.d))
        self.metrics = self._read_metrics(layout)
        self.horizon = int(self.config.get("labels", {}).get("horizon", 1))
        self.registry_version = self._registry_version(layout)

    def _load_units(self, layout: RunLayout, index_file: str) -> None:
        """Every unit model listed in ``index_file`` (``models/index.json`` or ``models/refit/index.json``;
        unpickled: serve only runs you trust)."""
        index = _read(layout, index_file, layout.read_json)
        if not index:
            raise RunDirectoryError(f"{layout.describe(index_file)}: lists no unit model")
        self.units: dict[str, UnitModel] = {}
        self.unit_meta: dict[str, dict] = {}
        for group, entry in sorted(index.items()):
            if not layout.has(entry["file"]):
                raise RunDirectoryError(f"{layout.describe()}: missing {entry['file']} (listed in {index_file} "
                                        f"for unit {group!r})")
            try:
                self.units[group] = load_unit_model(layout.storage.read_bytes(entry["file"]),
                                                    source=layout.describe(entry["file"]))
            except Exception as err:  # unpickling can raise almost anything; report the file
                raise RunDirectoryError(f"{layout.describe(entry['file'])}: cannot load the unit model "
                                        f"({type(err).__name__}: {err})") from None
            self.unit_meta[group] = entry

    @staticmethod
    def _registry_version(layout: RunLayout) -> int:
        """Version of the asset registry the run trained with (``asset_registry.json``)."""
        from fleet.data.registry import AssetRegistry
        from fleet.errors import DataError

        try:
            return AssetRegistry.from_dict(_read(layout, ASSET_REGISTRY, layout.read_json),
                                           where=layout.describe(ASSET_REGISTRY)).version
        except DataError as err:
            raise RunDirectoryError(str(err)) from None

    # ----------------------------------------------------------------------------- facts
    @staticmethod
    def _columns_needed(model: UnitModel) -> tuple[str, ...]:
        cols = {"close"}
        for feature, needs in FEATURE_REQUIREMENTS.items():
            if feature in model.feature_names:
                cols.update(needs)
        cols.update(input_columns(model.feature_names))  # the extra families' (fleet.features.families)
        return tuple(c for c in PRICE_COLUMNS if c in cols)

    @staticmethod
    def _required(f: FeatureSpec, d: float, columns: tuple[str, ...]) -> int:
        """Bars the last candle's base features need: FFD width at ``d`` - 1 or the technical warm-up, + 1."""
        width = len(ffd_weights(d, threshold=f.ffd_threshold, max_width=f.ffd_max_width))
        tech = warmup_bars(return_horizons=f.return_horizons, vol_window=f.vol_window, rsi_window=f.rsi_window,
                           volume_window=f.volume_window, columns=columns)
        return max(width - 1, tech) + 1

    @staticmethod
    def _history(model: UnitModel) -> int:
        """Rows of valid model input one prediction reads (a CNN expert's window; 1 for tabular models)."""
        est = model.estimator
        return int(est.history_bars()) if hasattr(est, "history_bars") else 1

    @staticmethod
    def _rsi_memory(f: FeatureSpec) -> int:
        """Bars after which Wilder smoothing's weight on older bars, (1 - 1/n)^k, is below 1e-6."""
        n = f.rsi_window
        return 0 if n <= 1 else int(math.ceil(math.log(1e-6) / math.log(1.0 - 1.0 / n)))

    @staticmethod
    def _read_metrics(layout: RunLayout) -> dict[str, dict]:
        table = _read(layout, RESULTS_PER_ASSET, layout.read_csv)
        return {str(r["symbol"]): {k: (None if pd.isna(v) else v) for k, v in r.items() if k != "symbol"}
                for r in table.to_dict("records")}

    def required_bars(self, symbol: str) -> int:
        """Fewest candles a request for ``symbol`` needs. Raises UnknownSymbolError."""
        return self.asset(symbol).required_bars

    def asset(self, symbol: str) -> AssetInfo:
        """Serving facts of ``symbol``. Raises UnknownSymbolError naming where to list known ones."""
        info = self.assets.get(symbol)
        if info is None:
            raise UnknownSymbolError(f"symbol={symbol!r} is not served by run {self.model_version}; "
                                     "GET /v1/models lists the known symbols")
        return info

    def describe(self) -> dict:
        """What GET /v1/models returns: run id, threshold, units with their assets and metrics, and per unit which
        model answers (:attr:`served_model`) and the end of its training data (``trained_until``)."""
        units = []
        for group, model in self.units.items():
            assets = []
            for symbol in sorted(model.preprocessors):
                a = self.assets[symbol]
                assets.append({"symbol": symbol, "asset_id": a.asset_id, "ffd_d": a.d,
                               "required_bars": a.required_bars, "recommended_bars": a.recommended_bars,
                               "columns": list(a.columns), "metrics": self.metrics.get(symbol, {})})
            units.append({"unit": group, "model": self.served_model,
                          "trained_until": model.trained_until.isoformat(),
                          "registry_version": self.registry_version,
                          "features": list(model.feature_names), "experts": self.experts, "assets": assets})
        return {"model_version": self.model_version, "threshold": self.threshold,
                "strategy": self.config.get("strategy"), "horizon_bars": self.horizon,
                "registry_version": self.registry_version, "units": units}

    # ----------------------------------------------------------------------------- requests
    def bars(self, request: PredictRequest, info: AssetInfo,
             where: str = "") -> tuple[dict[str, np.ndarray], pd.DatetimeIndex]:
        """The request's candles as column arrays, validated for ``info``'s model.

        Returns:
            (columns, index): ``info.columns`` -> float64 arrays of shape (n_bars,), and the bars' UTC times.

        Raises:
            RequestError: a column the model needs is missing on some candle (names the candle).
            InsufficientHistoryError: fewer than ``info.required_bars`` candles.
        """
        n = request.n_bars
        if n < info.required_bars:
            raise InsufficientHistoryError(
                f"{where}candles: {n} given, {info.required_bars} needed for {info.symbol} "
                f"(FFD window at d={info.d:g} plus feature warm-up; {info.recommended_bars} reproduce "
                "training to 1e-6)", field=f"{where}candles")
        columnar = isinstance(request.candles, CandleColumns)
        data = {}
        for col in info.columns:
            values = request.column(col)
            if values is None:  # columns layout without this array
                raise RequestError(f"{where}candles.{col}: missing; the model of unit {info.unit!r} uses {col} "
                                   f"(an array of {n} values, one per timestamp)", field=f"{where}candles.{col}")
            if not columnar and None in values:
                missing = [i for i, v in enumerate(values) if v is None]
                raise RequestError(f"{where}candles[{missing[0]}].{col}: missing; the model of unit {info.unit!r} "
                                   f"uses {col} (needed on every candle; {len(missing)} candle(s) lack it)",
                                   field=f"{where}candles[{missing[0]}].{col}")
            data[col] = np.array(values, dtype=np.float64)
        return data, pd.DatetimeIndex(request.times_ns(), tz="UTC")

    def frame(self, request: PredictRequest, info: AssetInfo, where: str = "") -> pd.DataFrame:
        """:meth:`bars` as an (n_bars, k) frame on a UTC index (same errors)."""
        data, index = self.bars(request, info, where)
        return pd.DataFrame(data, index=index)

    def design_row(self, request: PredictRequest, where: str = "") -> tuple[AssetInfo, dict[str, np.ndarray]]:
        """The model input of the request's last bar: (asset facts, feature name -> (1,) array, in the
        model's ``feature_names`` order); for a model with a CNN expert, the last ``window`` valid rows
        (the prediction is for the last one).

        Only the rows the model reads are computed, with the training code cut to the newest bars
        (``UnitModel.design_columns(last=...)`` -> ``asset_feature_arrays``); no DataFrame is built here.

        Raises:
            UnknownSymbolError, RequestError, InsufficientHistoryError (see :meth:`bars`; also when a
            feature is undefined at the last candle).
        """
        info = self.asset(request.symbol)
        data, index = self.bars(request, info, where)
        model = self.units[info.unit]
        factor = self.factor if FACTOR in model.feature_names else None
        history = self._history(model)
        X = model.design_columns(info.symbol, data, index, factor, last=history)
        bad = [c for c, v in X.items() if v.dtype.kind == "f" and np.isnan(v[-1])]
        if bad:
            raise InsufficientHistoryError(f"{where}candles: features {bad} are undefined at the last candle; "
                                           f"{info.required_bars} candles are needed", field=f"{where}candles")
        if history > 1 and any(v.dtype.kind == "f" and np.isnan(v).any() for v in X.values()):
            # fewer valid rows than the CNN window in the tail: the valid rows before it, as training has them
            full = pd.DataFrame(model.design_columns(info.symbol, data, index, factor)).dropna().iloc[-history:]
            X = {c: full[c].to_numpy() for c in full.columns}
        X["__time"] = index.asi8[len(index) - len(X[model.feature_names[0]]):]
        return info, X

    def _gate(self, model: UnitModel, X: pd.DataFrame) -> list[dict[str, float]]:
        """Per-row expert weights (n_rows dicts). An ensemble exposing ``gate_weights(X) -> (n, k)`` and
        ``expert_names_`` is asked; a single expert gets weight 1."""
        est = model.estimator
        if hasattr(est, "gate_weights") and hasattr(est, "expert_names_"):
            w = np.asarray(est.gate_weights(X), dtype=np.float64)
            return [dict(zip(est.expert_names_, map(float, row))) for row in w]
        return [{name: 1.0 / len(self.experts) for name in self.experts} for _ in range(len(X))]

    def predict_each(self, requests: list[PredictRequest], *,
                     prefix_index: bool = False) -> list[PredictResponse | FleetError]:
        """Answer several requests, each on its own; the model of each unit runs once on all its rows.

        This is what ``@serve.batch`` calls: one bad request must not fail the others, so errors are
        returned in its place rather than raised.

        Args:
            requests: validated requests (any mix of symbols).
            prefix_index: name failing items ``requests[i].…`` in error messages (batch endpoint).

        Returns:
            One :class:`PredictResponse` — or the :class:`FleetError` (UnknownSymbolError, RequestError,
            InsufficientHistoryError) that request caused — per request, in order.
        """
        out: list[PredictResponse | FleetError | None] = [None] * len(requests)
        rows: dict[int, tuple[AssetInfo, pd.DataFrame]] = {}
        for i, req in enumerate(requests):
            where = f"requests[{i}]." if prefix_index else ""
            try:
                rows[i] = self.design_row(req, where)
            except UnknownSymbolError as err:
                out[i] = UnknownSymbolError(f"{where}{err}")
                out[i].field = f"{where}symbol"
            except FleetError as err:
                out[i] = err
        by_unit: dict[str, list[int]] = {}
        for i, (info, _) in rows.items():
            by_unit.setdefault(info.unit, []).append(i)
        for unit, idx in by_unit.items():
            model = self.units[unit]
            blocks = [rows[i][1] for i in idx]
            last = np.cumsum([len(b["__time"]) for b in blocks]) - 1  # each request's own (last) row
            # One (n_rows, n_features) frame per unit and one model call for the whole batch.
            times = pd.DatetimeIndex(np.concatenate([b["__time"] for b in blocks]), tz="UTC")
            X = pd.DataFrame({c: np.concatenate([b[c] for b in blocks]) for c in model.feature_names}, index=times)
            p_up = model.estimator.predict_proba(X)[last, 1]
            policy = served_policy(model, self.config)
            meta = getattr(model, "meta", None)
            keep = meta.allow(X.iloc[last], p_up) if meta is not None else np.ones(len(idx), dtype=bool)
            for i, p, gate, kept in zip(idx, p_up, self._gate(model, X.iloc[last]), keep):
                info = rows[i][0]
                signal, stated = policy(float(p))
                signal = signal if kept else 0  # meta-labelling: the secondary model drops this bet
                out[i] = PredictResponse(
                    symbol=info.symbol, asset_id=info.asset_id, unit=info.unit, p_up=float(p),
                    signal=signal, threshold=self.threshold, policy=stated, gate_weights=gate,
                    active_experts=[k for k, v in gate.items() if v > 0.0], model_version=self.model_version,
                    as_of=requests[i].as_of, horizon_bars=self.horizon, trained_until=model.trained_until,
                    registry_version=self.registry_version)
        return out

    def predict_many(self, requests: list[PredictRequest], *, prefix_index: bool = False) -> list[PredictResponse]:
        """Answer several requests all-or-nothing (see :meth:`predict_each`); raises the first error."""
        out = self.predict_each(requests, prefix_index=prefix_index)
        for r in out:
            if isinstance(r, FleetError):
                raise r
        return out

    def predict(self, request: PredictRequest) -> PredictResponse:
        """Answer one request (see :meth:`predict_many`)."""
        return self.predict_many([request])[0]
