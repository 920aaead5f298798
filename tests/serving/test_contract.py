"""The HTTP contract: the OpenAPI document, the one error shape, and schemathesis against a live serve.

The fast tests read the OpenAPI document and the error handlers in-process (no Ray). The slow test
serves a small run with Ray Serve (2 logical CPUs, one replica of 0.5 CPU) and runs schemathesis
against it: no 5xx, every response conforming to the document, and no "mostly rejected generated
data" warning.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port

TESTS = Path(__file__).resolve().parent
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture
def openapi():
    from fleet.serving import app

    saved = dict(app._REPLICA)
    app.configure_replica(max_body_bytes=1000, symbols=["B", "A"], bars=300, columns=["close", "high", "low"])
    try:
        yield app._openapi()
    finally:
        app._REPLICA.clear()
        app._REPLICA.update(saved)
        app.api.openapi_schema = None


def test_openapi_declares_typed_responses_and_one_error_model(openapi):
    paths, schemas = openapi["paths"], openapi["components"]["schemas"]
    ref = {"$ref": "#/components/schemas/ErrorResponse"}
    for route in ("/v1/predict", "/v1/predict/batch"):
        responses = paths[route]["post"]["responses"]
        assert {"200", "404", "413", "422", "503"} <= set(responses)
        for code in ("404", "413", "422", "503"):
            assert responses[code]["content"]["application/json"]["schema"] == ref, (route, code)
    models = paths["/v1/models"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    health = paths["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert models == {"$ref": "#/components/schemas/ModelsResponse"}
    assert health == {"$ref": "#/components/schemas/HealthResponse"}
    assert {"registry_version", "horizon_bars", "units"} <= set(schemas["ModelsResponse"]["required"])
    assert {"horizon_bars", "trained_until", "registry_version"} <= set(schemas["PredictResponse"]["required"])
    detail = schemas["ErrorResponse"]["properties"]["detail"]
    assert detail["type"] == "array" and detail["items"] == {"$ref": "#/components/schemas/ErrorItem"}
    assert set(schemas["ErrorItem"]["required"]) == {"loc", "msg", "type"}


def test_openapi_request_example_is_a_request_the_served_run_accepts(openapi):
    import jsonschema

    from fleet.serving.schema import BatchRequest, PredictRequest

    schemas = openapi["components"]["schemas"]
    for route, model in (("/v1/predict", PredictRequest), ("/v1/predict/batch", BatchRequest)):
        media = openapi["paths"][route]["post"]["requestBody"]["content"]["application/json"]
        value = media["examples"]["served"]["value"]
        body = value if model is PredictRequest else value["requests"][0]
        assert body["symbol"] in ("A", "B") and len(body["candles"]["timestamp"]) == 300
        assert set(body["candles"]) == {"timestamp", "close", "high", "low"}  # the served columns only
        model.model_validate(value)  # the server's own validation (increasing timestamps, high >= low)
        # ... and the document's schema, as a generated client would check it
        jsonschema.validate(value, {**schemas[model.__name__], "components": {"schemas": schemas}})


def test_openapi_carries_what_the_served_run_needs(openapi):
    schemas = openapi["components"]["schemas"]
    request = schemas["PredictRequest"]["properties"]
    assert request["symbol"]["enum"] == ["A", "B"]
    rows = next(layout for layout in request["candles"]["oneOf"] if layout.get("type") == "array")
    assert rows["minItems"] == 300
    assert set(schemas["Candle"]["required"]) == {"timestamp", "close", "high", "low"}
    assert schemas["Candle"]["properties"]["high"]["type"] == "number"  # required: no null alternative
    assert schemas["Candle"]["properties"]["high"]["exclusiveMinimum"] == 0
    cols = schemas["CandleColumns"]
    assert set(cols["required"]) == {"timestamp", "close", "high", "low"}
    assert all(cols["properties"][c]["minItems"] == 300 for c in cols["required"])


def _body(response) -> dict:
    return json.loads(response.body)


def test_every_error_has_one_shape_without_class_names():
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from fleet.errors import ConfigError, InsufficientHistoryError, RequestError, UnknownSymbolError
    from fleet.serving import app

    unknown = UnknownSymbolError("requests[1].symbol='X' is not served")
    unknown.field = "requests[1].symbol"
    cases = [
        (app._unknown_symbol(None, unknown), 404, ["body", "requests", 1, "symbol"], "unknown_symbol"),
        (app._bad_request(None, InsufficientHistoryError("too few", field="candles")), 422, ["body", "candles"],
         "insufficient_history"),
        (app._bad_request(None, RequestError("bad", field="candles[3].high")), 422, ["body", "candles", 3, "high"],
         "invalid_value"),
        (app._fleet_error(None, ConfigError("bad")), 422, ["body"], "invalid_request"),
        (app._http_error(None, HTTPException(status_code=413, detail="too big")), 413, [], "body_too_large"),
        (app._http_error(None, HTTPException(status_code=405, detail="no")), 405, [], "method_not_allowed"),
        (app._invalid(None, RequestValidationError([{"loc": ("body", "symbol"), "msg": "m", "type": "missing"}])),
         422, ["body", "symbol"], "missing"),
    ]
    for coro, status, loc, kind in cases:
        response = asyncio.run(coro)
        body = _body(response)
        assert response.status_code == status
        assert list(body) == ["detail"] and len(body["detail"]) == 1
        item = body["detail"][0]
        assert item["loc"] == loc and item["type"] == kind and isinstance(item["msg"], str)
        assert re.fullmatch(r"[a-z_]+", item["type"]), item["type"]  # snake_case, no Python class name


@pytest.fixture(scope="module")
def live(tmp_path_factory, ray_session):
    import fleet
    from fleet.serving import runner

    run = fleet.train(None, days=90, folds=2, strategy="global", out=str(tmp_path_factory.mktemp("c") / "run"),
                      echo=None)
    try:
        url, _ = runner.start(run.path, port=free_port(), num_cpus=0.5)
        yield url, run
    finally:
        runner.stop(False)  # Serve only: Ray is the session's


def _schemathesis(url: str, phases: str, examples: int, headers: tuple[str, ...] = ()) -> tuple[int, str]:
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "contract_hooks",
           "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json", "--phases", phases,
           *(arg for h in headers for arg in ("-H", h)),
           "--max-examples", str(examples), "--checks", CHECKS, "--seed", "1", "--generation-database", "none",
           "--suppress-health-check", "data_too_large,too_slow,filter_too_much", "--no-color"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_and_no_mismatch(live):
    url, _ = live
    code, out = _schemathesis(url, "examples,fuzzing", 25)
    assert code == 0, out
    assert "No issues found" in out, out
    assert "mostly rejected generated data" not in out and "Schema validation mismatch" not in out, out
    generated = int(re.search(r"(\d+) generated", out).group(1))
    assert generated >= 4 * 5, out  # every operation exercised
    # The coverage phase (schema boundary values) as well: no 5xx, every response as documented, and no
    # mismatch warning. Its cases are built from boundaries, not drawn, and the hooks do not apply to them:
    # the served request example in the document (app._add_served_examples) is the positive case that
    # keeps the rules JSON Schema cannot state (strictly increasing timestamps).
    code, out = _schemathesis(url, "coverage", 25)
    assert code == 0, out
    assert "Server error" not in out, out
    assert "mostly rejected generated data" not in out and "Schema validation mismatch" not in out, out


@pytest.mark.slow
def test_the_documented_request_example_is_answered(live):
    import requests

    url, _ = live
    doc = requests.get(f"{url}/openapi.json", timeout=30).json()
    media = doc["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]
    r = requests.post(f"{url}/v1/predict", json=media["examples"]["served"]["value"], timeout=60)
    assert r.status_code == 200, r.text
    assert 0.0 <= r.json()["p_up"] <= 1.0


@pytest.mark.slow
def test_run_predict_matches_the_live_endpoint(live):
    import pandas as pd
    import requests

    from fleet.data.synthetic import synthetic_market

    url, run = live
    frames = synthetic_market(days=90, seed=0).panel.frames
    models = requests.get(f"{url}/v1/models", timeout=30).json()
    assert models["registry_version"] == run.registry.version == run.manifest["registry"]["version"]
    assert [u["registry_version"] for u in models["units"]] == [run.registry.version]
    for symbol in sorted(frames)[::3]:
        bars = frames[symbol].iloc[:-100]  # any cut: the answer is for its last bar
        candles = {"timestamp": [t.isoformat() for t in bars.index],
                   **{c: bars[c].astype(float).tolist() for c in bars.columns}}
        r = requests.post(f"{url}/v1/predict", json={"symbol": symbol, "candles": candles}, timeout=60)
        assert r.status_code == 200, r.text
        http = r.json()
        assert http["registry_version"] == run.registry.version and http["horizon_bars"] == 4
        assert pd.Timestamp(http["trained_until"]) == run.models["global"].trained_until
        local = run.predict(bars.rename_axis("timestamp").reset_index().assign(symbol=symbol))
        assert len(local) == 1 and abs(local["p_up"].iloc[0] - http["p_up"]) <= 1e-6
        assert local["signal"].iloc[0] == http["signal"] and local["asset_id"].iloc[0] == http["asset_id"]


@pytest.mark.slow
def test_schemathesis_with_and_without_the_api_key(live):
    """The same run redeployed with an API key: with the token schemathesis finds what it finds unkeyed (no 5xx,
    no mismatch); without it every guarded route answers the documented 401, which conforms too."""
    from ray import serve

    from fleet.serving.app import APP_NAME, build_app
    from fleet.serving.auth import token_digest

    url, run = live
    serve.run(build_app(run.path, num_cpus=0.5, api_key=token_digest("k-77ab")), name=APP_NAME, route_prefix="/")
    try:
        import requests

        assert requests.get(f"{url}/v1/models", timeout=30).status_code == 401
        code, out = _schemathesis(url, "examples,fuzzing", 10, ("Authorization: Bearer k-77ab",))
        assert code == 0 and "No issues found" in out and "Schema validation mismatch" not in out, out
        code, out = _schemathesis(url, "examples,fuzzing", 10)
        # Every response conforms (the 401 is documented); schemathesis notes that the guarded routes refused it.
        assert code == 0 and "Schema validation mismatch" not in out and "Server error" not in out, out
        assert "returned only 401/403 responses" in out and "3 operations" in out, out
    finally:
        serve.run(build_app(run.path, num_cpus=0.5), name=APP_NAME, route_prefix="/")
