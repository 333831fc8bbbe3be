"""Answers kept in memory per data version: a GET asked again before the next write is sent
as it was first sent, with no query run but the data version's.

The key is what the answer's ETag is made of: the data version, the path, the query and the
representation (app/reads.py `Asked`). A kept answer is therefore exactly the one the route
would give again: every write moves the version, and older keys are never asked for again
(they age out). Only the `200` answers to the API's GETs are kept, and only when their ETag
names the version of the key: a write that landed between the version read before routing and
the route's own read made the route's answer newer than its key, and it is not kept.

Keys come from client input, so the store is bounded: at most `max_bytes` of bodies and
headers per worker (`STATSAPI_ANSWER_CACHE_BYTES`, 8 MiB by default; 0 turns it off), the
least recently used dropped first; an answer over an eighth of that (a large page or CSV, an
export) is never kept.
"""

from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import Message, Send

Key = tuple[int, str]  # (data version, what was asked)


@dataclass(frozen=True)
class Kept:
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(name) + len(value) for name, value in self.headers)

    async def send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(self.headers)})
        await send({"type": "http.response.body", "body": self.body})


class AnswerCache:
    """Answers by key, least recently used first out, within `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.max_answer = max_bytes // 8
        self.kept: OrderedDict[Key, Kept] = OrderedDict()
        self.size = 0

    def get(self, key: Key) -> Kept | None:
        kept = self.kept.get(key)
        if kept is not None:
            self.kept.move_to_end(key)
        return kept

    def put(self, key: Key, kept: Kept) -> None:
        size = kept.size
        if size > self.max_answer:
            return
        replaced = self.kept.pop(key, None)
        if replaced is not None:
            self.size -= replaced.size
        self.kept[key] = kept
        self.size += size
        while self.size > self.max_bytes:
            _, dropped = self.kept.popitem(last=False)
            self.size -= dropped.size

    def recording(self, key: Key, etag: str, send: Send) -> Send:
        """`send`, keeping the answer under `key` when it is a whole `200` whose ETag is
        `etag` (the key's own) and small enough to keep."""
        expected = etag.encode("latin-1")
        headers: list[tuple[bytes, bytes]] | None = None
        chunks: list[bytes] = []
        size = 0

        async def send_and_keep(message: Message) -> None:
            nonlocal headers, size
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", ()))
                if message["status"] == 200 and (b"etag", expected) in raw:
                    headers = raw
            elif message["type"] == "http.response.body" and headers is not None:
                body = message.get("body", b"")
                size += len(body)
                if size > self.max_answer:
                    headers = None  # too large to keep: sent, not kept
                else:
                    chunks.append(body)
                    if not message.get("more_body", False):
                        self.put(key, Kept(headers, b"".join(chunks)))
            await send(message)

        return send_and_keep
