"""The developers' guide's size limits on src/: no line over 120 characters, no function over 60 lines, no module
over 450 lines. Each test lists every offender (file:line and its length) so one run shows all there is to fix."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

MAX_LINE = 120  # characters
MAX_FUNCTION = 60  # lines, from ``def`` to the function's last line (decorators not counted)
MAX_MODULE = 450  # lines

# Files exempt from the limits: none. (A file or folder named here, with a reason, is not reported.)
PENDING_LINES_AND_FUNCTIONS: tuple[str, ...] = ()
PENDING_MODULES: tuple[str, ...] = ()


def _pending(rel: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``rel`` (a path under src/, with /) is an allow-listed file or inside an allow-listed folder."""
    return any(rel == a or (a.endswith("/") and rel.startswith(a)) for a in allowed)


def long_lines(text: str, limit: int = MAX_LINE) -> list[tuple[int, int]]:
    """(1-based line number, length in characters) of each line of ``text`` longer than ``limit``."""
    return [(i, len(line)) for i, line in enumerate(text.splitlines(), 1) if len(line) > limit]


def long_functions(text: str, limit: int = MAX_FUNCTION) -> list[tuple[int, str, int]]:
    """(first line, name, lines) of each function or method of ``text`` (nested ones included) longer than
    ``limit`` lines, counted from its ``def`` line to its last line."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            size = node.end_lineno - node.lineno + 1
            if size > limit:
                found.append((node.lineno, node.name, size))
    return sorted(found)


def _sources():
    """(path relative to src/ with /, text) of every module under src/fleet."""
    for path in sorted((SRC / "fleet").rglob("*.py")):
        yield path.relative_to(SRC).as_posix(), path.read_text(encoding="utf-8")


def test_checks_find_what_is_over_the_limit_and_nothing_else():
    body = "\n".join(f"    x{i} = {i}" for i in range(59))
    at_limit = f"def ok():\n{body}\n"  # 60 lines
    over = f"def too_long():\n{body}\n    return x0\n"  # 61 lines
    nested = f"class A:\n    def outer(self):\n        def inner():\n{body.replace('    ', '            ')}\n" \
             "            return 1\n            return 2\n        return inner\n"
    assert long_functions(at_limit) == []
    assert long_functions(over) == [(1, "too_long", 61)]
    assert [name for _, name, _ in long_functions(nested)] == ["outer", "inner"]
    text = "a" * 120 + "\n" + "b" * 121 + "\n" + "é" * 121 + "\n"
    assert long_lines(text) == [(2, 121), (3, 121)]


def test_no_line_over_120_characters():
    offenders = [f"{rel}:{i} ({n} characters)" for rel, text in _sources()
                 if not _pending(rel, PENDING_LINES_AND_FUNCTIONS) for i, n in long_lines(text)]
    assert not offenders, f"lines over {MAX_LINE} characters in src/:\n" + "\n".join(offenders)


def test_no_function_over_60_lines():
    offenders = [f"{rel}:{line} {name} ({n} lines)" for rel, text in _sources()
                 if not _pending(rel, PENDING_LINES_AND_FUNCTIONS) for line, name, n in long_functions(text)]
    assert not offenders, (f"functions over {MAX_FUNCTION} lines in src/ (split them into helpers that each do "
                           "one thing):\n" + "\n".join(offenders))


def test_no_module_over_450_lines():
    offenders = [f"{rel} ({n} lines)" for rel, text in _sources()
                 if not _pending(rel, PENDING_MODULES) and (n := len(text.splitlines())) > MAX_MODULE]
    assert not offenders, f"modules over {MAX_MODULE} lines in src/:\n" + "\n".join(offenders)


def test_pending_entries_name_files_that_exist():
    for entry in PENDING_LINES_AND_FUNCTIONS + PENDING_MODULES:
        assert (SRC / entry).exists(), f"{entry}: allow-listed but not in src/; remove the entry"
