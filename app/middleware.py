"""Small ASGI middleware of our own (pure ASGI: no per-request Request objects)."""

import inspect
import re
import time
from itertools import product
from typing import Any
from uuid import uuid4

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.routing import iter_route_contexts
from sqlalchemy import Engine
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.answers import AnswerCache
from app.auth import authenticate
from app.db import engine_dependency
from app.errors import problem_response
from app.observability import ANSWERED_BEFORE_ROUTING, RequestLog, request_id, valid_request_id
from app.ratelimit import limit_reads
from app.reads import asked_now, revalidates

SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS"))

# HTML the app serves (the docs pages) sets its own policy (app/routers/docs.py); any other
# HTML gets this one: nothing loads, nothing runs, no page may frame it.
DEFAULT_HTML_POLICY = (
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def _response_headers(raw: list[tuple[bytes, bytes]], *, vary: tuple[bytes, ...]) -> None:
    """Headers every response needs, set once here rather than by each route (in place).

    - `X-Content-Type-Options: nosniff` on every response: browsers never guess a type (a CSV
      or a source text is never run as a script or rendered as HTML).
    - On HTML: `X-Frame-Options: DENY` and a Content-Security-Policy when the page has none.
    - `vary`: tokens merged into one `Vary` with the response's own, each once (GZip and CORS
      each append their own token, which otherwise leaves duplicates).
    """
    raw.append((b"x-content-type-options", b"nosniff"))
    tokens: list[bytes] = []
    html = has_policy = False
    for name, value in raw:
        if name == b"vary":
            tokens += (t.strip() for t in value.split(b","))
        elif name == b"content-type":
            html = value.startswith(b"text/html")
        elif name == b"content-security-policy":
            has_policy = True
    if html:
        raw.append((b"x-frame-options", b"DENY"))
        if not has_policy:
            raw.append((b"content-security-policy", DEFAULT_HTML_POLICY.encode()))
    if vary:
        raw[:] = [(name, value) for name, value in raw if name != b"vary"]
        merged = dict.fromkeys(t for t in (*vary, *tokens) if t)
        raw.append((b"vary", b", ".join(merged)))


class Edge:
    """The one ASGI layer in front of the app: everything a request needs besides its route.

    - its id (`X-Request-ID`) in the logs' context and on the response; its access log line and
      metrics (app/observability.py);
    - the headers of every response (`_response_headers`); successful GETs vary on `Accept,
      Accept-Encoding` (bodies differ by Accept, JSON or CSV, and by Accept-Encoding, gzip or
      not, whether or not this body was compressed) and on `Origin`;
    - CORS (Starlette's) for requests that carry an `Origin`, gzip (Starlette's) for those that
      accept it; the write guard (`WriteGuardMiddleware`) for methods that carry a body, the
      read gate (`ReadGate`: rate limit, 304, kept answers) for reads.

    The last three are chosen per request rather than stacked: each layer wraps `send` and
    reads the headers again, on every request, even one it has nothing to do for. Stacked, the
    six layers cost `/healthz` 60% of its throughput (docs/benchmarks.md). A request without an
    `Origin` gets from here the `Vary: Origin` that CORS would have added.
    """

    READ_VARY = (b"Accept", b"Accept-Encoding", b"Origin")

    def __init__(
        self,
        app: ASGIApp,
        *,
        cors: dict[str, Any],
        gzip_minimum_size: int,
        write_guard: dict[str, Any],
        api_prefix: str,
        answer_cache_bytes: int = 0,
    ) -> None:
        self.app = app
        first: dict[str, ASGIApp] = {
            "read": ReadGate(app, api_prefix=api_prefix, answer_cache_bytes=answer_cache_bytes),
            "write": WriteGuardMiddleware(app, **write_guard),
            "other": app,  # OPTIONS
        }
        self.chains: dict[tuple[str, bool, bool], ASGIApp] = {}
        for kind, gzip, origin in product(first, (False, True), (False, True)):
            chain = first[kind]
            if gzip:
                chain = GZipMiddleware(chain, minimum_size=gzip_minimum_size)
            if origin:
                chain = CORSMiddleware(chain, **cors)
            self.chains[(kind, gzip, origin)] = chain
        self.log = RequestLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        asked_id = origin = None
        gzip = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                asked_id = value.decode("latin-1")
            elif name == b"origin":
                origin = value
            elif name == b"accept-encoding":
                gzip = b"gzip" in value
        this_id = asked_id if asked_id and valid_request_id(asked_id) else uuid4().hex
        context = request_id.set(this_id)
        method = scope["method"]
        is_read = method in ("GET", "HEAD")
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                raw = message["headers"] = list(message.get("headers", ()))
                raw.append((b"x-request-id", this_id.encode()))
                vary: tuple[bytes, ...]
                if is_read and status < 400:
                    vary = self.READ_VARY
                else:  # what CORS adds to a request without an Origin (it did not run)
                    vary = (b"Origin",) if origin is None else ()
                _response_headers(raw, vary=vary)
            await send(message)

        kind = "read" if is_read else "other" if method in SAFE_METHODS else "write"
        try:
            await self.chains[(kind, gzip, origin is not None)](scope, receive, send_with_headers)
        finally:
            self.log.record(scope, status, time.perf_counter() - started)
            request_id.reset(context)


class ReadGate:
    """Reads of the API, before routing: the read rate limit (429); then, from the data
    version (app/reads.py `asked_now`), 304 when `If-None-Match` names the current ETag, or
    the answer kept for the same question at the same version (app/answers.py). Either costs
    a query of the data version and no more: no routing, no parameters parsed, no dependency
    solved, no other query. Other reads go on to their route (their answer kept on the way)."""

    def __init__(self, app: ASGIApp, *, api_prefix: str, answer_cache_bytes: int) -> None:
        self.app = app
        self.api_prefix = api_prefix
        self.answers = AnswerCache(answer_cache_bytes) if answer_cache_bytes else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not scope["path"].startswith(self.api_prefix):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        answers = self.answers if scope["method"] == "GET" else None  # HEAD has no body to keep
        asked = None
        try:
            limit_reads(request)
            if answers is not None or revalidates(request):
                asked = await asked_now(request, await _engine_of(scope["app"]))
        except Exception as error:
            await _answer_error(scope, receive, send, error, close=False)
            return
        if asked is None:
            await self.app(scope, receive, send)
            return
        key = (asked.version, asked.what)
        not_modified = asked.not_modified(request.headers.get("if-none-match"))
        kept = answers.get(key) if answers is not None else None
        if not_modified is not None:
            scope[ANSWERED_BEFORE_ROUTING] = True
            await not_modified.response()(scope, receive, send)
        elif kept is not None:
            scope[ANSWERED_BEFORE_ROUTING] = True
            await kept.send(send)
        else:
            if answers is not None:
                send = answers.recording(key, asked.etag, send)
            await self.app(scope, receive, send)


class BodyRefusedError(HTTPException):
    """A body over its size limit or too slow to arrive, found while it is read.

    An HTTPException, so that FastAPI's body parsing passes it on (any other error there
    becomes a generic 400); the app's handler answers it as problem+json. The connection is
    closed after the answer: the rest of the body may still be on its way.
    """

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(status_code, detail, headers={"Connection": "close"})


async def _engine_of(app: FastAPI) -> Engine:
    """The engine the app's routes get (tests override the dependency with their own)."""
    provider = app.dependency_overrides.get(engine_dependency, engine_dependency)
    engine = provider()
    return await engine if inspect.isawaitable(engine) else engine


async def _answer_error(
    scope: Scope, receive: Receive, send: Send, error: Exception, *, close: bool = True
) -> None:
    """Answer `error` with the app's own handler for it (the one problem+json shape, 503 for a
    database error), closing the connection (`close`) when a body was left unread."""
    handlers = scope["app"].exception_handlers
    handler = next((handlers[c] for c in type(error).__mro__ if c in handlers), None)
    if handler is None:
        raise error
    response: Response = await handler(Request(scope, receive), error)
    if close:
        response.headers["Connection"] = "close"
    await response(scope, receive, send)


class WriteGuardMiddleware:
    """Every request with a body: the key first, then the body's size and time.

    1. A write to a route of the app (every write needs a key) is authenticated before a byte
       of its body is read: FastAPI reads a JSON body before it runs any dependency, so without
       this an anonymous client could make the worker hold a 1 MiB body. 401 or 429 at once.
    2. A declared Content-Length over the limit is 413 before the body is read.
    3. While the body is read: 413 once it is over the limit (a chunked body), 408 when it has
       not all arrived `body_timeout` seconds after the app first asked for it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        default_limit: int,
        limits: dict[str, int],
        body_timeout: float,
    ) -> None:
        self.app = app
        self.default_limit = default_limit
        self.limits = limits
        self.body_timeout = body_timeout
        self.write_routes: list[tuple[re.Pattern[str], frozenset[str]]] | None = None

    def _needs_key(self, scope: Scope) -> bool:
        if self.write_routes is None:  # the app's routes, read on the first write
            self.write_routes = [
                (compile_path(path)[0], frozenset(methods - SAFE_METHODS))
                for context in iter_route_contexts(scope["app"].routes)
                if (methods := context.methods) and (path := context.path_format)
                if methods - SAFE_METHODS
            ]
        return any(
            scope["method"] in methods and pattern.match(scope["path"])
            for pattern, methods in self.write_routes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        if self._needs_key(scope):
            try:
                await authenticate(scope, await _engine_of(scope["app"]))
            except Exception as error:
                await _answer_error(scope, receive, send, error)
                return
        limit = self.limits.get(scope["path"], self.default_limit)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = problem_response(
                413,
                detail=f"The body is over {limit} bytes.",
                slug="payload-too-large",
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, self._guarded_receive(receive, limit), send)

    def _guarded_receive(self, receive: Receive, limit: int) -> Receive:
        received = 0
        deadline: float | None = None
        body_done = False

        async def guarded_receive() -> Message:
            nonlocal received, deadline, body_done
            if body_done:  # later calls wait for a disconnect: no deadline on those
                return await receive()
            if deadline is None:
                deadline = anyio.current_time() + self.body_timeout
            message: Message | None = None
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                message = await receive()
            if message is None:
                raise BodyRefusedError(
                    408, f"The body did not arrive within {self.body_timeout:g} s."
                )
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyRefusedError(413, f"The body is over {limit} bytes.")
                body_done = not message.get("more_body", False)
            return message

        return guarded_receive
