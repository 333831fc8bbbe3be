"""Who is writing: the request's API key, read from `Authorization: Bearer TOKEN`, or 401;
403 without the route's scope; 429 past the write limit of the key or the failed-attempt limit
of the address. Reads are public. The keys themselves are app/keys.py.

Tokens are never accepted in a query string and never logged.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.datastructures import Headers
from starlette.types import Scope as HTTPScope

from app import limiter
from app.blocking import run_db
from app.config import get_settings
from app.db import EngineDep
from app.errors import ForbiddenError, UnauthorizedError
from app.keys import ApiKeyInfo, Scope, find_key
from app.ratelimit import client_address

REALM = "statsapi"
KEY_STATE = "api_key"  # where `authenticate` keeps the request's key (scope["state"])
AUTH_FAILURES = "failed-authentication"  # the rate-limit bucket of 401s, per client address


def _unauthorized(detail: str, error: str | None) -> UnauthorizedError:
    challenge = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
    return UnauthorizedError(detail, headers={"WWW-Authenticate": challenge})


# Declares the scheme in OpenAPI (the docs' Authorize button); errors are ours, not its.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API key made with `statsapi keys create`: `Authorization: Bearer TOKEN`.",
)


def _bearer_token(header: str | None) -> str:
    if not header:
        raise _unauthorized("This operation needs an API key: Authorization: Bearer TOKEN.", None)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Send the key as Authorization: Bearer TOKEN.", "invalid_request")
    return token.strip()


async def _live_key(engine: Engine, header: str | None) -> ApiKeyInfo:
    token = _bearer_token(header)

    def lookup() -> ApiKeyInfo | None:
        with engine.connect() as connection:
            return find_key(connection, token)

    key = await run_db(engine, lookup)
    if key is None or key.revoked_at is not None:
        raise _unauthorized("The API key is unknown or revoked.", "invalid_token")
    return key


async def authenticate(scope: HTTPScope, engine: Engine) -> ApiKeyInfo:
    """The live key of this request, or 401; then the write rate limit of that key (429).

    Runs before the body is read (app/middleware.py `WriteGuardMiddleware`) and again from the
    `require` dependency, which finds the key kept in the request's state. An address with too
    many failed attempts gets 429 before any lookup, so a flood of bad tokens costs little.
    """
    state = scope.setdefault("state", {})
    if KEY_STATE in state:
        return cast(ApiKeyInfo, state[KEY_STATE])
    settings = get_settings()
    who = client_address(scope)
    limiter.refuse_if_over(settings.auth_failure_rate_limit, bucket=AUTH_FAILURES, who=who)
    try:
        key = await _live_key(engine, Headers(scope=scope).get("authorization"))
    except UnauthorizedError:
        limiter.count(settings.auth_failure_rate_limit, bucket=AUTH_FAILURES, who=who)
        raise
    limiter.check(settings.write_rate_limit, bucket="write", who=key.name)
    state[KEY_STATE] = key
    return key


def require(scope: Scope) -> Callable[..., Awaitable[ApiKeyInfo]]:
    """Dependency: the caller's key, which must be live and hold `scope` (401 or 403 if not)."""

    async def dependency(
        request: Request,
        engine: EngineDep,
        _scheme: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> ApiKeyInfo:
        key = await authenticate(request.scope, engine)
        if not key.allows(scope):
            raise ForbiddenError(
                f"The key {key.name!r} lacks the {scope.value!r} scope.",
                headers={
                    "WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope", '
                    f'scope="{scope.value}"'
                },
            )
        return key

    return dependency


WriteKey = Annotated[ApiKeyInfo, Depends(require(Scope.write))]
AdminKey = Annotated[ApiKeyInfo, Depends(require(Scope.admin))]
