"""Tests of fleet.data.load (load_panel) and fleet.data.panel (Panel, infer_bar)."""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fleet.data import Panel, load_panel
from fleet.data.panel import infer_bar
from fleet.errors import ConfigError, DataError, FleetWarning, UnknownSymbolError

UTC = "UTC"


def bars(n: int = 48, start: str = "2024-01-01", freq: str = "h") -> pd.DataFrame:
    """Valid OHLCV rows with hand-checkable values: close = 100 + 0.5 i."""
    i = np.arange(n, dtype=float)
    close = 100.0 + 0.5 * i
    open_ = close - 0.25
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=n, freq=freq, tz=UTC),
            "open": open_,
            "high": close + 1.0,
            "low": open_ - 1.0,
            "close": close,
            "volume": 10.0 + i,
        }
    )


def write(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path


def rx(text) -> str:
    return re.escape(str(text))


# ---------------------------------------------------------------- happy paths


def test_directory_of_parquet(tmp_path):
    a = bars(48)
    a["symbol"] = "BTCUSDT"
    write(a, tmp_path / "btc_file.parquet")
    write(bars(24, start="2024-01-02"), tmp_path / "ethusdt.pq")  # no symbol column -> stem
    (tmp_path / "README.md").write_text("not data")  # other files are ignored

    panel = load_panel(tmp_path)

    assert panel.symbols == ["BTCUSDT", "ETHUSDT"]
    assert panel.columns == ("open", "high", "low", "close", "volume")
    assert panel.dropped_columns == ()
    assert panel.bar == pd.Timedelta(hours=1)
    assert panel.sources == {
        "BTCUSDT": str(tmp_path / "btc_file.parquet"),
        "ETHUSDT": str(tmp_path / "ethusdt.pq"),
    }
    btc = panel.frames["BTCUSDT"]
    assert isinstance(btc.index, pd.DatetimeIndex)
    assert btc.index.name == "timestamp"
    assert str(btc.index.tz) == "UTC"
    assert btc.index.is_monotonic_increasing and btc.index.is_unique
    assert list(btc.columns) == ["open", "high", "low", "close", "volume"]
    assert (btc.dtypes == np.float64).all()
    assert btc["close"].iloc[3] == 101.5
    assert btc.index[0] == pd.Timestamp("2024-01-01 00:00", tz=UTC)
    assert len(panel.frames["ETHUSDT"]) == 24


def test_directory_of_csv_case_insensitive_columns_and_extra_columns(tmp_path):
    df = bars(30)
    df["timestamp"] = df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    df = df.rename(columns={"timestamp": "Timestamp", "close": "Close", "open": " OPEN "})
    df["trades"] = 7  # extra column: ignored
    write(df, tmp_path / "solusdt.csv")
    write(bars(30).drop(columns="volume").assign(Volume=1.0), tmp_path / "ADAUSDT.csv")

    panel = load_panel(tmp_path)

    assert panel.symbols == ["ADAUSDT", "SOLUSDT"]
    sol = panel.frames["SOLUSDT"]
    assert list(sol.columns) == ["open", "high", "low", "close", "volume"]
    assert sol["open"].iloc[0] == 99.75
    assert sol["close"].iloc[-1] == 100.0 + 0.5 * 29
    assert sol.index[1] == pd.Timestamp("2024-01-01 01:00", tz=UTC)
    assert (panel.frames["ADAUSDT"]["volume"] == 1.0).all()


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_long_format_file_is_split_by_symbol_and_sorted(tmp_path, suffix):
    parts = []
    for k, symbol in enumerate(["XOM", "AAPL", "KO"]):
        part = bars(20 + k, start="2020-01-01", freq="D")[["timestamp", "close"]]
        part["close"] = part["close"] * (k + 1)
        part["symbol"] = symbol
        parts.append(part)
    long = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=0)  # shuffled
    file = write(long, tmp_path / f"prices{suffix}")

    panel = load_panel(file)

    assert panel.symbols == ["AAPL", "KO", "XOM"]
    assert panel.columns == ("close",)
    assert panel.sources["KO"] == str(file)
    assert panel.bar == pd.Timedelta(days=1)
    ko = panel.frames["KO"]
    assert len(ko) == 22
    assert ko.index.is_monotonic_increasing
    np.testing.assert_allclose(ko["close"].to_numpy(), (100.0 + 0.5 * np.arange(22)) * 3)


