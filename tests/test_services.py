"""The services know no HTTP: a change is one function the API and the CLI both call
(app/writes.py, app/imports.py), and the rate limiter raises a domain error that app/errors.py
answers as 429 (issue 12)."""

import ast
import importlib.util
from pathlib import Path

import pytest

WEB_PACKAGES = ("fastapi", "starlette", "uvicorn")
SERVICES = (
    "app.idempotency",
    "app.importer",
    "app.imports",
    "app.keys",
    "app.limiter",
    "app.writes",
)


def _imported_modules(module: str) -> set[str]:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, f"no module {module}"
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", SERVICES)
def test_a_service_imports_no_web_framework(module: str) -> None:
    web = sorted(name for name in _imported_modules(module) if name.startswith(WEB_PACKAGES))
    assert web == [], f"{module} imports {web}"
