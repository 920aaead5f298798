"""Request and response schemas of the prediction API (pydantic; FastAPI renders them at ``/docs``).

Units: prices in the asset's quote currency (> 0, finite), volume in base units (>= 0,
finite), timestamps in UTC (ISO 8601 strings or Unix seconds; naive values are read as UTC,
as ``fleet train`` reads naive input).

Two equivalent layouts for ``candles``: rows (a list of :class:`Candle` objects) or columns
(one :class:`CandleColumns` object of equal-length arrays). Columns validate faster
(one typed array per field instead of one object per bar) and make a smaller body; the answer
is the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Union

import numpy as np
from pydantic import (BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, field_validator,
                      model_validator)

#: Most candles one request may carry (the widest FFD window is 2048 bars by default).
MAX_CANDLES = 20_000
#: Most requests one batch may carry.
MAX_BATCH = 256


class Candle(BaseModel):
    """One bar of one asset. ``close`` is required; the others are needed only if the unit's model uses them."""

    model_config = ConfigDict(extra="forbid")

    timestamp: datetime = Field(description="bar time, UTC (ISO 8601 or Unix seconds; naive -> UTC)")
    open: float | None = Field(None, gt=0, allow_inf_nan=False, description="open price, > 0")
    high: float | None = Field(None, gt=0, allow_inf_nan=False, description="high price, > 0")
    low: float | None = Field(None, gt=0, allow_inf_nan=False, description="low price, > 0")
    close: float = Field(gt=0, allow_inf_nan=False, description="close price, > 0")
    volume: float | None = Field(None, ge=0, allow_inf_nan=False, description="traded volume, >= 0")

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    @model_validator(mode="after")
    def _high_low(self) -> "Candle":
        if self.high is not None and self.low is not None and self.high < self.low:
            raise ValueError(f"high={self.high} < low={self.low}; expected high >= low")
        return self


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def timestamps_ns(values: list[datetime]) -> np.ndarray:
    """int64 nanoseconds since the epoch, UTC, of (n,) datetimes (naive -> UTC), exact to the microsecond."""
    return np.array([((t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)) - _EPOCH) // _MICROSECOND
                     for t in values], dtype=np.int64) * 1000


Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Volume = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class CandleColumns(BaseModel):
    """Bars of one asset as columns: equal-length arrays, oldest first (same units and rules as :class:`Candle`).

    ``timestamp`` and ``close`` are required; ``open``, ``high``, ``low``, ``volume`` only if the unit's
    model uses them. Errors name the array and the position, e.g. ``candles.close[5]``.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "timestamp": ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"], "open": [42000.0, 42050.0],
        "high": [42100.0, 42200.0], "low": [41900.0, 42000.0], "close": [42050.0, 42150.0], "volume": [12.5, 9.0]}]})

    timestamp: list[datetime] = Field(min_length=1, max_length=MAX_CANDLES,
                                      description="bar times, UTC (ISO 8601 or Unix seconds; naive -> UTC), "
                                                  "strictly increasing")
    open: list[Price] | None = Field(None, max_length=MAX_CANDLES, description="open prices, > 0")
    high: list[Price] | None = Field(None, max_length=MAX_CANDLES, description="high prices, > 0")
    low: list[Price] | None = Field(None, max_length=MAX_CANDLES, description="low prices, > 0")
    close: list[Price] = Field(max_length=MAX_CANDLES, description="close prices, > 0")
    volume: list[Volume] | None = Field(None, max_length=MAX_CANDLES, description="traded volumes, >= 0")

    _ns: np.ndarray = PrivateAttr()

    @model_validator(mode="after")
    def _consistent(self) -> "CandleColumns":
        n = len(self.timestamp)
        for name in ("open", "high", "low", "close", "volume"):
            values = getattr(self, name)
            if values is not None and len(values) != n:
                raise ValueError(f"candles.{name}: {len(values)} values for {n} timestamps; "
                                 "expected one value per timestamp")
        ns = timestamps_ns(self.timestamp)
        step = np.diff(ns)
        if (step <= 0).any():
            i = int(np.flatnonzero(step <= 0)[0]) + 1
            cur, prev = self.timestamp[i], self.timestamp[i - 1]
            if step[i - 1] == 0:
                raise ValueError(f"candles.timestamp[{i}]={cur.isoformat()} duplicates candles.timestamp[{i - 1}]; "
                                 "expected strictly increasing timestamps")
            raise ValueError(f"candles.timestamp[{i}]={cur.isoformat()} is before candles.timestamp[{i - 1}]="
                             f"{prev.isoformat()}; expected candles sorted oldest first")
        if self.high is not None and self.low is not None:
            bad = np.flatnonzero(np.asarray(self.high) < np.asarray(self.low))
            if bad.size:
                i = int(bad[0])
                raise ValueError(f"candles.high[{i}]={self.high[i]} < candles.low[{i}]={self.low[i]}; "
                                 "expected high >= low")
        self._ns = ns
        return self


def example_request(symbol: str, bars: int, columns: list[str], bar_seconds: float = 3600.0) -> dict:
    """A valid ``PredictRequest`` body for a served run: ``bars`` candles (columns layout) of ``symbol``.

    Put in the OpenAPI document as the request example, so a client (or a schema-driven fuzzer) sees one
    request the server accepts: timestamps ``bar_seconds`` apart from 2024-01-01 UTC, strictly
    increasing; a smooth made-up price path around 100 (close; open = previous close; high/low 0.2%
    around the larger/smaller of the two) and volume around 1,000, only for the ``columns`` the served
    models use. The numbers carry no market meaning.
    """
    k = np.arange(int(bars), dtype=float)
    close = 100.0 * np.exp(0.02 * np.sin(k / 9.0) + 0.01 * np.sin(k / 2.3) + 1e-4 * k)
    open_ = np.concatenate([[close[0]], close[:-1]])
    values = {"open": open_, "close": close, "high": np.maximum(open_, close) * 1.002,
              "low": np.minimum(open_, close) * 0.998, "volume": 1000.0 + 200.0 * np.sin(k / 5.0)}
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    candles = {"timestamp": [(start + timedelta(seconds=bar_seconds * i)).isoformat().replace("+00:00", "Z")
                             for i in range(int(bars))]}
    for name in ("open", "high", "low", "close", "volume"):
        if name in columns or name == "close":
            candles[name] = [round(float(v), 6) for v in values[name]]
    return {"symbol": symbol, "candles": candles}


def _candles_layout(value: Any) -> str:
    return "columns" if isinstance(value, (dict, CandleColumns)) else "rows"


#: ``candles`` of a request: a list of candle objects (rows) or one object of arrays (columns).
Candles = Annotated[Union[Annotated[list[Candle], Field(min_length=1, max_length=MAX_CANDLES), Tag("rows")],
                          Annotated[CandleColumns, Tag("columns")]],
                    Discriminator(_candles_layout)]
#: Names of the two layouts; pydantic puts them in error locations (the HTTP API leaves them out).
CANDLE_LAYOUTS = ("rows", "columns")


class PredictRequest(BaseModel):
    """Bars of one asset, oldest first, ending at the bar to predict from."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "symbol": "BTCUSDT",
        "candles": [{"timestamp": "2024-01-01T00:00:00Z", "open": 42000.0, "high": 42100.0, "low": 41900.0,
                     "close": 42050.0, "volume": 12.5}]}]})

    symbol: str = Field(min_length=1, max_length=64, description="asset symbol as trained (GET /v1/models)")
    candles: Candles = Field(description="bars oldest first, strictly increasing timestamps: a list of candle "
                                         "objects, or one object of equal-length arrays (faster); "
                                         "GET /v1/models gives how many each asset needs")

    @property
    def n_bars(self) -> int:
        """Number of candles sent."""
        c = self.candles
        return len(c.timestamp) if isinstance(c, CandleColumns) else len(c)

    @property
    def as_of(self) -> datetime:
        """Timestamp of the last candle, UTC."""
        c = self.candles
        t = c.timestamp[-1] if isinstance(c, CandleColumns) else c[-1].timestamp
        return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)

    def column(self, name: str) -> list[float | None] | None:
        """Values of ``name`` (open/high/low/close/volume) per candle: None for a column sent with neither
        layout, a None entry for a row lacking it."""
        c = self.candles
        return getattr(c, name) if isinstance(c, CandleColumns) else [getattr(r, name) for r in c]

    def times_ns(self) -> np.ndarray:
        """(n_bars,) int64 nanoseconds since the epoch, UTC."""
        c = self.candles
        return c._ns if isinstance(c, CandleColumns) else timestamps_ns([r.timestamp for r in c])

    @field_validator("candles")
    @classmethod
    def _increasing(cls, candles):
        if isinstance(candles, CandleColumns):
            return candles  # checked by CandleColumns
        for i in range(1, len(candles)):
            prev, cur = candles[i - 1].timestamp, candles[i].timestamp
            if cur == prev:
                raise ValueError(f"candles[{i}].timestamp={cur.isoformat()} duplicates candles[{i - 1}]; "
                                 "expected strictly increasing timestamps")
            if cur < prev:
                raise ValueError(f"candles[{i}].timestamp={cur.isoformat()} is before candles[{i - 1}]"
                                 f".timestamp={prev.isoformat()}; expected candles sorted oldest first")
        return candles


