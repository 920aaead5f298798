"""`fleet train --out s3://...` against a local S3-compatible server (moto in server mode on 127.0.0.1).

Every check reads the objects back through pyarrow and compares their contents with the same run
written to a local directory: tables, predictions, the file layout, the manifest's unit rows.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from fleet.cli import main
from fleet.config import FleetConfig
from fleet.errors import ConfigError, RunDirectoryError, UnitsFailedError
from fleet.training.driver import resume_fleet, run_fleet
from fleet.store import (RunDirectory, display_location, is_uri, join_location, location_name,
                         require_local)
from fleet.training.unit import train_unit

from conftest import free_port, start_ray

moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the dev extra")
boto3 = pytest.importorskip("boto3")
pafs = pytest.importorskip("pyarrow.fs")

BUCKET = "fleet-runs"
SYNTHETIC = "synthetic:\n  n_clusters: 2\n  assets_per_cluster: 2\nmodel:\n  trend:\n    max_iter: 40\n"
ARGS = ["--days", "90", "--folds", "2", "--seed", "5", "--strategy", "islands"]
BASE = dict(data={"days": 90}, synthetic={"n_clusters": 2, "assets_per_cluster": 2},
            validation={"folds": 2}, seed=5, model={"trend": {"max_iter": 40}}, strategy="islands")
FAILING = "fold1/C1S0"
DELETED = "fold0/C0S1"
TABLES = ("results_per_asset.csv", "results_per_cluster.csv", "results_per_fold.csv", "expert_auc.csv",
          "expert_weights.csv")


def fail_one(unit, frames):
    """train_unit, except for FAILING, which raises an application error."""
    if unit.unit_id == FAILING:
        raise ValueError(f"injected failure in {unit.unit_id}")
    return train_unit(unit, frames)


class S3:
    """The moto server: URIs for it, and reading back what was written."""

    def __init__(self, port: int):
        self.port = port
        self.query = f"?endpoint_override=127.0.0.1:{port}&scheme=http"
        self.fs, _ = pafs.FileSystem.from_uri(f"s3://{BUCKET}/x{self.query}")
        self.client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")

    def uri(self, prefix: str, bucket: str = BUCKET, userinfo: str = "") -> str:
        return f"s3://{userinfo}{bucket}/{prefix}{self.query}"

    def files(self, prefix: str) -> dict[str, int]:
        """relative path -> size of every object under ``prefix``."""
        root = f"{BUCKET}/{prefix}"
        infos = self.fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
        return {i.path[len(root) + 1:]: i.size for i in infos if i.type == pafs.FileType.File}

    def read(self, prefix: str, rel: str) -> bytes:
        with self.fs.open_input_stream(f"{BUCKET}/{prefix}/{rel}") as fh:
            return fh.read()

    def csv(self, prefix: str, rel: str) -> pd.DataFrame:
        with self.fs.open_input_stream(f"{BUCKET}/{prefix}/{rel}") as fh:
            return pd.read_csv(fh)

    def parquet(self, prefix: str, rel: str) -> pd.DataFrame:
        return pq.read_table(f"{BUCKET}/{prefix}/{rel}", filesystem=self.fs).to_pandas()

    def json(self, prefix: str, rel: str):
        return json.loads(self.read(prefix, rel))

    def delete(self, prefix: str, rel: str) -> None:
        self.fs.delete_file(f"{BUCKET}/{prefix}/{rel}")


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 with one bucket; fake credentials in the environment (set before any
    Ray starts in this module, so local Ray workers inherit them)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with pytest.MonkeyPatch.context() as mp:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
            mp.delenv(name, raising=False)
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            store = S3(server.get_host_and_port()[1])
            store.client.create_bucket(Bucket=BUCKET)
            yield store
        finally:
            server.stop()


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "small.yaml"
    path.write_text(SYNTHETIC)
    return str(path)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, spec):
    """The reference: the same run written to a local directory."""
    out = tmp_path_factory.mktemp("local") / "run"
    result = CliRunner().invoke(main, ["train", "--config", spec, *ARGS, "--backend", "local", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _local_files(root) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def _same_as_local(s3: S3, prefix: str, local) -> None:
    """Tables, predictions and the list of files written at ``prefix`` equal the local run's."""
    files = s3.files(prefix)
    assert sorted(files) == sorted(_local_files(local))
    for name in TABLES:
        pd.testing.assert_frame_equal(s3.csv(prefix, name), pd.read_csv(local / name))
    preds = sorted(f for f in files if f.startswith("predictions/"))
    assert len(preds) == 4
    for rel in preds:
        pd.testing.assert_frame_equal(s3.parquet(prefix, rel), pd.read_parquet(local / rel))
    pd.testing.assert_frame_equal(s3.parquet(prefix, "market_factor.parquet"),
                                  pd.read_parquet(local / "market_factor.parquet"))
    assert s3.json(prefix, "models/index.json") == json.loads((local / "models/index.json").read_text())
    registry, reference = s3.json(prefix, "asset_registry.json"), json.loads((local / "asset_registry.json").read_text())
    for d in (registry, reference):  # creation times differ between the two runs
        d["metadata"].pop("created")
        for h in d.get("history", []):
            h.pop("created")
    assert registry == reference


