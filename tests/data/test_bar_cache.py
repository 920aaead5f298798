"""Tests of the bar cache (fleet.data.bars) and of staging into it (fleet.data.stage).

Staging must be load_panel by other means: every loader test of test_data_load.py is run again here with
``load_panel`` replaced by "stage into a cache, then read every asset back with the BarReader" (same frames,
same errors, same warnings). The other tests compare the reader's frames with load_panel's on real and
synthetic data, with --days windows, and check what the reader pickles to and reads.
"""

from __future__ import annotations

import pickle
import tempfile
import warnings

import numpy as np
import pandas as pd
import pytest

import test_data_load as loader_tests
from fleet.data import Panel, load_panel
from fleet.data.bars import BAR_FILE, BarCache, BarReader, symbol_dir
from fleet.data.load import _check_load_args, _check_min_bars
from fleet.data.stage import stage_bars, stage_synthetic
from fleet.data.synthetic import synthetic_market


def staged_load_panel(path, *, symbols=None, days=None, min_bars: int = 0) -> Panel:
    """load_panel through the bar cache: stage, cut the lean panel, read every asset back with a BarReader."""
    _check_load_args(symbols, min_bars)
    with tempfile.TemporaryDirectory() as d:
        cache = BarCache(d)
        lean = stage_bars(path, cache, symbols=symbols)
        panel = lean if days is None else lean.last_days(days)
        reader = cache.reader(panel)
        frames = {s: reader[s] for s in panel.symbols}
    for s, f in frames.items():  # the lean frames are the full frames' close (and volume)
        pd.testing.assert_frame_equal(panel.frames[s], f[list(panel.frame_columns)], check_exact=True)
    full = Panel(frames=frames, sources=panel.sources, columns=panel.columns, dropped_columns=panel.dropped_columns,
                 bar=panel.bar)
    _check_min_bars(full, min_bars, days)
    return full


# Every loader test that goes through load_panel, collected again in this module (timing and the
# Panel-only tests are left out: they do not load).
_SKIP = {"test_real_crypto_loads_fast", "test_panel_subset", "test_panel_last_days_rejects_non_positive",
         "test_panel_dollar_volume_is_mean_close_times_volume", "test_bars_per_year_rule",
         "test_infer_bar_is_median_over_all_assets"}
for _name in dir(loader_tests):
    if _name.startswith("test_") and _name not in _SKIP:
        globals()[f"{_name}_staged"] = getattr(loader_tests, _name)


@pytest.fixture(autouse=True)
def _through_the_cache(request, monkeypatch):
    if request.function.__module__ == loader_tests.__name__:
        monkeypatch.setattr(loader_tests, "load_panel", staged_load_panel)


