"""The `statsapi` command: migrate, seed, serve."""

from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from app import migrate as migrations
from app.bundle import BundleError
from app.config import get_settings
from app.db import get_engine
from app.seeding import seed_directory

cli = typer.Typer(help="Changzhou veterans affairs statistics API.", no_args_is_help=True)


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
        for item in error.errors:
            typer.echo(f"error: {item}", err=True)
        raise typer.Exit(code=1) from None
    for report in reports:
        for section, counts in report.summary().items():
            typer.echo(
                f"{report.bundle}: {section}: {counts['created']} created, "
                f"{counts['changed']} changed, {counts['unchanged']} unchanged"
            )


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Serve the API with uvicorn."""
    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        server_header=False,
        access_log=False,
    )


def main() -> None:
    cli()
