"""Idempotency-Key for imports: a retried POST gets the first answer, never a second import.

The first successful answer is stored with a hash of the request, per API key. The same key
with the same request replays it; the same key with a different request is an error (422),
because the client has reused a key for something else.
"""

import hashlib
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from app.errors import InvalidParameterError
from app.models import idempotency_table, utcnow

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class StoredAnswer:
    status_code: int
    body: str


def request_hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def find_answer(
    connection: Connection, *, api_key_id: int, key: str, fingerprint: str
) -> StoredAnswer | None:
    """The stored answer for this key, or None; 422 if the key was used for another request."""
    row = connection.execute(
        select(idempotency_table).where(
            idempotency_table.c.api_key_id == api_key_id, idempotency_table.c.key == key
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
    return StoredAnswer(status_code=row.status_code, body=row.response_body)


def store_answer(
    connection: Connection, *, api_key_id: int, key: str, fingerprint: str, answer: StoredAnswer
) -> None:
    connection.execute(
        insert(idempotency_table).values(
            api_key_id=api_key_id,
            key=key,
            request_sha256=fingerprint,
            status_code=answer.status_code,
            response_body=answer.body,
            created_at=utcnow(),
        )
    )
