"""API keys for the write path: reads are public, every write needs a key.

A token is 32 random bytes (URL-safe base64), shown once when the key is made. Only its SHA-256
is stored: a fast hash is right for a high-entropy token, and a stolen database yields no usable
token. Requests send `Authorization: Bearer TOKEN`; tokens are never accepted in a query string
and never logged. Scopes: `write` (observations and CSV imports) and `admin` (also categories,
indicators, regions, sources and units through bundle imports); `admin` includes `write`.
"""

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Engine, insert, select, update
from starlette.datastructures import Headers
from starlette.types import Scope as HTTPScope

from app import ratelimit
from app.config import get_settings
from app.db import EngineDep, write_transaction
from app.errors import ForbiddenError, UnauthorizedError
from app.models import api_key_table, utcnow
from app.reads import run_db

TOKEN_BYTES = 32
REALM = "statsapi"
KEY_STATE = "api_key"  # where `authenticate` keeps the request's key (scope["state"])
AUTH_FAILURES = "failed-authentication"  # the rate-limit bucket of 401s, per client address


class Scope(StrEnum):
    write = "write"
    admin = "admin"


class KeyExistsError(ValueError):
    """A key with that name exists already."""


@dataclass(frozen=True)
class ApiKeyInfo:
    id: int
    name: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.admin in self.scopes


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(row: Any) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        scopes=frozenset(row.scopes.split()),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def create_key(engine: Engine, *, name: str, scopes: set[Scope]) -> str:
    """Make a key and return its token (the only time it exists outside the caller)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    with write_transaction(engine) as connection:
        taken = connection.execute(
            select(api_key_table.c.id).where(api_key_table.c.name == name)
        ).first()
        if taken:
            raise KeyExistsError(name)
        connection.execute(
            insert(api_key_table).values(
                name=name,
                token_sha256=hash_token(token),
                scopes=" ".join(sorted(scopes)),
                created_at=utcnow(),
            )
        )
    return token


def list_keys(engine: Engine) -> list[ApiKeyInfo]:
    """Every key, by name (hashes stay inside)."""
    with engine.connect() as connection:
        rows = connection.execute(select(api_key_table).order_by(api_key_table.c.name))
        return [_info(row) for row in rows]


def revoke_key(engine: Engine, *, name: str) -> bool:
    """Revoke the key called `name`; False when there is no such key."""
    with write_transaction(engine) as connection:
        result = connection.execute(
            update(api_key_table)
            .where(api_key_table.c.name == name, api_key_table.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        if result.rowcount:
            return True
        exists = connection.execute(
            select(api_key_table.c.id).where(api_key_table.c.name == name)
        ).first()
        return exists is not None  # revoking a revoked key is a no-op, not an error


def _unauthorized(detail: str, error: str | None) -> UnauthorizedError:
    challenge = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
    return UnauthorizedError(detail, headers={"WWW-Authenticate": challenge})


def find_key(connection: Connection, token: str) -> ApiKeyInfo | None:
    """The live key whose token this is, compared in constant time."""
    digest = hash_token(token)
    row = connection.execute(
        select(api_key_table).where(api_key_table.c.token_sha256 == digest)
    ).first()
    if row is None or not hmac.compare_digest(row.token_sha256, digest):
        return None
    return _info(row)


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
    who = ratelimit.client_address(scope)
    ratelimit.refuse_if_over(settings.auth_failure_rate_limit, bucket=AUTH_FAILURES, who=who)
    try:
        key = await _live_key(engine, Headers(scope=scope).get("authorization"))
    except UnauthorizedError:
        ratelimit.count(settings.auth_failure_rate_limit, bucket=AUTH_FAILURES, who=who)
        raise
    ratelimit.check(settings.write_rate_limit, bucket="write", who=key.name)
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


def touch_key(connection: Connection, key: ApiKeyInfo) -> None:
    """Record that the key was used, inside the write it authorised."""
    connection.execute(
        update(api_key_table).where(api_key_table.c.id == key.id).values(last_used_at=utcnow())
    )
