"""End-to-end tests against a real Ray Serve application on 127.0.0.1 (one Serve session for the module).

Both strategies are deployed side by side as two applications (route prefixes /hierarchical and
/islands), each one replica with num_cpus=0.5, so the whole module fits a 2-core machine.
"""

from __future__ import annotations

import json

import pytest

from conftest import candles_of, columns_of, free_port, last_fold_predictions

ray = pytest.importorskip("ray")
requests = pytest.importorskip("requests")

MAX_BODY = 1024 * 1024


@pytest.fixture(scope="module")
def server(served_runs, ray_session):
    from ray import serve

    from fleet.serving.app import build_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        for strategy, (run_dir, _) in served_runs.items():
            serve.run(build_app(run_dir, num_cpus=0.5, max_body_bytes=MAX_BODY), name=strategy,
                      route_prefix=f"/{strategy}")
        yield {s: f"http://127.0.0.1:{port}/{s}" for s in served_runs}
    finally:
        serve.shutdown()


def post(url, payload, **kw):
    return requests.post(url, json=payload, timeout=60, **kw)


def test_health_models_and_docs(server, served_runs):
    for strategy, url in server.items():
        run_dir, frames = served_runs[strategy]
        health = requests.get(f"{url}/healthz", timeout=30).json()
        assert health["status"] == "ok" and health["model_version"] == run_dir.name
        models = requests.get(f"{url}/v1/models", timeout=30).json()
        assert {a["symbol"] for u in models["units"] for a in u["assets"]} == set(frames)
        assert all("auc" in a["metrics"] and a["required_bars"] > 0 for u in models["units"] for a in u["assets"])
    schema = requests.get(f"{server['islands']}/openapi.json", timeout=30).json()
    assert {"/v1/predict", "/v1/predict/batch", "/v1/models", "/healthz"} <= set(schema["paths"])
    assert "PredictRequest" in schema["components"]["schemas"]
    assert requests.get(f"{server['islands']}/docs", timeout=30).status_code == 200


@pytest.mark.parametrize("strategy", ["hierarchical", "islands"])
def test_parity_with_training(server, served_runs, strategy):
    run_dir, frames = served_runs[strategy]
    url = server[strategy]
    batch, expected = [], []
    for symbol in sorted(frames)[::2]:
        for _, row in last_fold_predictions(run_dir, symbol, k=2).iterrows():
            payload = {"symbol": symbol, "candles": candles_of(frames[symbol], row["timestamp"])}
            r = post(f"{url}/v1/predict", payload)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["p_up"] == pytest.approx(row["p_up"], abs=1e-6)
            assert body["signal"] == int(row["signal"]) and body["threshold"] == 0.55
            assert body["model_version"] == run_dir.name and body["gate_weights"] == {"trend": 1.0}
            assert body["active_experts"] == ["trend"]
            assert body["as_of"].replace("Z", "+00:00") == row["timestamp"].isoformat()
            if len(batch) < 3:
                batch.append(payload)
                expected.append(row["p_up"])
    r = post(f"{url}/v1/predict/batch", {"requests": batch})
    assert r.status_code == 200, r.text
    assert [x["p_up"] for x in r.json()["results"]] == pytest.approx(expected, abs=1e-6)


@pytest.fixture(scope="module")
def good(served_runs):
    _, frames = served_runs["hierarchical"]
    symbol = sorted(frames)[0]
    return symbol, candles_of(frames[symbol], n=800)


def _field_named(response, *words):
    assert response.status_code == 422, response.text
    text = json.dumps(response.json()["detail"])
    for w in words:
        assert w in text, (w, text)


