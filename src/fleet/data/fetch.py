"""Download Binance's public spot kline archive into the per-symbol parquet layout.

Source: https://data.binance.vision (documented at https://github.com/binance/binance-public-data).
Monthly archives live at

    <base>/data/spot/monthly/klines/<SYMBOL>/<INTERVAL>/<SYMBOL>-<INTERVAL>-<YYYY>-<MM>.zip

each with a ``.zip.CHECKSUM`` file holding ``"<sha256 hex>  <file name>"``. A zip holds one
headerless CSV with the 12 columns of :data:`KLINE_COLUMNS`; ``open_time`` is the bar's open
time in milliseconds since the epoch, or in microseconds in newer archives (Binance switched
spot data to microseconds on 2025-01-01), so both are read.

Resume: verified zips are kept in a cache directory (default ``<out>/.cache``, ignored by the
loader) next to their CHECKSUM file; a rerun re-hashes them and skips the download. Output:
``<out>/<SYMBOL>.parquet`` with columns timestamp (UTC), symbol, open, high, low, close, volume,
validated with :func:`fleet.data.load.load_panel` before it is renamed into place, so a bad
archive never leaves a partial parquet behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from fleet.data.load import load_panel
from fleet.errors import ConfigError, DataError, FetchError

__all__ = ["BINANCE_BASE_URL", "INTERVALS", "KLINE_COLUMNS", "FetchSummary", "archive_name", "fetch_binance",
           "month_range", "read_kline_zip"]

BINANCE_BASE_URL = "https://data.binance.vision"
KLINE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
                 "taker_buy_volume", "taker_buy_quote_volume", "ignore")
# Intervals Binance publishes kline archives for.
INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1mo")
# Epoch values at or above this are microseconds (1e14 us is 1973; 1e14 ms is the year 5138).
_MICROSECOND_FLOOR = 10 ** 14
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")
_SHA256 = re.compile(r"^([0-9a-fA-F]{64})\s+(\S+)\s*$")


@dataclass
class FetchSummary:
    """What :func:`fetch_binance` did.

    Attributes:
        files: symbol -> written parquet file.
        bars: symbol -> number of bars written.
        downloaded: archives downloaded and verified in this run.
        cached: archives found verified in the cache and not downloaded again.
        missing: archive names the server does not have (HTTP 404; e.g. months before a listing).
    """

    files: dict[str, Path] = field(default_factory=dict)
    bars: dict[str, int] = field(default_factory=dict)
    downloaded: int = 0
    cached: int = 0
    missing: list[str] = field(default_factory=list)


def month_range(start: str, end: str) -> list[str]:
    """Months ``"YYYY-MM"`` from ``start`` to ``end``, both included.

    Raises:
        ConfigError: a month not written YYYY-MM, or ``start`` after ``end``.
    """
    parsed = []
    for name, value in (("start", start), ("end", end)):
        m = _MONTH.match(str(value).strip())
        if not m or not 1 <= int(m.group(2)) <= 12:
            raise ConfigError(f"--{name} {value!r}: expected a month written YYYY-MM, e.g. 2022-06")
        parsed.append(pd.Period(f"{m.group(1)}-{m.group(2)}", freq="M"))
    if parsed[0] > parsed[1]:
        raise ConfigError(f"--start {start} is after --end {end}; expected start <= end")
    return [str(p) for p in pd.period_range(parsed[0], parsed[1], freq="M")]


def archive_name(symbol: str, interval: str, month: str) -> str:
    """``BTCUSDT-1h-2024-01.zip`` for ("BTCUSDT", "1h", "2024-01")."""
    return f"{symbol}-{interval}-{month}.zip"


def _archive_url(base_url: str, symbol: str, interval: str, name: str) -> str:
    return f"{base_url.rstrip('/')}/data/spot/monthly/klines/{symbol}/{interval}/{name}"


def _session(retries: int) -> requests.Session:
    """A requests session that retries connection errors and 429/5xx with backoff (urllib3 Retry)."""
    session = requests.Session()
    retry = Retry(total=retries, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=("GET",), raise_on_status=False)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def _get(session: requests.Session, url: str, timeout: float) -> requests.Response | None:
    """GET ``url``; None on 404 (archive not published); FetchError on anything else that fails."""
    try:
        resp = session.get(url, timeout=timeout)
    except requests.RequestException as err:
        raise FetchError(f"{url}: download failed: {err}") from None
    if resp.status_code == 404:
        return None
    if resp.status_code != 200:
        raise FetchError(f"{url}: HTTP {resp.status_code} {resp.reason}; expected 200")
    return resp


def _parse_checksum(text: str, name: str, where: str) -> str:
    m = _SHA256.match(text.strip())
    if not m:
        raise FetchError(f"{where}: not a CHECKSUM file; expected '<64 hex digits>  {name}'")
    if m.group(2) != name:
        raise FetchError(f"{where}: names {m.group(2)!r}; expected the checksum of {name!r}")
    return m.group(1).lower()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (manifests and archive checks share it)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _cached(zip_path: Path, sum_path: Path) -> bool:
    """True when the cache holds the zip and its CHECKSUM and they agree."""
    if not (zip_path.is_file() and sum_path.is_file()):
        return False
    try:
        expected = _parse_checksum(sum_path.read_text(), zip_path.name, str(sum_path))
    except FetchError:
        return False
    return sha256_file(zip_path) == expected


def _download(session, url: str, zip_path: Path, sum_path: Path, timeout: float) -> bool:
    """Download and verify one archive into the cache. False when the server has none (404)."""
    resp = _get(session, url + ".CHECKSUM", timeout)
    if resp is None:
        return False
    expected = _parse_checksum(resp.text, zip_path.name, url + ".CHECKSUM")
    resp = _get(session, url, timeout)
    if resp is None:
        raise FetchError(f"{url}: not found (HTTP 404) although its CHECKSUM file exists")
    got = hashlib.sha256(resp.content).hexdigest()
    if got != expected:
        raise FetchError(f"{url}: checksum mismatch: sha256 {got}, CHECKSUM file says {expected} "
                         "(corrupt or incomplete download; nothing was kept, rerun to retry)")
    _atomic_write(zip_path, resp.content)
    _atomic_write(sum_path, f"{expected}  {zip_path.name}\n".encode())
    return True


def read_kline_zip(path: Path, symbol: str) -> pd.DataFrame:
    """Read one Binance kline archive into bars.

    Args:
        path: a zip holding one CSV in Binance's layout (:data:`KLINE_COLUMNS`, no header; a
            header row is tolerated).
        symbol: the symbol, written to the ``symbol`` column.

    Returns:
        DataFrame with columns timestamp (datetime64[us, UTC], the bar's open time), symbol,
        open, high, low, close (quote currency) and volume (base asset), float64.

    Raises:
        FetchError: not a readable zip (truncated or corrupt), not exactly one CSV inside, not
            12 columns, or non-numeric values; the message names the file.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            members = [n for n in zf.namelist() if not n.endswith("/")]
            if len(members) != 1:
                raise FetchError(f"{path.name}: holds {len(members)} files ({', '.join(members) or 'none'}); "
                                 "expected one kline CSV")
            raw = zf.read(members[0])
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        raise FetchError(f"{path.name}: not a readable zip archive (truncated or corrupt: {err})") from None
    try:
        table = pd.read_csv(io.BytesIO(raw), header=None, dtype=str)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise FetchError(f"{path.name}: {members[0]} is not a kline CSV ({err})") from None
    if table.shape[1] != len(KLINE_COLUMNS):
        raise FetchError(f"{path.name}: {members[0]} has {table.shape[1]} columns; expected "
                         f"{len(KLINE_COLUMNS)} ({', '.join(KLINE_COLUMNS)})")
    table.columns = list(KLINE_COLUMNS)
    if len(table) and not str(table.iloc[0, 0]).strip().isdigit():
        table = table.iloc[1:]  # a header row
    numbers = table[["open_time", "open", "high", "low", "close", "volume"]].apply(pd.to_numeric, errors="coerce")
    bad = numbers.isna().any(axis=1).to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)[:3].tolist()
        raise FetchError(f"{path.name}: {int(bad.sum())} row(s) with missing or non-numeric values "
                         f"(e.g. data rows {rows}); expected numbers in {', '.join(KLINE_COLUMNS[:6])}")
    open_time = numbers["open_time"].to_numpy(dtype=np.int64)
    micros = np.where(open_time >= _MICROSECOND_FLOOR, open_time, open_time * 1000)
    out = pd.DataFrame({"timestamp": pd.to_datetime(micros, unit="us", utc=True).as_unit("us"), "symbol": symbol})
    for c in ("open", "high", "low", "close", "volume"):
        out[c] = numbers[c].to_numpy(dtype=np.float64)
    return out


