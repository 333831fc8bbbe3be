"""Bulk import: a whole file applied in one transaction, or not at all.

An import is heavy: a 10 MiB upload takes seconds of CPU to parse and validate, and its write
holds the database's one write lock. So it never runs on the event loop (parsing and the write
run in the thread pool: `/healthz` and every read keep answering meanwhile), and each worker runs
one import at a time: another waits up to IMPORT_WAIT_SECONDS for its turn, then gets a 503
with `Retry-After`.
"""

import asyncio
from typing import Annotated, Any
from weakref import WeakKeyDictionary

from anyio import CapacityLimiter, move_on_after, to_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from app import idempotency
from app.auth import Scope, WriteKey, touch_key
from app.bundle import (
    BundleError,
    LoadedBundle,
    decode_upload,
    load_uploaded,
    parse_csv,
    upload_schemas,
)
from app.config import get_settings
from app.db import EngineDep, write_transaction
from app.errors import (
    ForbiddenError,
    InvalidParameterError,
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
)
from app.importer import ImportReport, apply_bundle
from app.reads import run_write
from app.rendering import dump_json
from app.routers.docs import COMPONENT_REF, WRITE_ERRORS, problem
from app.schemas import ImportResult

router = APIRouter(prefix="/imports", tags=["imports"])

CSV_TYPES = {"text/csv", "application/csv"}
BUNDLE_TYPES = {"application/json", "application/yaml", "application/x-yaml", "text/yaml"}
REFERENCE_SECTIONS = ("sources", "units", "categories", "regions", "indicators")

# One import at a time per worker: parsing is CPU-bound Python that holds the GIL, and writes
# take the one write lock in turn, so a second import in the same process gains nothing by
# running alongside; it would only double the worker's memory (a 10 MiB upload parses into
# hundreds of MiB of objects). The wait covers one import at the row limit (a few seconds:
# app/config.py `max_import_rows`) with room to spare; a client past it retries.
IMPORTS_PER_WORKER = 1
IMPORT_WAIT_SECONDS = 10
IMPORT_RETRY_AFTER_SECONDS = 5
_import_slots: WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = WeakKeyDictionary()

# The bundle's JSON Schema, from the models that validate it (app/bundle.py), published as OpenAPI
# components by create_app: /docs shows every field, and a generated client gets typed models.
BUNDLE_SCHEMAS = upload_schemas(ref_template=COMPONENT_REF)
BUNDLE_REF = {"$ref": COMPONENT_REF.format(model="Bundle")}
IMPORT_BODY = {
    "required": True,
    "description": (
        "CSV (`text/csv`) with the columns indicator,region,year,value,qualifier,note,source,"
        "quote (and optionally unit), UTF-8 with or without a byte-order mark; or a bundle "
        "(`application/yaml` or `application/json`), the seed's format, which may also define "
        "sources, units, categories, regions and indicators (admin scope). At most "
        "`max_import_rows` (10,000) observations, counted before any is validated; YAML "
        "aliases are refused; a 422 lists at most 100 errors and counts them all in "
        "`error_count`."
    ),
    "content": {
        "text/csv": {
            "schema": {"type": "string", "format": "binary"},
            "example": "indicator,region,year,value,qualifier,note,source,quote\r\n"
            "adaptive_training_trainees,320400,2023,608,exact,,cz-tyjrswj-2023-review,"
            "退役士兵适应性培训608人次\r\n",
        },
        "application/yaml": {"schema": BUNDLE_REF},
        "application/json": {"schema": BUNDLE_REF},
    },
}


def _parse(body: bytes, content_type: str) -> tuple[str, LoadedBundle]:
    """The upload parsed and validated; more rows than the limit are refused before any row is
    validated (a file of a million empty rows costs a count, not a million errors)."""
    media_type = content_type.split(";")[0].strip().lower()
    max_rows = get_settings().max_import_rows
    text = decode_upload(body, name="upload")
    if media_type in CSV_TYPES:
        return "csv", parse_csv(text, name="upload", max_rows=max_rows)
    if media_type in BUNDLE_TYPES:
        return "bundle", load_uploaded(text, name="upload", max_rows=max_rows)
    raise UnsupportedMediaTypeError(
        f"Content-Type {media_type or 'missing'}: send text/csv, application/yaml or "
        "application/json."
    )


def _summary_body(kind: str, report: ImportReport, *, applied: bool) -> dict[str, Any]:
    """The answer without its per-row report: what an Idempotency-Key replays."""
    return {
        "format": kind,
        "dry_run": report.dry_run,
        "applied": applied,
        "summary": report.summary(),
    }


def _report_body(kind: str, report: ImportReport, *, applied: bool) -> dict[str, Any]:
    return {
        **_summary_body(kind, report, applied=applied),
        "rows": [
            {"record": row.key, "section": row.section, "action": row.action} for row in report.rows
        ],
    }


def _bundle_problem(error: BundleError) -> InvalidParameterError:
    """422 listing the first errors (at most bundle.MAX_ERRORS); `error_count` counts them all."""
    errors = [
        {"field": e.field or "body", "in": "body", "record": e.record, "message": e.reason}
        for e in error.errors
    ]
    first = error.errors[0]
    more = f" (and {error.total - 1} more)" if error.total > 1 else ""
    return InvalidParameterError(
        f"Nothing was imported: {first}{more}.", errors=errors, error_count=error.total
    )


