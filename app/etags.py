"""ETags and their matching, for reads (`If-None-Match`) and writes (`If-Match`) alike."""

import hashlib
import re
from datetime import datetime
from email.utils import format_datetime

from app.config import get_settings


def make_etag(version: int, asked: str) -> str:
    """Strong ETag from the data version and what was asked for (path, query and
    representation); the same on every worker and server."""
    digest = hashlib.blake2b(asked.encode(), digest_size=8).hexdigest()
    return f'"v{version}-{digest}"'


# What RFC 9110 allows between an entity tag's quotes (etagc), without them: a strong tag a
# client wrote bare (`If-Match: r2`, copied from a body or a log without its quotes).
_BARE_TAG = re.compile(r"[!#-~\x80-\xff]+")


def _as_quoted(tag: str) -> str:
    """`r2` -> `"r2"`: RFC 9110 requires the quotes, but a bare tag can mean only the strong
    tag it spells, so it is read as that tag rather than refused as a mismatch. A `W/` tag, or
    anything holding a quote or a space, is left as written."""
    if _BARE_TAG.fullmatch(tag) and not tag.startswith("W/"):
        return f'"{tag}"'
    return tag


def etag_matches(header: str | None, etag: str, *, weak: bool = True) -> bool:
    """Whether an If-None-Match or If-Match header (a list of tags, or `*`) names `etag`.

    `weak`: compare as If-None-Match does, a `W/` tag matching its strong twin; If-Match
    compares strongly (RFC 9110 13.1.1), so a weak tag never matches there. A strong tag
    written without its quotes (`r2`) is read as the quoted tag (`"r2"`)."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = {_as_quoted(tag.strip()) for tag in header.split(",")}
    if weak:
        candidates = {tag.removeprefix("W/") for tag in candidates}
    return etag in candidates


def cache_headers(etag: str, changed_at: datetime | None) -> dict[str, str]:
    """ETag, Cache-Control and (when known) Last-Modified of a read's answer."""
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={get_settings().cache_max_age}",
    }
    if changed_at is not None:
        headers["Last-Modified"] = format_datetime(changed_at, usegmt=True)
    return headers
