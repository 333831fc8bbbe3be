"""Request ids, structured access logs and Prometheus metrics.

- `X-Request-ID`: taken from the request when it is a sane token, else generated; echoed on the
  response and written on every log line of the request (asgi-correlation-id).
- Access log: one JSON line per request (python-json-logger) with method, route, path, status,
  duration and client. Headers are never logged, so an `Authorization` token never reaches a log.
- `/metrics`: request counts and latencies per route template (never per raw path, which would
  let clients create unbounded series) and database errors (prometheus-client). With several
  workers, set PROMETHEUS_MULTIPROC_DIR to an empty folder so that every worker's counts add up.
"""

import logging
import os
import re
import sys
import time
from urllib.parse import unquote

from asgi_correlation_id import CorrelationIdFilter, CorrelationIdMiddleware
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from pythonjsonlogger.json import JsonFormatter
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def route_template(scope: Scope) -> str:
    """`/api/v1/categories/{code}` for `/api/v1/categories/alpha`: bounded metric labels.

    Routers nest here, so the matched route knows only its own part of the path; the template
    is rebuilt from the path and its parameters, left to right.
    """
    if "route" not in scope:
        return "unmatched"
    segments = scope["path"].split("/")
    start = 0
    for name, value in (scope.get("path_params") or {}).items():
        for index in range(start, len(segments)):
            if unquote(segments[index]) == str(value):
                segments[index] = "{" + name + "}"
                start = index + 1
                break
    return "/".join(segments)


def valid_request_id(value: str) -> bool:
    """Client ids are echoed and logged: only short, plain tokens are kept (no log injection)."""
    return bool(_REQUEST_ID.match(value))


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for the app's loggers, each with the request id."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(levelname)s %(name)s %(message)s %(correlation_id)s",
            rename_fields={
                "levelname": "level",
                "name": "logger",
                "correlation_id": "request_id",
            },
            timestamp="time",
        )
    )
    handler.addFilter(CorrelationIdFilter(default_value="-"))
    for name in ("statsapi", "asgi_correlation_id"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level if name == "statsapi" else logging.ERROR)
        logger.propagate = False


class AccessLogMiddleware:
    """One JSON log line and one metrics sample per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed)
            if status == 503:
                DATABASE_ERRORS.labels("unavailable").inc()
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


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    return CorrelationIdMiddleware(
        app, header_name=REQUEST_ID_HEADER, validator=valid_request_id, update_request_header=True
    )


async def metrics(_request: Request) -> Response:
    """Prometheus metrics, summed over every worker when PROMETHEUS_MULTIPROC_DIR is set."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