def test_close_only_file(tmp_path):
    write(bars(10)[["timestamp", "close"]], tmp_path / "only.parquet")
    panel = load_panel(tmp_path)
    assert panel.columns == ("close",)
    assert panel.missing_columns() == ("open", "high", "low", "volume")
    assert panel.dollar_volume() is None
    assert list(panel.frames["ONLY"].columns) == ["close"]


def test_single_file_without_symbol_column_uses_stem(tmp_path):
    file = write(bars(5), tmp_path / "dogeusdt.csv")
    assert load_panel(file).symbols == ["DOGEUSDT"]


def test_unsorted_rows_are_sorted_without_changing_values(tmp_path):
    df = bars(12)
    write(df.iloc[::-1], tmp_path / "x.parquet")
    frame = load_panel(tmp_path).frames["X"]
    assert frame.index.is_monotonic_increasing
    np.testing.assert_array_equal(frame["close"].to_numpy(), df["close"].to_numpy())


def test_optional_column_missing_in_some_files_is_dropped_with_warning(tmp_path):
    write(bars(10), tmp_path / "a.parquet")
    write(bars(10).drop(columns=["volume"]), tmp_path / "b.parquet")
    with pytest.warns(FleetWarning, match="volume.*B"):
        panel = load_panel(tmp_path)
    assert panel.columns == ("open", "high", "low", "close")
    assert panel.dropped_columns == ("volume",)
    assert list(panel.frames["A"].columns) == ["open", "high", "low", "close"]


def test_timestamps_are_converted_to_utc(tmp_path):
    df = bars(6)
    df["timestamp"] = df["timestamp"].dt.tz_convert("Europe/Berlin")
    berlin = load_panel(write(df, tmp_path / "berlin.parquet")).frames["BERLIN"]
    offsets = bars(2)[["timestamp", "close"]].astype({"timestamp": object})
    offsets["timestamp"] = ["2024-01-01T01:00:00+01:00", "2024-01-01T03:00:00+02:00"]
    mixed = load_panel(write(offsets, tmp_path / "offsets.csv")).frames["OFFSETS"]

    assert berlin.index[0] == pd.Timestamp("2024-01-01 00:00", tz=UTC)
    assert str(berlin.index.tz) == "UTC"
    assert list(mixed.index) == [
        pd.Timestamp("2024-01-01 00:00", tz=UTC),
        pd.Timestamp("2024-01-01 01:00", tz=UTC),
    ]


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_naive_timestamps_warn_and_are_read_as_utc(tmp_path, suffix):
    df = bars(5)
    df["timestamp"] = df["timestamp"].dt.tz_localize(None)
    file = write(df, tmp_path / f"naive{suffix}")
    with pytest.warns(FleetWarning, match=rx(file) + ".*no time zone"):
        panel = load_panel(file)
    assert panel.frames["NAIVE"].index[0] == pd.Timestamp("2024-01-01 00:00", tz=UTC)


