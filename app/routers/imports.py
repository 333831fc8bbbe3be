"""Bulk import: a whole file applied in one transaction, or not at all.

An import is heavy: a 10 MiB upload takes seconds of CPU to parse and validate, and its write
holds the database's one write lock. So it never runs on the event loop (parsing and the write
run in the thread pool: `/healthz` and every read keep answering meanwhile), and each worker runs
one import at a time: another waits up to IMPORT_WAIT_SECONDS for its turn, then gets a 503
with `Retry-After`.
"""

import asyncio
from functools import partial
from typing import Annotated
from weakref import WeakKeyDictionary

from anyio import CapacityLimiter, move_on_after
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from app import idempotency, imports
from app.auth import WriteKey
from app.blocking import run_write
from app.bundle import BundleError, upload_schemas
from app.db import EngineDep
from app.errors import InvalidParameterError, ServiceUnavailableError
from app.routers.docs import COMPONENT_REF, problem, upload_errors
from app.schemas import ImportResult

router = APIRouter(prefix="/imports", tags=["imports"])

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
        "units, categories, regions and indicators and change sources (admin scope), and "
        "register new sources with their `text` (write scope). Values are checked for sense "
        "(counts whole, rates 0-100, units) as by PUT, each error naming the row. At most "
        "`max_import_rows` (10,000) observations, counted before any is validated; YAML "
        "aliases are refused; a 422 lists every error of every row or record in one answer "
        "(format, unknown codes with their `close_matches`, provenance, sense), the first 100 "
        "in file order (a bundle's by section, then index in the file), and counts them all in "
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


def _bundle_problem(error: BundleError) -> InvalidParameterError:
    """422 listing the first errors (at most bundle.MAX_ERRORS); `error_count` counts them all."""
    errors = [
        {
            "field": e.field or "body",
            "in": "body",
            "record": e.record,
            "message": e.reason,
            # As a query parameter's unknown code is told (app/catalog.py).
            **(
                {"unknown": [e.unknown], "close_matches": {e.unknown: list(e.close_matches)}}
                if e.unknown is not None
                else {}
            ),
        }
        for e in error.errors
    ]
    first = error.errors[0]
    more = f" (and {error.total - 1} more)" if error.total > 1 else ""
    return InvalidParameterError(
        f"Nothing was imported: {first}{more}.", errors=errors, error_count=error.total
    )


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
        **upload_errors(
            "The file has errors; none was written. Each is in `errors`, naming its `record`; "
            "an unknown code's gives `unknown` and `close_matches`."
        ),
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
        outcome = await run_write(
            partial(
                imports.import_upload,
                engine,
                key=key,
                body=body,
                content_type=request.headers.get("content-type", ""),
                dry_run=dry_run,
                idempotency_key=idempotency_key,
            )
        )
    except BundleError as error:
        raise _bundle_problem(error) from None
    finally:
        slot.release()
    headers = {idempotency.REPLAY_HEADER: "true"} if outcome.replayed else None
    return Response(outcome.answer, media_type="application/json", headers=headers)