@pytest.mark.parametrize("mutate, words", [
    (lambda c: c[3].pop("close"), ["candles", "3", "close"]),
    (lambda c: c[3].update(close=-1.0), ["candles", "3", "close", "greater than 0"]),
    (lambda c: c[3].update(close=0.0), ["candles", "3", "close"]),
    (lambda c: c[3].update(timestamp=c[2]["timestamp"]), ["candles[3].timestamp", "duplicates"]),
    (lambda c: c.insert(10, c.pop(3)), ["timestamp", "oldest first"]),
    (lambda c: c[3].update(timestamp="yesterday"), ["candles", "3", "timestamp"]),
    (lambda c: c[3].update(volume=None) or c[3].pop("volume"), ["candles", "3", "volume", "missing"]),
])
def test_bad_candles_are_422_naming_the_field(server, good, mutate, words):
    symbol, candles = good
    candles = [dict(c) for c in candles]
    mutate(candles)
    _field_named(post(f"{server['hierarchical']}/v1/predict", {"symbol": symbol, "candles": candles}), *words)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_prices_are_422(server, good, literal):
    symbol, candles = good
    body = json.dumps({"symbol": symbol, "candles": candles}).replace(
        f'"close": {json.dumps(candles[5]["close"])}', f'"close": {literal}', 1)
    assert literal in body
    r = requests.post(f"{server['hierarchical']}/v1/predict", data=body, timeout=60,
                      headers={"content-type": "application/json"})
    _field_named(r, "candles", "5", "close", "finite")