class BatchRequest(BaseModel):
    """Several independent predictions; answered all-or-nothing (the first bad item decides the error)."""

    model_config = ConfigDict(extra="forbid")

    requests: list[PredictRequest] = Field(min_length=1, max_length=MAX_BATCH)


class ServedPolicy(BaseModel):
    """The trading policy the answering unit was trained with (chosen on its training window, stored in its model).

    ``fixed``: a 1/h tranche on every bar with p_up > theta_in (held ``min_hold`` = h bars); ``hysteresis``: open
    above ``theta_in``, close below ``theta_out`` after ``min_hold`` bars; ``expected_return``: the same on the
    calibrated P(up) (levels from the cost and the typical move); ``flat``: the unit does not trade. With
    ``sides = both`` the rule is mirrored (short below 1 - theta_in, cover above 1 - theta_out).
    """

    kind: str = Field(description="fixed | hysteresis | expected_return | flat")
    sides: str = Field(description="long | both")
    theta_in: float = Field(description="entry level on p_up (expected_return: on the calibrated P(up))")
    theta_out: float = Field(description="exit level (<= theta_in)")
    min_hold: int = Field(ge=1, description="bars a position is held at least")
    cost_bps: float = Field(ge=0.0, description="cost per side the policy was chosen with, basis points")
    calibrated_p_up: float | None = Field(None, description="the calibrated P(up) the expected-return rule reads")