def identical(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Same values (exactly), dtypes, columns, index values / unit / time zone / name / freq."""
    pd.testing.assert_frame_equal(a, b, check_exact=True, check_freq=True)
    assert a.index.dtype == b.index.dtype == "datetime64[us, UTC]"
    assert a.index.name == b.index.name == "timestamp" and a.index.freq is None and b.index.freq is None
    assert list(a.dtypes) == list(b.dtypes) == [np.dtype("float64")] * a.shape[1]


def reader_matches_loader(source, tmp_path, days=None, symbols=None) -> BarReader:
    cache = BarCache(tmp_path / "cache")
    lean = stage_bars(source, cache, symbols=symbols)
    full = load_panel(source, symbols=symbols, days=days)
    window = lean if days is None else lean.last_days(days)
    reader = cache.reader(window)
    assert list(reader) == full.symbols
    assert (window.columns, window.dropped_columns, window.bar, window.sources) == \
        (full.columns, full.dropped_columns, full.bar, full.sources)
    for s in full.symbols:
        identical(reader[s], full.frames[s])
    return reader


@pytest.mark.parametrize("days", [None, 200])
def test_reader_equals_loader_on_crypto_directory(crypto_dir, tmp_path, days):
    # Three assets of the shared hourly data; AVAXUSDT ends two months early, so the window cuts it differently.
    reader = reader_matches_loader(crypto_dir, tmp_path, days=days, symbols=["AVAXUSDT", "BTCUSDT", "ETHUSDT"])
    if days is not None:
        assert reader.starts["AVAXUSDT"] == reader.starts["BTCUSDT"]  # one calendar window for every asset


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("days", [None, 1.5])
def test_reader_equals_loader_on_long_file_and_frame(tmp_path, suffix, days):
    parts = []
    for k, (symbol, n) in enumerate([("AAA", 72), ("BBB", 60), ("C/D", 50)]):
        b = loader_tests.bars(n, start=f"2024-01-0{k + 1}")
        b["symbol"] = symbol
        parts.append(b)
    long = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=0)  # unsorted rows
    file = loader_tests.write(long, tmp_path / f"long{suffix}")
    reader_matches_loader(file, tmp_path / "a", days=days)
    reader_matches_loader(long, tmp_path / "b", days=days)  # fleet.train(frame=...)
    assert (tmp_path / "a" / "cache" / "symbol=C%2FD" / BAR_FILE).is_file()  # one path segment per symbol


def test_reader_equals_loader_on_close_only_equities(shared_data, tmp_path):
    file = shared_data / "equities_1d" / "sp500_20.parquet"
    if not file.is_file():
        pytest.skip(f"{file} not found")
    reader = reader_matches_loader(file, tmp_path, days=400, symbols=["AAPL", "XOM"])
    assert reader.columns == ("close",)


def test_staged_synthetic_market_is_the_generated_one(tmp_path):
    cache = BarCache(tmp_path)
    kw = dict(n_clusters=2, assets_per_cluster=2, days=40, seed=3)
    staged, market = stage_synthetic(cache, symbols=["C0S1", "C1S0"], **kw), synthetic_market(**kw)
    assert staged.panel.frame_columns == ("close", "volume") and staged.panel.columns == market.panel.columns
    pd.testing.assert_series_equal(staged.factor, market.factor, check_exact=True)
    assert staged.clusters == market.clusters
    reader = cache.reader(staged.panel.subset(["C0S1", "C1S0"]))
    for s in reader:
        identical(reader[s], market.panel.frames[s])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["symbol=C0S1", "symbol=C1S0"]  # only the kept ones


def test_reader_reads_each_asset_once_and_pushes_the_window_down(tmp_path):
    cache = BarCache(tmp_path)
    frame = loader_tests.bars(100).set_index("timestamp")[["open", "high", "low", "close", "volume"]]
    frame.index = frame.index.as_unit("us")
    cache.write("X", frame)
    start = frame.index[60]
    reader = BarReader(cache.location, {"X": start}, ("close", "volume"))
    got = reader["X"]
    identical(got, frame.loc[frame.index >= start, ["close", "volume"]])
    assert reader["X"] is got and reader.reads == 1  # prepare and assemble of one unit read the asset once
    with pytest.raises(KeyError):
        reader["Y"]
    # What the Ray backend puts in the object store: the location, symbols, starts and columns; no bars.
    clone = pickle.loads(pickle.dumps(reader))
    assert clone.reads == 0 and len(pickle.dumps(reader)) < 1000
    identical(clone["X"], got)


def test_reader_cache_is_bounded(tmp_path):
    cache = BarCache(tmp_path)
    frame = loader_tests.bars(1000).set_index("timestamp")[["close"]]
    frame.index = frame.index.as_unit("us")
    for s in "ABC":
        cache.write(s, frame)
    per_frame = int(frame.memory_usage(index=True).sum())
    reader = BarReader(cache.location, dict.fromkeys("ABC"), ("close",), cache_bytes=2 * per_frame)
    for s in "ABCA":
        reader[s]
    assert reader.reads == 4  # A was dropped when C came in (least recently used), so it is read again
    assert len(reader._cache) == 2


def test_symbol_dir_is_one_segment():
    assert symbol_dir("BTC/USDT") == "symbol=BTC%2FUSDT"
    assert symbol_dir("BTCUSDT") == "symbol=BTCUSDT"


def test_staging_raises_the_first_value_error_after_reading_every_file(tmp_path):
    """A bad value in one file and a missing column in a later one: the column error comes first, as in load_panel."""
    bad = loader_tests.bars(24)
    bad.loc[3, "close"] = -1.0
    loader_tests.write(bad, tmp_path / "aaa.parquet")
    loader_tests.write(loader_tests.bars(24).drop(columns="close"), tmp_path / "bbb.parquet")
    with pytest.raises(Exception) as staged, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stage_bars(tmp_path, BarCache(tmp_path / ".cache"))
    with pytest.raises(Exception) as loaded:
        load_panel(tmp_path)
    assert type(staged.value) is type(loaded.value) and str(staged.value) == str(loaded.value)
    assert "missing required column 'close'" in str(loaded.value)