def test_malformed_json_and_missing_fields_are_422(server):
    url = f"{server['hierarchical']}/v1/predict"
    r = requests.post(url, data=b"{not json", headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 422, r.text
    _field_named(post(url, {"candles": []}), "symbol")
    _field_named(post(url, {"symbol": "X", "candles": []}), "candles")


def test_columns_layout_parity_and_batch(server, served_runs):
    run_dir, frames = served_runs["islands"]
    url = server["islands"]
    symbol = sorted(frames)[0]
    row = last_fold_predictions(run_dir, symbol, k=1).iloc[0]
    payload = {"symbol": symbol, "candles": columns_of(frames[symbol], row["timestamp"])}
    r = post(f"{url}/v1/predict", payload)
    assert r.status_code == 200, r.text
    assert r.json()["p_up"] == pytest.approx(row["p_up"], abs=1e-6)
    assert r.json()["as_of"].replace("Z", "+00:00") == row["timestamp"].isoformat()
    rows = {"symbol": symbol, "candles": candles_of(frames[symbol], row["timestamp"])}
    r = post(f"{url}/v1/predict/batch", {"requests": [payload, rows]})
    assert r.status_code == 200, r.text
    assert [x["p_up"] for x in r.json()["results"]] == pytest.approx([row["p_up"]] * 2, abs=1e-6)


def _cset(name, i, value):
    def mutate(c):
        c[name][i] = value
    return mutate


@pytest.mark.parametrize("mutate, words", [
    (lambda c: c.pop("close"), ["candles", "close", "Field required"]),
    (_cset("close", 3, -1.0), ["candles", "close", "3", "greater than 0"]),
    (_cset("volume", 3, -1.0), ["candles", "volume", "3", "greater than or equal to 0"]),
    (_cset("timestamp", 3, "yesterday"), ["candles", "timestamp", "3"]),
    (lambda c: c["timestamp"].__setitem__(3, c["timestamp"][2]), ["candles.timestamp[3]", "duplicates"]),
    (lambda c: c["timestamp"].insert(10, c["timestamp"].pop(3)), ["timestamp", "oldest first"]),
    (lambda c: c["close"].pop(), ["candles.close", "values for"]),
    (lambda c: c.pop("volume"), ["candles", "volume", "missing"]),
    (lambda c: c.update(extra=[1]), ["candles", "extra"]),
])
def test_bad_columns_are_422_naming_the_field(server, good, mutate, words):
    symbol, candles = good
    cols = {k: [c[k] for c in candles] for k in candles[0]}
    mutate(cols)
    r = post(f"{server['hierarchical']}/v1/predict", {"symbol": symbol, "candles": cols})
    _field_named(r, *words)
    assert all(e["loc"][:2] == ["body", "candles"] for e in r.json()["detail"] if e["loc"][1:2] == ["candles"])
    assert "columns" not in [x for e in r.json()["detail"] for x in e["loc"]]


def test_non_finite_column_value_is_422(server, good):
    symbol, candles = good
    cols = {k: [c[k] for c in candles] for k in candles[0]}
    cols["close"][5] = 987654.321  # a value no other field holds, replaced by a NaN literal below
    body = json.dumps({"symbol": symbol, "candles": cols}).replace("987654.321", "NaN")
    r = requests.post(f"{server['hierarchical']}/v1/predict", data=body, timeout=60,
                      headers={"content-type": "application/json"})
    _field_named(r, "candles", "close", "finite")


def test_too_few_bars_says_how_many(server, served_runs, good):
    symbol, candles = good
    need = next(a["required_bars"] for u in requests.get(f"{server['hierarchical']}/v1/models", timeout=30)
                .json()["units"] for a in u["assets"] if a["symbol"] == symbol)
    r = post(f"{server['hierarchical']}/v1/predict", {"symbol": symbol, "candles": candles[-(need - 1):]})
    _field_named(r, "candles", f"{need - 1} given, {need} needed")
    assert post(f"{server['hierarchical']}/v1/predict", {"symbol": symbol, "candles": candles[-need:]}).status_code == 200


def test_unknown_symbol_is_404(server, good):
    _, candles = good
    r = post(f"{server['islands']}/v1/predict", {"symbol": "DOGEUSDT", "candles": candles})
    assert r.status_code == 404 and "GET /v1/models" in r.json()["detail"][0]["msg"]
    assert r.json()["detail"][0]["type"] == "unknown_symbol" and r.json()["detail"][0]["loc"] == ["body", "symbol"]


def test_batch_errors_name_the_item(server, good):
    symbol, candles = good
    url = f"{server['hierarchical']}/v1/predict/batch"
    r = post(url, {"requests": [{"symbol": symbol, "candles": candles}, {"symbol": "NOPE", "candles": candles}]})
    assert r.status_code == 404 and "requests[1]" in r.json()["detail"][0]["msg"]
    assert r.json()["detail"][0]["loc"] == ["body", "requests", 1, "symbol"]
    r = post(url, {"requests": [{"symbol": symbol, "candles": candles}, {"symbol": symbol, "candles": candles[:5]}]})
    _field_named(r, "requests[1].candles", "needed")


def test_oversized_body_is_413(server, good):
    symbol, candles = good
    url = f"{server['hierarchical']}/v1/predict"
    big = {"symbol": symbol, "candles": candles * 8}  # > MAX_BODY bytes
    assert len(json.dumps(big)) > MAX_BODY
    r = post(url, big)
    assert r.status_code == 413 and "max_body_bytes" in r.json()["detail"][0]["msg"]

    def chunks():  # no Content-Length: the limit is enforced on the bytes received
        for _ in range(20):
            yield b" " * (100 * 1024)

    r = requests.post(url, data=chunks(), headers={"content-type": "application/json"}, timeout=60)
    assert r.status_code == 413


def test_replica_survives_bad_input(server, good):
    symbol, candles = good
    url = server["hierarchical"]
    for _ in range(3):
        post(f"{url}/v1/predict", {"symbol": symbol, "candles": candles[:3]})
        requests.post(f"{url}/v1/predict", data=b"\x00\xff", timeout=30)
    assert requests.get(f"{url}/healthz", timeout=30).status_code == 200
    assert post(f"{url}/v1/predict", {"symbol": symbol, "candles": candles}).status_code == 200


def test_serve_config_file_is_a_valid_deploy_schema(served_runs, tmp_path):
    import yaml
    from click.testing import CliRunner
    from ray.serve.schema import ServeDeploySchema

    from fleet.cli import main

    run_dir, _ = served_runs["islands"]
    out = tmp_path / "serve_config.yaml"
    result = CliRunner().invoke(main, ["serve", "build", str(run_dir), "-o", str(out), "--replicas", "2"])
    assert result.exit_code == 0, result.output
    config = ServeDeploySchema.model_validate(yaml.safe_load(out.read_text()))
    app = config.applications[0]
    assert app.import_path == "fleet.serving.app:app_builder" and app.args["run_dir"] == str(run_dir.resolve())
    assert app.deployments[0].num_replicas == 2
    from fleet.serving.app import app_builder
    assert app_builder(dict(app.args)) is not None
    bad = CliRunner().invoke(main, ["serve", "build", str(tmp_path / "nope"), "-o", str(out)])
    assert bad.exit_code == 2 and "no such run directory" in bad.output