def test_aware_timestamps_do_not_warn(tmp_path):
    write(bars(5), tmp_path / "a.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FleetWarning)
        load_panel(tmp_path)


def test_symbols_filter_and_unknown_symbol(tmp_path):
    for name in ("a", "b", "c"):
        write(bars(5), tmp_path / f"{name}.parquet")
    assert load_panel(tmp_path, symbols=["C", "A"]).symbols == ["A", "C"]
    assert load_panel(tmp_path, symbols="B").symbols == ["B"]
    with pytest.raises(UnknownSymbolError, match=r"'ZZZ'.*available: A, B, C"):
        load_panel(tmp_path, symbols=["A", "ZZZ"])
    with pytest.raises(ConfigError, match="symbols is empty"):
        load_panel(tmp_path, symbols=[])


def test_symbols_filter_skips_value_checks_of_other_symbols(tmp_path):
    write(bars(5), tmp_path / "good.parquet")
    broken = bars(5)
    broken.loc[2, "close"] = -1.0
    write(broken, tmp_path / "broken.parquet")
    assert load_panel(tmp_path, symbols=["GOOD"]).symbols == ["GOOD"]
    with pytest.raises(DataError, match="broken.parquet"):
        load_panel(tmp_path)


def test_days_keeps_one_calendar_window_for_every_asset(tmp_path):
    write(bars(24 * 10, start="2024-01-01"), tmp_path / "late.parquet")  # ends 2024-01-10 23:00
    write(bars(24 * 5, start="2024-01-01"), tmp_path / "early.parquet")  # ends 2024-01-05 23:00

    panel = load_panel(tmp_path, days=7)

    late, early = panel.frames["LATE"], panel.frames["EARLY"]
    # rows with ts > panel end (2024-01-10 23:00) - 7 days = 2024-01-03 23:00, for both assets.
    assert late.index[0] == early.index[0] == pd.Timestamp("2024-01-04 00:00", tz=UTC)
    assert late.index[-1] == pd.Timestamp("2024-01-10 23:00", tz=UTC)
    assert early.index[-1] == pd.Timestamp("2024-01-05 23:00", tz=UTC)
    assert len(late) == 7 * 24 and len(early) == 2 * 24


def test_days_refuses_an_asset_with_no_bar_in_the_window(tmp_path):
    write(bars(24 * 10, start="2024-01-01"), tmp_path / "late.parquet")
    write(bars(24 * 5, start="2024-01-01"), tmp_path / "early.parquet")
    with pytest.raises(DataError, match=r"EARLY \(last bar 2024-01-05 23:00\) has no bar in the last 2 days"):
        load_panel(tmp_path, days=2)


def test_days_must_be_positive(tmp_path):
    write(bars(5), tmp_path / "a.parquet")
    with pytest.raises(ConfigError, match="days=0"):
        load_panel(tmp_path, days=0)


def test_min_bars_error_names_symbol_counts_and_fix(tmp_path):
    write(bars(24 * 3), tmp_path / "long.parquet")
    write(bars(30), tmp_path / "short.parquet")
    assert len(load_panel(tmp_path, min_bars=30).frames["SHORT"]) == 30
    with pytest.raises(
        DataError, match=r"SHORT \(.*short\.parquet\) has 30 bars, but at least 31 .*larger --days"
    ):
        load_panel(tmp_path, min_bars=31)
    with pytest.raises(DataError, match=r"LONG .* has 24 bars in the last 1 days.*at least 25"):
        load_panel(tmp_path, symbols=["LONG"], days=1, min_bars=25)
    with pytest.raises(ConfigError, match="min_bars"):
        load_panel(tmp_path, min_bars=-1)


def test_loading_writes_nothing(tmp_path):
    write(bars(5), tmp_path / "a.parquet")
    write(bars(5), tmp_path / "b.csv")
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    load_panel(tmp_path)
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


# ---------------------------------------------------------------- layout errors


def test_path_not_found(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match=rx(missing) + ": not found.*one file per symbol"):
        load_panel(missing)


def test_empty_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=rx(tmp_path) + r": directory holds no \*\.parquet"):
        load_panel(tmp_path)


def test_unsupported_extension(tmp_path):
    file = tmp_path / "prices.xlsx"
    file.write_text("x")
    with pytest.raises(DataError, match=rx(file) + r": unsupported file type '\.xlsx'.*long-format"):
        load_panel(file)


def test_unreadable_parquet(tmp_path):
    file = tmp_path / "bad.parquet"
    file.write_bytes(b"this is not parquet")
    with pytest.raises(DataError, match=rx(file) + ": cannot be read as parquet"):
        load_panel(tmp_path)


def test_empty_csv_file(tmp_path):
    file = tmp_path / "blank.csv"
    file.write_text("")
    with pytest.raises(DataError, match=rx(file) + ": the file is empty"):
        load_panel(tmp_path)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_file_with_header_but_no_rows(tmp_path, suffix):
    file = write(bars(3).iloc[:0], tmp_path / f"empty{suffix}")
    with pytest.raises(DataError, match=rx(file) + ": no data rows"):
        load_panel(tmp_path)


def test_missing_close_column(tmp_path):
    file = write(bars(3).drop(columns="close").rename(columns={"open": "Open"}), tmp_path / "a.parquet")
    with pytest.raises(
        DataError, match=rx(file) + r": missing required column 'close' \(found: timestamp, Open, high"
    ):
        load_panel(tmp_path)


def test_missing_timestamp_column(tmp_path):
    file = write(bars(3).rename(columns={"timestamp": "time"}), tmp_path / "a.csv")
    with pytest.raises(DataError, match=rx(file) + r": missing required column 'timestamp' \(found: time"):
        load_panel(tmp_path)


