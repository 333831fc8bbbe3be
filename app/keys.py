"""API keys: made, listed, revoked, looked up and marked used. No HTTP (app/auth.py reads the
request's key and answers 401, 403 and 429).

A token is 32 random bytes (URL-safe base64), shown once when the key is made. Only its SHA-256
is stored: a fast hash is right for a high-entropy token, and a stolen database yields no usable
token. Scopes: `write` (observations and CSV imports) and `admin` (also categories, indicators,
regions, sources and units through bundle imports); `admin` includes `write`.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from app.db import write_transaction
from app.models import api_key_table, utcnow

TOKEN_BYTES = 32


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


def find_key(connection: Connection, token: str) -> ApiKeyInfo | None:
    """The key whose token this is (revoked or not), compared in constant time."""
    digest = hash_token(token)
    row = connection.execute(
        select(api_key_table).where(api_key_table.c.token_sha256 == digest)
    ).first()
    if row is None or not hmac.compare_digest(row.token_sha256, digest):
        return None
    return _info(row)


def touch_key(connection: Connection, key: ApiKeyInfo) -> None:
    """Record that the key was used, inside the write it authorised."""
    connection.execute(
        update(api_key_table).where(api_key_table.c.id == key.id).values(last_used_at=utcnow())
    )
