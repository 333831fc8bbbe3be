"""Idempotency-Key for imports: a retried POST gets the first answer, never a second import.

The first successful answer's summary (the answer without its per-row `rows`) is stored with a
hash of the request, per API key, for `idempotency_ttl_hours` (24 by default). The same key
with the same request replays the summary; the same key with a different request is an error
(422), because the client has reused a key for something else. Once expired, a key is free
again; expired records of an API key are deleted whenever it stores a new answer, so storage
stays bounded by the write rate limit times the time to live, at a few hundred bytes a record.
"""

import hashlib
from datetime import timedelta

from sqlalchemy import Connection, delete, insert, select

from app.config import get_settings
from app.errors import InvalidParameterError
from app.models import idempotency_table, utcnow

MAX_KEY_LENGTH = 200
REPLAY_HEADER = "Idempotent-Replayed"
STORED_STATUS = 200  # only a successful answer is kept (the table's `status_code`)


def request_hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def find_answer(
    connection: Connection, *, api_key_id: int, key: str, fingerprint: str
) -> str | None:
    """The stored answer's JSON summary for this key, or None (also once expired); 422 if the
    key was used for another request."""
    row = connection.execute(
        select(idempotency_table).where(
            idempotency_table.c.api_key_id == api_key_id,
            idempotency_table.c.key == key,
            idempotency_table.c.expires_at > utcnow(),
        )
    ).first()
    if row is None:
        return None
    if row.request_sha256 != fingerprint:
        raise InvalidParameterError.for_field(
            "header",
            "Idempotency-Key",
            "this key was used for a different request; use a new key for a new import",
        )
    return str(row.response_summary)


def store_answer(
    connection: Connection, *, api_key_id: int, key: str, fingerprint: str, summary: str
) -> None:
    """Keep an answer's JSON summary until it expires, deleting this API key's expired ones."""
    now = utcnow()
    connection.execute(
        delete(idempotency_table).where(
            idempotency_table.c.api_key_id == api_key_id, idempotency_table.c.expires_at <= now
        )
    )
    connection.execute(
        insert(idempotency_table).values(
            api_key_id=api_key_id,
            key=key,
            request_sha256=fingerprint,
            status_code=STORED_STATUS,
            response_summary=summary,
            created_at=now,
            expires_at=now + timedelta(hours=get_settings().idempotency_ttl_hours),
        )
    )