def _check_args(symbols, interval: str) -> list[str]:
    syms = [s.strip().upper() for s in symbols if s and s.strip()]
    if not syms:
        raise ConfigError("--symbols: no symbol given; expected e.g. BTCUSDT,ETHUSDT")
    bad = [s for s in syms if not _SYMBOL.match(s)]
    if bad:
        raise ConfigError(f"--symbols: {', '.join(bad)}: expected Binance spot symbols such as BTCUSDT")
    if interval not in INTERVALS:
        raise ConfigError(f"--interval {interval!r}: expected one of {', '.join(INTERVALS)}")
    return list(dict.fromkeys(syms))


def fetch_binance(symbols, *, interval: str, start: str, end: str, out, base_url: str = BINANCE_BASE_URL,
                  cache=None, retries: int = 3, timeout: float = 60.0,
                  echo: Callable[[str], None] = print) -> FetchSummary:
    """Download, verify and convert Binance spot kline archives, one parquet per symbol.

    Args:
        symbols: Binance spot symbols, e.g. ["BTCUSDT", "ETHUSDT"].
        interval: kline interval, one of :data:`INTERVALS` (e.g. "1h").
        start, end: first and last month, "YYYY-MM", both included.
        out: output directory (created); gets ``<SYMBOL>.parquet`` per symbol, the layout
            ``fleet train --data`` reads.
        base_url: archive server (default :data:`BINANCE_BASE_URL`; a local server in tests).
        cache: where verified zips are kept for resuming (default ``<out>/.cache``).
        retries: retries per request on connection errors and HTTP 429/5xx (urllib3 ``Retry``
            with exponential backoff).
        timeout: seconds per request.
        echo: progress lines.

    Returns:
        A :class:`FetchSummary`.

    Raises:
        ConfigError: bad symbols, interval or months.
        FetchError: a download failed, a checksum does not match, an archive is truncated or has
            the wrong columns (the message names the file; a bad archive is removed from the
            cache and the symbol's parquet is not written), or a symbol has no archive at all
            in the range.
        DataError: the bars break a rule of :func:`fleet.data.load.load_panel`.
    """
    syms = _check_args(symbols, interval)
    months = month_range(start, end)
    out = Path(out)
    cache = Path(cache) if cache is not None else out / ".cache"
    out.mkdir(parents=True, exist_ok=True)
    summary = FetchSummary()
    session = _session(retries)
    try:
        for symbol in syms:
            bars = _symbol_bars(session, symbol, interval=interval, months=months, folder=cache / symbol / interval,
                                base_url=base_url, timeout=timeout, summary=summary)
            summary.files[symbol] = _write_validated(bars, out, symbol)
            summary.bars[symbol] = len(bars)
            echo(f"  {symbol}: {len(bars):,} bars {bars['timestamp'].iloc[0]:%Y-%m-%d %H:%M} -> "
                 f"{bars['timestamp'].iloc[-1]:%Y-%m-%d %H:%M} UTC -> {summary.files[symbol]}")
    finally:
        session.close()
    return summary


