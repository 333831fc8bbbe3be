"""OpenAPI descriptions shared by the routers (error bodies, CSV and 304 responses), and the
docs pages themselves."""

import base64
import hashlib
import re
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from app.errors import PROBLEM_MEDIA_TYPE


class FieldError(BaseModel):
    """One fault in a request, naming the parameter or field (and, in an import, the record)."""

    field: str = Field(description="The parameter or body field at fault.", examples=["region"])
    in_: str = Field(alias="in", description="query, path, header or body.", examples=["query"])
    message: str = Field(examples=["unknown code '320499'"])
    record: str | None = Field(
        default=None,
        description="In an import: the record, `row 5` of a CSV file or `observations[3]`.",
        examples=["row 5"],
    )
    allowed: list[str] | str | None = Field(
        default=None,
        description="The values the parameter takes: its codes, or the choices of an enum.",
        examples=[["320400", "320402"]],
    )
    unknown: list[str] | None = Field(
        default=None, description="The values given that are not known.", examples=[["320499"]]
    )
    names: dict[str, list[str]] | None = Field(
        default=None,
        description="For a parameter that takes names: each code's names (zh, en).",
        examples=[{"320412": ["武进区", "Wujin District"]}],
    )
    close_matches: dict[str, list[str]] | None = Field(
        default=None,
        description="For each unknown value: the known codes or names that look like it.",
        examples=[{"fundz": ["funds"]}],
    )


UNPROCESSABLE = HTTPStatus(422).phrase  # as problem_response titles it


class Problem(BaseModel):
    """RFC 9457 problem details: the shape of every error. Clients ignore members they do not
    know (RFC 9457, section 3.2); every member the server sends is listed here."""

    type: str = Field(examples=["urn:statsapi:problem:validation-error"])
    title: str = Field(description="The status's HTTP reason phrase.", examples=[UNPROCESSABLE])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["query parameter 'region': unknown code '320499'"])
    instance: str | None = Field(default=None, examples=["/api/v1/observations"])
    errors: list[FieldError] | None = Field(
        default=None, description="For 422: each fault, naming its parameter."
    )
    error_count: int | None = Field(
        default=None,
        description="For an import's 422: how many errors the file has (`errors` lists 100).",
        examples=[3],
    )
    current_etag: str | None = Field(
        default=None,
        description="For 412: the ETag of the value as it now stands (absent if there is none).",
        examples=['"r3"'],
    )


COMPONENT_REF = "#/components/schemas/{model}"
PROBLEM_SCHEMAS = {
    name: schema
    for name, schema in models_json_schema(
        [(Problem, "serialization")], ref_template=COMPONENT_REF
    )[1]["$defs"].items()
}


def problem(description: str) -> dict[str, Any]:
    """A problem+json response, its schema the published `Problem`."""
    schema = {"$ref": COMPONENT_REF.format(model="Problem")}
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}}}


NOT_MODIFIED = {"description": "Not Modified: the `If-None-Match` ETag is current."}
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    422: problem("A parameter is invalid: an unknown code, a bad year or range, a limit too big."),
    429: problem("Over the rate limit (when one is set): retry after `Retry-After` seconds."),
    503: problem("The database is unavailable or busy; retry after `Retry-After` seconds."),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: problem("No resource with that code.")}
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON by default; CSV with `format=csv` or `Accept: text/csv`.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
CHANGE_SEQ_HEADER_DOC = {
    "X-Change-Seq": {
        "description": (
            "The last change sequence number of the data this answer was read from: every "
            "change up to it had committed. At the last page of a `since` answer (`next` "
            "null), give it as `since` to get what changes afterwards."
        ),
        "schema": {"type": "integer", "minimum": 0},
    }
}


def with_change_seq(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """`responses` with the `X-Change-Seq` header documented on the 200."""
    ok = responses.get(200, {})
    return {**responses, 200: {**ok, "headers": {**ok.get("headers", {}), **CHANGE_SEQ_HEADER_DOC}}}


# Every write: a key, then a body within its size and time. (A body that is not JSON is a 422
# naming `body`, as FastAPI answers it: one status for "the body is wrong", whatever the fault.)
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    401: problem(
        "No API key, or an unknown or revoked one (see `WWW-Authenticate`); answered before "
        "the body is read."
    ),
    403: problem("The API key lacks the scope this operation needs."),
    408: problem("The body did not all arrive within the body timeout (30 s by default)."),
    413: problem("The body is over the size limit."),
    429: problem(
        "Over the write limit of this key, or too many failed authentications from this "
        "address (30 a minute by default): retry after `Retry-After` seconds."
    ),
}
UNSUPPORTED_MEDIA_TYPE: dict[int | str, dict[str, Any]] = {
    415: problem("The body's Content-Type is not one this operation reads."),
}


def upload_errors(invalid: str) -> dict[int | str, dict[str, Any]]:
    """The errors of a write that takes a file: a write's, 415, and a 422 saying what of the
    file is checked (`invalid`)."""
    return {**WRITE_ERRORS, **UNSUPPORTED_MEDIA_TYPE, 422: problem(invalid)}


PRECONDITION_FAILED: dict[int | str, dict[str, Any]] = {
    412: problem("If-Match names a state that is no longer current: GET, merge, retry."),
}


# The docs pages: Swagger UI and ReDoc, with the assets that fastapi-offline vendors, served by
# the app itself (no CDN: they work on an offline intranet), each with a Content-Security-Policy
# that allows exactly what it loads: the app's own assets, its own inline script (by hash), the
# inline styles both use, data: images (Swagger UI's icons) and blob: workers (ReDoc's search).
ASSETS_URL = "/docs-assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@cache  # one page per root path: a handful at most
def page_policy(html: str) -> str:
    """The Content-Security-Policy of a docs page: nothing from another host, and no inline
    script but the page's own (allowed by its SHA-256)."""
    hashes = "".join(
        f" 'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return (
        f"default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def _page(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = page_policy(bytes(page.body).decode())
    return page


def publish_schemas(app: FastAPI, schemas: dict[str, dict[str, Any]]) -> None:
    """Add `schemas` to the OpenAPI document's components: models that no route's signature
    declares, such as the import's bundle (that route reads its body itself: it also takes CSV
    and YAML). A name FastAPI already uses must hold the same schema."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            components = build().setdefault("components", {}).setdefault("schemas", {})
            for name, schema in schemas.items():
                if components.setdefault(name, schema) != schema:
                    raise ValueError(f"two different OpenAPI schemas are named {name}")
        return app.openapi_schema  # type: ignore[return-value]  # build() set it

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


def document_not_modified(app: FastAPI, *, prefix: str) -> None:
    """`304` on every API read: each answers `If-None-Match` (app/reads.py, app/etags.py); a
    write never does, so only GET operations list it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for path, operations in build()["paths"].items():
                if path.startswith(prefix) and "get" in operations:
                    operations["get"]["responses"].setdefault("304", NOT_MODIFIED)
        return app.openapi_schema  # type: ignore[return-value]  # build() set it

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


def install_docs(app: FastAPI) -> None:
    """`/docs` (Swagger UI), `/redoc` and their assets under `/docs-assets`."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            get_swagger_ui_html(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                oauth2_redirect_url=None,  # keys are bearer tokens: no OAuth2 flow to return to
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            get_redoc_html(
                openapi_url=f"{root}{app.openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )
