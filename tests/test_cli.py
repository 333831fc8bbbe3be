"""The statsapi command line, run as a user would: a separate process with DATABASE_URL set."""

import os
import subprocess
import sys

from sqlalchemy import func, select

from app.db import build_engine
from app.keys import Scope, create_key
from app.models import observation_table, revision_table
from tests.conftest import ClientFactory, DatabaseFactory
from tests.factories import REVIEW_CLAUSE

# The source, quote and derived cells of a SYNTHETIC row on the seeded database.
SYNTHETIC_REVIEW_CELLS = f"cz-tyjrswj-2023-review,{REVIEW_CLAUSE},true"


def _statsapi(*args: str, database_url: str, cwd=None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_migrate_then_seed_loads_every_observation_once(databases: DatabaseFactory) -> None:
    url = databases.blank()

    migrated = _statsapi("migrate", database_url=url)
    seeded = _statsapi("seed", database_url=url)
    reseeded = _statsapi("seed", database_url=url)

    assert migrated.returncode == 0, migrated.stderr
    assert seeded.returncode == 0, seeded.stderr
    assert reseeded.returncode == 0, reseeded.stderr
    assert "0 created, 0 changed" in reseeded.stdout.splitlines()[-1]
    engine = build_engine(url)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(observation_table)).scalar()
    engine.dispose()
    created = seeded.stdout.splitlines()[-1]
    assert created.startswith("changzhou-2023-review.yaml: observations:")
    assert f"{count} created" in created


def test_default_database_is_a_sqlite_file_under_data(tmp_path) -> None:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "STATSAPI_DATABASE_URL")
    }
    result = subprocess.run(
        [sys.executable, "-m", "app", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "statsapi.sqlite3").is_file()


def test_seed_with_a_bad_bundle_exits_non_zero_naming_the_field(
    databases: DatabaseFactory, tmp_path
) -> None:
    url = databases.fresh("empty")
    (tmp_path / "bad.yaml").write_text(
        "units:\n  - {code: person, name_zh: 人}\n", encoding="utf-8"
    )
    result = _statsapi("seed", "--directory", str(tmp_path), database_url=url)
    assert result.returncode == 1
    assert "bad.yaml: units[0] (code=person): name_en: Field required" in result.stderr


def test_serve_with_workers_makes_its_metrics_folder_only_when_none_is_given(
    monkeypatch, tmp_path, databases: DatabaseFactory
) -> None:
    import tempfile

    from typer.testing import CliRunner

    from app import cli
    from app.config import get_settings

    monkeypatch.setattr(get_settings(), "database_url", databases.fresh("empty"))  # serve's check

    seen: list[str | None] = []
    monkeypatch.setattr(
        cli.uvicorn, "run", lambda *a, **k: seen.append(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    )
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    runner = CliRunner()

    made = runner.invoke(cli.cli, ["serve", "--workers", "2"])
    given = tmp_path / "given"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))
    kept = runner.invoke(cli.cli, ["serve", "--workers", "2"])

    assert made.exit_code == 0 and kept.exit_code == 0, (made.output, kept.output)
    assert seen[0] is not None and seen[0].startswith(str(tmp_path))  # made for this server
    assert seen[1] == str(given)  # the folder given is used as it is
    assert list(tmp_path.iterdir()) == []  # and the one made was removed when serving ended
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    runner.invoke(cli.cli, ["serve", "--workers", "2"])
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ  # nor left behind in the environment


def test_import_of_a_bundle_naming_a_file_outside_its_folder_is_refused(
    databases: DatabaseFactory, tmp_path
) -> None:
    url = databases.fresh("empty")
    source = (
        "sources:\n  - {code: sneaky, title_zh: x, title_en: x, publisher_zh: x, "
        "publisher_en: x, published_on: 2024-01-01, year_covered: 2023, "
        "text_file: ../../../../../../../../etc/hostname}\n"
    )
    (tmp_path / "bundle.yaml").write_text(source, encoding="utf-8")
    result = _statsapi("import", str(tmp_path / "bundle.yaml"), database_url=url)
    assert result.returncode == 1
    assert "bundle.yaml: sources[0] (code=sneaky): text_file: must name a file inside" in (
        result.stderr
    )


