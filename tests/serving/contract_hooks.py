"""Schemathesis hooks for the fleet prediction API (SCHEMATHESIS_HOOKS=contract_hooks, tests/test_contract.py).

They make generated request bodies keep the rules JSON Schema cannot state, and nothing else: timestamps
strictly increasing (hourly from 2022-03-01), high >= low (the drawn prices re-ordered within each
candle), a field sent on one candle sent on every candle, and the columns layout's arrays of one length
(arrays shorter than the timestamps left out). Symbols, prices, volumes and candle counts are the
fuzzer's own draws from the schema. Bodies of another shape (negative cases) are sent as drawn.
"""

from datetime import datetime, timedelta, timezone

import schemathesis

START = datetime(2022, 3, 1, tzinfo=timezone.utc)
PRICES = ("open", "high", "low", "close")


def _times(n):
    return [(START + timedelta(hours=k)).isoformat() for k in range(n)]


def _rows(candles):
    keys = set().union(*(c.keys() for c in candles)) if candles else set()
    for k, c in enumerate(candles):
        c["timestamp"] = (START + timedelta(hours=k)).isoformat()
        for key in keys - {"timestamp"}:  # a field sent on one candle is sent on all
            if key not in c:
                c[key] = c.get("close", 1.0) if key in PRICES else 0.0
        present = [c[p] for p in PRICES if _number(c.get(p))]
        if _number(c.get("high")) and _number(c.get("low")):
            c["high"], c["low"] = max(present), min(present)
    return candles


def _columns(cols):
    arrays = {k: v for k, v in cols.items() if isinstance(v, list)}
    n = min(len(arrays["timestamp"]), len(arrays["close"]))
    # Arrays shorter than the timestamps are left out (an optional field not sent); the others are cut to n.
    out = {k: v[:n] for k, v in arrays.items() if len(v) >= n}
    out["timestamp"] = _times(n)
    rows = [{k: out[k][i] for k in out if k != "timestamp"} for i in range(n)]
    for i, r in enumerate(rows):
        present = [r[p] for p in PRICES if _number(r.get(p))]
        if _number(r.get("high")) and _number(r.get("low")):
            out["high"][i], out["low"][i] = max(present), min(present)
    return out


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _repair(request):
    if not isinstance(request, dict):
        return request
    try:
        return _repair_valid_shape(request)
    except (TypeError, ValueError, KeyError):  # a body of the wrong shape (negative data): sent as drawn
        return request


def _repair_valid_shape(request):
    candles = request.get("candles")
    if isinstance(candles, list) and all(isinstance(c, dict) for c in candles):
        request["candles"] = _rows(candles)
    elif isinstance(candles, dict) and isinstance(candles.get("timestamp"), list) and isinstance(candles.get("close"), list):
        request["candles"] = _columns(candles)
    return request


@schemathesis.hook
def map_body(ctx, body):
    if isinstance(body, dict) and isinstance(body.get("requests"), list):
        body["requests"] = [_repair(r) for r in body["requests"]]
        return body
    return _repair(body)
