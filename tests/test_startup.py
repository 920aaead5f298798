"""Start-up and layering: `import fleet` / `fleet --help` load neither torch nor Ray, serving never imports
training, and the package's imports form no cycle (read from the source with ast, no import needed)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_import_fleet_and_cli_load_neither_torch_nor_ray():
    heavy = "print([m for m in ('torch', 'ray', 'sklearn', 'pandas') if m in sys.modules])"
    assert _run(f"import fleet, sys; {heavy}") == "[]"
    assert _run(f"import fleet.cli, sys; {heavy}") == "[]"
    assert _run("import fleet.cli, sys; print('torch' in sys.modules, 'ray' in sys.modules)") == "False False"


def test_help_loads_neither_torch_nor_ray():
    code = ("import sys; from click.testing import CliRunner; from fleet.cli import main; "
            "r = CliRunner().invoke(main, ['train', '--help']); assert r.exit_code == 0, r.output; "
            "print('torch' in sys.modules, 'ray' in sys.modules)")
    assert _run(code) == "False False"


def test_torch_loads_before_scikit_learn_where_a_torch_model_is_built():
    # OpenMP load order (fleet/models/_openmp.py): building a mixture with a CNN imports torch before the
    # trend expert's scikit-learn; a GBM-only model never imports torch.
    order = ("import sys; from fleet.config import ModelConfig; from fleet.models.factory import build_model; "
             "build_model(ModelConfig(experts={experts}, moe={{'gate': '{gate}'}}), seed=0); m = list(sys.modules); "
             "print(m.index('torch') < m.index('sklearn') if 'torch' in m else None)")
    assert _run(order.format(experts=["trend", "pattern"], gate="best")) == "True"
    assert _run(order.format(experts=["trend", "stress"], gate="mlp")) == "True"
    assert _run(order.format(experts=["trend", "stress"], gate="best")) == "None"


def _imports() -> dict[str, set[str]]:
    """fleet module -> fleet modules it imports (anywhere in the file, function bodies included)."""
    graph: dict[str, set[str]] = {}
    for path in (SRC / "fleet").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        package = name if parts[-1] == "__init__" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
        graph[name] = {m for m in found if m.startswith("fleet")}
    return {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}


def test_serving_imports_nothing_from_training():
    graph = _imports()
    bad = {m: sorted(d for d in deps if d.startswith("fleet.training"))
           for m, deps in graph.items() if m.startswith("fleet.serving")}
    assert not {m: d for m, d in bad.items() if d}


def test_no_import_cycles_between_modules():
    graph = _imports()
    seen, stack, cycles = set(), [], []

    def visit(m, path):
        if m in path:
            cycles.append(path[path.index(m):] + [m])
            return
        if m in seen:
            return
        path.append(m)
        for d in sorted(graph[m]):
            # Importing an enclosing package (its __init__) is not a cycle, except the root package: fleet/__init__
            # imports the API, so a module that imports `fleet` closes a loop through it.
            if d == "fleet" or not m.startswith(d + "."):
                visit(d, path)
        path.pop()
        seen.add(m)

    for m in sorted(graph):
        visit(m, stack)
    assert not cycles, cycles[:3]


#: The layers, lowest first: a module may import modules of its own layer or of a lower one. ``fleet.models.specs``
#: is the expert and gate table (names, config sections, resource kinds; no heavy imports), which the config reads
#: to validate names, so it sits below the config while the rest of ``models`` sits above it; with it the OpenMP
#: load-order helper it calls before building a torch expert. ``fleet.ray_logs`` only configures the standard
#: library's logging, for both Ray users.
LAYERS: list[tuple[str, ...]] = [
    ("fleet._version", "fleet.errors", "fleet.ray_logs"),
    ("fleet.data",),
    ("fleet.store",),
    ("fleet.features",),
    ("fleet.models.specs", "fleet.models._openmp"),
    ("fleet.settings",),
    ("fleet.config", "fleet.config_experts", "fleet.config_policy"),
    ("fleet.market",),
    ("fleet.models",),
    ("fleet.evaluation",),
    ("fleet.training", "fleet.serving"),
    ("fleet.api",),
    ("fleet.cli", "fleet.cli_options", "fleet.cli_output", "fleet.cli_docs"),
    ("fleet",),
]

#: The only modules that may import torch: the CNN experts, their network, the MLP gate, and the OpenMP load-order
#: helper that imports torch first where those are trained.
TORCH_MODULES = {"fleet.models.pattern", "fleet.models.tcn", "fleet.models.gate_mlp", "fleet.models._openmp"}


def _layer(module: str) -> int:
    """Index in LAYERS of the longest prefix that names ``module`` (a package covers its submodules)."""
    best, depth = None, -1
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and name.count(".") > depth:
                best, depth = i, name.count(".")
    assert best is not None, f"{module} is in no layer of LAYERS: place it"
    return best


def test_every_module_imports_only_its_layer_or_lower_ones():
    graph = _imports()
    bad = [(m, d) for m, deps in graph.items() for d in deps
           if _layer(d) > _layer(m) and not m.startswith(d + ".")
           and not (m.startswith("fleet.training") and d.startswith("fleet.serving"))]
    assert not bad, bad


def test_only_the_cnn_and_the_mlp_gate_import_torch():
    found = set()
    for path in (SRC / "fleet").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            if any(n == "torch" or n.startswith("torch.") for n in names):
                found.add(name)
    assert found - TORCH_MODULES == set(), sorted(found - TORCH_MODULES)
    assert found, "no module imports torch: the scan is broken"


def test_the_layering_check_can_fail():
    # A lower layer importing a higher one is caught; so is a module in no layer.
    assert _layer("fleet.data.load") < _layer("fleet.training.driver")
    assert _layer("fleet.models.specs") < _layer("fleet.config") < _layer("fleet.models.moe")
    with pytest.raises(AssertionError, match="in no layer"):
        _layer("other.package")


def test_a_ray_actor_worker_can_load_torch_before_scikit_learn():
    # A Ray actor's worker imports the actor's module first and loads torch in the actor's __init__ when its
    # units train a CNN or the MLP gate: nothing before that may import scikit-learn.
    assert _run("import sys, fleet.training.backends.ray_backend; print('sklearn' in sys.modules)") == "False"
    assert _run("import sys, fleet.serving.predictor; print('sklearn' in sys.modules)") == "False"
