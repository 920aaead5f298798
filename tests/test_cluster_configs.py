"""Every Ray cluster launcher config in cluster_configs/ passes Ray's own checks, and broken copies fail.

The checks are the ones `ray up` runs before touching any machine: ``prepare_config`` (provider
defaults merged in, on-prem head/worker IPs turned into a node type) then ``validate_config``
(``ray/autoscaler/ray-schema.json`` plus Ray's cross-field rules).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "cluster_configs").glob("*.yaml"))

jsonschema = pytest.importorskip("jsonschema")
util = pytest.importorskip("ray.autoscaler._private.util")


def _ray_up_checks(config: dict) -> dict:
    prepared = util.prepare_config(copy.deepcopy(config))
    util.validate_config(prepared)
    return prepared


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_there_is_an_on_prem_and_a_cloud_config():
    names = {p.name for p in CONFIGS}
    assert {"local.yaml", "aws.yaml"} <= names
    assert _load(REPO / "cluster_configs" / "local.yaml")["provider"]["type"] == "local"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_passes_ray_validation(path):
    config = _load(path)
    prepared = _ray_up_checks(config)
    assert prepared["cluster_name"].startswith("fleet")
    commands = " ".join(config["setup_commands"])
    assert "~/fleet" in commands and config["file_mounts"]["~/fleet"] == "."  # installs fleet from the synced repo


def test_cloud_config_has_cpu_and_gpu_workers():
    config = _load(REPO / "cluster_configs" / "aws.yaml")
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    cpu = [t for n, t in types.items() if n != config["head_node_type"] and t["resources"].get("GPU", 0) == 0]
    gpu = [t for t in types.values() if t["resources"].get("GPU", 0) >= 1]
    assert cpu and gpu
    assert all(t["resources"]["CPU"] >= 1 for t in cpu + gpu)  # a unit asks for >= 1 CPU (--num-cpus)
    assert sum(t.get("min_workers", 0) for t in cpu) >= 1  # fleet train sizes its actor pool at start-up


def _typo_top_level(config: dict) -> None:
    config["setup_comands"] = config.pop("setup_commands")


def _fractional_gpu_resource(config: dict) -> None:
    # Node resources are whole numbers; fractions belong to what a unit asks for (--num-gpus 0.25).
    node_types = config.setdefault("available_node_types", {})
    if node_types:
        name = next(iter(node_types))
        node_types[name]["resources"]["GPU"] = 0.5
    else:  # on-prem: the node type is generated; break the provider instead
        config["provider"]["worker_ips"] = "10.0.0.11,10.0.0.12"


def _too_few_max_workers(config: dict) -> None:
    config["max_workers"] = -1 if config["provider"]["type"] == "local" else 1
    for node_type in config.get("available_node_types", {}).values():
        node_type["min_workers"] = max(node_type.get("min_workers", 0), 2)


BREAKAGES = {  # name: (break the config in place, what Ray's error says)
    "typo in a top-level key": (_typo_top_level, "'setup_comands' was unexpected"),
    "bad type": (_fractional_gpu_resource, "is not of type"),
    "min_workers above max_workers": (_too_few_max_workers, "max_workers|minimum of 0"),
}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
@pytest.mark.parametrize("breakage", BREAKAGES, ids=str)
def test_broken_copy_fails_validation(path, breakage, tmp_path):
    broken = _load(path)
    breaks, message = BREAKAGES[breakage]
    breaks(broken)
    copy_path = tmp_path / path.name
    copy_path.write_text(yaml.safe_dump(broken))
    with pytest.raises((ValueError, jsonschema.ValidationError), match=message):
        _ray_up_checks(_load(copy_path))