# --- locations ---------------------------------------------------------------------------------------------

def test_locations_keep_query_out_of_names_and_credentials_out_of_records():
    uri = "s3://KEY:SECRET@bkt/runs/r1?endpoint_override=127.0.0.1:9000&scheme=http"
    assert is_uri(uri) and is_uri("gs://b/p") and not is_uri("runs/r1") and not is_uri("file:///tmp/r1")
    assert display_location(uri) == "s3://bkt/runs/r1?endpoint_override=127.0.0.1:9000&scheme=http"
    assert location_name(uri) == "r1" and location_name("runs/r1/") == "r1"
    assert join_location(uri, "seed0") == "s3://KEY:SECRET@bkt/runs/r1/seed0?endpoint_override=127.0.0.1:9000&scheme=http"
    assert join_location("runs/r1", "seed0") == os.path.join("runs", "r1", "seed0")
    with pytest.raises(RunDirectoryError, match=r"download it first, e.g. `aws s3 sync s3://bkt/runs/r1 ./run`"):
        require_local(uri, "fleet serve")
    require_local("runs/r1", "fleet serve")


# --- the run on S3 equals the run written locally -------------------------------------------------------

@pytest.fixture(scope="module")
def s3_run(s3, spec, local_run):
    """`fleet train --backend local --out s3://KEY:SECRET@...` (credentials in the URI, to check they are
    recorded nowhere); returns the prefix and the CLI output."""
    uri = s3.uri("runs/cli", userinfo="testing:testing@")
    result = CliRunner().invoke(main, ["train", "--config", spec, *ARGS, "--backend", "local", "--out", uri])
    assert result.exit_code == 0, result.output
    return "runs/cli", result.output


def test_cli_run_to_s3_equals_local_run(s3, s3_run, local_run):
    prefix, output = s3_run
    _same_as_local(s3, prefix, local_run)
    assert not any(f.startswith("units/") for f in s3.files(prefix))  # per-unit results only live until the end
    shown = s3.uri(prefix)
    assert f"Run directory: {shown}" in output
    manifest = s3.json(prefix, "manifest.json")
    local = json.loads((local_run / "manifest.json").read_text())
    assert manifest["out"] == shown and manifest["config"]["out"] == shown
    assert [u["unit"] for u in manifest["units"]] == [u["unit"] for u in local["units"]]
    assert all(u["host"] == socket.gethostname() for u in manifest["units"])
    assert manifest["training"]["trained"] == local["training"]["trained"] and not manifest["training"]["loaded"]
    assert s3.json(prefix, "run.json")["out"] == shown
    for rel in s3.files(prefix):  # the URI's credentials are in no object (manifest, run.json, pickled models)
        assert b"testing:testing@" not in s3.read(prefix, rel), rel


def test_completed_run_is_never_overwritten(s3, s3_run, spec):
    prefix, _ = s3_run
    before = {rel: s3.read(prefix, rel) for rel in s3.files(prefix)}
    again = CliRunner().invoke(main, ["train", "--config", spec, *ARGS, "--out", s3.uri(prefix)])
    assert again.exit_code == 2
    assert f"--out {s3.uri(prefix)}: a complete run is already there (it has a manifest.json)" in again.output
    assert "Training" not in again.output
    resume = CliRunner().invoke(main, ["train", "--resume", s3.uri(prefix)])
    assert resume.exit_code == 2 and "that run is complete" in resume.output
    assert {rel: s3.read(prefix, rel) for rel in s3.files(prefix)} == before
    s3.client.put_object(Bucket=BUCKET, Key="runs/other/notes.txt", Body=b"not a run")
    other = CliRunner().invoke(main, ["train", "--config", spec, *ARGS, "--out", s3.uri("runs/other")])
    assert other.exit_code == 2 and "the prefix already holds objects (notes.txt)" in other.output
    assert s3.files("runs/other") == {"notes.txt": 9}


# --- bad input: one line, exit code 2, nothing written --------------------------------------------------

