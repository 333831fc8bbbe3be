"""Serving a read: data version, conditional request, the query, the response and its headers.

Every GET that reads data goes through `serve_read`. The data version (one row, moved by every
write) makes the ETag: the same version, path, query and format give the same ETag on every
worker and server, and `If-None-Match` gets a 304 before any other SQL runs.

Blocking database calls: SQLite answers the short, bounded queries in microseconds, so they run
on the event loop (a thread-pool hop per request cost about two thirds of the throughput here,
../shared/PERFORMANCE.md). Reads whose work grows with the history or with whole years rather
than with the answer (`heavy`: `as_of`, `updated_after`, comparisons of every series) run in
the thread pool, so that `/healthz` and the cheap reads never wait behind them (issue 11: four
clients reading `as_of` pushed `/healthz` to 4.4 s). PostgreSQL calls cross the network and can
stall during an outage, so they all run in the thread pool. Every SQLite read is also bounded in
time (app/db.py `read_connection`).
"""

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any, TypeVar

from anyio import CapacityLimiter, to_thread
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import Connection, Engine

from app.catalog import Catalog, get_catalog
from app.config import get_settings
from app.db import EngineDep, read_connection
from app.errors import InvalidParameterError, NotFoundError
from app.queries import get_data_version
from app.ratelimit import limit_reads
from app.rendering import JSONResponse, csv_response, wants_csv
from app.schemas import csv_columns

T = TypeVar("T")


REPEATABLE_PARAMETERS = frozenset({"category", "indicator", "region", "qualifier"})


async def before_api_request(request: Request, engine: EngineDep) -> None:
    """The one dependency of every API route, in this order: the read rate limit, parameter
    hygiene, then 304 for a current ETag. One dependency rather than three: FastAPI's
    dependency resolution costs more per dependency than these checks do (bench/sample.py)."""
    limit_reads(request)
    check_parameters(request)
    await revalidate(request, engine)


def check_parameters(request: Request) -> None:
    """422 for a parameter given twice that takes one value (`?q=a&q=b`), instead of silently
    keeping the last (code filters are the repeatable ones), and for a NUL character, which
    PostgreSQL cannot store or compare."""
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        if name in seen and name not in REPEATABLE_PARAMETERS:
            raise InvalidParameterError.for_field("query", name, "given more than once")
        if "\x00" in value:
            raise InvalidParameterError.for_field("query", name, "contains a NUL character")
        seen.add(name)
    for name, value in request.path_params.items():
        if "\x00" in str(value):
            raise InvalidParameterError.for_field("path", name, "contains a NUL character")


_limiters: dict[tuple[int, int], CapacityLimiter] = {}


def _threads_for(engine: Engine) -> CapacityLimiter:
    """As many threads for an engine's reads as its pool keeps connections open. With more,
    reads spill into the pool's overflow, whose connections are opened and closed on every
    request (a new PostgreSQL backend each): a third of the time under load
    (docs/benchmarks.md). Writes keep the overflow."""
    key = (id(engine), id(asyncio.get_running_loop()))
    limiter = _limiters.get(key)
    if limiter is None:
        limiter = _limiters[key] = CapacityLimiter(get_settings().pg_pool_size)
    return limiter


async def run_db(engine: Engine, work: Callable[[], T], *, heavy: bool = False) -> T:
    """Run blocking database work: inline for SQLite unless `heavy`, else in the thread pool."""
    if engine.dialect.name == "sqlite" and not heavy:
        return work()
    return await to_thread.run_sync(work, limiter=_threads_for(engine))


async def run_write(work: Callable[[], T]) -> T:
    """Run a write in the thread pool, on every database: a writer may wait for the lock."""
    return await to_thread.run_sync(work)


class NotModifiedError(Exception):
    """Raised by `revalidate` to answer 304 at once (handled by `not_modified_response`)."""

    def __init__(self, etag: str, changed_at: datetime | None) -> None:
        super().__init__(etag)
        self.etag = etag
        self.changed_at = changed_at


async def not_modified_response(_request: Request, error: Exception) -> Response:
    assert isinstance(error, NotModifiedError)
    return Response(status_code=304, headers=cache_headers(error.etag, error.changed_at))


