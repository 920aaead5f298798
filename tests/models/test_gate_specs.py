"""The gate table is the one place that lists gates: the config validator, the CLI, the factory, the guard, the
console line and the report read it, and no other module of src/ lists gate or expert names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fleet.cli import main, train
from fleet.config import ModelConfig, build_config
from fleet.errors import ConfigError
from fleet.evaluation.report import gate_words
from fleet.models import specs
from fleet.models.factory import build_gate, build_model, needs_torch

SRC = Path(__file__).resolve().parents[2] / "src" / "fleet"


def _option(name: str) -> click.Option:
    return next(p for p in train.params if name in p.opts)


def test_the_cli_offers_the_tables_names():
    assert tuple(_option("--gate").type.choices) == specs.GATE_NAMES
    gate_help = " ".join(_option("--gate").help.split())
    assert f"Gate of the mixture: {', '.join(specs.GATE_NAMES)}." in gate_help
    reference = " ".join((SRC.parents[1] / "docs" / "cli.md").read_text().split())  # the long help lives there
    for g in specs.GATES:
        assert f"{g.name}: {g.summary}" in reference
    assert f"Comma-separated experts: {', '.join(specs.EXPERT_NAMES)} " in _option("--experts").help
    assert "[default: 2 for rule, all for mlp]" in " ".join(_option("--top-k").help.split())


@pytest.mark.parametrize(("args", "message"), [
    (["--experts", "trend,momentun"], "unknown expert 'momentun' (did you mean 'momentum'?)"),
    (["--experts", "trend,stress", "--gate", "selct"], "unknown gate 'selct' (did you mean 'select'?)"),
    (["--experts", "trend,stress", "--gate", "qqq"], "unknown gate 'qqq' (expected one of rule, mlp, stack, best, "
                                                     "select)"),
])
def test_the_cli_refuses_an_unknown_name_with_the_closest(args, message, tmp_path):
    res = CliRunner().invoke(main, ["train", *args, "--days", "30", "--folds", "2", "--out", str(tmp_path / "run")])
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert not (tmp_path / "run").exists()


def test_the_validator_accepts_exactly_the_tables_names():
    for name in specs.GATE_NAMES:
        assert build_config({"model": {"moe": {"gate": name}}}).model.moe.gate == name
    for name in specs.EXPERT_NAMES:
        assert build_config({"model": {"experts": [name]}}).model.experts == [name]
    with pytest.raises(ConfigError, match=r"model.moe.gate='Select': unknown gate 'Select' \(did you mean 'select'\?\)$"):
        build_config({"model": {"moe": {"gate": "Select"}}})


def test_the_python_api_refuses_an_unknown_name_before_any_work(tmp_path):
    import fleet

    with pytest.raises(ConfigError, match=r"unknown expert 'momentun' \(did you mean 'momentum'\?\)"):
        fleet.train(experts="trend,momentun", days=30, folds=2, out=str(tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"unknown gate 'rulez' \(did you mean 'rule'\?\)"):
        fleet.train(experts="trend,stress", gate="rulez", days=30, folds=2, out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_the_report_names_the_gate_from_the_table():
    for g in specs.GATES:
        assert gate_words(g.name).startswith(f"{g.name}: {g.summary}")
        assert ("guard leaves it alone" in gate_words(g.name)) is (not g.guarded)
    assert gate_words("retired_gate") == "retired_gate."


# the gates as the factory built them by hand, written out independently of the table
_EXPECTED = {
    "rule": ("RuleGate", {"top_k": 2}),
    "mlp": ("MLPGate", {"top_k": 3, "objective": "oracle", "balance": "entropy", "balance_coef": 0.01,
                        "epochs": 7, "weight_decay": 0.02, "purge_bars": 4, "random_state": 11}),
    "stack": ("StackGate", {"C": 0.3}),
    "best": ("BestExpertGate", {"criterion": "auc", "switch_z": 1.5, "horizon": 4}),
    "select": ("SelectGate", {"rounds": 9, "criterion": "auc", "start": "best", "base_rate": "mix"}),
}


@pytest.mark.parametrize("name", specs.GATE_NAMES)
def test_each_row_builds_its_gate_with_the_moe_fields(name):
    moe = {"gate": name, "gate_objective": "oracle", "balance": "entropy", "balance_coef": 0.01, "gate_epochs": 7,
           "gate_weight_decay": 0.02, "stack_C": 0.3, "criterion": "auc", "switch_z": 1.5, "select_rounds": 9,
           "select_criterion": "auc", "select_start": "best", "select_base_rate": "mix"}
    cfg = ModelConfig(experts=["trend", "stress", "sde"], moe=moe)
    gate = build_gate(cfg, 3, seed=11, horizon=4)
    cls, params = _EXPECTED[name]
    assert type(gate).__name__ == cls
    assert {k: gate.get_params()[k] for k in params} == params
    assert specs.gate_of(gate) is specs.gate_spec(name)


def test_top_k_defaults_and_caps():
    rule, mlp, select = (specs.gate_spec(n) for n in ("rule", "mlp", "select"))
    assert [rule.resolve_top_k(None, n) for n in (1, 2, 5)] == [1, 2, 2]
    assert [mlp.resolve_top_k(None, n) for n in (1, 2, 5)] == [1, 2, 5]
    assert rule.resolve_top_k(4, 3) == 3 and mlp.resolve_top_k(2, 5) == 2
    assert select.resolve_top_k(2, 5) is None
    m = build_model(ModelConfig(experts=["trend", "stress", "sde"], moe={"gate": "rule", "top_k": 5}), seed=0)
    assert m.gate.top_k == 3


def test_torch_and_the_guard_come_from_the_table():
    assert [g.name for g in specs.GATES if g.uses_torch] == ["mlp"]
    assert [g.name for g in specs.GATES if not g.guarded] == ["best", "select"]
    assert needs_torch(ModelConfig(experts=["trend", "stress"], moe={"gate": "mlp"}))
    assert not needs_torch(ModelConfig(experts=["trend", "stress"], moe={"gate": "stack"}))


def test_the_gate_table_loads_no_torch():
    code = ("import sys; from fleet.models import specs; import fleet.config; "
            "spec = specs.gate_spec('mlp'); specs.gates_help(); fleet.config.build_config({'model': {'moe': "
            "{'gate': 'mlp'}}}); print(spec.uses_torch, 'torch' in sys.modules, 'sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "True False False"


def _listed_names(tree: ast.AST, names: set[str]) -> list[tuple[int, list[str]]]:
    """(line, names) of each literal that lists two or more of ``names``: a tuple / list / set, the keys of a dict,
    or a string of alternatives such as "rule|mlp"."""
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = [e.value for e in node.elts if isinstance(e, ast.Constant)]
        elif isinstance(node, ast.Dict):
            items = [k.value for k in node.keys if isinstance(k, ast.Constant)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "|" in node.value:
            items = node.value.strip("^()$").split("|")
        else:
            continue
        found = sorted({i for i in items if isinstance(i, str)} & names)
        if len(found) >= 2:
            hits.append((node.lineno, found))
    return hits


def test_no_other_module_lists_gate_or_expert_names():
    gates, experts = set(specs.GATE_NAMES), set(specs.EXPERT_NAMES)
    hits = {}
    for path in sorted(SRC.rglob("*.py")):
        if path.name == "specs.py":
            continue
        tree = ast.parse(path.read_text())
        for line, found in _listed_names(tree, gates) + _listed_names(tree, experts):
            hits[f"{path.relative_to(SRC)}:{line}"] = found
    assert hits == {}
    # the scan finds a list where there is one
    assert _listed_names(ast.parse('GATES = ("rule", "mlp")\nP = "^(best|select)$"'), gates) == [
        (1, ["mlp", "rule"]), (2, ["best", "select"])]
