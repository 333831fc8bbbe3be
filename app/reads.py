"""Answering a GET: 304 when the client's copy is current, else the data, and the responses
built from that answer.

The data version (one row, moved by every write) makes the ETag: the same version, path, query
and representation give the same ETag on every worker and server. `If-None-Match` gets a 304
before the request is routed (`asked_now`), or else inside the read's own transaction
(`read`), before any query of the answer runs.

A route reads top to bottom: parse its parameters into a filter object, `read` (one call,
answering `NotModified` or `Fresh[data]`), render with the helpers below.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar, TypeVarTuple

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import Connection, Engine

from app.blocking import run_read
from app.catalog import get_catalog
from app.errors import NotFoundError
from app.etags import cache_headers, etag_matches, make_etag
from app.filters import Selection
from app.guards import check_parameters
from app.queries import get_data_version
from app.rendering import JSONResponse, csv_response, wants_csv
from app.schemas import csv_columns

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


async def before_api_request(request: Request) -> None:
    """The one dependency of every API route: parameter hygiene. (The read rate limit and the
    304 for a current ETag come before routing: app/middleware.py `ReadGate`, `asked_now`.)"""
    check_parameters(request)


CHANGE_SEQ_HEADER = "X-Change-Seq"


@dataclass(frozen=True)
class Fresh(Generic[T]):
    """The data of a read, with the ETag and time of the data version it was read at, and the
    last change sequence number it reflects (read in the same snapshot as the data)."""

    data: T
    etag: str
    changed_at: datetime | None
    change_seq: int | None = None

    def respond(self, response: Response) -> Response:
        """`response` with this answer's cache headers (and `X-Change-Seq`: every change up to
        that number had committed in the data it was read from; README "Keeping a copy in
        sync")."""
        response.headers.update(cache_headers(self.etag, self.changed_at))
        if self.change_seq is not None:
            response.headers[CHANGE_SEQ_HEADER] = str(self.change_seq)
        return response


@dataclass(frozen=True)
class NotModified:
    """The client's copy is current."""

    etag: str
    changed_at: datetime | None

    def response(self) -> Response:
        return Response(status_code=304, headers=cache_headers(self.etag, self.changed_at))


def _asked(request: Request) -> str:
    """What an ETag stands for besides the data version: path, query and representation.

    Read from the scope rather than `request.url` (which parses the whole URL): this runs
    for every poll, before routing (`asked_now`)."""
    scope = request.scope
    query = scope["query_string"].decode("latin-1")
    format = request.query_params.get("format") if "format=" in query else None
    as_csv = wants_csv(request, format)
    return f"{scope.get('root_path', '')}{scope['path']}?{query}|{'csv' if as_csv else 'json'}"


def _version_alone(connection: Connection) -> tuple[int, datetime | None]:
    version, changed_at, _ = get_data_version(connection, transaction=False)
    return version, changed_at


@dataclass(frozen=True)
class Asked:
    """A GET as its answer's ETag sees it, before routing: the data version it is asked at, and
    what is asked (path, query, representation)."""

    version: int
    changed_at: datetime | None
    what: str

    @property
    def etag(self) -> str:
        return make_etag(self.version, self.what)

    def not_modified(self, if_none_match: str | None) -> NotModified | None:
        """`NotModified` when `If-None-Match` names this answer's ETag."""
        if if_none_match and etag_matches(if_none_match, self.etag):
            return NotModified(self.etag, self.changed_at)
        return None


def revalidates(request: Request) -> bool:
    """Whether a GET's `If-None-Match` may name an ETag of this module (`"v<version>-..."`),
    to be checked before routing (app/middleware.py `ReadGate`, `asked_now`). Any other tag,
    and `*`, is left to `read`, which checks again inside the request's read transaction."""
    if_none_match = request.headers.get("if-none-match") or ""
    return '"v' in if_none_match


async def asked_now(request: Request, engine: Engine) -> Asked:
    """The current data version and what `request` asks, read before the request is routed,
    its parameters parsed or any other query run: dashboards poll, and most polls find
    nothing new (a 304), or ask what another client asked at the same version (a kept answer:
    app/answers.py). An ETag is only ever given for an answered path and query, so a 304 from
    it is one the route would give (a made-up tag for a bad query gets a 304 for a body it
    never had)."""
    version, changed_at = await run_read(engine, _version_alone, lone=True)
    return Asked(version, changed_at, _asked(request))


async def read(
    request: Request,
    engine: Engine,
    query: Callable[[Connection, *Ts], T],
    *arguments: *Ts,
    heavy: bool = False,
) -> Fresh[T] | NotModified:
    """`NotModified` when the client's copy is current, else `query(connection, *arguments)`
    in one read transaction, after the codes of any filters among `arguments` are checked
    against the catalog (422 naming the filter) and any names among them read as codes.

    `heavy`: the query may take long (app/blocking.py); it runs off the event loop."""
    conditions = (_asked(request), request.headers.get("if-none-match"))
    return await run_read(engine, _answer, conditions, query, arguments, heavy=heavy)


