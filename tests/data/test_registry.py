"""Tests of fleet.data.registry.AssetRegistry."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from fleet.data import AssetRegistry
from fleet.errors import ConfigError, DataError, UnknownSymbolError


def test_from_symbols_assigns_ids_in_sorted_order():
    reg = AssetRegistry.from_symbols(["ETHUSDT", "BTCUSDT", "ADAUSDT", "BTCUSDT"], source="crypto")
    assert reg.symbols == ["ADAUSDT", "BTCUSDT", "ETHUSDT"]
    assert [reg.id_of(s) for s in ("ADAUSDT", "BTCUSDT", "ETHUSDT")] == [0, 1, 2]
    assert reg.symbol_of(2) == "ETHUSDT"
    assert len(reg) == 3
    assert reg.version == 1
    assert reg.source == "crypto"
    assert "BTCUSDT" in reg and "XRPUSDT" not in reg and 3 not in reg


def test_ids_of_returns_int64_array():
    reg = AssetRegistry.from_symbols(["A", "B", "C"])
    ids = reg.ids_of(pd.Series(["C", "A", "C", "B"]))
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, [2, 0, 2, 1])
    np.testing.assert_array_equal(reg.ids_of(["B"]), [1])
    assert reg.ids_of([]).shape == (0,)
    with pytest.raises(UnknownSymbolError, match=r"unknown symbols 'X', 'Y'"):
        reg.ids_of(["A", "X", "Y", "X"])


def test_unknown_symbol_message():
    reg = AssetRegistry.from_symbols(["BTCUSDT", "ETHUSDT"]).extend(["SOLUSDT"])
    with pytest.raises(UnknownSymbolError) as info:
        reg.id_of("BTCUSD")
    message = str(info.value)
    assert message.startswith("unknown symbol 'BTCUSD': the registry (version 2, 3 symbols)")
    assert "knows BTCUSDT, ETHUSDT, SOLUSDT" in message
    assert "extend it with" in message
    assert "did you mean 'BTCUSDT'" in message


def test_symbol_of_unknown_id():
    reg = AssetRegistry.from_symbols(["A", "B"])
    for bad in (2, -1, "0"):
        with pytest.raises(UnknownSymbolError, match=re.escape("has ids 0..1")):
            reg.symbol_of(bad)


def test_extend_appends_new_symbols_and_never_renumbers():
    reg = AssetRegistry.from_symbols(["MSFT", "AAPL"], source="v1")
    bigger = reg.extend(["ZM", "AAPL", "BAC", "AMD"])

    # existing ids unchanged, new ones appended in sorted order among themselves
    assert bigger.symbols == ["AAPL", "MSFT", "AMD", "BAC", "ZM"]
    assert bigger.id_of("AAPL") == 0 and bigger.id_of("MSFT") == 1
    assert [bigger.id_of(s) for s in ("AMD", "BAC", "ZM")] == [2, 3, 4]
    assert bigger.version == 2
    assert bigger.source == "v1"  # source=None keeps it
    # the original is untouched (a new object is returned)
    assert reg.symbols == ["AAPL", "MSFT"] and reg.version == 1
    assert bigger is not reg

    again = bigger.extend(["QQQ"], source="v3")
    assert again.version == 3 and again.source == "v3" and again.id_of("ZM") == 4


def test_extend_with_nothing_new_keeps_version():
    reg = AssetRegistry.from_symbols(["A", "B"]).extend(["C"])
    same = reg.extend(["B", "A"])
    assert same.version == 2
    assert same.created == reg.created
    assert same == reg
    assert same.symbols == ["A", "B", "C"]


def test_equality_ignores_provenance():
    a = AssetRegistry({"X": 0, "Y": 1}, version=1, created="2024-01-01T00:00:00+00:00", source="a")
    b = AssetRegistry({"Y": 1, "X": 0}, version=4, created="2025-01-01T00:00:00+00:00", source="b")
    c = AssetRegistry({"X": 1, "Y": 0})
    assert a == b and hash(a) == hash(b)
    assert a != c


@pytest.mark.parametrize(
    "mapping, pattern",
    [
        ({"A": 0, "B": 2}, r"exactly 0\.\.1 .*out of range: \[2\], missing: \[1\]"),
        ({"A": 0, "B": 0}, r"ids must be unique, but id 0: A, B"),
        ({"A": 1}, r"exactly 0\.\.0"),
        ({"A": 0, "B": 1.0}, r"ids must be integers, got B=1\.0"),
        ({"A": True}, r"ids must be integers"),
        ({"": 0}, r"non-empty strings"),
    ],
)
def test_init_validates_ids(mapping, pattern):
    with pytest.raises(ConfigError, match=pattern):
        AssetRegistry(mapping)


def test_init_validates_version():
    with pytest.raises(ConfigError, match="version=0"):
        AssetRegistry({"A": 0}, version=0)


def test_save_load_round_trip(tmp_path):
    reg = AssetRegistry.from_symbols(["ETH", "BTC"], source="data/crypto_1h").extend(["ADA"])
    path = reg.save(tmp_path / "sub" / "asset_ids.json")

    loaded = AssetRegistry.load(path)
    assert loaded == reg
    assert loaded.symbols == ["BTC", "ETH", "ADA"]
    assert (loaded.version, loaded.created, loaded.source) == (reg.version, reg.created, reg.source)

    on_disk = json.loads(path.read_text())
    assert on_disk == {
        "metadata": {"created": reg.created, "version": 2, "total_symbols": 3,
                     "source": "data/crypto_1h"},
        "symbol_to_id": {"BTC": 0, "ETH": 1, "ADA": 2},
        "id_to_symbol": {"0": "BTC", "1": "ETH", "2": "ADA"},
        "history": [{"version": 1, "added": ["BTC", "ETH"], "created": reg.history[0]["created"]},
                    {"version": 2, "added": ["ADA"], "created": reg.created}],
    }
    assert sorted(p.name for p in path.parent.iterdir()) == ["asset_ids.json"]  # no temp left
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600: a shared file


def test_save_is_atomic(tmp_path, monkeypatch):
    path = AssetRegistry.from_symbols(["A"]).save(tmp_path / "ids.json")
    before = path.read_text()

    def broken_dump(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(json, "dump", broken_dump)
    with pytest.raises(RuntimeError, match="disk full"):
        AssetRegistry.from_symbols(["A", "B"]).save(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ids.json"]


def write_json(tmp_path, payload) -> str:
    path = tmp_path / "ids.json"
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return str(path)


@pytest.mark.parametrize(
    "payload, pattern",
    [
        ("{not json", r"is not valid JSON \(line 1"),
        ([1, 2], r"expected a JSON object, got list"),
        ({"metadata": {}}, r"missing or invalid 'symbol_to_id'.*found keys: metadata"),
        ({"symbol_to_id": {"A": 0, "B": 5}}, r"ids must be exactly 0\.\.1"),
        ({"symbol_to_id": {"A": "0"}}, r"ids must be integers"),
        ({"symbol_to_id": {"A": 0}, "id_to_symbol": {"0": "B"}}, r"'id_to_symbol' is not the inverse"),
        ({"symbol_to_id": {"A": 0}, "metadata": {"total_symbols": 2}}, r"total_symbols=2 but"),
        ({"symbol_to_id": {"A": 0}, "metadata": []}, r"'metadata' must be an object"),
    ],
)
def test_load_malformed_file_names_the_file(tmp_path, payload, pattern):
    path = write_json(tmp_path, payload)
    with pytest.raises(DataError, match=re.escape(path) + ": .*" + pattern):
        AssetRegistry.load(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "nope.json")) + ": asset registry file not found"):
        AssetRegistry.load(tmp_path / "nope.json")


def test_from_dict_accepts_minimal_layout():
    reg = AssetRegistry.from_dict({"symbol_to_id": {"B": 1, "A": 0}})
    assert reg.symbols == ["A", "B"] and reg.version == 1


# ------------------------------------------------------------------ a registry shared by runs

def test_renumbered_file_is_refused(tmp_path):
    path = AssetRegistry.from_symbols(["A", "B"]).extend(["C"]).save(tmp_path / "ids.json")
    d = json.loads(path.read_text())
    # Swap two ids consistently in both maps, as a hand edit would: only the history can tell.
    d["symbol_to_id"] = {"A": 1, "B": 0, "C": 2}
    d["id_to_symbol"] = {"0": "B", "1": "A", "2": "C"}
    path.write_text(json.dumps(d))
    with pytest.raises(DataError, match=re.escape(str(path)) + r": asset ids were renumbered: id 0 is 'B' but .*'A'"):
        AssetRegistry.load(path)


def test_history_that_skips_a_version_is_refused(tmp_path):
    path = AssetRegistry.from_symbols(["A"]).extend(["B"]).save(tmp_path / "ids.json")
    d = json.loads(path.read_text())
    d["history"][1]["version"] = 3
    path.write_text(json.dumps(d))
    with pytest.raises(DataError, match=re.escape(str(path)) + r": 'history' versions \[1, 3\]"):
        AssetRegistry.load(path)


def test_sync_creates_extends_and_never_renumbers(tmp_path):
    from fleet.data.registry import sync_registry

    path = tmp_path / "reg" / "ids.json"
    a, before = sync_registry(path, ["ETH", "BTC", "SOL"], source="run A")
    assert before is None and a.version == 1 and a.symbols == ["BTC", "ETH", "SOL"]
    b, before = sync_registry(path, ["XRP", "BTC", "ADA", "ETH", "SOL"], source="run B")
    assert before == 1 and b.version == 2
    assert {s: b.id_of(s) for s in a.symbols} == {s: a.id_of(s) for s in a.symbols}
    assert b.symbols[3:] == ["ADA", "XRP"]
    same, before = sync_registry(path, ["BTC"], source="run C")
    assert before == 2 and same.version == 2 and AssetRegistry.load(path).source == "run B"  # not rewritten
    assert sorted(p.name for p in path.parent.iterdir()) == ["ids.json", "ids.json.lock"]


def test_sync_refuses_a_corrupted_file(tmp_path):
    from fleet.data.registry import sync_registry

    path = tmp_path / "ids.json"
    path.write_text('{"symbol_to_id": {"A": 0, ')
    with pytest.raises(DataError, match=re.escape(str(path)) + ": asset registry is not valid JSON"):
        sync_registry(path, ["A"])
    assert path.read_text() == '{"symbol_to_id": {"A": 0, '  # left as it was


_WORKER = """
import sys, time
from fleet.data.registry import sync_registry
path, prefix, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
for k in range(25):
    sync_registry(path, [f"{prefix}{k:02d}", "COMMON"], source=prefix)
"""


def test_two_processes_extending_at_once_lose_no_id(tmp_path):
    import os
    import subprocess
    import sys
    import time

    path = tmp_path / "ids.json"
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    start = time.time() + 2.0  # both start extending at the same moment
    procs = [subprocess.Popen([sys.executable, str(script), str(path), p, str(start)], env=env)
             for p in ("A", "B")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    reg = AssetRegistry.load(path)
    expected = {f"{p}{k:02d}" for p in "AB" for k in range(25)} | {"COMMON"}
    assert set(reg.symbols) == expected and len(reg) == 51  # nothing lost, nothing twice
    # 50 single-symbol extensions after the creation (which added 2): every one a separate version.
    assert reg.version == 50 and [h["version"] for h in reg.history] == list(range(1, 51))
