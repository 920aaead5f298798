"""The Python API: :func:`train`, :func:`load_run` and :class:`Run` (re-exported as ``fleet.train`` ...).

The CLI (``fleet train``, ``fleet report``) is a shell over the same functions; everything here
raises :mod:`fleet.errors` exceptions (never ``sys.exit``). Documented in docs/python-api.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fleet.config import FleetConfig, build_config, dotted_overrides, load_config
from fleet.errors import ConfigError, RunDirectoryError
from fleet.store import layout as L

#: Tables of a run directory, by the key of :attr:`Run.results` (the file names are the store's).
RESULT_FILES = L.TABLES


def resolve_config(config: FleetConfig | Mapping | str | Path | None = None, **overrides) -> FleetConfig:
    """A :class:`FleetConfig` from a config object, a nested dict, a YAML fleet spec path or None
    (defaults), with keyword overrides (``days=180, folds=2``): the keywords of ``fleet train``'s options,
    derived from the same config fields (:data:`fleet.config.OVERRIDES`, docs/cli.md).

    Raises:
        ConfigError: unknown override, invalid field, or a spec file that is missing / not YAML.
    """
    dotted = dotted_overrides(overrides)
    if config is None or isinstance(config, (str, Path)):
        return load_config(config, dotted)
    if isinstance(config, FleetConfig):
        return build_config(config.to_dict(), dotted, source="config")
    if isinstance(config, Mapping):
        return build_config(config, dotted, source="config")
    raise ConfigError(f"config: expected a FleetConfig, a dict, a YAML path or None, got {type(config).__name__}")


def map_columns(frame: pd.DataFrame, *, id_col: str = "symbol", time_col: str = "timestamp",
                price_col: str = "close") -> pd.DataFrame:
    """``frame`` with its asset, time and price columns renamed to fleet's ``symbol``, ``timestamp`` and ``close``
    (a copy; the frame given is not changed). For frames in another library's layout, e.g. mlforecast's
    ``unique_id`` / ``ds`` / ``y``: ``map_columns(df, id_col="unique_id", time_col="ds", price_col="y")``.

    Raises:
        DataError: a column named for mapping is not in the frame, or the frame already has a different column
            under the name it would be renamed to (fleet's own names, when missing, are reported by the data
            rules).
    """
    from fleet.errors import DataError

    mapping = {id_col: "symbol", time_col: "timestamp", price_col: "close"}
    for given, ours in mapping.items():
        if given == ours:
            continue  # fleet's own name: the data rules report it when it is missing
        if given not in frame.columns:
            arg = {"symbol": "id_col", "timestamp": "time_col", "close": "price_col"}[ours]
            raise DataError(f"<DataFrame>: {arg}={given!r} is not a column "
                            f"(columns: {', '.join(map(str, frame.columns))})")
        if given != ours and ours in frame.columns:
            raise DataError(f"<DataFrame>: has both {given!r} and {ours!r}; drop {ours!r} or map it instead")
    renames = {given: ours for given, ours in mapping.items() if given != ours}
    return frame.rename(columns=renames) if renames else frame


def train(data: pd.DataFrame | str | Path | None = None,
          config: FleetConfig | Mapping | str | Path | None = None, *,
          echo: Callable[[str], None] | None = print, id_col: str = "symbol", time_col: str = "timestamp",
          price_col: str = "close", **overrides: Any) -> Run:
    """Train the fleet under purged walk-forward validation and write a run directory (``fleet train``).

    Args:
        data: bars: a long DataFrame with one row per (timestamp, symbol) and columns ``timestamp``
            (datetimes; naive = UTC), ``symbol``, ``close`` (> 0) and optionally ``open``, ``high``,
            ``low`` (> 0) and ``volume`` (>= 0), validated by the same rules as a file (duplicates,
            non-finite prices, high < low ... raise DataError); or a path (directory of per-symbol files
            or one long file, as ``--data``); or None: the spec's ``data.path``, else the synthetic market.
        config: a :class:`FleetConfig`, a nested dict of its fields, a YAML fleet spec path, or None.
        echo: where progress lines go (None: nowhere).
        id_col, time_col, price_col: the DataFrame's asset, time and price columns when they are not ``symbol``,
            ``timestamp`` and ``close`` (as mlforecast's ``id_col`` / ``time_col`` / ``target_col``), see
            :func:`map_columns`.
        **overrides: ``fleet train`` options by keyword (every setting of :class:`FleetConfig`, listed in
            docs/cli.md), e.g. ``days=180, folds=2, strategy="islands", symbols=["BTCUSDT", "ETHUSDT"],
            registry="ids.json", out="runs/x"``.

    Returns:
        The finished :class:`Run` (its directory is ``config.out``, default ``runs/<UTC timestamp>``).

    Raises:
        ConfigError: bad configuration or override, ``out`` exists, ``seeds`` > 1 (use the CLI's
            ``--seeds``). DataError: unusable data (names the file / DataFrame, column and rows), too
            little history for the folds. UnitsFailedError: some units failed (resumable with
            ``fleet train --resume``, except for DataFrame input).
    """
    frame = None
    if isinstance(data, pd.DataFrame):
        frame = map_columns(data, id_col=id_col, time_col=time_col, price_col=price_col)
        overrides = {**overrides, "data": None}
    elif data is not None:
        if not isinstance(data, (str, Path)):
            raise ConfigError(f"data: expected a long DataFrame, a path or None, got {type(data).__name__}")
        overrides = {**overrides, "data": str(data)}
    cfg = resolve_config(config, **overrides)
    if frame is not None and cfg.data.path:
        cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"path": None})})
    if cfg.evaluation.seeds > 1:
        raise ConfigError(f"seeds={cfg.evaluation.seeds}: fleet.train runs one seed; call it once per seed "
                          "(seed=...) or use `fleet train --seeds N`")
    from fleet.models.factory import needs_torch

    if needs_torch(cfg.model):  # torch's OpenMP before the driver's scikit-learn (fleet.models._openmp)
        from fleet.models._openmp import torch_first

        torch_first()
    from fleet.training.driver import run_fleet

    quiet = echo if echo is not None else (lambda line: None)
    summary = run_fleet(cfg, echo=quiet, argv=["fleet.train"], frame=frame)
    return Run(summary.out)


def load_run(path: str | Path) -> Run:
    """Open a finished run directory (written by ``fleet train`` or :func:`train`).

    Raises:
        RunDirectoryError: no such directory, or it has no ``manifest.json`` (not a finished run).
    """
    return Run(path)


class Run:
    """A finished run directory, read lazily.

    Attributes:
        path: the run directory.
        manifest: ``manifest.json`` as a dict (configuration, data, folds, versions, registry, timings).
        config: the run's :class:`FleetConfig`.

    Raises:
        RunDirectoryError: ``path`` is not a finished run directory.
    """

    def __init__(self, path: str | Path):
        from fleet.store import is_uri

        if is_uri(str(path)):
            raise RunDirectoryError(f"{path}: fleet.load_run reads a local run directory; download the run first "
                                    "(e.g. `aws s3 sync`)")
        self.path = Path(path)
        self._layout = L.RunLayout(self.path)
        if not self._layout.exists():
            raise RunDirectoryError(f"{self.path}: no such run directory (expected the output of `fleet train`)")
        if not self._layout.has(L.MANIFEST):
            raise RunDirectoryError(f"{self.path}: missing {L.MANIFEST}; not a finished `fleet train` run")
        try:
            self.manifest: dict = self._layout.read_manifest()
        except (OSError, ValueError) as err:
            raise RunDirectoryError(f"{self._layout.describe(L.MANIFEST)}: unreadable ({err})") from None

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    @cached_property
    def config(self) -> FleetConfig:
        try:
            return FleetConfig.model_validate(self.manifest["config"])
        except (KeyError, ValueError) as err:
            raise RunDirectoryError(f"{self._layout.describe(L.MANIFEST)}: its config is not valid for this version of "
                                    f"fleet ({err})") from None

    @cached_property
    def results(self) -> dict[str, pd.DataFrame]:
        """The run's tables by name: ``asset`` (one row per asset, out-of-sample over all folds),
        ``cluster``, ``fold`` (one row per fold and asset, plus ``ALL``), ``expert_auc``,
        ``expert_weights``, and when the run has them ``holdout``, ``forced_entry`` and ``policy``
        (policy_comparison.csv). Columns and units as in docs/validation.md "Metrics" (returns are simple returns,
        0.1 = 10 %; expectancy the net P&L per round trip)."""
        return {key: self._layout.read_csv(name) for key, name in RESULT_FILES.items() if self._layout.has(name)}

    def _read_predictions(self, holdout: bool) -> pd.DataFrame:
        symbols = self._layout.prediction_symbols(holdout)
        if not symbols:
            return pd.DataFrame()
        parts = [self._layout.read_parquet(L.prediction_file(s, holdout)).assign(symbol=s) for s in symbols]
        out = pd.concat(parts, ignore_index=True)
        front = ["timestamp", "symbol"]
        out = out[front + [c for c in out.columns if c not in front]]
        return out.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)

    @cached_property
    def predictions(self) -> pd.DataFrame:
        """Every out-of-sample prediction, long: one row per (timestamp, symbol) of each fold's test block,
        columns timestamp (UTC), symbol, fold, p_up, signal (0/1 after the policy), forward_return (log
        return over the horizon), y, forced_entry, return_1, bar_number, cluster, and with several experts
        p_<expert> / w_<expert>."""
        return self._read_predictions(holdout=False)

    def book(self, k: int | None = None, n_drop: int | None = None) -> pd.DataFrame:
        """The fleet as one book (``results_book.csv``): per fold and over all folds (``fold = "all"``), the
        cross-sectional IC / Rank IC of P(up) and the score quintiles' forward returns (``book = "score"``), the
        top-k dropout long book against the equal-weight fleet (``"topk"``), the market-neutral long-short book
        (``"long_short"``) and the benchmark itself (``"benchmark"``); columns in docs/run-directory.md.

        Args:
            k, n_drop: the top-k book's size and swaps per rebalance; given, or for a run directory without
                results_book.csv, the books are computed from :attr:`predictions` with the run's horizon and costs
                (:func:`fleet.evaluation.fleet_book.book_tables`; None: the run's setting, else scaled to the fleet).
        """
        if k is None and n_drop is None and self._layout.has(L.RESULTS_BOOK):
            return self._layout.read_csv(L.RESULTS_BOOK)
        from fleet.evaluation.fleet_book import book_tables

        cfg = self.config
        k = cfg.evaluation.book_k if k is None else k
        n_drop = cfg.evaluation.book_drop if n_drop is None else n_drop
        return book_tables(self.predictions, horizon=cfg.labels.horizon, cost_bps=cfg.policy.cost_bps,
                           bars_per_year=float(self.manifest["bars_per_year"]), k=k, n_drop=n_drop)[0]

    @cached_property
    def holdout_predictions(self) -> pd.DataFrame:
        """The hold-out rows (same columns as :attr:`predictions`); empty without a hold-out."""
        return self._read_predictions(holdout=True)

    @cached_property
    def models(self) -> dict[str, Any]:
        """The served unit models by unit (``cluster0``, a symbol, or ``global``): the refit's when the run was
        trained with ``refit=True``, else the last fold's (:attr:`served_model` says which);
        :class:`fleet.models.artifact.UnitModel` (``.estimator`` follows the scikit-learn contract)."""
        return self._predictor.units

    @property
    def served_model(self) -> str:
        """Which models :meth:`predict` (and ``fleet serve``) use: ``"refit"`` (fitted on all the data up to its last
        bar, ``refit=True``) or ``"fold <k>"`` (the walk-forward's last fold)."""
        return self._predictor.served_model

    @property
    def trained_until(self) -> dict[str, pd.Timestamp]:
        """Unit -> the end of its served model's training data (UTC): a refit model's last bar, or the end
        (exclusive) of the last fold's training window; as ``GET /v1/models`` states it."""
        return {unit: model.trained_until for unit, model in self.models.items()}

    @cached_property
    def assets(self) -> pd.DataFrame:
        """What :meth:`predict` (and ``GET /v1/models``) needs per served asset: one row per symbol with
        asset_id, unit, required_bars (fewest bars accepted), recommended_bars (bars that reproduce training
        to 1e-6), columns (the bar columns the model uses) and ffd_d."""
        rows = [{"symbol": a.symbol, "asset_id": a.asset_id, "unit": a.unit, "required_bars": a.required_bars,
                 "recommended_bars": a.recommended_bars, "columns": list(a.columns), "ffd_d": a.d}
                for a in self._predictor.assets.values()]
        return pd.DataFrame(rows).sort_values("symbol").reset_index(drop=True)

    @cached_property
    def registry(self):
        """The :class:`~fleet.data.registry.AssetRegistry` the run trained with."""
        from fleet.data.registry import AssetRegistry

        return AssetRegistry.load(self.path / L.ASSET_REGISTRY)

    @cached_property
    def _predictor(self):
        from fleet.serving.predictor import FleetPredictor

        return FleetPredictor(self.path)

    def report(self, path: str | Path | None = None) -> Path:
        """Write the HTML report (``fleet report``) into ``path`` (default ``RUN_DIR/report``); returns
        the report.html path."""
        from fleet.evaluation.report import write_report

        return write_report(self.path, path)

    def predict(self, frame: pd.DataFrame, all_bars: bool = False, *, id_col: str = "symbol",
                time_col: str = "timestamp", price_col: str = "close") -> pd.DataFrame:
        """P(up) from the run's served models (:attr:`served_model`), as ``POST /v1/predict`` answers it.

        Args:
            frame: bars as a long DataFrame (timestamp, symbol, close and the columns the model uses,
                see :attr:`assets`), oldest first or not (it is sorted), at least ``required_bars`` per
                symbol; validated like training data (DataError).
            all_bars: False: one row per symbol, for its last bar (the same numbers as the HTTP endpoint
                given the same candles). True: one row per bar with defined features (each row's features
                use only that bar and the bars before it in ``frame``: the endpoint's answer for the
                candles up to that bar).
            id_col, time_col, price_col: the frame's asset, time and price columns (:func:`map_columns`).

        Returns:
            Long DataFrame: timestamp (UTC), symbol, asset_id, unit, p_up (in [0, 1]), signal (1 when
            p_up > threshold), and per expert p_<expert> (its own P(up)) and w_<expert> (its gate weight;
            rows sum to 1).

        Raises:
            UnknownSymbolError: a symbol this run does not serve (:attr:`assets` lists those it does).
            DataError: a column the symbol's model uses is missing, or the frame breaks a data rule.
            InsufficientHistoryError: too few bars.
        """
        from fleet.data.load import load_panel

        panel = load_panel(map_columns(frame, id_col=id_col, time_col=time_col, price_col=price_col))
        rows = [self._predict_symbol(symbol, bars, all_bars) for symbol, bars in panel.frames.items()]
        result = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
        return result.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)

    def _served_asset(self, symbol: str, bars: pd.DataFrame):
        """The served model's record of ``symbol`` (its unit, columns, bars needed), after checking the bars.

        Raises:
            UnknownSymbolError / DataError / InsufficientHistoryError: as :meth:`predict`.
        """
        from fleet.errors import DataError, InsufficientHistoryError, UnknownSymbolError

        predictor = self._predictor
        try:
            info = predictor.asset(symbol)
        except UnknownSymbolError:
            known = ", ".join(sorted(predictor.assets))
            raise UnknownSymbolError(f"{symbol!r} is not served by this run; Run.assets lists the symbols it "
                                     f"serves ({known})") from None
        missing = [c for c in info.columns if c not in bars.columns]
        if missing:
            raise DataError(f"frame: {symbol}'s model (unit {info.unit!r}) uses the column(s) "
                            f"{', '.join(missing)}, missing from the frame")
        if len(bars) < info.required_bars:
            raise InsufficientHistoryError(f"{symbol}: {len(bars)} bars given, {info.required_bars} needed "
                                           f"(FFD window at d={info.d:g} plus feature warm-up)",
                                           field=f"frame[{symbol}]")
        return info

    def _predict_symbol(self, symbol: str, bars: pd.DataFrame, all_bars: bool) -> pd.DataFrame:
        """:meth:`predict`'s rows for one symbol's bars (n_bars, columns), oldest first."""
        from fleet.serving.schema import CandleColumns, PredictRequest

        predictor = self._predictor
        experts = self.config.model.active_experts()
        info = self._served_asset(symbol, bars)
        model = predictor.units[info.unit]
        if all_bars:
            factor = predictor.factor if "market_factor" in model.feature_names else None
            X = model.design_matrix(symbol, bars[list(info.columns)], factor)
            X = X[X.notna().all(axis=1)]
        else:
            request = PredictRequest(symbol=symbol, candles=CandleColumns(
                timestamp=list(bars.index.to_pydatetime()),
                **{c: bars[c].astype(float).tolist() for c in info.columns}))
            _, cols = predictor.design_row(request)
            times = cols.pop("__time")
            X = pd.DataFrame(cols, index=pd.DatetimeIndex(times, tz="UTC"))
        p_up, expert_p, weights = _details(model.estimator, X, experts)
        if not all_bars:
            # The endpoint's own numbers (same code path as HTTP), for the last bar.
            answer = predictor.predict(request)
            X, expert_p = X.iloc[-1:], expert_p[-1:]
            p_up = np.array([answer.p_up])
            weights = np.array([[answer.gate_weights.get(e, 0.0) for e in experts]])
        out = pd.DataFrame({"timestamp": X.index, "symbol": symbol, "asset_id": info.asset_id, "unit": info.unit,
                            "p_up": p_up, "signal": (p_up > predictor.threshold).astype(np.int8)})
        for j, name in enumerate(experts):
            out[f"p_{name}"] = expert_p[:, j]
            out[f"w_{name}"] = weights[:, j]
        return out


def _details(estimator, X: pd.DataFrame, experts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p_up (n,), expert P(up) (n, E), gate weights (n, E)) of ``X``; a single expert has weight 1."""
    if hasattr(estimator, "predict_details"):
        p_up, expert_p, weights = estimator.predict_details(X)
        return np.asarray(p_up, float), np.asarray(expert_p, float), np.asarray(weights, float)
    p_up = estimator.predict_proba(X)[:, 1]
    k = len(experts)
    return p_up, np.repeat(p_up[:, None], k, axis=1), np.full((len(p_up), k), 1.0 / k)
