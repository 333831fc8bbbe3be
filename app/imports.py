"""The import service: a CSV file or a bundle applied in one transaction, all of it or nothing,
under the rules around it. `POST /imports` and `statsapi import` both run `run_import`.

- Rows: an upload holds at most `max_import_rows` observations, counted before any row is
  validated (a file of a million empty rows costs a count, not a million errors). A file the
  CLI reads has no such limit: the operator chooses when the write lock is held, and a whole
  database's export must import back.
- Admin rule: defining units, categories, regions or indicators, or changing a source, needs a
  key with the `admin` scope. A write key may register a NEW source, with its text: a partner
  citing its own published document is normal in statistical exchange, and the text lets its
  quotes be checked verbatim. The CLI has no key: it is the operator, who may define them.
- Idempotency (API only): with an Idempotency-Key, the first answer's summary is stored in the
  import's own transaction and replayed for the same key and request (app/idempotency.py).
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from app import idempotency, provenance
from app.bundle import LoadedBundle, decode_upload, load_uploaded, parse_csv, read_bundle_file
from app.config import get_settings
from app.db import write_transaction
from app.errors import ForbiddenError, UnsupportedMediaTypeError
from app.importer import ImportReport, apply_bundle
from app.keys import ApiKeyInfo, Scope, touch_key

CSV_TYPES = {"text/csv", "application/csv"}
BUNDLE_TYPES = {"application/json", "application/yaml", "application/x-yaml", "text/yaml"}
ADMIN_SECTIONS = ("units", "categories", "regions", "indicators")
UPLOAD_NAME = "upload"  # how errors name an uploaded file


@dataclass(frozen=True)
class ParsedFile:
    format: str  # "csv" or "bundle"
    loaded: LoadedBundle


@dataclass(frozen=True)
class ImportOutcome:
    """What an import did: its JSON answer (the public `ImportResult`) and the report behind
    it; on an Idempotency-Key replay, the first answer's summary and no report."""

    answer: bytes
    report: ImportReport | None
    replayed: bool = False


def parse_upload(body: bytes, content_type: str) -> ParsedFile:
    """An uploaded file parsed and checked, within the row limit (BundleError if not). Its
    records with format errors are left out and their errors kept, for `run_import` to list
    with every other error in one answer (app/bundle.py `check_document`)."""
    media_type = content_type.split(";")[0].strip().lower()
    max_rows = get_settings().max_import_rows
    text = decode_upload(body, name=UPLOAD_NAME)
    if media_type in CSV_TYPES:
        return ParsedFile("csv", parse_csv(text, name=UPLOAD_NAME, max_rows=max_rows))
    if media_type in BUNDLE_TYPES:
        return ParsedFile("bundle", load_uploaded(text, name=UPLOAD_NAME, max_rows=max_rows))
    raise UnsupportedMediaTypeError(
        f"Content-Type {media_type or 'missing'}: send text/csv, application/yaml or "
        "application/json."
    )


def read_file(path: Path) -> ParsedFile:
    """A file on this machine parsed and checked as an upload is: CSV by its suffix, else a
    bundle, whose `text_file`s are read from its folder."""
    if path.suffix.lower() == ".csv":
        text = decode_upload(path.read_bytes(), name=path.name)
        return ParsedFile("csv", parse_csv(text, name=path.name))
    return ParsedFile("bundle", read_bundle_file(path, keep_errors=True))


def _check_scope(connection: Connection, key: ApiKeyInfo | None, loaded: LoadedBundle) -> None:
    """403 when a key without `admin` defines what only an admin may (module docstring)."""
    if key is None or key.allows(Scope.admin):
        return
    # Records left out for their format errors count: a write key may not define them either.
    defines = [section for section in ADMIN_SECTIONS if loaded.defines(section)]
    if defines:
        raise ForbiddenError(
            f"Defining {', '.join(defines)} needs a key with the 'admin' scope; this key may "
            "import observations and register new sources (with their text) only."
        )
    codes = [source.code for source in loaded.bundle.sources]
    codes += loaded.dropped.get("sources", {})
    stored = sorted(provenance.stored_sources(connection, codes))
    if stored:
        raise ForbiddenError(
            f"Changing the stored source(s) {', '.join(stored)} needs a key with the 'admin' "
            "scope; a write key may register new sources only."
        )
    textless = [s.code for s in loaded.bundle.sources if s.code not in loaded.source_texts]
    if textless:
        raise ForbiddenError(
            f"A source a write key registers comes with its text (`text`): "
            f"{', '.join(textless)} has none, so its quotes could not be checked; "
            "an admin may register a source without text."
        )


def _summary(parsed: ParsedFile, report: ImportReport, *, applied: bool) -> dict[str, Any]:
    """The answer without its per-row report: what an Idempotency-Key replays."""
    return {
        "format": parsed.format,
        "dry_run": report.dry_run,
        "applied": applied,
        "summary": report.summary(),
    }


def _answer(parsed: ParsedFile, report: ImportReport, *, applied: bool) -> bytes:
    rows = [{"record": r.key, "section": r.section, "action": r.action} for r in report.rows]
    return orjson.dumps({**_summary(parsed, report, applied=applied), "rows": rows})


@dataclass(frozen=True)
class Retry:
    """An Idempotency-Key and the fingerprint of the request it was sent with."""

    key: str
    fingerprint: str


def run_import(
    engine: Engine,
    parsed: ParsedFile,
    *,
    key: ApiKeyInfo | None,
    recorded_by: str,
    dry_run: bool,
    retry: Retry | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ImportOutcome:
    """Apply a parsed file in one transaction under the admin rule (`key` None: the operator),
    replaying or storing `retry`'s answer; BundleError, writing nothing, if a record is wrong."""
    with write_transaction(engine, commit=not dry_run) as connection:
        _check_scope(connection, key, parsed.loaded)
        if retry and key and not dry_run:
            stored = idempotency.find_answer(
                connection, api_key_id=key.id, key=retry.key, fingerprint=retry.fingerprint
            )
            if stored is not None:
                return ImportOutcome(stored.encode(), report=None, replayed=True)
        report = apply_bundle(
            connection,
            parsed.loaded,
            recorded_by=recorded_by,
            dry_run=dry_run,
            on_progress=on_progress,
        )
        if key and not dry_run:
            touch_key(connection, key)
            if retry:
                summary = orjson.dumps(_summary(parsed, report, applied=True)).decode()
                idempotency.store_answer(
                    connection,
                    api_key_id=key.id,
                    key=retry.key,
                    fingerprint=retry.fingerprint,
                    summary=summary,
                )
    # Rendered after the commit: the write lock is not held while the rows are serialised.
    return ImportOutcome(_answer(parsed, report, applied=not dry_run), report=report)


def import_upload(
    engine: Engine,
    *,
    key: ApiKeyInfo,
    body: bytes,
    content_type: str,
    dry_run: bool,
    idempotency_key: str | None,
) -> ImportOutcome:
    """`POST /imports`: parse an upload within the row limit, then `run_import` it as `key`."""
    parsed = parse_upload(body, content_type)
    retry = None
    if idempotency_key:
        fingerprint = idempotency.request_hash(body, content_type.encode(), str(dry_run).encode())
        retry = Retry(idempotency_key, fingerprint)
    return run_import(engine, parsed, key=key, recorded_by=key.name, dry_run=dry_run, retry=retry)
