"""The codes that exist, cached per data version: checks filters without a query per code.

Reference data is small (tens to a few thousand codes). Each process keeps the set for the
newest data version it has seen; a write anywhere moves the version, so a stale set is never used.
"""

import difflib
from dataclasses import dataclass
from threading import Lock

from sqlalchemy import Connection, Table, select

from app.errors import InvalidParameterError
from app.models import category_table, indicator_table, region_table, source_table

MAX_LISTED_ALLOWED = 20  # list every allowed code when there are this few; else close matches


@dataclass(frozen=True)
class Catalog:
    version: int
    categories: tuple[str, ...]
    indicators: tuple[str, ...]
    regions: tuple[str, ...]
    sources: tuple[str, ...]


_cache: dict[str, Catalog] = {}
_lock = Lock()


def _codes(connection: Connection, table: Table) -> tuple[str, ...]:
    return tuple(connection.scalars(select(table.c.code).order_by(table.c.code)))


def get_catalog(connection: Connection, *, version: int) -> Catalog:
    """The codes as of `version`, from the cache or read afresh (four small statements)."""
    key = str(connection.engine.url)
    cached = _cache.get(key)
    if cached is not None and cached.version == version:
        return cached
    catalog = Catalog(
        version=version,
        categories=_codes(connection, category_table),
        indicators=_codes(connection, indicator_table),
        regions=_codes(connection, region_table),
        sources=_codes(connection, source_table),
    )
    with _lock:
        _cache[key] = catalog
    return catalog


def check_codes(parameter: str, given: list[str], known: tuple[str, ...]) -> None:
    """422 naming `parameter` when any code in `given` is unknown, with allowed or close codes."""
    unknown = [code for code in given if code not in known]
    if not unknown:
        return
    details: dict[str, object] = {"unknown": unknown}
    if len(known) <= MAX_LISTED_ALLOWED:
        details["allowed"] = list(known)
    else:
        matches = {code: difflib.get_close_matches(code, known, n=5) for code in unknown}
        details["close_matches"] = matches
    listed = ", ".join(repr(code) for code in unknown)
    raise InvalidParameterError.for_field("query", parameter, f"unknown code {listed}", **details)
