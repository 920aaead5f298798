"""`fleet data fetch binance` against a local HTTP server serving hand-built archives."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import threading
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.data.fetch import fetch_binance, month_range
from fleet.data.load import load_panel
from fleet.errors import ConfigError, FetchError

H = 3_600_000  # one hour in milliseconds


def kline_csv(first_ms: int, n: int, *, micros: bool = False, columns: int = 12) -> bytes:
    """Binance's documented layout: open_time, open, high, low, close, volume, close_time,
    quote_volume, count, taker_buy_volume, taker_buy_quote_volume, ignore (no header)."""
    lines = []
    for i in range(n):
        t = first_ms + i * H
        close = 100.0 + i
        row = [t * 1000 if micros else t, close - 0.5, close + 1, close - 1, close, 10.0 + i,
               (t + H - 1) * (1000 if micros else 1), 1000.0, 42, 5.0, 500.0, 0]
        lines.append(",".join(str(v) for v in row[:columns]))
    return ("\n".join(lines) + "\n").encode()


def zip_bytes(name: str, csv: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name.replace(".zip", ".csv"), csv)
    return buf.getvalue()


def ms(ts: str) -> int:
    return int(pd.Timestamp(ts, tz="UTC").value // 1_000_000)


class Server:
    """Serves a directory on 127.0.0.1 and records the paths asked for."""

    def __init__(self, root: Path):
        self.root = root
        self.requests: list[str] = []
        seen = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server API)
                seen.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def publish(self, symbol: str, month: str, content: bytes, *, checksum: str | None = None) -> None:
        name = f"{symbol}-1h-{month}.zip"
        folder = self.root / "data" / "spot" / "monthly" / "klines" / symbol / "1h"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
        digest = checksum or hashlib.sha256(content).hexdigest()
        (folder / f"{name}.CHECKSUM").write_text(f"{digest}  {name}\n")

    def zips_fetched(self) -> int:
        return sum(p.endswith(".zip") for p in self.requests)


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "www")
    s.root.mkdir()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def publish_good(server: Server) -> None:
    # December 2024 in milliseconds, January 2025 in microseconds (Binance's switch); 3 bars each.
    server.publish("BTCUSDT", "2024-12", zip_bytes("BTCUSDT-1h-2024-12.zip", kline_csv(ms("2024-12-31 21:00"), 3)))
    server.publish("BTCUSDT", "2025-01", zip_bytes("BTCUSDT-1h-2025-01.zip",
                                                   kline_csv(ms("2025-01-01 00:00"), 3, micros=True)))
    server.publish("ETHUSDT", "2025-01", zip_bytes("ETHUSDT-1h-2025-01.zip", kline_csv(ms("2025-01-01 00:00"), 3)))


def fetch(server, out, symbols=("BTCUSDT", "ETHUSDT")):
    return fetch_binance(list(symbols), interval="1h", start="2024-12", end="2025-01", out=out,
                         base_url=server.url, echo=lambda line: None)


def test_happy_path_both_time_units(server, tmp_path):
    publish_good(server)
    out = tmp_path / "data"
    summary = fetch(server, out)
    assert (summary.downloaded, summary.cached) == (3, 0)
    assert summary.missing == ["ETHUSDT-1h-2024-12.zip"]              # not listed yet: a 404, noted
    btc = pd.read_parquet(out / "BTCUSDT.parquet")
    assert list(btc.columns) == ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
    expected = pd.date_range("2024-12-31 21:00", periods=6, freq="h", tz="UTC")
    assert (btc["timestamp"] == expected).all()                       # ms and us open times agree
    assert btc["close"].tolist() == [100.0, 101.0, 102.0, 100.0, 101.0, 102.0]
    assert btc["volume"].tolist() == [10.0, 11.0, 12.0, 10.0, 11.0, 12.0]
    panel = load_panel(out)                                           # the layout `fleet train --data` reads
    assert panel.symbols == ["BTCUSDT", "ETHUSDT"] and panel.bar == pd.Timedelta("1h")
    assert sorted(p.name for p in out.iterdir()) == [".cache", "BTCUSDT.parquet", "ETHUSDT.parquet"]


def test_resume_skips_verified_archives(server, tmp_path):
    publish_good(server)
    out = tmp_path / "data"
    fetch(server, out)
    assert server.zips_fetched() == 3
    again = fetch(server, out)
    assert (again.downloaded, again.cached) == (0, 3) and server.zips_fetched() == 3
    # an archive lost from the cache (e.g. an interrupted run) is the only one fetched again
    (out / ".cache" / "BTCUSDT" / "1h" / "BTCUSDT-1h-2025-01.zip").unlink()
    third = fetch(server, out)
    assert (third.downloaded, third.cached) == (1, 2) and server.zips_fetched() == 4
    assert len(pd.read_parquet(out / "BTCUSDT.parquet")) == 6


def _assert_nothing_written(out: Path, symbol: str) -> None:
    assert not (out / f"{symbol}.parquet").exists()
    assert not [p for p in out.iterdir() if "partial" in p.name or p.suffix == ".tmp"]
    cached = out / ".cache" / symbol / "1h"
    assert not cached.exists() or not [p for p in cached.iterdir() if p.suffix == ".zip"]


def test_wrong_checksum(server, tmp_path):
    content = zip_bytes("BTCUSDT-1h-2024-12.zip", kline_csv(ms("2024-12-01"), 3))
    server.publish("BTCUSDT", "2024-12", content, checksum="0" * 64)
    out = tmp_path / "data"
    with pytest.raises(FetchError, match=r"BTCUSDT-1h-2024-12\.zip: checksum mismatch: sha256 [0-9a-f]{64}, "
                                         r"CHECKSUM file says 0{64}"):
        fetch(server, out, ["BTCUSDT"])
    _assert_nothing_written(out, "BTCUSDT")


def test_truncated_zip(server, tmp_path):
    content = zip_bytes("BTCUSDT-1h-2024-12.zip", kline_csv(ms("2024-12-01"), 50))
    server.publish("BTCUSDT", "2024-12", content[: len(content) // 2])   # checksum of the truncated bytes
    out = tmp_path / "data"
    with pytest.raises(FetchError, match=r"BTCUSDT-1h-2024-12\.zip: not a readable zip archive \(truncated"):
        fetch(server, out, ["BTCUSDT"])
    _assert_nothing_written(out, "BTCUSDT")


def test_wrong_columns(server, tmp_path):
    server.publish("BTCUSDT", "2024-12", zip_bytes("BTCUSDT-1h-2024-12.zip",
                                                   kline_csv(ms("2024-12-01"), 3, columns=6)))
    out = tmp_path / "data"
    with pytest.raises(FetchError, match=r"BTCUSDT-1h-2024-12\.zip: BTCUSDT-1h-2024-12\.csv has 6 columns; "
                                         r"expected 12 \(open_time, open"):
        fetch(server, out, ["BTCUSDT"])
    _assert_nothing_written(out, "BTCUSDT")


def test_bad_arguments_and_unknown_symbol(server, tmp_path):
    assert month_range("2022-11", "2023-02") == ["2022-11", "2022-12", "2023-01", "2023-02"]
    with pytest.raises(ConfigError, match="--start '2022-13'"):
        month_range("2022-13", "2023-01")
    with pytest.raises(ConfigError, match="after --end"):
        month_range("2023-02", "2023-01")
    with pytest.raises(ConfigError, match="--interval '7h'"):
        fetch_binance(["BTCUSDT"], interval="7h", start="2024-01", end="2024-01", out=tmp_path / "x")
    with pytest.raises(FetchError, match="NOPEUSDT: no 1h archive .* from 2024-12 to 2025-01"):
        fetch(server, tmp_path / "data", ["NOPEUSDT"])


def test_cli_fetch_then_inspect(server, tmp_path):
    publish_good(server)
    out = tmp_path / "data"
    args = ["data", "fetch", "binance", "--symbols", "BTCUSDT,ETHUSDT", "--interval", "1h", "--start", "2024-12",
            "--end", "2025-01", "--out", str(out), "--base-url", server.url]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "3 archive(s) downloaded, 0 already in the cache" in res.output
    res = CliRunner().invoke(main, args)
    assert "0 archive(s) downloaded, 3 already in the cache (verified)" in res.output
    res = CliRunner().invoke(main, ["data", "inspect", str(out)])
    assert res.exit_code == 0, res.output
    assert "BTCUSDT" in res.output and "2024-12-31 21:00" in res.output and "no problems" in res.output
    bad = CliRunner().invoke(main, ["data", "fetch", "binance", "--symbols", "NOPEUSDT", "--start", "2024-12",
                                    "--end", "2024-12", "--out", str(out), "--base-url", server.url])
    errors = [line for line in bad.output.splitlines() if line.startswith("error:")]
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert len(errors) == 1 and errors[0].startswith("error: NOPEUSDT: no 1h archive")
