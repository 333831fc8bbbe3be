"""The `statsapi` command: migrate, seed, serve, keys, import, export, check."""

import os
import sys
import tempfile
from datetime import date
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from app import extract as extraction, imports, migrate as migrations, provenance
from app.bundle import BundleError
from app.config import get_settings
from app.db import get_engine, read_connection, sqlite_file
from app.exporter import csv_pieces, export_bundle, export_observations, json_pieces
from app.importer import ImportReport
from app.keys import KeyExistsError, Scope, create_key, list_keys, revoke_key
from app.rendering import dump_json
from app.seeding import seed_directory

cli = typer.Typer(help="Changzhou veterans affairs statistics API.", no_args_is_help=True)
keys = typer.Typer(help="API keys for the write path.", no_args_is_help=True)
cli.add_typer(keys, name="keys")


MIGRATE_HINT = "run `statsapi migrate` first (`make serve` migrates and seeds)"


def _refuse(message: str) -> typer.Exit:
    typer.echo(f"statsapi: {message}", err=True)
    return typer.Exit(code=1)


def _database(*, unreachable_ok: bool = False) -> Engine:
    """The configured database, when its schema is this code's; else one line on stderr and
    exit 1, having created nothing. The default SQLite file is relative to the working folder:
    a command run from another folder (or with a mistyped DATABASE_URL) must say so, not leave
    an empty database and a traceback behind. `unreachable_ok`: a database that cannot be
    reached yet may come up later (serve; /readyz says so meanwhile)."""
    url = get_settings().database_url
    shown = make_url(url).render_as_string(hide_password=True)
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise _refuse(f"the database {shown} ({path.resolve()}) does not exist; {MIGRATE_HINT}")
    engine = get_engine(url)
    try:
        problem = migrations.schema_problem(engine)
    except SQLAlchemyError as error:
        if unreachable_ok:
            return engine
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise _refuse(f"cannot reach the database {shown}: {reason}") from None
    if problem:
        raise _refuse(f"the database {shown} {problem}; {MIGRATE_HINT}")
    return engine


def _fail(error: BundleError) -> typer.Exit:
    for item in error.errors:
        typer.echo(f"error: {item}", err=True)
    if error.total > len(error.errors):
        typer.echo(f"error: and {error.total - len(error.errors)} more", err=True)
    return typer.Exit(code=1)


def _print_report(report: ImportReport) -> None:
    for section, counts in report.summary().items():
        typer.echo(
            f"{report.bundle}: {section}: {counts['created']} created, "
            f"{counts['changed']} changed, {counts['unchanged']} unchanged"
        )


@cli.command()
def migrate() -> None:
    """Bring the database schema up to the newest migration."""
    engine = get_engine()
    migrations.upgrade(engine)
    typer.echo(f"schema at {migrations.current_revision(engine)}")


@cli.command()
def seed(
    directory: Annotated[
        Path | None, typer.Option(help="Folder of bundles (default: the project's seed/).")
    ] = None,
) -> None:
    """Load every bundle (*.yaml, *.json) under seed/, in one transaction."""
    folder = directory or get_settings().seed_dir
    try:
        reports = seed_directory(_database(), folder)
    except BundleError as error:
        raise _fail(error) from None
    for report in reports:
        _print_report(report)