def _symbol_bars(session, symbol: str, *, interval: str, months: list, folder: Path, base_url: str,
                 timeout: float, summary: FetchSummary) -> pd.DataFrame:
    """One symbol's bars over ``months``, each month's archive from the cache ``folder`` or downloaded
    into it (counted in ``summary``: cached, downloaded, missing); sorted by time, duplicate rows dropped.

    Raises:
        FetchError: an archive cannot be read (it is removed from the cache), or no month has one.
    """
    folder.mkdir(parents=True, exist_ok=True)
    frames = []
    for month in months:
        name = archive_name(symbol, interval, month)
        zip_path, sum_path = folder / name, folder / (name + ".CHECKSUM")
        if _cached(zip_path, sum_path):
            summary.cached += 1
        elif _download(session, _archive_url(base_url, symbol, interval, name), zip_path, sum_path, timeout):
            summary.downloaded += 1
        else:
            summary.missing.append(name)
            continue
        try:
            frames.append(read_kline_zip(zip_path, symbol))
        except FetchError:
            # Verified against its CHECKSUM but unusable: drop it so a rerun fetches it again.
            zip_path.unlink(missing_ok=True)
            sum_path.unlink(missing_ok=True)
            raise
    if not frames:
        raise FetchError(f"{symbol}: no {interval} archive on {base_url} from {months[0]} to {months[-1]} "
                         "(HTTP 404 for every month); check the symbol and the dates")
    return (pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable")
            .drop_duplicates(keep="first").reset_index(drop=True))


def _write_validated(bars: pd.DataFrame, out: Path, symbol: str) -> Path:
    """Write ``<out>/<symbol>.parquet`` via a hidden temp dir, after the loader accepted it."""
    final = out / f"{symbol}.parquet"
    tmp_dir = Path(tempfile.mkdtemp(dir=out, prefix=f".{symbol}.partial-"))
    try:
        tmp = tmp_dir / final.name
        bars.to_parquet(tmp, index=False)
        try:
            load_panel(tmp)
        except DataError as err:
            raise DataError(f"{symbol}: the downloaded bars are not valid: {err}") from None
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return final
