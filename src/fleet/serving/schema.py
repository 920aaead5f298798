"""Request and response schemas of the prediction API (pydantic; FastAPI renders them at ``/docs``).

Units: prices in the asset's quote currency (> 0, finite), volume in base units (>= 0,
finite), timestamps in UTC (ISO 8601 strings or Unix seconds; naive values are read as UTC,
as ``fleet train`` reads naive input).
"""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class PredictRequest(BaseModel):
    """Bars of one asset, oldest first, ending at the bar to predict from."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "symbol": "BTCUSDT",
        "candles": [{"timestamp": "2024-01-01T00:00:00Z", "open": 42000.0, "high": 42100.0, "low": 41900.0,
                     "close": 42050.0, "volume": 12.5}]}]})

    symbol: str = Field(min_length=1, max_length=64, description="asset symbol as trained (GET /v1/models)")
    candles: list[Candle] = Field(min_length=1, max_length=MAX_CANDLES,
                                  description="bars oldest first, strictly increasing timestamps; "
                                              "GET /v1/models gives how many each asset needs")

    @field_validator("candles")
    @classmethod
    def _increasing(cls, candles: list[Candle]) -> list[Candle]:
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


class PredictResponse(BaseModel):
    """Prediction for the bar after the last candle."""

    symbol: str
    asset_id: int = Field(description="registry id of the asset")
    unit: str = Field(description="training unit (cluster, symbol or 'global') whose model answered")
    p_up: float = Field(description="P(forward log return over the label horizon > 0), in [0, 1]")
    signal: int = Field(description="1 (long) when p_up > threshold, else 0 (flat)")
    threshold: float = Field(description="policy threshold of the run")
    gate_weights: dict[str, float] = Field(description="weight of each expert in p_up (sums to 1)")
    active_experts: list[str] = Field(description="experts with a non-zero gate weight")
    model_version: str = Field(description="run id (name of the run directory)")
    as_of: datetime = Field(description="timestamp of the last candle, UTC")


class BatchResponse(BaseModel):
    results: list[PredictResponse]