# An idle keep-alive connection is closed after this (uvicorn's default, stated here because
# SECURITY.md relies on it): long enough for a client's next request, short enough not to hoard.
KEEP_ALIVE_TIMEOUT_S = 5


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the API with uvicorn (on a migrated database)."""
    _database(unreachable_ok=True)
    settings = get_settings()
    run = partial(
        uvicorn.run,
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        # Client addresses (rate limits, logs) from X-Forwarded-For only when the peer is a
        # trusted proxy; anyone else's header is ignored.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        # Past this many open connections a worker answers 503 rather than grow: uvicorn has
        # no header timeout, so this bounds what slow clients can hold (SECURITY.md).
        limit_concurrency=settings.limit_concurrency,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT_S,
        server_header=False,
        access_log=False,
    )
    if workers == 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        run()
        return
    # Each worker counts its own requests; Prometheus' multiprocess mode sums them in a folder
    # that lives as long as this server (made only when none was given, removed on exit).
    with tempfile.TemporaryDirectory(prefix="statsapi-metrics-") as metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        try:
            run()
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


@keys.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for (shown in revision history).")],
    scope: Annotated[
        list[Scope], typer.Option(help="write: observations; admin: also reference data.")
    ],
) -> None:
    """Make a key and print its token once, alone on its line (only a hash is kept)."""
    try:
        token = create_key(_database(), name=name, scopes=set(scope))
    except KeyExistsError:
        typer.echo(f"error: a key named {name!r} exists already", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(token)


@keys.command("list")
def keys_list() -> None:
    """List keys: name, scopes, created, last used, revoked (never tokens)."""
    for key in list_keys(_database()):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        scopes = ",".join(sorted(key.scopes))
        typer.echo(f"{key.name}\t{scopes}\tcreated {key.created_at:%Y-%m-%d}\tused {used}\t{state}")


@keys.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key: its token stops working at once."""
    if not revoke_key(_database(), name=name):
        typer.echo(f"error: no key named {name!r}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"revoked {name}")


# The revision history is public: it names who changed a value, so the CLI records "cli" (or
# the name given with --by), never the server's OS user (issue 11).
CLI_RECORDED_BY = "cli"
RECORDED_BY_MAX_LENGTH = 100  # observation_revision.recorded_by


def _check_recorded_by(name: str) -> str:
    if not name.strip() or len(name) > RECORDED_BY_MAX_LENGTH:
        raise typer.BadParameter(f"give 1 to {RECORDED_BY_MAX_LENGTH} characters")
    return name


@cli.command("import")
def import_file(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or bundle.")],
    dry_run: Annotated[bool, typer.Option(help="Check and report; write nothing.")] = False,
    by: Annotated[
        str,
        typer.Option(
            help="Name recorded in the public revision history (never the OS user's).",
            callback=_check_recorded_by,
        ),
    ] = CLI_RECORDED_BY,
) -> None:
    """Import a CSV file or a bundle in one transaction: all of it, or nothing.

    The same service as `POST /imports`, as the operator: no row limit and no admin rule."""
    engine = _database()
    try:
        parsed = imports.read_file(path)
        count = len(parsed.loaded.bundle.observations)
        with typer.progressbar(length=count, label="observations", file=sys.stderr) as bar:
            outcome = imports.run_import(
                engine, parsed, key=None, recorded_by=by, dry_run=dry_run, on_progress=bar.update
            )
    except BundleError as error:
        raise _fail(error) from None
    assert outcome.report is not None  # only an Idempotency-Key replays
    _print_report(outcome.report)
    if dry_run:
        typer.echo("dry run: nothing was written")


@cli.command("extract")
def extract_review(
    text_file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The review (UTF-8 or GBK).")
    ],
    year: Annotated[int, typer.Option(help="The year the review covers.")],
    source_code: Annotated[str, typer.Option(help="The new source's code.")],
    output: Annotated[Path, typer.Option(help="The draft bundle to write (YAML).")],
    published_on: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD (default: the text's 发布日期).")
    ] = None,
    title_zh: Annotated[str | None, typer.Option(help="Default: the text's first line.")] = None,
    url: Annotated[str | None, typer.Option(help="Where the review is published.")] = None,
    publisher_zh: Annotated[
        str | None, typer.Option(help="Default: the text's 主办单位 and 来源.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Also write the report (every other figure) as JSON.")
    ] = None,
    learn_from: Annotated[
        Path | None,
        typer.Option(help="Learn from this bundle instead of the database (offline)."),
    ] = None,
) -> None:
    """Draft a bundle from a review's text: the figures it can tie to known indicators.

    Every other figure is listed on stderr (and in --report). Check the draft, then
    `statsapi import --dry-run DRAFT`, then `statsapi import DRAFT`."""
    try:
        options = extraction.Options(
            year=year,
            source_code=source_code,
            published_on=date.fromisoformat(published_on) if published_on else None,
            title_zh=title_zh,
            url=url,
            publisher_zh=publisher_zh,
        )
        if learn_from is None:
            with read_connection(_database()) as connection:
                knowledge = extraction.knowledge_from_database(connection)
        else:
            knowledge = extraction.knowledge_from_file(learn_from)
        text = extraction.decode_text(text_file.read_bytes())
        result = extraction.extract(text, options, knowledge)
    except ValueError as error:  # ExtractError names the option; a bad date, a bad bundle
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from None
    except BundleError as error:
        raise _fail(error) from None
    output.write_text(extraction.dump_draft(result.draft), encoding="utf-8")
    for item in result.report:
        typer.echo(extraction.report_line(item), err=True)
    typer.echo(
        f"{output}: {len(result.draft['observations'])} observations; "
        f"{len(result.report)} other figures in the report",
        err=True,
    )
    if report is not None:
        report.write_bytes(dump_json([item.model_dump() for item in result.report]) + b"\n")


@cli.command("check")
def check() -> None:
    """Check every published value against the provenance rules; exit 1 naming each failure.

    Current values only (the history is kept as it was published)."""
    # A plain connection: the read timeout of API requests would cut a check of a large
    # database short.
    with _database().connect() as connection:
        failures = provenance.check_stored(connection)
    for failure in failures:
        typer.echo(f"{failure}")
    if failures:
        typer.echo(f"{len(failures)} problem(s) found", err=True)
        raise typer.Exit(code=1)
    typer.echo("every published value keeps the provenance rules")


class ExportFormat(StrEnum):
    json = "json"
    csv = "csv"


@cli.command("export")
def export(
    year: Annotated[int | None, typer.Option(help="Only this year's observations.")] = None,
    format: Annotated[ExportFormat, typer.Option(help="json: a full bundle; csv: values.")] = (
        ExportFormat.json
    ),
    output: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
) -> None:
    """Write what `import` reads: a complete bundle (json) or observation rows (csv); the same
    bytes as GET /api/v1/export."""
    with read_connection(_database()) as connection:
        if format == ExportFormat.json:
            data = b"".join(json_pieces(export_bundle(connection, year=year))) + b"\n"
        else:
            data = b"".join(csv_pieces(export_observations(connection, year=year)))
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)


def main() -> None:
    cli()
