"""Ray Serve application: a thin FastAPI shell around :class:`~fleet.serving.predictor.FleetPredictor`.

One deployment (``FleetIngress``) whose replicas each hold every unit model of the run (they
are small: a fitted gradient-boosting model per unit plus per-asset scaling), so any replica
answers any symbol with no second hop and no cold load; docs/serving.md gives the
reasons and when to switch to ``@serve.multiplexed``. Concurrent ``/v1/predict`` requests are
gathered by ``@serve.batch`` and each unit's model runs once per batch.

Routes: ``POST /v1/predict``, ``POST /v1/predict/batch``, ``GET /v1/models``, ``GET /healthz``,
OpenAPI at ``/docs``. Bad input never gives a 5xx: schema violations, non-finite or non-positive
prices, unsorted or duplicate timestamps and too few bars -> 422 naming the field; an unknown
symbol -> 404; a body over ``max_body_bytes`` -> 413. Every error body is an
:class:`~fleet.serving.schema.ErrorResponse`: ``{"detail": [{"loc", "msg", "type"}]}`` with a
snake_case ``type`` (pydantic's error types, or unknown_symbol, insufficient_history, invalid_value,
body_too_large, not_found, method_not_allowed). The OpenAPI document carries the served run's
symbols (an enum), the candle fields its models use (required) and a number of candles that suffices for
every symbol (``minItems``: the largest ``required_bars``; GET /v1/models gives each symbol's own,
which the server accepts). Rules JSON Schema cannot state remain the server's: timestamps strictly
increasing, high >= low, the columns layout's arrays of equal length.
"""

# No `from __future__ import annotations`: FastAPI must see the real types of the route signatures.
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from ray import serve
from starlette.exceptions import HTTPException
from threadpoolctl import threadpool_limits

from fleet.errors import ConfigError, FleetError, InsufficientHistoryError, RequestError, UnknownSymbolError
from fleet.serving.auth import BearerAuthMiddleware, add_security, replica_api_key
from fleet.serving.predictor import FleetPredictor
from fleet.serving.schema import (CANDLE_LAYOUTS, BatchRequest, BatchResponse, ErrorResponse, HealthResponse,
                                  ModelsResponse, PredictRequest, PredictResponse, example_request)

#: Default cap on a request body, bytes (a 2,049-candle request is about 0.3 MB of JSON).
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
#: Default CPUs reserved per replica: small, so that replicas fit next to Ray on a 2-core machine.
DEFAULT_NUM_CPUS = 0.5
#: Serve probes each replica (``check_health``) this often, seconds; a replica whose process died is
#: noticed within about one period and replaced (Serve's default is 10 s; 2 s keeps the window during
#: which requests can be routed to a dead replica short).
HEALTH_CHECK_PERIOD_S = 2.0
#: A probe not answered within this many seconds marks the replica unhealthy. It must exceed the
#: longest time the replica's event loop is busy under load (a full batch is ~0.4 s on 2 cores), so a
#: loaded but healthy replica is not restarted.
HEALTH_CHECK_TIMEOUT_S = 10.0
#: Requests a replica works on at once (a batch is at most 32).
DEFAULT_MAX_ONGOING_REQUESTS = 64
#: Requests waiting for a replica beyond ``max_ongoing_requests``, per caller; more get HTTP 503 at once.
#: -1: no limit (Serve's default).
DEFAULT_MAX_QUEUED_REQUESTS = -1
DEPLOYMENT_NAME = "FleetIngress"
APP_NAME = "fleet"


class _BodyTooLarge(HTTPException):
    """Raised while the body streams in; FastAPI re-raises HTTPExceptions from body reading as they are."""


class BodyLimitMiddleware:
    """Pure ASGI middleware: 413 when Content-Length, or the bytes actually received, exceed the limit.

    The limit is the replica's ``max_body_bytes`` (:func:`configure_replica`, called by the deployment's
    constructor).
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = _REPLICA.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES)
        detail = f"request body larger than max_body_bytes={limit}; send fewer candles or split the batch"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await _error(413, [], detail, "body_too_large")(scope, receive, send)
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(status_code=413, detail=detail)
            return message

        return await self.app(scope, limited, send)


#: Settings of the replica running in this process, set by :func:`configure_replica`. Module state, not
#: ``api.state``: Serve pickles the ingress class by value, so inside the deployment's methods ``api`` is a
#: copy of the app, not this module's (which ``_openapi`` reads); this module is imported once per replica.
_REPLICA: dict[str, Any] = {}


def configure_replica(*, max_body_bytes: int, symbols: list[str], bars: int, columns: list[str],
                      bar_seconds: float = 3600.0, api_key: tuple[str, str] | None = None) -> None:
    """Settings of this replica: the body limit, the API key's (salt, digest) or None for no authentication,
    and for the OpenAPI document (rebuilt) the served symbols, the candles that suffice for every one of them,
    the candle fields the served models use and the bar length in seconds (for the request example)."""
    _REPLICA.update(max_body_bytes=int(max_body_bytes), served=(sorted(symbols), int(bars), list(columns)),
                    bar_seconds=float(bar_seconds), api_key=api_key)
    api.openapi_schema = None



def _replica_key() -> tuple[str, str] | None:
    """The API key's (salt, digest) of the replica running in this process, or None. A module-level function, not
    a lambda: Serve pickles the app, and a function of an importable module travels by reference, so it reads this
    process's :data:`_REPLICA` rather than a copy taken when the app was pickled."""
    return _REPLICA.get("api_key")