class PredictResponse(BaseModel):
    """Prediction for the bar after the last candle."""

    symbol: str
    asset_id: int = Field(description="registry id of the asset")
    unit: str = Field(description="training unit (cluster, symbol or 'global') whose model answered")
    p_up: float = Field(description="P(forward log return over the label horizon > 0), in [0, 1]")
    signal: int = Field(description="entry decision of the unit's policy for a book that is flat: 1 long, -1 short "
                                     "(sides = both), 0 none (the fixed rule: 1 when p_up > threshold); an open "
                                     "position is closed by the policy's exit rule (see policy)")
    threshold: float = Field(description="policy threshold of the run (the fixed rule's level)")
    policy: ServedPolicy | None = Field(None, description="the answering unit's trading policy")
    gate_weights: dict[str, float] = Field(description="weight of each expert in p_up (sums to 1, or to 1 minus the "
                                           "select gate's share of its constant base-rate P(up) when "
                                           "model.moe.select_base_rate is mix)")
    active_experts: list[str] = Field(description="experts with a non-zero gate weight")
    model_version: str = Field(description="run id (name of the run directory)")
    as_of: datetime = Field(description="timestamp of the last candle, UTC")
    horizon_bars: int = Field(ge=1, description="label horizon: p_up is about the log return from the last "
                                                "candle's close to the close horizon_bars bars later")
    trained_until: datetime = Field(description="end of the answering model's training data, UTC: a fold's "
                                    "training window's end (exclusive) or, for a refit model, its last bar")
    registry_version: int = Field(ge=1, description="version of the asset registry the run trained with "
                                                    "(asset_id is stable across runs sharing the registry)")


class BatchResponse(BaseModel):
    """One :class:`PredictResponse` per request, in order."""

    results: list[PredictResponse]


class ErrorItem(BaseModel):
    """One problem with a request."""

    loc: list[str | int] = Field(description="where: e.g. [\"body\", \"candles\", 3, \"close\"]; [] for the "
                                             "request as a whole")
    msg: str = Field(description="what was wrong and what was expected")
    type: str = Field(description="machine-readable kind, snake_case: e.g. greater_than, missing, "
                                  "unknown_symbol, insufficient_history, body_too_large")


class ErrorResponse(BaseModel):
    """Body of every error response (404, 405, 413, 422, 503): always a list of problems."""

    detail: list[ErrorItem]


class AssetModel(BaseModel):
    """One served asset (GET /v1/models)."""

    symbol: str
    asset_id: int = Field(ge=0, description="registry id")
    ffd_d: float = Field(description="fitted fractional-differencing order d")
    required_bars: int = Field(ge=1, description="fewest candles a request needs")
    recommended_bars: int = Field(ge=1, description="candles that reproduce training to 1e-6")
    columns: list[str] = Field(description="candle fields the model uses (close always)")
    metrics: dict[str, float | int | str | None] = Field(description="out-of-sample metrics of the run "
                                                                     "(results_per_asset.csv)")


class UnitModelInfo(BaseModel):
    """One training unit's served model (GET /v1/models)."""

    unit: str
    model: str = Field(description="which model answers: \"refit\" (fitted on all the data, `fleet train --refit`) "
                       "or \"fold <k>\" (the walk-forward's last fold)")
    trained_until: datetime = Field(description="end of the model's training data, UTC: for a fold's model the end "
                                    "of its training window (exclusive), for a refit model the last bar it was "
                                    "trained on (the data's last bar, or the last before the hold-out)")
    registry_version: int = Field(ge=1, description="version of the asset registry this model's asset ids "
                                                    "come from (the run's)")
    features: list[str]
    experts: list[str]
    assets: list[AssetModel]


class ModelsResponse(BaseModel):
    """What the service serves (GET /v1/models)."""

    model_version: str = Field(description="run id (name of the run directory)")
    threshold: float = Field(description="policy threshold: signal 1 when p_up > threshold")
    strategy: str | None = Field(description="islands, hierarchical or global")
    horizon_bars: int = Field(ge=1, description="label horizon, bars")
    registry_version: int = Field(ge=1, description="version of the asset registry the run trained with")
    units: list[UnitModelInfo]


class HealthResponse(BaseModel):
    """Liveness (GET /healthz)."""

    status: str = Field(description="ok")
    model_version: str
    units: int = Field(ge=1, description="unit models loaded")
