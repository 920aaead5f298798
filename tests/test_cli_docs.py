"""docs/cli.md and the README's option table are generated from the settings and kept current."""

from __future__ import annotations

from conftest import REPO
from fleet.cli_docs import README_OPTIONS, main, render_cli_doc, render_readme_block, replace_readme_block
from fleet.config import FleetConfig
from fleet.settings import GROUPS, default_text, settings

REGENERATE = "stale: regenerate with `PYTHONPATH=src python -m fleet.cli_docs --write` (from the repository root)"


def test_docs_cli_md_is_current():
    assert (REPO / "docs" / "cli.md").read_text() == render_cli_doc(), REGENERATE


def test_readme_option_table_is_current():
    readme = (REPO / "README.md").read_text()
    assert replace_readme_block(readme, render_readme_block()) == readme, REGENERATE


def test_cli_md_lists_every_option_with_its_default_in_its_panel():
    doc = render_cli_doc()
    sections = {g: doc.split(f"\n## {g}\n", 1)[1].split("\n## ", 1)[0] for g in GROUPS}
    for item in settings(FleetConfig):
        rows = [line for line in sections[item.group].splitlines() if line.startswith(f"| `{item.flags[0]}`")]
        assert len(rows) == 1, item.name
        cells = rows[0].split(" | ")
        assert cells[1] == f"`{item.name}`" and cells[2] == f"`{item.key}`"
        shown = default_text(item)
        assert (shown or "unset").replace("<", "&lt;").replace("|", "\\|") in cells[4].strip("`"), item.name


def test_readme_table_is_short_and_known():
    known = {s.name for s in settings(FleetConfig)}
    assert len(README_OPTIONS) <= 12 and set(README_OPTIONS) <= known
    block = render_readme_block()
    assert block.count("\n| `--") == len(README_OPTIONS) and "docs/cli.md" in block


def test_write_regenerates_both_files(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(f"intro\n{render_readme_block().splitlines()[0]}\nold rows\n"
                                        "<!-- end of generated options -->\nrest\n")
    assert main(["--write", str(tmp_path)]) == 0
    assert (tmp_path / "docs" / "cli.md").read_text() == render_cli_doc()
    assert (tmp_path / "README.md").read_text() == f"intro\n{render_readme_block()}\nrest\n"