def _error(status: int, loc: list, msg: str, kind: str, headers: dict | None = None) -> JSONResponse:
    """An error response in the one shape every error has (:class:`ErrorResponse`)."""
    return JSONResponse({"detail": [{"loc": list(loc), "msg": msg, "type": kind}]}, status_code=status,
                        headers=headers)


#: Errors every route may answer with, one model for all (declared in the OpenAPI document).
_ERRORS = {
    404: {"model": ErrorResponse, "description": "unknown symbol (not served by this run), or no such route"},
    413: {"model": ErrorResponse, "description": "request body larger than max_body_bytes"},
    422: {"model": ErrorResponse, "description": "invalid request: the field, the value and what was expected"},
    503: {"model": ErrorResponse, "description": "overloaded: more requests queued than max_queued_requests"},
}
_READ_ERRORS = {503: _ERRORS[503]}
#: ``type`` of an HTTP-level error by status code.
_HTTP_KINDS = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 413: "body_too_large",
               503: "unavailable"}


api = FastAPI(title="fleet", version="1",
              description="Predictions of a fleet of trading models trained by `fleet train`. "
                          "GET /v1/models lists the symbols and how many candles each needs.")
api.add_middleware(BodyLimitMiddleware)
# Added last, so it runs first: an unauthenticated request is refused before its body is read.
api.add_middleware(BearerAuthMiddleware, expected=_replica_key, error=_error)