def test_ambiguous_columns(tmp_path):
    df = bars(3)
    df["CLOSE"] = df["close"]
    file = write(df, tmp_path / "a.parquet")
    with pytest.raises(DataError, match=rx(file) + r": columns 'close' and 'CLOSE' both match 'close'"):
        load_panel(tmp_path)


def test_symbol_column_with_several_values_in_directory(tmp_path):
    df = bars(4)
    df["symbol"] = ["A", "A", "B", "A"]
    file = write(df, tmp_path / "mixed.parquet")
    with pytest.raises(DataError, match=rx(file) + r": column 'symbol' holds 2 different values \(A, B\)"):
        load_panel(tmp_path)


def test_two_files_with_the_same_symbol(tmp_path):
    write(bars(4), tmp_path / "btcusdt.csv")
    other = bars(4)
    other["symbol"] = "BTCUSDT"
    write(other, tmp_path / "z.parquet")
    with pytest.raises(DataError, match=r"z\.parquet: symbol 'BTCUSDT' is also given by .*btcusdt\.csv"):
        load_panel(tmp_path)


def test_missing_symbol_in_long_file(tmp_path):
    df = bars(4)
    df["symbol"] = ["A", None, "A", "A"]
    file = write(df, tmp_path / "long.parquet")
    with pytest.raises(DataError, match=rx(file) + r": column 'symbol' is missing or blank in 1 row \(e\.g\. 1\)"):
        load_panel(file)


# ---------------------------------------------------------------- timestamp errors


def test_unparseable_timestamps_name_rows(tmp_path):
    df = bars(8)
    df["timestamp"] = df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    df.loc[[2, 5], "timestamp"] = ["yesterday", "31/01/2024 10:00"]
    file = write(df, tmp_path / "a.csv")
    with pytest.raises(
        DataError,
        match=rx(file) + r": column 'timestamp' has 2 missing or unparseable values in 2 rows \(e\.g\. 2, 5\)"
        r".*'yesterday'.*ISO-8601",
    ):
        load_panel(tmp_path)


def test_missing_timestamp_values_in_datetime_column(tmp_path):
    df = bars(5)
    df.loc[3, "timestamp"] = pd.NaT
    file = write(df, tmp_path / "a.parquet")
    with pytest.raises(DataError, match=rx(file) + r": column 'timestamp' .* 1 row \(e\.g\. 3\)"):
        load_panel(tmp_path)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_numeric_timestamps(tmp_path, suffix):
    df = bars(3)
    df["timestamp"] = df["timestamp"].astype("int64") // 10**6
    file = write(df, tmp_path / f"a{suffix}")
    with pytest.raises(DataError, match=rx(file) + r": column 'timestamp' holds numbers.*ISO-8601"):
        load_panel(tmp_path)


def test_duplicate_timestamps_name_file_symbol_and_rows(tmp_path):
    df = bars(6)
    df.loc[4, "timestamp"] = df.loc[1, "timestamp"]
    file = write(df, tmp_path / "dup.parquet")
    with pytest.raises(
        DataError, match=rx(file) + r" \(symbol DUP\): duplicate timestamps in 2 rows \(e\.g\. 1, 4\)"
    ):
        load_panel(tmp_path)


# ---------------------------------------------------------------- value errors


@pytest.mark.parametrize("column", ["open", "high", "low", "close"])
@pytest.mark.parametrize("bad", [0.0, -3.0, np.nan, np.inf])
def test_prices_must_be_finite_and_positive(tmp_path, column, bad):
    df = bars(10)
    df.loc[6, column] = bad
    file = write(df, tmp_path / "p.parquet")
    with pytest.raises(
        DataError, match=rx(file) + rf" \(symbol P\): column '{column}' is missing, not finite or <= 0.* 1 row \(e\.g\. 6\)"
    ):
        load_panel(tmp_path)


@pytest.mark.parametrize("bad", [-1.0, np.nan, np.inf])
def test_volume_must_be_finite_and_non_negative(tmp_path, bad):
    df = bars(10)
    df.loc[[2, 7], "volume"] = bad
    file = write(df, tmp_path / "v.parquet")
    with pytest.raises(DataError, match=rx(file) + r" \(symbol V\): column 'volume' .* < 0.* 2 rows \(e\.g\. 2, 7\)"):
        load_panel(tmp_path)


