"""The `statsapi` command: migrate, seed, serve, keys, import, export."""

import os
import sys
import tempfile
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from app import imports, migrate as migrations
from app.bundle import BundleError
from app.config import get_settings
from app.db import get_engine, read_connection
from app.exporter import csv_pieces, export_bundle, export_observations, json_pieces
from app.importer import ImportReport
from app.keys import KeyExistsError, Scope, create_key, list_keys, revoke_key
from app.seeding import seed_directory

cli = typer.Typer(help="Changzhou veterans affairs statistics API.", no_args_is_help=True)
keys = typer.Typer(help="API keys for the write path.", no_args_is_help=True)
cli.add_typer(keys, name="keys")


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
        reports = seed_directory(get_engine(), folder)
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
    """Serve the API with uvicorn."""
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
        token = create_key(get_engine(), name=name, scopes=set(scope))
    except KeyExistsError:
        typer.echo(f"error: a key named {name!r} exists already", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(token)


@keys.command("list")
def keys_list() -> None:
    """List keys: name, scopes, created, last used, revoked (never tokens)."""
    for key in list_keys(get_engine()):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
        scopes = ",".join(sorted(key.scopes))
        typer.echo(f"{key.name}\t{scopes}\tcreated {key.created_at:%Y-%m-%d}\tused {used}\t{state}")


@keys.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Revoke a key: its token stops working at once."""
    if not revoke_key(get_engine(), name=name):
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
    engine = get_engine()
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
    with read_connection(get_engine()) as connection:
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
