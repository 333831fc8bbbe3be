"""The README's layout table is the map of the code: it names every module of `app/`, and only
modules that exist (a moved or split module changes the table in the same commit)."""

import re

from app.config import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"


def _layout_table_paths() -> set[str]:
    """Every `app/...py` path named in the table under the README's `## Layout` heading."""
    section = README.read_text(encoding="utf-8").split("\n## Layout\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return {path for row in rows for path in re.findall(r"`(app/[\w/]+\.py)`", row)}


def _modules() -> set[str]:
    return {
        path.relative_to(PROJECT_ROOT).as_posix()
        for path in (PROJECT_ROOT / "app").rglob("*.py")
        if path.name != "__init__.py"
    }


def test_the_readme_layout_table_names_every_module_of_app() -> None:
    missing = sorted(_modules() - _layout_table_paths())
    assert not missing, f"README.md's layout table does not name {missing}"


def test_the_readme_layout_table_names_no_module_that_is_gone() -> None:
    gone = sorted(_layout_table_paths() - _modules())
    assert not gone, f"README.md's layout table names {gone}, which do not exist"