def _parse_or_problem(body: bytes, content_type: str) -> tuple[str, LoadedBundle]:
    """`_parse`, with a bad file turned into its 422 (run in a worker thread: both are heavy)."""
    try:
        return _parse(body, content_type)
    except BundleError as error:
        raise _bundle_problem(error) from None


async def _take_import_slot() -> CapacityLimiter:
    """This worker's import slot, once free; 503 with Retry-After past IMPORT_WAIT_SECONDS.

    One limiter per event loop (a worker has one; each test client has its own)."""
    loop = asyncio.get_running_loop()
    slots = _import_slots.get(loop)
    if slots is None:
        slots = _import_slots[loop] = CapacityLimiter(IMPORTS_PER_WORKER)
    with move_on_after(IMPORT_WAIT_SECONDS):
        await slots.acquire()
        return slots
    raise ServiceUnavailableError(
        f"Another import is running in this worker and did not finish within "
        f"{IMPORT_WAIT_SECONDS} s; retry after {IMPORT_RETRY_AFTER_SECONDS} s.",
        headers={"Retry-After": str(IMPORT_RETRY_AFTER_SECONDS)},
    )


@router.post(
    "",
    response_model=ImportResult,
    openapi_extra={"requestBody": IMPORT_BODY},
    responses={
        **WRITE_ERRORS,
        422: problem("The file has errors; none was written."),
        503: problem(
            f"Another import held this worker's one import slot for over {IMPORT_WAIT_SECONDS} "
            "s, or the database is unavailable or busy: retry after `Retry-After` seconds."
        ),
    },
)
async def import_file(
    request: Request,
    key: WriteKey,
    engine: EngineDep,
    dry_run: Annotated[
        bool,
        Query(
            description="Validate and report what would change, writing nothing.", examples=[True]
        ),
    ] = False,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=idempotency.MAX_KEY_LENGTH,
            description=(
                "Makes a retry safe: the same key and body, within "
                "`STATSAPI_IDEMPOTENCY_TTL_HOURS` (24 h by default), replay the first answer's "
                "summary (`rows` omitted, header `Idempotent-Replayed: true`) instead of "
                "importing again; the same key with another body is 422."
            ),
            examples=["2024-review-upload-1"],
        ),
    ] = None,
) -> Response:
    """Import a CSV file or a bundle in one transaction: all of it, or nothing.

    At most `STATSAPI_MAX_IMPORT_ROWS` observations (10,000 by default). Each worker runs one
    import at a time; another waits up to 10 s for its turn, then gets 503 with `Retry-After`.
    A retry with the same `Idempotency-Key` and body replays the first answer's summary: the
    same `format`, `dry_run`, `applied` and `summary`, with `rows` omitted and the header
    `Idempotent-Replayed: true`.
    """
    # The body is read before the slot is taken, so a slow sender never holds the slot.
    body = await request.body()
    slot = await _take_import_slot()
    try:
        return await _import(request, body, key, engine, dry_run, idempotency_key)
    finally:
        slot.release()


async def _import(
    request: Request,
    body: bytes,
    key: WriteKey,
    engine: EngineDep,
    dry_run: bool,
    idempotency_key: str | None,
) -> Response:
    content_type = request.headers.get("content-type", "")
    kind, loaded = await to_thread.run_sync(_parse_or_problem, body, content_type)
    defines = [s for s in REFERENCE_SECTIONS if getattr(loaded.bundle, s)]
    if defines and not key.allows(Scope.admin):
        raise ForbiddenError(
            f"Defining {', '.join(defines)} needs a key with the 'admin' scope; "
            "this key may import observations only."
        )
    fingerprint = idempotency.request_hash(
        body, request.headers.get("content-type", "").encode(), str(dry_run).encode()
    )

    def write() -> tuple[int, bytes, bool]:
        with write_transaction(engine, commit=not dry_run) as connection:
            if idempotency_key and not dry_run:
                stored = idempotency.find_answer(
                    connection, api_key_id=key.id, key=idempotency_key, fingerprint=fingerprint
                )
                if stored is not None:
                    return stored.status_code, stored.body.encode(), True
            try:
                report = apply_bundle(connection, loaded, recorded_by=key.name, dry_run=dry_run)
            except BundleError as error:
                raise _bundle_problem(error) from None
            if not dry_run:
                touch_key(connection, key)
                if idempotency_key:
                    summary = dump_json(_summary_body(kind, report, applied=True))
                    stored_answer = idempotency.StoredAnswer(200, summary.decode())
                    idempotency.store_answer(
                        connection,
                        api_key_id=key.id,
                        key=idempotency_key,
                        fingerprint=fingerprint,
                        answer=stored_answer,
                    )
        # Rendered after the commit: the write lock is not held while the rows are serialised.
        return 200, dump_json(_report_body(kind, report, applied=not dry_run)), False

    status, answer, replayed = await run_write(write)
    headers = {idempotency.REPLAY_HEADER: "true"} if replayed else None
    return Response(answer, status_code=status, media_type="application/json", headers=headers)