def test_zero_volume_is_allowed(tmp_path):
    df = bars(5)
    df["volume"] = 0.0
    write(df, tmp_path / "v.parquet")
    assert (load_panel(tmp_path).frames["V"]["volume"] == 0.0).all()


def test_non_numeric_price_in_csv(tmp_path):
    df = bars(5).astype({"close": object})
    df.loc[3, "close"] = "n/a?"
    file = write(df, tmp_path / "t.csv")
    with pytest.raises(DataError, match=rx(file) + r" \(symbol T\): column 'close' has non-numeric values in 1 row \(e\.g\. 3\)"):
        load_panel(tmp_path)


def test_high_below_low(tmp_path):
    df = bars(10)
    df.loc[4, "high"] = df.loc[4, "low"] - 0.5
    file = write(df, tmp_path / "h.parquet")
    with pytest.raises(DataError, match=rx(file) + r" \(symbol H\): column 'high' is below column 'low' in 1 row \(e\.g\. 4\)"):
        load_panel(tmp_path)


def test_high_below_open_or_close(tmp_path):
    df = bars(10)
    df.loc[[3, 8], "high"] = df.loc[[3, 8], "close"] - 0.1  # still above low and open
    file = write(df, tmp_path / "h.parquet")
    with pytest.raises(DataError, match=rx(file) + r".*column 'high' is below max\(open, close\) in 2 rows \(e\.g\. 3, 8\)"):
        load_panel(tmp_path)


def test_low_above_open_or_close(tmp_path):
    df = bars(10)
    df.loc[5, "low"] = df.loc[5, "open"] + 0.1  # above open, still below close and high
    file = write(df, tmp_path / "l.parquet")
    with pytest.raises(DataError, match=rx(file) + r".*column 'low' is above min\(open, close\) in 1 row \(e\.g\. 5\)"):
        load_panel(tmp_path)


def test_long_format_error_names_file_symbol_and_file_rows(tmp_path):
    a = bars(5)[["timestamp", "close"]].assign(symbol="AAA")
    b = bars(5)[["timestamp", "close"]].assign(symbol="BBB")
    long = pd.concat([a, b], ignore_index=True)
    long.loc[7, "close"] = -2.0  # the third row of BBB is data row 7 of the file
    file = write(long, tmp_path / "long.csv")
    with pytest.raises(DataError, match=rx(file) + r" \(symbol BBB\): column 'close' .* 1 row \(e\.g\. 7\), e\.g\. -2\.0"):
        load_panel(file)


def test_long_format_duplicates_are_per_symbol(tmp_path):
    a = bars(3)[["timestamp", "close"]].assign(symbol="AAA")
    b = bars(3)[["timestamp", "close"]].assign(symbol="BBB")  # same timestamps, other symbol: fine
    file = write(pd.concat([a, b, a.iloc[[1]]], ignore_index=True), tmp_path / "long.parquet")
    with pytest.raises(DataError, match=rx(file) + r" \(symbol AAA\): duplicate timestamps in 2 rows \(e\.g\. 1, 6\)"):
        load_panel(file)
    write(pd.concat([a, b], ignore_index=True), file)
    assert load_panel(file).symbols == ["AAA", "BBB"]


# ---------------------------------------------------------------- Panel


def make_panel(**lengths) -> Panel:
    frames = {
        s: bars(n).set_index("timestamp")[["open", "high", "low", "close", "volume"]]
        for s, n in lengths.items()
    }
    return Panel(frames=frames, sources={s: f"{s}.parquet" for s in frames},
                 columns=("open", "high", "low", "close", "volume"))


def test_panel_subset():
    panel = make_panel(B=5, A=6, C=7)
    sub = panel.subset(["C", "A"])
    assert sub.symbols == ["A", "C"]
    assert sub.sources == {"A": "A.parquet", "C": "C.parquet"}
    assert sub.columns == panel.columns and sub.bar == panel.bar
    with pytest.raises(UnknownSymbolError, match=r"'X'.*the panel holds A, B, C"):
        panel.subset(["A", "X"])


def test_panel_last_days_rejects_non_positive():
    panel = make_panel(A=48)
    for bad in (0, -1):
        with pytest.raises(ConfigError, match=f"days={bad}"):
            panel.last_days(bad)
    assert len(panel.last_days(1).frames["A"]) == 24