def test_bad_bucket_endpoint_or_scheme_is_one_clear_line_before_training(s3, spec):
    buckets = sorted(b["Name"] for b in s3.client.list_buckets()["Buckets"])
    port = free_port()
    cases = {
        s3.uri("runs/r", bucket="no-such-bucket"): "bucket 'no-such-bucket' does not exist",
        f"s3://{BUCKET}/runs/r?endpoint_override=127.0.0.1:{port}&scheme=http": "cannot reach the object store",
        "ftp://host/runs/r": "unsupported URI scheme ftp://; expected a local path, s3://bucket/prefix",
        f"s3://{BUCKET}/runs/r?no_such_option=1": "pyarrow cannot open this URI",
        f"s3://{BUCKET}{s3.query}": "give a prefix inside the bucket",
    }
    for uri, expected in cases.items():
        result = CliRunner().invoke(main, ["train", "--config", spec, *ARGS, "--out", uri])
        assert result.exit_code == 2, (uri, result.output)
        assert f"error: --out {uri}" in result.output and expected in result.output, result.output
        assert "Traceback" not in result.output and "Training" not in result.output
    assert sorted(b["Name"] for b in s3.client.list_buckets()["Buckets"]) == buckets
    assert s3.files("runs/r") == {}
    report = CliRunner().invoke(main, ["report", s3.uri("runs/cli")])
    assert report.exit_code == 2 and "download it first" in report.output
    with pytest.raises(ConfigError, match="not an interrupted run"):
        RunDirectory.resume(s3.uri("runs/nothing"))


# --- failed unit, deleted result, --resume from S3 -------------------------------------------------------

def _config(out, backend="local") -> FleetConfig:
    return FleetConfig(**BASE, out=out, resources={"backend": backend, "num_cpus": 1})


def _fail_delete_resume(s3: S3, prefix: str, backend: str, local_run, monkeypatch) -> dict:
    """A run whose FAILING unit raises: every other unit's result is in S3, written by the worker that
    trained it (the driver's own save is disabled); DELETED's result object is then removed, and
    `fleet train --resume URI` trains exactly those two. Returns the markers of the first attempt."""

    def driver_save(self, unit_id, result):
        raise AssertionError(f"the driver saved {unit_id}: the worker should have")

    monkeypatch.setattr(RunDirectory, "save_unit", driver_save)
    with pytest.raises(UnitsFailedError) as info:
        run_fleet(_config(s3.uri(prefix), backend), echo=lambda s: None, train_fn=fail_one)
    assert [f.unit_id for f in info.value.failures] == [FAILING]
    assert "manifest.json" not in s3.files(prefix)
    planned = s3.json(prefix, "run.json")["units"]
    assert len(planned) == 8
    markers = {u: s3.json(prefix, f"units/{u}.done.json") for u in planned if u != FAILING}
    assert f"units/{FAILING}.pkl" not in s3.files(prefix)
    for unit, marker in markers.items():
        assert marker["unit"] == unit and marker["bytes"] == s3.files(prefix)[f"units/{unit}.pkl"]
    s3.delete(prefix, f"units/{DELETED}.pkl")
    monkeypatch.undo()

    resumed = CliRunner().invoke(main, ["train", "--resume", s3.uri(prefix)])
    assert resumed.exit_code == 0, resumed.output
    assert "6 of 8 units have a complete, verified result" in resumed.output
    assert "(8 units: 2 trained, 6 loaded from the interrupted run" in resumed.output
    manifest = s3.json(prefix, "manifest.json")
    assert sorted(manifest["training"]["trained"]) == sorted([FAILING, DELETED])
    assert len(manifest["training"]["loaded"]) == 6
    _same_as_local(s3, prefix, local_run)
    return {"markers": markers, "manifest": manifest}


def test_local_backend_resume_from_s3_trains_only_missing_units(s3, local_run, monkeypatch):
    seen = _fail_delete_resume(s3, "runs/resume-local", "local", local_run, monkeypatch)
    assert {m["written_by"]["pid"] for m in seen["markers"].values()} == {os.getpid()}


@pytest.fixture(scope="module")
def ray_s3(s3, ray_session):
    """The session's Ray, restarted after the S3 credentials are in the environment (its workers inherit
    the environment Ray starts with); this module's train_fn stand-ins are pickled by value into the actors."""
    from ray import cloudpickle

    ray = start_ray()
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


@pytest.mark.slow
def test_ray_actors_write_unit_results_to_s3_and_manifest_names_nodes(s3, local_run, ray_s3, monkeypatch):
    seen = _fail_delete_resume(s3, "runs/resume-ray", "ray", local_run, monkeypatch)
    node = ray_s3.get_runtime_context().get_node_id()
    writers = [m["written_by"] for m in seen["markers"].values()]
    assert all(w["pid"] != os.getpid() and w["node_id"] == node for w in writers), writers
    units = seen["manifest"]["units"]
    assert len(units) == 8 and all(u["node_id"] == node and u["pid"] != os.getpid() for u in units)
    assert seen["manifest"]["backend"].startswith("ray (1 node(s)")


def test_endpoint_from_aws_endpoint_url(s3, monkeypatch):
    """pyarrow 26 honours AWS_ENDPOINT_URL: a URI without a query reaches the same server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{s3.port}")
    run = RunDirectory(f"s3://{BUCKET}/runs/env")
    run.open({"units": []})
    assert s3.json("runs/env", "run.json")["out"] == f"s3://{BUCKET}/runs/env"
    run.abort()
    assert s3.files("runs/env") == {}