def _recorded_by(database_url: str) -> list[str]:
    engine = build_engine(database_url)
    with engine.connect() as connection:
        names = connection.execute(
            select(revision_table.c.recorded_by)
            .where(revision_table.c.note.like("SYNTHETIC%"))
            .order_by(revision_table.c.id)
        ).scalars()
        found = list(names)
    engine.dispose()
    return found


def test_cli_imports_are_recorded_as_cli_or_the_name_given_never_the_os_user(
    databases: DatabaseFactory, tmp_path
) -> None:
    url = databases.fresh("seeded")
    header = "indicator,region,year,value,qualifier,note,source,quote,derived\r\n"
    row = (
        f"adaptive_training_trainees,320400,1990,{{}},exact,SYNTHETIC,{SYNTHETIC_REVIEW_CELLS}\r\n"
    )
    for value, by in ((1, ()), (2, ("--by", "bureau-desk"))):
        path = tmp_path / f"v{value}.csv"
        path.write_text(header + row.format(value))
        result = _statsapi("import", str(path), *by, database_url=url)
        assert result.returncode == 0, result.stderr
    assert _recorded_by(url) == ["cli", "bureau-desk"]
    refused = _statsapi("import", str(path), "--by", "x" * 101, database_url=url)
    assert refused.returncode == 2 and "1 to 100 characters" in refused.stderr


def _history(database_url: str) -> list[tuple[object, ...]]:
    engine = build_engine(database_url)
    with engine.connect() as connection:
        columns = (revision_table.c.year, revision_table.c.value, revision_table.c.revision)
        rows = connection.execute(
            select(*columns, revision_table.c.action)
            .where(revision_table.c.note.like("SYNTHETIC%"))
            .order_by(*columns)
        )
        found = [tuple(row) for row in rows]
    engine.dispose()
    return found


def test_the_cli_and_the_api_run_the_same_import_alike(
    databases: DatabaseFactory, make_client: ClientFactory, tmp_path
) -> None:
    """`statsapi import` and POST /imports run one service (app/imports.py `run_import`): the
    same file gives the same counts and the same revisions through either."""
    header = "indicator,region,year,value,qualifier,note,source,quote,derived\r\n"
    row = (
        f"adaptive_training_trainees,320400,{{}},{{}},exact,SYNTHETIC,{SYNTHETIC_REVIEW_CELLS}\r\n"
    )
    body = header + row.format(1990, 1) + row.format(1991, 2)
    (tmp_path / "values.csv").write_text(body)
    by_cli, by_api = databases.fresh("seeded"), databases.fresh("seeded")

    printed = [_statsapi("import", str(tmp_path / "values.csv"), database_url=by_cli)]
    printed.append(_statsapi("import", str(tmp_path / "values.csv"), database_url=by_cli))
    engine = build_engine(by_api)
    api = make_client(engine)
    token = create_key(engine, name="partner", scopes={Scope.write})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    answers = [api.post("/api/v1/imports", content=body.encode(), headers=headers)]
    answers.append(api.post("/api/v1/imports", content=body.encode(), headers=headers))
    engine.dispose()

    for result, answer in zip(printed, answers, strict=True):
        assert result.returncode == 0, result.stderr
        assert answer.status_code == 200, answer.text
        counts = answer.json()["summary"]["observations"]
        assert result.stdout.splitlines() == [
            f"values.csv: observations: {counts['created']} created, "
            f"{counts['changed']} changed, {counts['unchanged']} unchanged"
        ]
    assert answers[1].json()["summary"]["observations"]["unchanged"] == 2
    created = [(1990, 1, 1, "create"), (1991, 2, 1, "create")]
    assert _history(by_cli) == _history(by_api) == created
