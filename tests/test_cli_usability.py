"""The command line as a newcomer meets it: the README's commands work as written, and a
command pointed at a database that is missing or not migrated says so in one line, exits
non-zero and creates nothing (issue 15)."""

import os
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import inspect
from typer.testing import CliRunner

from app import cli as cli_module
from app.cli import cli
from app.config import PROJECT_ROOT, Settings, get_settings
from app.db import build_engine
from tests.conftest import DatabaseFactory
from tests.test_cli import _statsapi

README = PROJECT_ROOT / "README.md"
COMMAND = ".venv/bin/statsapi"  # where `make serve` puts it (README, Quick start)
DEFAULT_DATABASE_URL = Settings.model_fields["database_url"].default
SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def _readme_command_lines() -> list[str]:
    """Every line of the README's shell blocks that runs statsapi, without its comment."""
    lines = []
    for block in SH_BLOCK.findall(README.read_text(encoding="utf-8")):
        # A command continued with a backslash is one line, as the shell reads it.
        for line in re.sub(r"\\\n\s*", "", block).splitlines():
            command = line.split(" #", 1)[0].strip()
            if re.search(r"\bstatsapi\b", command) and not command.startswith("docker"):
                lines.append(command)
    return lines


def _is_group(command: Any) -> bool:
    return hasattr(command, "commands")  # Typer's own click: no click.Group to test against


def _command_path(words: list[str]) -> tuple[Any, list[str]]:
    """The command the words name (descending through groups), and the words left."""
    command = typer.main.get_command(cli)
    while words and _is_group(command) and words[0] in command.commands:
        command, words = command.commands[words[0]], words[1:]
    return command, words


def test_the_readme_has_statsapi_commands_to_check() -> None:
    assert len(_readme_command_lines()) >= 10


@pytest.mark.parametrize("line", _readme_command_lines())
def test_every_readme_command_runs_as_written_from_the_project_folder(line: str) -> None:
    """`statsapi` alone is "command not found" after `make serve`: every line names the command
    where `make serve` installed it, and names a command (not a group) that exists."""
    assert line.startswith(f"{COMMAND} "), f"{line!r}: write {COMMAND} (README, Quick start)"
    words = shlex.split(line.split(">", 1)[0])[1:]
    command, rest = _command_path(words)
    assert not _is_group(command) or rest == ["--help"], line
    if not _is_group(command):
        options = {o for param in command.params for o in getattr(param, "opts", [])}
        given = {w.split("=", 1)[0] for w in rest if w.startswith("--")}
        assert given <= options | {"--help"}, f"{line!r}: unknown {sorted(given - options)}"


def test_the_readme_key_commands_run_as_written(databases: DatabaseFactory) -> None:
    """The "Writing" block, pasted line by line into a shell in the project folder."""
    if not (PROJECT_ROOT / COMMAND).exists():
        pytest.skip(f"needs {COMMAND} (make serve or make test installs it)")
    keys_block = [line for line in _readme_command_lines() if " keys " in line][:4]
    assert [shlex.split(line)[2] for line in keys_block] == ["create", "create", "list", "revoke"]
    env = {**os.environ, "DATABASE_URL": databases.fresh("empty")}
    outputs = []
    for line in keys_block:
        result = subprocess.run(
            ["sh", "-c", line],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, (line, result.stderr)
        outputs.append(result.stdout)
    assert re.fullmatch(r"\S{20,}\n", outputs[0])  # the token, alone on its line
    assert "bureau\twrite" in outputs[2] and "admin\tadmin" in outputs[2]
    assert outputs[3] == "revoked bureau\n"


# --- a database that is missing or not migrated ----------------------------------------------

# Every command that uses the database, with arguments that would otherwise work.
COMMANDS = [
    ["seed"],
    ["serve", "--port", "9"],
    ["keys", "create", "--name", "bureau", "--scope", "write"],
    ["keys", "list"],
    ["keys", "revoke", "bureau"],
    ["import", "{bundle}"],
    ["export"],
    ["export", "--format", "csv", "--year", "2023"],
    # It learns from the database's observations; the draft is never written.
    ["extract", "{bundle}", "--year", "2024", "--source-code", "x", "--output", "draft.yaml"],
]
IDS = [" ".join(c) for c in COMMANDS]


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., Any]:
    """`statsapi ARGS` in this process (quicker than a process per command), in `tmp_path`,
    on `database_url` (default: the default setting, relative to `tmp_path`)."""
    monkeypatch.chdir(tmp_path)
    # A serve that failed to refuse would otherwise serve until killed.
    monkeypatch.setattr(cli_module.uvicorn, "run", lambda *_a, **_k: None)
    bundle = str(PROJECT_ROOT / "seed" / "changzhou-2023-review.yaml")

    def run(args: list[str], database_url: str | None = None) -> Any:
        url = database_url if database_url is not None else DEFAULT_DATABASE_URL
        monkeypatch.setattr(get_settings(), "database_url", url)
        return CliRunner().invoke(cli, [a.replace("{bundle}", bundle) for a in args])

    return run


def _assert_refused(result: Any, *expected: str) -> None:
    """Exit 1, nothing on stdout, one line on stderr naming the database and what to do."""
    code = getattr(result, "returncode", getattr(result, "exit_code", None))
    assert code == 1, result.stdout + result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()  # one line, no traceback
    assert line.startswith("statsapi: the database "), line
    assert "run `statsapi migrate` first" in line
    for text in expected:
        assert text in line, line


@pytest.mark.parametrize("args", COMMANDS, ids=IDS)
def test_a_command_in_another_folder_refuses_and_creates_no_sqlite_file(
    args: list[str], tmp_path: Path, invoke: Callable[..., Any]
) -> None:
    """The default database is data/statsapi.sqlite3 under the working folder: from another
    folder, the command says where it looked, and leaves that folder as it was."""
    result = invoke(args)
    expected = str(tmp_path / "data" / "statsapi.sqlite3")
    _assert_refused(result, "does not exist", expected)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", COMMANDS, ids=IDS)
def test_a_command_on_a_database_never_migrated_refuses_and_creates_no_table(
    args: list[str], databases: DatabaseFactory, invoke: Callable[..., Any]
) -> None:
    """An empty database (PostgreSQL: a new database; SQLite: an empty file) gets no tables."""
    url = databases.blank()
    if url.startswith("sqlite"):
        Path(url.removeprefix("sqlite:///")).touch()
    result = invoke(args, url)
    _assert_refused(result, "has no tables")
    engine = build_engine(url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_the_installed_command_refuses_in_one_line_naming_the_file(tmp_path: Path) -> None:
    """The same, as a user runs it: its own process, with DATABASE_URL naming a missing file."""
    target = tmp_path / "nowhere" / "statsapi.sqlite3"
    result = _statsapi("keys", "list", cwd=tmp_path, database_url=f"sqlite:///{target}")
    _assert_refused(result, "does not exist", str(target))
    assert not (tmp_path / "nowhere").exists()


def test_migrate_still_creates_the_database_and_then_commands_work(tmp_path: Path) -> None:
    relative = DEFAULT_DATABASE_URL  # data/statsapi.sqlite3 under the working folder
    migrated = _statsapi("migrate", cwd=tmp_path, database_url=relative)
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "data" / "statsapi.sqlite3").is_file()
    listed = _statsapi("keys", "list", cwd=tmp_path, database_url=relative)
    assert (listed.returncode, listed.stdout, listed.stderr) == (0, "", "")
