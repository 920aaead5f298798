"""The KubeRay manifests in k8s/ validate against the KubeRay CRDs, strictly, and agree with fleet.

Schemas: the CRDs' ``openAPIV3Schema`` (version v1) from ``FLEET_K8S_SCHEMAS`` or
``<repo>/../shared/k8s-schemas`` (skipped with a reason when neither exists). The API server
prunes or rejects fields a CRD does not declare; these CRDs do not say
``additionalProperties: false``, so :func:`strict` adds it to every object that lists its
properties, and a misspelt field fails here instead of vanishing on the cluster.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import pytest
import yaml

jsonschema = pytest.importorskip("jsonschema")

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "k8s"
MANIFESTS = sorted(K8S.glob("*.yaml"))
KINDS = {"RayCluster": "ray.io_rayclusters.yaml", "RayJob": "ray.io_rayjobs.yaml",
         "RayService": "ray.io_rayservices.yaml"}
SERVE_BUILD_ARGS = ["--replicas", "2"]  # as in the comment of k8s/rayservice.yaml
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# What the API server accepts in an object's own metadata (a subset of ObjectMeta; the CRDs say only "object").
OBJECT_META = {"type": "object", "additionalProperties": False, "required": ["name"], "properties": {
    "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
    "namespace": {"type": "string"},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
}}


def schemas_dir() -> Path | None:
    for candidate in (os.environ.get("FLEET_K8S_SCHEMAS"), REPO.parent / "shared" / "k8s-schemas"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def strict(schema):
    """A copy of an OpenAPI v3 schema in which every object with declared properties allows no others.

    Objects that declare ``additionalProperties`` (maps such as labels or resource limits) or
    ``x-kubernetes-preserve-unknown-fields`` keep their rule.
    """
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if ("properties" in schema and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


@pytest.fixture(scope="module")
def validators():
    root = schemas_dir()
    if root is None:
        pytest.skip("KubeRay CRD schemas not found: set FLEET_K8S_SCHEMAS or place them at ../shared/k8s-schemas")
    out = {}
    for kind, name in KINDS.items():
        crd = yaml.load((root / name).read_text(), Loader=Loader)
        assert crd["spec"]["names"]["kind"] == kind
        version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
        schema = strict(version["schema"]["openAPIV3Schema"])
        schema["properties"]["metadata"] = OBJECT_META
        schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
        schema["properties"]["apiVersion"] = {"const": f"{crd['spec']['group']}/v1"}
        schema["properties"]["kind"] = {"const": kind}
        out[kind] = jsonschema.Draft7Validator(schema)
    return out


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _errors(validators, doc: dict) -> list[str]:
    validator = validators.get(doc.get("kind"))
    if validator is None:
        return [f"kind={doc.get('kind')!r}: expected one of {sorted(validators)}"]
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(doc)]


def cluster_spec(doc: dict) -> dict:
    spec = doc["spec"]
    return {"RayCluster": lambda: spec, "RayJob": lambda: spec["rayClusterSpec"],
            "RayService": lambda: spec["rayClusterConfig"]}[doc["kind"]]()


def test_the_three_manifests_are_there():
    assert {p.name for p in MANIFESTS} == {"raycluster.yaml", "rayjob-train.yaml", "rayservice.yaml"}
    assert [_load(K8S / n)["kind"] for n in ("raycluster.yaml", "rayjob-train.yaml", "rayservice.yaml")] == \
        ["RayCluster", "RayJob", "RayService"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_against_crd(validators, path):
    assert _errors(validators, _load(path)) == []


def _typo_in_container(doc):
    container = cluster_spec(doc)["headGroupSpec"]["template"]["spec"]["containers"][0]
    container["resource"] = container.pop("resources")


def _unknown_spec_field(doc):
    doc["spec"]["shutdownAfterJobFinish"] = True  # RayJob's field is shutdownAfterJobFinishes


def _wrong_type(doc):
    cluster_spec(doc)["workerGroupSpecs"][0]["replicas"] = "two"


def _non_string_ray_start_param(doc):
    cluster_spec(doc)["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0  # must be the string "0"


def _bad_quantity(doc):
    cluster_spec(doc)["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "4 cores"


BREAKAGES = {  # name: (break the manifest in place, what the error names)
    "typo in a container field": (_typo_in_container, "'resource' was unexpected"),
    "unknown spec field": (_unknown_spec_field, "'shutdownAfterJobFinish' was unexpected"),
    "replicas not an integer": (_wrong_type, "'two' is not of type 'integer'"),
    "rayStartParams value not a string": (_non_string_ray_start_param, "0 is not of type 'string'"),
    "malformed resource quantity": (_bad_quantity, "'4 cores' does not match"),
}


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
@pytest.mark.parametrize("breakage", BREAKAGES, ids=str)
def test_broken_copy_fails_validation(validators, path, breakage, tmp_path):
    breaks, message = BREAKAGES[breakage]
    doc = _load(path)
    breaks(doc)
    broken = tmp_path / path.name
    broken.write_text(yaml.safe_dump(doc))
    errors = _errors(validators, _load(broken))
    assert any(message in e for e in errors), errors


def test_strict_keeps_maps_open_and_closes_objects():
    schema = {"type": "object", "properties": {
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {"a": {}}},
        "items": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}}}}
    v = jsonschema.Draft7Validator(strict(schema))
    assert v.is_valid({"labels": {"any": "thing"}, "free": {"b": 1}, "items": [{"x": 1}]})
    assert not v.is_valid({"labels": {}, "extra": 1})
    assert not v.is_valid({"items": [{"x": 1, "y": 2}]})


# --- the manifests agree with fleet and with each other -------------------------------------------------------


def test_rayjob_and_raycluster_describe_the_same_cluster():
    assert _load(K8S / "rayjob-train.yaml")["spec"]["rayClusterSpec"] == _load(K8S / "raycluster.yaml")["spec"]


def test_rayjob_runs_fleet_train_on_ray_and_cleans_up():
    spec = _load(K8S / "rayjob-train.yaml")["spec"]
    entry = spec["entrypoint"].split()
    assert entry[:2] == ["fleet", "train"]
    assert entry[entry.index("--backend") + 1] == "ray"
    spec_path = entry[entry.index("--config") + 1]
    assert spec_path.startswith("/home/ray/fleet/") and (REPO / "fleet" / Path(spec_path).name).is_file()
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] > 0
    # Every option of the entrypoint is one `fleet train` knows.
    from click.testing import CliRunner

    from fleet.cli import main

    help_text = CliRunner().invoke(main, ["train", "--help"]).output
    assert all(opt in help_text for opt in entry if opt.startswith("--"))


def _cpu(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if str(quantity).endswith("m") else float(quantity)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_worker_pods_fit_what_units_ask_for(path):
    """Each worker pod offers a whole number of unit slots; GPU pods limit nvidia.com/gpu."""
    from fleet.config import ResourcesConfig

    doc = _load(path)
    per_unit = ResourcesConfig().num_cpus
    if doc["kind"] == "RayJob":
        entry = doc["spec"]["entrypoint"].split()
        per_unit = float(entry[entry.index("--num-cpus") + 1])
    spec = cluster_spec(doc)
    assert spec["headGroupSpec"]["rayStartParams"].get("num-cpus") == "0"  # the head runs drivers, not units
    for group in spec["workerGroupSpecs"]:
        container = group["template"]["spec"]["containers"][0]
        limits = container["resources"]["limits"]
        assert container["resources"]["requests"] == limits, group["groupName"]
        slots = _cpu(limits["cpu"]) / per_unit
        assert slots >= 1 and slots == int(slots), (group["groupName"], limits["cpu"], per_unit)
        gpus = int(limits.get("nvidia.com/gpu", 0))
        assert (gpus > 0) == ("gpu" in group["groupName"]) == container["image"].endswith("-gpu"), group["groupName"]
    if doc["kind"] != "RayService":
        assert any(int(g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu", 0)) >= 1
                   for g in spec["workerGroupSpecs"])


def test_images_and_ray_version_match_the_dockerfile():
    import ray

    dockerfile = (K8S / "Dockerfile").read_text()
    base = re.search(r"^ARG RAY_IMAGE=(\S+)$", dockerfile, re.M).group(1)
    assert base.startswith("rayproject/ray:")  # an official Ray image
    assert base.split(":")[1].split("-")[0] == ray.__version__
    assert f"rayproject/ray:{ray.__version__}-py311-gpu" in dockerfile
    for path in MANIFESTS:
        spec = cluster_spec(_load(path))
        assert spec["rayVersion"] == ray.__version__, path.name
        groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
        images = {c["image"] for g in groups for c in g["template"]["spec"]["containers"]}
        assert images <= {"fleet:0.1.0", "fleet:0.1.0-gpu"}, (path.name, images)
        assert f"-t {sorted(images)[0]} " in dockerfile


def test_rayservice_serve_config_is_what_fleet_serve_build_writes(served_runs, tmp_path):
    """Regenerate serveConfigV2 with `fleet serve build` on a small run; the checked-in run_dir is
    the placeholder for the run's path, substituted back before comparing the text."""
    from click.testing import CliRunner

    from fleet.cli import main

    checked_in = _load(K8S / "rayservice.yaml")["spec"]["serveConfigV2"]
    placeholder = yaml.safe_load(checked_in)["applications"][0]["args"]["run_dir"]
    assert placeholder == "/data/runs/crypto10"
    assert placeholder in _load(K8S / "rayjob-train.yaml")["spec"]["entrypoint"]  # the run the RayJob trains

    run_dir, _ = served_runs["hierarchical"]
    out = tmp_path / "serve.yaml"
    result = CliRunner().invoke(main, ["serve", "build", str(run_dir), "-o", str(out), *SERVE_BUILD_ARGS])
    assert result.exit_code == 0, result.output
    built = out.read_text()
    resolved = str(Path(run_dir).resolve())
    assert built.count(resolved) == 1
    assert built.replace(resolved, placeholder) == checked_in
