"""One error shape: RFC 9457 problem details (`application/problem+json`), made here only.

Every error the API answers goes through `problem_response`: our own (`ProblemError` and its
kinds), the framework's (404 for an unknown route, 405, 422 from parameter validation) and the
database's (unreachable or locked: 503 with Retry-After). A body never carries a stack trace or
an internal name. A 422 lists each fault in `errors`, naming the parameter (`field`) and where it
was (`in`: query, path, header or body).
"""

import logging
import re
from collections.abc import Sequence
from functools import cache
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:statsapi:problem:"
RETRY_AFTER_SECONDS = 2

log = logging.getLogger("statsapi.errors")


class ProblemError(Exception):
    """An error with an HTTP status, raised anywhere below the routers. Each kind states its
    status and its problem type in its class line: `class X(ProblemError, status=404, slug=...)`."""

    status = 400
    slug = "bad-request"

    def __init_subclass__(cls, *, status: int = 0, slug: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.status = status or cls.status
        cls.slug = slug or cls.slug

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = headers or {}
        self.extensions = extensions


class NotFoundError(ProblemError, status=404, slug="not-found"):
    pass


class UnauthorizedError(ProblemError, status=401, slug="unauthorized"):
    pass


class ForbiddenError(ProblemError, status=403, slug="forbidden"):
    pass


class InvalidParameterError(ProblemError, status=422, slug="validation-error"):
    """A parameter that is well-formed but wrong (an unknown code, an empty range)."""

    @classmethod
    def for_field(
        cls, location: str, name: str, message: str, **details: Any
    ) -> "InvalidParameterError":
        error = {"field": name, "in": location, "message": message, **details}
        return cls(f"{location} parameter {name!r}: {message}", errors=[error])


class PreconditionFailedError(ProblemError, status=412, slug="precondition-failed"):
    """If-Match no longer matches: someone else changed the resource first."""


class UnsupportedMediaTypeError(ProblemError, status=415, slug="unsupported-media-type"):
    pass


class ServiceUnavailableError(ProblemError, status=503, slug="service-unavailable"):
    pass


class RateLimitedError(Exception):
    """Over a rate limit (app/limiter.py); knows no HTTP: its handler below makes the 429."""

    def __init__(
        self, *, limit: str, bucket: str, allowed: int, window_seconds: int, retry_after: int
    ) -> None:
        super().__init__(f"more than {limit} {bucket} requests")
        self.limit = limit
        self.bucket = bucket
        self.allowed = allowed
        self.window_seconds = window_seconds
        self.retry_after = retry_after


def problem_response(
    status: int,
    *,
    detail: str | None = None,
    slug: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """The problem+json response for `status`; the one place that shapes an error body."""
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"{PROBLEM_TYPE_PREFIX}{slug}" if slug else "about:blank",
        "title": phrase,
        "status": status,
        "detail": detail or phrase,
    }
    if instance:
        body["instance"] = instance
    body.update({key: value for key, value in extensions.items() if value is not None})
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for item in error.errors():
        location = [str(part) for part in item.get("loc", ())]
        where = location[0] if location else "request"
        # A parameter is named alone (`qualifier`, not `qualifier.0`); a body field by its path.
        parts = location[1:2] if where in ("query", "path", "header", "cookie") else location[1:]
        name = ".".join(parts) or where
        entry: dict[str, Any] = {"field": name, "in": where, "message": item.get("msg", "")}
        context = item.get("ctx") or {}
        if "expected" in context:
            entry["allowed"] = str(context["expected"])
        errors.append(entry)
    return errors


@cache
def _path_methods(app: FastAPI) -> list[tuple[re.Pattern[str], list[str]]]:
    """(path pattern, methods) for every documented path, from the app's OpenAPI document."""
    table = []
    for template, operations in app.openapi()["paths"].items():
        pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
        table.append((re.compile(f"^{pattern}$"), sorted(m.upper() for m in operations)))
    return table


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    methods: set[str] = set()
    for pattern, allowed in _path_methods(app):
        if pattern.match(path):
            methods.update(allowed)
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through `problem_response`."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, error: ProblemError) -> Response:
        return problem_response(
            error.status,
            detail=error.detail,
            slug=error.slug,
            instance=request.url.path,
            headers=error.headers,
            errors=error.errors,
            **error.extensions,
        )

    @app.exception_handler(RateLimitedError)
    async def _rate_limited(request: Request, error: RateLimitedError) -> Response:
        retry_after = error.retry_after
        return problem_response(
            429,
            detail=f"More than {error.limit} {error.bucket} requests; retry in {retry_after} s.",
            slug="too-many-requests",
            instance=request.url.path,
            headers={
                "Retry-After": str(retry_after),
                "RateLimit-Policy": f"{error.allowed};w={error.window_seconds}",
                "RateLimit": f"limit={error.allowed}, remaining=0, reset={retry_after}",
            },
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> Response:
        errors = _validation_errors(error)
        fields = ", ".join(sorted({f"{e['in']} parameter {e['field']!r}" for e in errors}))
        return problem_response(
            422,
            detail=f"Invalid {fields}." if fields else "Invalid request.",
            slug="validation-error",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 400 and error.__cause__ is not None:
            # FastAPI's body parsing failed on something other than JSON syntax (bytes that are
            # not UTF-8): answered as it answers malformed JSON, a 422 naming the body, so a
            # client meets one status for a body the operation cannot read.
            reason = "is not JSON" + (
                " (not UTF-8)" if isinstance(error.__cause__, UnicodeDecodeError) else ""
            )
            return problem_response(
                422,
                detail=f"The body {reason}.",
                slug="validation-error",
                instance=request.url.path,
                errors=[{"field": "body", "in": "body", "message": reason}],
            )
        detail = error.detail if isinstance(error.detail, str) else None
        headers = dict(error.headers or {})
        if error.status_code == 405:
            # Nested routers report only the first matching route's methods; list them all.
            headers["Allow"] = ", ".join(_allowed_methods(app, request.url.path))
        return problem_response(
            error.status_code, detail=detail, instance=request.url.path, headers=headers
        )

    # Input the database refuses (a value out of its range, bytes it cannot store) is the
    # request's fault, not the service's; a constraint that fails is a conflict with the data.
    refused = {
        DataError: (
            422,
            "validation-error",
            "A value in the request cannot be stored or compared by the database.",
        ),
        IntegrityError: (
            409,
            "conflict",
            "The change conflicts with the stored data; reload and try again.",
        ),
    }

    async def _refused(request: Request, error: Exception) -> Response:
        status, slug, detail = next(v for k, v in refused.items() if isinstance(error, k))
        orig = getattr(error, "orig", None)
        log.warning("%s on %s: %s", type(error).__name__, request.url.path, type(orig).__name__)
        return problem_response(status, detail=detail, slug=slug, instance=request.url.path)

    for kind in refused:
        app.add_exception_handler(kind, _refused)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(PoolTimeoutError)
    async def _database_unavailable(request: Request, error: Exception) -> Response:
        # Unreachable, restarting, locked past the busy timeout, or a statement timeout: the
        # driver's own error (QueryCanceled, OperationalError) says which, on every read path
        # (app/prepared.py wraps its driver errors as Core does).
        cause = error.orig if isinstance(error, DBAPIError) else error
        log.warning(
            "database unavailable on %s: %s",
            request.url.path,
            type(cause).__name__,
            extra={"connection_invalidated": getattr(error, "connection_invalidated", False)},
        )
        return problem_response(
            503,
            detail="The database is unavailable or busy; retry shortly.",
            slug="database-unavailable",
            instance=request.url.path,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return problem_response(500, slug="internal-error", instance=request.url.path)
