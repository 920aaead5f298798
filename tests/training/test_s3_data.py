"""`fleet train --data s3://...` against a local S3-compatible server (moto in server mode, the fixture of
test_s3_out.py): per-symbol objects and one long-format object read through pyarrow's S3 filesystem give the
same panel, and the same run, as the same bars read from a local directory."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.data import load_panel
from fleet.errors import DataError

from test_s3_out import BUCKET, s3  # noqa: F401 -- s3: the moto server fixture

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
ARGS = ["--days", "110", "--folds", "2", "--seed", "3", "--strategy", "islands", "--experts", "trend",
        "--backend", "local"]
SPEC = "model:\n  trend:\n    max_iter: 30\n"
TABLES = ("results_per_asset.csv", "results_per_cluster.csv", "results_per_fold.csv")


@pytest.fixture(scope="module")
def bars_dir(crypto_dir, tmp_path_factory):
    """Three crypto_1h symbols, their last 150 days, as local per-symbol parquet files and one long file."""
    d = tmp_path_factory.mktemp("bars")
    parts = []
    for s in SYMBOLS:
        frame = pq.read_table(crypto_dir / f"{s}.parquet").to_pandas()
        ts = pd.to_datetime(frame["timestamp"], utc=True)
        frame = frame[ts > ts.max() - pd.Timedelta(days=150)].reset_index(drop=True)
        frame.to_parquet(d / f"{s}.parquet", index=False)
        parts.append(frame.assign(symbol=s))
    long = d.parent / "long.parquet"
    pd.concat(parts, ignore_index=True).to_parquet(long, index=False)
    pd.concat(parts, ignore_index=True).to_csv(d.parent / "long.csv", index=False)
    return d


@pytest.fixture(scope="module")
def uploaded(s3, bars_dir):  # noqa: F811
    """The same files on the S3 server: data/crypto3/<SYMBOL>.parquet and data/long.parquet, data/long.csv."""
    for s in SYMBOLS:
        s3.client.upload_file(str(bars_dir / f"{s}.parquet"), BUCKET, f"data/crypto3/{s}.parquet")
    for name in ("long.parquet", "long.csv"):
        s3.client.upload_file(str(bars_dir.parent / name), BUCKET, f"data/{name}")
    return s3


def _same_panel(a, b) -> None:
    assert a.symbols == b.symbols and a.columns == b.columns and a.bar == b.bar
    for s in a.symbols:
        pd.testing.assert_frame_equal(a.frames[s], b.frames[s], check_exact=True)


def test_load_panel_reads_s3_like_local(uploaded, bars_dir):
    s3 = uploaded
    _same_panel(load_panel(s3.uri("data/crypto3"), days=100), load_panel(bars_dir, days=100))
    panel = load_panel(s3.uri("data/long.parquet"))
    _same_panel(panel, load_panel(bars_dir.parent / "long.parquet"))
    _same_panel(load_panel(s3.uri("data/long.csv")), load_panel(bars_dir.parent / "long.csv"))
    assert panel.sources["BTCUSDT"] == s3.uri("data/long.parquet")  # the object's URI, as a local file's path
    with pytest.raises(DataError, match=r"^s3://fleet-runs/data/nothing\?endpoint_override=.*: not found; expected"):
        load_panel(s3.uri("data/nothing"))


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "spec.yaml"
    path.write_text(SPEC)
    return str(path)


def _train(data: str, out, spec: str):
    result = CliRunner().invoke(main, ["train", "--config", spec, "--data", data, *ARGS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.slow
def test_train_on_s3_data_equals_local_data(uploaded, bars_dir, spec, tmp_path):
    s3 = uploaded
    local = _train(str(bars_dir), tmp_path / "local", spec)
    for name, data in (("s3dir", s3.uri("data/crypto3")), ("s3long", s3.uri("data/long.parquet"))):
        run = _train(data, tmp_path / name, spec)
        for table in TABLES:
            pd.testing.assert_frame_equal(pd.read_csv(run / table), pd.read_csv(local / table))
        preds = sorted(p.relative_to(local) for p in (local / "predictions").rglob("*.parquet"))
        assert preds
        for rel in preds:
            pd.testing.assert_frame_equal(pd.read_parquet(run / rel), pd.read_parquet(local / rel))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no bar cache left behind