def _body_schema(model: type[BaseModel]) -> dict:
    """OpenAPI ``requestBody`` of a route that parses its body itself (see :func:`parse_body`)."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def _non_null(prop: dict) -> dict:
    """A property schema without its ``null`` alternative (a field the served models need)."""
    alts = prop.get("anyOf")
    if not alts:
        return prop
    kept = [a for a in alts if a.get("type") != "null"]
    out = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
    return {**out, **kept[0]} if len(kept) == 1 else {**out, "anyOf": kept}


def _add_served_examples(doc: dict, example: dict) -> None:
    """One request the served run accepts, as the request-body example of both predict routes. A client
    sees a working request, and schemathesis' coverage phase (boundary values built from the schema) gets
    a positive case that keeps the rules JSON Schema cannot state (strictly increasing timestamps)."""
    for route, value in (("/v1/predict", example), ("/v1/predict/batch", {"requests": [example]})):
        media = doc["paths"][route]["post"]["requestBody"]["content"]["application/json"]
        media["examples"] = {"served": {"summary": "a request this run accepts (made-up prices)", "value": value}}


def _openapi() -> dict:
    """The OpenAPI document, with the request models the routes parse themselves added to its components."""
    if api.openapi_schema is None:
        doc = get_openapi(title=api.title, version=api.version, description=api.description, routes=api.routes)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for model in (PredictRequest, BatchRequest):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        served = _REPLICA.get("served")
        if served is not None:  # what the served run needs, where it is the same for every request
            symbols, bars, columns = served
            schemas["PredictRequest"]["properties"]["symbol"]["enum"] = symbols
            for layout in schemas["PredictRequest"]["properties"]["candles"]["oneOf"]:
                if layout.get("type") == "array":
                    layout["minItems"] = max(layout.get("minItems", 1), bars)
            candle, cols = schemas["Candle"], schemas["CandleColumns"]
            candle["required"] = [c for c in candle["properties"] if c == "timestamp" or c in columns]
            cols["required"] = list(candle["required"])
            for name in cols["required"]:
                cols["properties"][name] = _non_null(cols["properties"][name])
                cols["properties"][name]["minItems"] = bars
            for name in candle["required"]:
                candle["properties"][name] = _non_null(candle["properties"][name])
            example = example_request(symbols[0], bars, columns, _REPLICA.get("bar_seconds", 3600.0))
            # The models' own examples (a candle or two) are shorter than minItems here: the served one replaces them.
            schemas["PredictRequest"]["examples"] = [example]
            schemas["CandleColumns"]["examples"] = [example["candles"]]
            _add_served_examples(doc, example)
        if _REPLICA.get("api_key") is not None:
            add_security(doc)
        api.openapi_schema = doc
    return api.openapi_schema


api.openapi = _openapi


async def parse_body(request: Request, model: type[BaseModel]) -> BaseModel:
    """The request body validated as ``model`` straight from the JSON bytes (pydantic-core's parser: about
    half the time of FastAPI's ``json.loads`` then validate, for a 700-candle request).

    Raises:
        RequestValidationError: malformed JSON or a schema violation; locations start with ``body`` and
            leave out the ``rows`` / ``columns`` layout tag, as FastAPI's own validation would name them.
        _BodyTooLarge: the body exceeds ``max_body_bytes`` (from :class:`BodyLimitMiddleware`).
    """
    body = await request.body()
    try:
        return model.model_validate_json(body)
    except ValidationError as err:
        errors = []
        for e in err.errors(include_url=False, include_input=False):
            loc = [part for i, part in enumerate(e["loc"])
                   if not (part in CANDLE_LAYOUTS and i > 0 and e["loc"][i - 1] == "candles")]
            errors.append({"loc": ["body", *loc], "msg": e["msg"], "type": e["type"]})
        raise RequestValidationError(errors) from None


def _loc(field: str) -> list[str | int]:
    parts = field.replace("[", ".").replace("]", "").split(".")
    return ["body", *(int(p) if p.isdigit() else p for p in parts if p)]


@api.exception_handler(RequestValidationError)
async def _invalid(request: Request, err: RequestValidationError):
    # The offending input is left out: it may hold NaN/inf (not JSON) or thousands of candles.
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in err.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


@api.exception_handler(HTTPException)
async def _http_error(request: Request, err: HTTPException):
    return _error(err.status_code, [], str(err.detail), _HTTP_KINDS.get(err.status_code, "http_error"),
                  headers=getattr(err, "headers", None))


@api.exception_handler(UnknownSymbolError)
async def _unknown_symbol(request: Request, err: UnknownSymbolError):
    return _error(404, _loc(getattr(err, "field", "symbol")), str(err), "unknown_symbol")


@api.exception_handler(RequestError)
async def _bad_request(request: Request, err: RequestError):
    kind = "insufficient_history" if isinstance(err, InsufficientHistoryError) else "invalid_value"
    return _error(422, _loc(err.field), str(err), kind)


@api.exception_handler(FleetError)
async def _fleet_error(request: Request, err: FleetError):
    return _error(422, ["body"], str(err), "invalid_request")


@serve.deployment(name=DEPLOYMENT_NAME, ray_actor_options={"num_cpus": DEFAULT_NUM_CPUS},
                  health_check_period_s=HEALTH_CHECK_PERIOD_S, health_check_timeout_s=HEALTH_CHECK_TIMEOUT_S,
                  max_ongoing_requests=DEFAULT_MAX_ONGOING_REQUESTS, max_queued_requests=DEFAULT_MAX_QUEUED_REQUESTS)
@serve.ingress(api)
class FleetIngress:
    """One replica: every unit model of the run, behind the HTTP routes.

    Args:
        run_dir: run directory written by ``fleet train`` (readable from every node).
        max_body_bytes: larger request bodies get 413.
        batching: gather concurrent /v1/predict requests with ``@serve.batch`` (False: one at a time).
        api_key: (salt, SHA-256) of the API key (:func:`fleet.serving.auth.token_digest`); requests outside
            the open paths need it as a bearer token. api_key_env: else the name of an environment variable
            holding the key in the replica's process. Neither: no authentication.
        max_batch_size, batch_wait_timeout_s: ``@serve.batch`` settings. The wait defaults to 0 s: a
            batch is whatever queued while the previous one ran, so a lone request never waits for a
            partner (``benchmarks/serve_load.py --batch-wait-ms`` measures what a wait costs), and under load
            batches still form.

    Raises:
        RunDirectoryError: the run directory cannot be loaded (the replica fails to start).
        ConfigError: ``api_key_env`` is unset in the replica's environment (the replica fails to start).
    """

    def __init__(self, run_dir: str, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, batching: bool = True,
                 max_batch_size: int = 32, batch_wait_timeout_s: float = 0.0,
                 api_key: tuple[str, str] | None = None, api_key_env: str | None = None):
        # One BLAS/OpenMP thread per replica: single-row gradient-boosting predictions are ~3 ms on one
        # thread but spike to tens of ms when OpenMP threads contend with the replica's event loop.
        threadpool_limits(limits=1)
        self.predictor = FleetPredictor(run_dir)
        assets = self.predictor.assets.values()
        configure_replica(max_body_bytes=max_body_bytes, symbols=[a.symbol for a in assets],
                          bars=max(a.required_bars for a in assets),
                          columns=sorted({c for a in assets for c in a.columns}),
                          bar_seconds=self.predictor.bar.total_seconds(),
                          api_key=replica_api_key(api_key, api_key_env))
        self.batching = batching

        self._batched.set_max_batch_size(max_batch_size)
        self._batched.set_batch_wait_timeout_s(batch_wait_timeout_s)

    def check_health(self) -> None:
        """Serve's health probe: the replica is healthy when its unit models are loaded."""
        if not self.predictor.units:
            raise RuntimeError(f"no unit model loaded from {self.predictor.run_dir}")

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def _batched(self, requests: list[PredictRequest]) -> list:
        return self.predictor.predict_each(requests)

    @api.post("/v1/predict", response_model=PredictResponse, responses=_ERRORS,
              openapi_extra=_body_schema(PredictRequest))
    async def predict(self, request: Request) -> PredictResponse:
        """P(up) after the last candle of one asset (candles oldest first; body: ``PredictRequest``)."""
        body = await parse_body(request, PredictRequest)
        result = await self._batched(body) if self.batching else self.predictor.predict_each([body])[0]
        if isinstance(result, FleetError):
            raise result
        return result

    @api.post("/v1/predict/batch", response_model=BatchResponse, responses=_ERRORS,
              openapi_extra=_body_schema(BatchRequest))
    async def predict_batch(self, request: Request) -> BatchResponse:
        """Several predictions in one call, all-or-nothing: the first bad item decides the error
        (body: ``BatchRequest``)."""
        body = await parse_body(request, BatchRequest)
        return BatchResponse(results=self.predictor.predict_many(body.requests, prefix_index=True))

    @api.get("/v1/models", response_model=ModelsResponse, responses=_READ_ERRORS)
    async def models(self) -> ModelsResponse:
        """Run id, policy threshold, label horizon, registry version, units with their assets, candles needed
        and validation metrics."""
        return ModelsResponse.model_validate(self.predictor.describe())

    @api.get("/healthz", response_model=HealthResponse, responses=_READ_ERRORS)
    async def healthz(self) -> HealthResponse:
        """Liveness: the run served and how many unit models are loaded."""
        return HealthResponse(status="ok", model_version=self.predictor.model_version,
                              units=len(self.predictor.units))


def build_app(run_dir: str | Path, *, replicas: int = 1, num_cpus: float = DEFAULT_NUM_CPUS,
              max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, batching: bool = True,
              max_batch_size: int = 32, batch_wait_timeout_s: float = 0.0,
              max_ongoing_requests: int = DEFAULT_MAX_ONGOING_REQUESTS,
              max_queued_requests: int = DEFAULT_MAX_QUEUED_REQUESTS, api_key: tuple[str, str] | None = None):
    """The Serve application for ``run_dir`` (validated here first, so a bad path fails in one line).

    Args:
        api_key: (salt, SHA-256) of the API key (:func:`fleet.serving.auth.token_digest`), or None for no
            authentication.
        max_ongoing_requests: requests one replica works on at once.
        max_queued_requests: requests allowed to wait for a replica (per HTTP proxy); beyond it Serve
            answers 503 at once instead of queueing. -1: no limit.

    Raises:
        RunDirectoryError: the run directory is incomplete (names the missing file).
        ConfigError: max_ongoing_requests < 1 or max_queued_requests < -1.
    """
    if max_ongoing_requests < 1:
        raise ConfigError(f"max_ongoing_requests={max_ongoing_requests}: expected an integer >= 1")
    if max_queued_requests < -1:
        raise ConfigError(f"max_queued_requests={max_queued_requests}: expected -1 (no limit) or an integer >= 0")
    run = Path(run_dir).resolve()
    FleetPredictor(run)  # fail fast, in the caller's process, with a clear message
    return FleetIngress.options(num_replicas=replicas, ray_actor_options={"num_cpus": num_cpus},
                                max_ongoing_requests=max_ongoing_requests,
                                max_queued_requests=max_queued_requests).bind(
        str(run), max_body_bytes=max_body_bytes, batching=batching, max_batch_size=max_batch_size,
        batch_wait_timeout_s=batch_wait_timeout_s, api_key=api_key)


def app_builder(args: dict[str, Any]):
    """Application builder for Serve config files (``import_path: fleet.serving.app:app_builder``).

    ``args``: ``run_dir`` (required) and optionally ``max_body_bytes``, ``batching``, ``max_batch_size``,
    ``batch_wait_timeout_s`` and ``api_key_env`` (an environment variable of the replicas holding the API key).
    Replicas and CPUs come from the config's ``deployments`` section.
    """
    args = dict(args)
    if "run_dir" not in args:
        raise ConfigError("serve config: args.run_dir is required (the run directory to serve)")
    run = Path(args.pop("run_dir")).resolve()
    FleetPredictor(run)
    return FleetIngress.bind(str(run), **args)
