"""Bulk import: a whole file applied in one transaction, or not at all."""

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from app import idempotency
from app.auth import Scope, WriteKey, touch_key
from app.bundle import BundleError, LoadedBundle, decode_upload, load_uploaded, parse_csv
from app.config import get_settings
from app.db import EngineDep, write_transaction
from app.errors import ForbiddenError, InvalidParameterError, UnsupportedMediaTypeError
from app.importer import ImportReport, apply_bundle
from app.reads import run_write
from app.rendering import dump_json
from app.routers.docs import WRITE_ERRORS, problem
from app.schemas import ImportResult

router = APIRouter(prefix="/imports", tags=["imports"])

CSV_TYPES = {"text/csv", "application/csv"}
BUNDLE_TYPES = {"application/json", "application/yaml", "application/x-yaml", "text/yaml"}
REFERENCE_SECTIONS = ("sources", "units", "categories", "regions", "indicators")

IMPORT_BODY = {
    "required": True,
    "description": (
        "CSV (`text/csv`) with the columns indicator,region,year,value,qualifier,note,source,"
        "quote (and optionally unit), UTF-8 with or without a byte-order mark; or a bundle "
        "(`application/yaml` or `application/json`), the seed's format, which may also define "
        "sources, units, categories, regions and indicators (admin scope). At most "
        "`max_import_rows` (100,000) observations, counted before any is validated; YAML "
        "aliases are refused; a 422 lists at most 100 errors and counts them all in "
        "`error_count`."
    ),
    "content": {
        "text/csv": {
            "schema": {"type": "string"},
            "example": "indicator,region,year,value,qualifier,note,source,quote\r\n"
            "adaptive_training_trainees,320400,2023,608,exact,,cz-tyjrswj-2023-review,"
            "退役士兵适应性培训608人次\r\n",
        },
        "application/yaml": {"schema": {"type": "object", "description": "A bundle."}},
        "application/json": {"schema": {"type": "object", "description": "A bundle."}},
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


def _report_body(kind: str, report: ImportReport, *, applied: bool) -> dict[str, Any]:
    return {
        "format": kind,
        "dry_run": report.dry_run,
        "applied": applied,
        "summary": report.summary(),
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


@router.post(
    "",
    response_model=ImportResult,
    openapi_extra={"requestBody": IMPORT_BODY},
    responses={
        **WRITE_ERRORS,
        422: problem("The file has errors; none was written."),
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
            description="Makes a retry safe: the same key and body replay the first answer.",
            examples=["2024-review-upload-1"],
        ),
    ] = None,
) -> Response:
    """Import a CSV file or a bundle in one transaction: all of it, or nothing."""
    body = await request.body()
    try:
        kind, loaded = _parse(body, request.headers.get("content-type", ""))
    except BundleError as error:
        raise _bundle_problem(error) from None
    defines = [s for s in REFERENCE_SECTIONS if getattr(loaded.bundle, s)]
    if defines and not key.allows(Scope.admin):
        raise ForbiddenError(
            f"Defining {', '.join(defines)} needs a key with the 'admin' scope; "
            "this key may import observations only."
        )
    fingerprint = idempotency.request_hash(
        body, request.headers.get("content-type", "").encode(), str(dry_run).encode()
    )

    def write() -> tuple[int, bytes]:
        with write_transaction(engine, commit=not dry_run) as connection:
            if idempotency_key and not dry_run:
                stored = idempotency.find_answer(
                    connection, api_key_id=key.id, key=idempotency_key, fingerprint=fingerprint
                )
                if stored is not None:
                    return stored.status_code, stored.body.encode()
            try:
                report = apply_bundle(connection, loaded, recorded_by=key.name, dry_run=dry_run)
            except BundleError as error:
                raise _bundle_problem(error) from None
            answer = dump_json(_report_body(kind, report, applied=not dry_run))
            if not dry_run:
                touch_key(connection, key)
                if idempotency_key:
                    stored_answer = idempotency.StoredAnswer(200, answer.decode())
                    idempotency.store_answer(
                        connection,
                        api_key_id=key.id,
                        key=idempotency_key,
                        fingerprint=fingerprint,
                        answer=stored_answer,
                    )
            return 200, answer

    status, answer = await run_write(write)
    return Response(answer, status_code=status, media_type="application/json")
