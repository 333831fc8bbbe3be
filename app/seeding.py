"""Loading the project's seed bundles (the same loader partner imports use)."""

from pathlib import Path

from sqlalchemy import Engine

from app.bundle import BundleError, LoadedBundle, RecordError, read_bundle_file
from app.db import write_transaction
from app.importer import ImportReport, apply_bundle

BUNDLE_SUFFIXES = (".yaml", ".yml", ".json")


def find_bundles(folder: Path) -> list[Path]:
    """The bundle files directly in `folder`, in name order."""
    return sorted(path for path in folder.iterdir() if path.suffix in BUNDLE_SUFFIXES)


def seed_directory(engine: Engine, folder: Path) -> list[ImportReport]:
    """Apply every bundle in `folder` in one transaction: all of them, or none."""
    paths = find_bundles(folder)
    if not paths:
        raise BundleError([RecordError(str(folder), "", "", "no bundle (*.yaml, *.json) here")])
    loaded: list[LoadedBundle] = [read_bundle_file(path) for path in paths]
    with write_transaction(engine) as connection:
        return [
            apply_bundle(connection, bundle, recorded_by=f"seed:{bundle.name}") for bundle in loaded
        ]
