"""Request ids, structured access logs and Prometheus metrics.

- `X-Request-ID`: taken from the request when it is a sane token, else generated (by
  app/middleware.py's `Edge`, which sets `request_id`); echoed on the response and written on
  every log line of the request.
- Logs: one JSON object per line (`JsonLines`). The access log has a line per request with
  method, route, path, status, duration and client. Headers are never logged, so an
  `Authorization` token never reaches a log.
- `/metrics`: request counts and latencies per method and route template (never per raw path
  or per arbitrary method, which would let clients create unbounded series) and database
  errors (prometheus-client). With several workers, set PROMETHEUS_MULTIPROC_DIR to an empty
  folder so that every worker's counts add up.
"""

import logging
import os
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi.routing import iter_route_contexts
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, compile_path
from starlette.types import Scope

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

access_log = logging.getLogger("statsapi.access")

REQUESTS = Counter(
    "statsapi_requests_total", "HTTP requests answered.", ["method", "route", "status"]
)
LATENCY = Histogram(
    "statsapi_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DATABASE_ERRORS = Counter(
    "statsapi_database_errors_total", "Requests answered 503 because of the database.", ["kind"]
)


UNMATCHED_ROUTE = "unmatched"
# Set in the scope of a request answered before routing (a 304, a 429: app/middleware.py
# `ReadGate`): its route label is found from its path (`RequestLog._template_of_path`).
ANSWERED_BEFORE_ROUTING = "statsapi.answered_before_routing"
OTHER_METHOD = "OTHER"
# Methods a client may send are any token; only these get a label of their own (RFC 9110's).
KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
# Metric children per (method, route, status): every part comes from a finite set (methods
# above, the app's ~30 route templates, the statuses it answers), so this never reaches its
# bound; the bound is there so that a mistake cannot turn it into a leak.
MAX_CACHED_SERIES = 2048


def route_templates(app: Any) -> dict[int, str]:
    """The full template of every route, by the id of the object that routing leaves in the
    scope: `scope["route"]` for a route, `scope["endpoint"]` (the mounted app) for a mount.

    A route included through a router knows only its own part of the path
    (`/categories/{code}`); FastAPI's route contexts know the whole (`/api/v1/categories/{code}`).
    """
    templates = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        template = context.path_format or getattr(route, "path_format", None)
        if not template:
            continue
        templates[id(route)] = template
        if isinstance(route, Mount):
            templates[id(route.app)] = template
    return templates


def route_template(scope: Scope, templates: dict[int, str]) -> str:
    """`/api/v1/categories/{code}` for `/api/v1/categories/alpha`; `unmatched` when no route
    matched: labels come from the app's routes, never from the path a client sent."""
    matched = scope.get("route") or scope.get("endpoint")
    if matched is None:
        return UNMATCHED_ROUTE
    return templates.get(id(matched), UNMATCHED_ROUTE)


def valid_request_id(value: str) -> bool:
    """Client ids are echoed and logged: only short, plain tokens are kept (no log injection)."""
    return bool(_REQUEST_ID.match(value))


# The id of the request being answered, for every log line written while it is (a context
# variable: each request runs in a task of its own).
request_id: ContextVar[str] = ContextVar("request_id", default="-")
# What a LogRecord holds of its own; any other attribute came in `extra=` and is written out.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message"}


class JsonLines(logging.Formatter):
    """A log record as one JSON object: level, logger, message, request_id, the fields given in
    `extra=`, a traceback when there is one, and the time (UTC, ISO 8601).

    Our own, on orjson, rather than python-json-logger with asgi-correlation-id's filter: those
    cost the access log 36 us a request in process, more than the rest of `/healthz`
    (docs/benchmarks.md); this writes the same lines in about 4."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": request_id.get(),
        }
        for name in record.__dict__.keys() - _RECORD_FIELDS:
            line[name] = record.__dict__[name]
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        line["time"] = datetime.fromtimestamp(record.created, UTC).isoformat()
        return orjson.dumps(line, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the app's loggers, each with the request id."""
    # No thread, process or task names on a record: no line writes them, and LogRecord looks
    # each one up on every record otherwise.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("statsapi")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


class RequestLog:
    """One JSON log line and one metrics sample per HTTP request (called by app/middleware.py's
    `Edge` when the request is answered)."""

    def __init__(self) -> None:
        self.templates: dict[int, str] | None = None  # the app's routes, read on first use
        self.paths: list[tuple[re.Pattern[str], str]] | None = None  # (path regex, template)
        self.series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _template_of_path(self, scope: Scope) -> str:
        """The template of the first GET route whose path matches (as routing would pick it),
        for a request answered before routing."""
        if self.paths is None:
            self.paths = [
                (compile_path(template)[0], template)
                for context in iter_route_contexts(scope["app"].routes)
                if (template := context.path_format) and "GET" in (context.methods or ())
            ]
        path = scope["path"]
        return next((t for regex, t in self.paths if regex.match(path)), UNMATCHED_ROUTE)

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The request counter and latency histogram children for these labels (cached:
        `labels()` costs a lock and a tuple of strings every time)."""
        key = (method, route, status)
        found = self.series.get(key)
        if found is None:
            found = (REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route))
            if len(self.series) < MAX_CACHED_SERIES:
                self.series[key] = found
        return found

    def record(self, scope: Scope, status: int, elapsed: float) -> None:
        if self.templates is None:
            self.templates = route_templates(scope["app"])
        if scope.get(ANSWERED_BEFORE_ROUTING):
            route = self._template_of_path(scope)
        else:
            route = route_template(scope, self.templates)
        method = scope["method"] if scope["method"] in KNOWN_METHODS else OTHER_METHOD
        requests, latency = self._series(method, route, status)
        requests.inc()
        latency.observe(elapsed)
        if status == 503:
            DATABASE_ERRORS.labels("unavailable").inc()
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "client": client[0] if client else None,
                },
            )


async def metrics(_request: Request) -> Response:
    """Prometheus metrics, summed over every worker when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