async def revalidate(request: Request, engine: Engine) -> None:
    """304 for a GET whose `If-None-Match` names the current
    data version's ETag, decided before the query parameters are parsed or any query runs
    (dashboards poll; most polls find nothing new).

    Only tags this module makes (`"v<version>-<digest>"`) are looked at; anything else, and
    `*`, is left to `serve_read`, which checks again inside the request's read transaction."""
    if_none_match = request.headers.get("if-none-match")
    if not if_none_match or '"v' not in if_none_match or request.method not in ("GET", "HEAD"):
        return

    def read_version() -> tuple[int, datetime | None]:
        with read_connection(engine) as connection:
            return get_data_version(connection, transaction=False)

    version, changed_at = await run_db(engine, read_version)
    as_csv = wants_csv(request, request.query_params.get("format"))
    etag = make_etag(version, request, "csv" if as_csv else "json")
    if etag_matches(if_none_match, etag):
        raise NotModifiedError(etag, changed_at)


@dataclass
class Fresh:
    data: Any
    etag: str
    changed_at: datetime | None


@dataclass
class NotModified:
    etag: str
    changed_at: datetime | None


def make_etag(version: int, request: Request, representation: str) -> str:
    """Strong ETag from the data version and what was asked for; stable across workers."""
    asked = f"{request.url.path}?{request.url.query}|{representation}"
    digest = hashlib.blake2b(asked.encode(), digest_size=8).hexdigest()
    return f'"v{version}-{digest}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header (a list, `*`, weak or strong tags) names `etag`."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in candidates


def cache_headers(etag: str, changed_at: datetime | None) -> dict[str, str]:
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={get_settings().cache_max_age}",
    }
    if changed_at is not None:
        headers["Last-Modified"] = format_datetime(changed_at, usegmt=True)
    return headers


async def serve_read(
    request: Request,
    engine: Engine,
    work: Callable[[Connection, Catalog], Any],
    render: Callable[[Any], Response],
    *,
    representation: str = "json",
    heavy: bool = False,
) -> Response:
    """Answer a GET: 304 when the client's copy is current, else `render(work(...))`.

    `heavy`: the work may take long (see the module docstring); it runs off the event loop."""
    if_none_match = request.headers.get("if-none-match")

    def read() -> Fresh | NotModified:
        with read_connection(engine) as connection:
            version, changed_at = get_data_version(connection)
            etag = make_etag(version, request, representation)
            if etag_matches(if_none_match, etag):
                return NotModified(etag, changed_at)
            catalog = get_catalog(connection, version=version)
            return Fresh(work(connection, catalog), etag, changed_at)

    result = await run_db(engine, read, heavy=heavy)
    if isinstance(result, NotModified):
        return Response(status_code=304, headers=cache_headers(result.etag, result.changed_at))
    response = render(result.data)
    response.headers.update(cache_headers(result.etag, result.changed_at))
    return response


def next_page_url(request: Request, *, limit: int, offset: int, total: int) -> str | None:
    """The path and query of the page after this one, or None on the last page."""
    following = offset + limit
    if following >= total:
        return None
    url = request.url.include_query_params(limit=str(limit), offset=str(following))
    return f"{url.path}?{url.query}"


def page_headers(next_url: str | None, total: int) -> dict[str, str]:
    """`Link: <next>; rel="next"` (when there is a next page) and `X-Total-Count`."""
    headers = {"X-Total-Count": str(total)}
    if next_url:
        headers["Link"] = f'<{next_url}>; rel="next"'
    return headers


def list_renderer(
    item_model: type[BaseModel], *, as_csv: bool, filename: str
) -> Callable[[list[dict[str, Any]]], Response]:
    """Render a small, unpaged list as `{"data": [...], "total": n}` or as CSV rows."""

    def render(rows: list[dict[str, Any]]) -> Response:
        if as_csv:
            return csv_response(rows, csv_columns(item_model), filename=filename)
        return JSONResponse({"data": rows, "total": len(rows)})

    return render


async def serve_list(
    request: Request,
    engine: Engine,
    *,
    format: str | None,
    query: Callable[[Connection], list[dict[str, Any]]],
    item_model: type[BaseModel],
    filename: str,
) -> Response:
    """Answer a GET for a small, unpaged list (JSON or CSV) through `serve_read`."""
    as_csv = wants_csv(request, format)
    return await serve_read(
        request,
        engine,
        lambda connection, _: query(connection),
        list_renderer(item_model, as_csv=as_csv, filename=filename),
        representation="csv" if as_csv else "json",
    )


def item_renderer(*, not_found: str) -> Callable[[dict[str, Any] | None], Response]:
    """Render one resource, or 404 naming what was not found."""

    def render(item: dict[str, Any] | None) -> Response:
        if item is None:
            raise NotFoundError(not_found)
        return JSONResponse(item)

    return render
