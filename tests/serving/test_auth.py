"""The optional API key of `fleet serve`: salted digests compared in constant time, the ASGI middleware's 401 in the
one error shape, the open routes, the OpenAPI security scheme, and the CLI's refusal of an unset variable. In-process,
no Ray (the live checks are in test_serving_cli.py and test_contract.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from fleet.errors import ConfigError
from fleet.serving import app, auth


@pytest.fixture
def keyed():
    """This process configured as a replica that requires the token 's3cret'."""
    saved = dict(app._REPLICA)
    app.configure_replica(max_body_bytes=1000, symbols=["A"], bars=10, columns=["close"],
                          api_key=auth.token_digest("s3cret"))
    try:
        yield
    finally:
        app._REPLICA.clear()
        app._REPLICA.update(saved)
        app.api.openapi_schema = None


def _call(path: str, headers: dict[str, str] | None = None) -> tuple[bool, int | None, dict, dict]:
    """Send one GET through the middleware to a stub app: (reached the app, status, body, headers)."""
    reached, sent = [], []

    async def inner(scope, receive, send):
        reached.append(scope["path"])

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
    asyncio.run(auth.BearerAuthMiddleware(inner, expected=app._replica_key, error=app._error)(scope, receive, send))
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return (bool(reached), start and start["status"], json.loads(body) if body else {},
            {k.decode(): v.decode() for k, v in (start or {}).get("headers", [])})


def test_a_digest_matches_its_token_only():
    salt, digest = auth.token_digest("s3cret")
    assert auth.token_matches("s3cret", (salt, digest))
    assert not auth.token_matches("s3cret ", (salt, digest)) and not auth.token_matches("S3cret", (salt, digest))
    assert auth.token_digest("s3cret")[1] != digest  # a fresh salt each time: the digest is not the token's hash
    assert "s3cret" not in salt + digest
    with pytest.raises(ConfigError, match="empty"):
        auth.token_digest("")


def test_tokens_are_compared_with_hmac_compare_digest(monkeypatch):
    calls = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    auth.token_matches("x", auth.token_digest("y"))
    assert len(calls) == 1


def test_requests_without_the_token_get_401_in_the_error_shape(keyed):
    for headers in (None, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"},
                    {"Authorization": "s3cret"}):
        reached, status, body, sent = _call("/v1/models", headers)
        assert not reached and status == 401, headers
        assert list(body) == ["detail"] and body["detail"][0]["type"] == "unauthorized"
        assert body["detail"][0]["loc"] == ["header", "authorization"] and "s3cret" not in json.dumps(body)
        assert sent.get("www-authenticate") == "Bearer"
    reached, status, _, _ = _call("/v1/models", {"Authorization": "Bearer s3cret"})
    assert reached and status is None  # passed on to the app


def test_healthz_and_the_document_stay_open_and_no_key_means_no_check(keyed):
    for path in ("/healthz", "/openapi.json", "/docs"):
        assert _call(path)[0], path
    app._REPLICA["api_key"] = None
    assert _call("/v1/predict")[0]


def test_openapi_declares_the_bearer_scheme_on_the_guarded_routes(keyed):
    doc = app._openapi()
    assert doc["components"]["securitySchemes"][auth.SECURITY_SCHEME] == {
        "type": "http", "scheme": "bearer", "description": "The API key given to `fleet serve --api-key-env`."}
    for path, method in (("/v1/predict", "post"), ("/v1/predict/batch", "post"), ("/v1/models", "get")):
        op = doc["paths"][path][method]
        assert op["security"] == [{auth.SECURITY_SCHEME: []}]
        assert op["responses"]["401"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"}
    assert "security" not in doc["paths"]["/healthz"]["get"]


def test_without_a_key_the_document_declares_no_security():
    saved = dict(app._REPLICA)
    app.configure_replica(max_body_bytes=1000, symbols=["A"], bars=10, columns=["close"])
    try:
        doc = app._openapi()
        assert "securitySchemes" not in doc["components"]
        assert "security" not in doc["paths"]["/v1/predict"]["post"]
    finally:
        app._REPLICA.clear()
        app._REPLICA.update(saved)
        app.api.openapi_schema = None


def test_a_replica_reads_its_key_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("FLEET_TEST_KEY", "tok")
    assert auth.token_matches("tok", auth.replica_api_key(None, "FLEET_TEST_KEY"))
    monkeypatch.delenv("FLEET_TEST_KEY")
    with pytest.raises(ConfigError, match="FLEET_TEST_KEY"):
        auth.replica_api_key(None, "FLEET_TEST_KEY")
    given = auth.token_digest("z")
    assert auth.replica_api_key(given, "FLEET_TEST_KEY") == given  # a digest given wins; the env is not read
    assert auth.replica_api_key(None, None) is None


def test_cli_refuses_an_unset_variable_and_build_names_only_the_variable(served_runs, tmp_path, monkeypatch):
    import yaml
    from click.testing import CliRunner

    from fleet.cli import main

    run_dir, _ = served_runs["islands"]
    monkeypatch.delenv("FLEET_TEST_KEY", raising=False)
    res = CliRunner().invoke(main, ["serve", str(run_dir), "--api-key-env", "FLEET_TEST_KEY"])
    assert res.exit_code == 2 and "FLEET_TEST_KEY" in res.output and "not set" in res.output, res.output
    monkeypatch.setenv("FLEET_TEST_KEY", "tok-9f3a71")
    out = tmp_path / "serve.yaml"
    res = CliRunner().invoke(main, ["serve", "build", str(run_dir), "-o", str(out), "--api-key-env", "FLEET_TEST_KEY"])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert yaml.safe_load(text)["applications"][0]["args"]["api_key_env"] == "FLEET_TEST_KEY" and "tok-9f3a71" not in text