def test_panel_dollar_volume_is_mean_close_times_volume():
    panel = make_panel(A=3)
    # close 100, 100.5, 101; volume 10, 11, 12
    expected = (100 * 10 + 100.5 * 11 + 101 * 12) / 3
    assert panel.dollar_volume()["A"] == pytest.approx(expected)


def test_bars_per_year_rule():
    hourly = make_panel(A=24 * 14)
    assert hourly.bars_per_year() == 8760.0
    weekdays = pd.bdate_range("2024-01-01", periods=60, tz=UTC, name="timestamp")
    daily = Panel({"A": pd.DataFrame({"close": 1.0}, index=weekdays)}, {"A": "a"}, ("close",),
                  bar=pd.Timedelta(days=1))
    assert daily.bars_per_year() == 252.0
    every_day = pd.date_range("2024-01-01", periods=60, freq="D", tz=UTC, name="timestamp")
    crypto_daily = Panel({"A": pd.DataFrame({"close": 1.0}, index=every_day)}, {"A": "a"}, ("close",),
                         bar=pd.Timedelta(days=1))
    assert crypto_daily.bars_per_year() == 365.0


def test_infer_bar_is_median_over_all_assets():
    idx = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00",
                            "2024-01-01 05:00"], tz=UTC)  # diffs 1h, 1h, 3h
    other = pd.date_range("2024-01-01", periods=3, freq="2h", tz=UTC)  # diffs 2h, 2h
    frames = {"A": pd.DataFrame({"close": 1.0}, index=idx),
              "B": pd.DataFrame({"close": 1.0}, index=other)}
    assert infer_bar(frames) == pd.Timedelta(hours=2)  # median of 1, 1, 2, 2, 3
    with pytest.raises(DataError, match="fewer than 2 bars"):
        infer_bar({"A": pd.DataFrame({"close": 1.0}, index=idx[:1])})


# ---------------------------------------------------------------- real data

# Real data: the `shared_data` / `crypto_dir` fixtures of conftest.py skip when it is absent.


def test_real_crypto_hourly(crypto_dir):
    panel = load_panel(crypto_dir)
    assert panel.symbols == sorted(["BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT",
                                    "DOGEUSDT", "AVAXUSDT", "LINKUSDT", "LTCUSDT"])
    assert panel.columns == ("open", "high", "low", "close", "volume")
    assert panel.bar == pd.Timedelta(hours=1)
    assert panel.bars_per_year() == 8760.0
    assert len(panel.frames["BTCUSDT"]) == 31973
    assert len(panel.frames["AVAXUSDT"]) == 31269
    btc_end = panel.frames["BTCUSDT"].index[-1]
    avax_end = panel.frames["AVAXUSDT"].index[-1]
    assert btc_end == pd.Timestamp("2024-06-16 12:00", tz=UTC)
    assert avax_end == pd.Timestamp("2024-04-18 03:00", tz=UTC)
    assert panel.dollar_volume().idxmax() == "BTCUSDT"

    recent = panel.last_days(180)  # one calendar window: AVAXUSDT keeps only its bars inside it
    assert len(recent.frames["BTCUSDT"]) == 180 * 24
    assert recent.frames["AVAXUSDT"].index[0] == recent.frames["BTCUSDT"].index[0]
    assert recent.frames["AVAXUSDT"].index[-1] == avax_end
    assert len(recent.frames["AVAXUSDT"]) == 180 * 24 - int((btc_end - avax_end) / pd.Timedelta(hours=1))


def test_real_crypto_loads_fast(crypto_dir):
    load_panel(crypto_dir)  # warm the file cache and imports
    t0 = time.perf_counter()
    load_panel(crypto_dir)  # 10 files x ~32k hourly bars
    assert time.perf_counter() - t0 < 2.0


def test_real_equities_close_only_long_format(shared_data):
    file = shared_data / "equities_1d" / "sp500_20.parquet"
    if not file.is_file():
        pytest.skip(f"{file} not found")
    panel = load_panel(file)
    assert len(panel.symbols) == 20
    assert {"AAPL", "MSFT", "XOM"} <= set(panel.symbols)
    assert panel.columns == ("close",)
    assert panel.missing_columns() == ("open", "high", "low", "volume")
    assert {len(f) for f in panel.frames.values()} == {8313}
    assert panel.bar == pd.Timedelta(days=1)
    assert panel.bars_per_year() == 252.0
    assert panel.dollar_volume() is None