def _answer(
    connection: Connection,
    conditions: tuple[str, str | None],
    query: Callable[[Connection, *Ts], T],
    arguments: tuple[*Ts],
) -> Fresh[T] | NotModified:
    asked, if_none_match = conditions
    version, changed_at, change_seq = get_data_version(connection)
    etag = make_etag(version, asked)
    if etag_matches(if_none_match, etag):
        return NotModified(etag, changed_at)
    resolved = tuple(_resolved(connection, version, argument) for argument in arguments)
    return Fresh(query(connection, *resolved), etag, changed_at, change_seq)


def _resolved(connection: Connection, version: int, argument: Any) -> Any:
    """A filter object with the codes of its selection checked against the catalog (422
    naming the filter) and any names given read as their codes; any other argument as is."""
    where = getattr(argument, "where", None)
    if not isinstance(where, Selection):
        return argument
    resolved = get_catalog(connection, version=version).resolve(connection, where)
    return argument if resolved is where else replace(argument, where=resolved)


# --- responses ----------------------------------------------------------------------------


def next_page_url(
    request: Request, *, limit: int, offset: int, total: int, after: tuple[str, Any] | None = None
) -> str | None:
    """The path and query of the page after this one, or None on the last page.

    `after` (a parameter and the value of the page's last row): the next page is the rows after
    that value, not an offset, so rows that move while a client pages (a changed value goes to
    the end of a `since` answer) are neither skipped nor repeated."""
    following = offset + limit
    if following >= total:
        return None
    if after is None:
        url = request.url.include_query_params(limit=str(limit), offset=str(following))
    else:
        parameter, value = after
        url = request.url.remove_query_params("offset").include_query_params(
            **{parameter: str(value)}
        )
    return f"{url.path}?{url.query}"


def page_headers(next_url: str | None, total: int) -> dict[str, str]:
    """`Link: <next>; rel="next"` (when there is a next page) and `X-Total-Count`."""
    headers = {"X-Total-Count": str(total)}
    if next_url:
        headers["Link"] = f'<{next_url}>; rel="next"'
    return headers


class Paged(Protocol):
    """Filters that ask for one page: `limit` rows from `offset`."""

    @property
    def limit(self) -> int: ...
    @property
    def offset(self) -> int: ...


def page_response(
    request: Request,
    answer: Fresh[tuple[list[dict[str, Any]], int]] | NotModified,
    page: Paged,
    *,
    csv: tuple[list[str], str] | None,
    envelope: dict[str, Any] | None = None,
    keyset: tuple[str, str] | None = None,
) -> Response:
    """One page of a list (the answer's rows, and its total over all pages): CSV rows (`csv`:
    columns, file name), or JSON `{**envelope, total, limit, offset, next, data}`; with
    `Link`, `X-Total-Count` and the answer's cache headers; or the 304.

    `keyset` (a query parameter, the row field it compares): `next` asks for the rows after
    the last row's value of that field rather than for an offset (`next_page_url`)."""
    if isinstance(answer, NotModified):
        return answer.response()
    rows, total = answer.data
    limit, offset = page.limit, page.offset
    after = (keyset[0], rows[-1][keyset[1]]) if keyset and rows else None
    next_url = next_page_url(request, limit=limit, offset=offset, total=total, after=after)
    if csv is not None:
        columns, filename = csv
        response = csv_response(rows, columns, filename=filename)
    else:
        body = {"total": total, "limit": limit, "offset": offset, "next": next_url}
        response = JSONResponse({**(envelope or {}), **body, "data": rows})
    response.headers.update(page_headers(next_url, total))
    return answer.respond(response)


def list_response(
    answer: Fresh[list[dict[str, Any]]] | NotModified,
    item_model: type[BaseModel],
    *,
    as_csv: bool,
    filename: str,
) -> Response:
    """A small, unpaged list as `{"data": [...], "total": n}` or as CSV rows; or the 304."""
    if isinstance(answer, NotModified):
        return answer.response()
    rows = answer.data
    if as_csv:
        return answer.respond(csv_response(rows, csv_columns(item_model), filename=filename))
    return answer.respond(JSONResponse({"data": rows, "total": len(rows)}))


def item_response(
    answer: Fresh[dict[str, Any] | None] | NotModified, *, not_found: str
) -> Response:
    """One resource, or 404 naming what was not found; or the 304."""
    if isinstance(answer, NotModified):
        return answer.response()
    if answer.data is None:
        raise NotFoundError(not_found)
    return answer.respond(JSONResponse(answer.data))
