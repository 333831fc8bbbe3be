"""The codes that exist, cached per data version: checks filters without a query per code.

Reference data is small (tens to a few thousand codes). Each process keeps, for the newest data
version it has seen, the codes of each table a filter was checked against (read at the first
check); a write anywhere moves the version, so a stale set is never used.
"""

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from threading import Lock

from sqlalchemy import Connection, Table, select

from app.errors import InvalidParameterError
from app.filters import Selection

MAX_LISTED_ALLOWED = 20  # list every allowed code when there are this few; else close matches


@dataclass
class Catalog:
    version: int
    codes_by_table: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def codes(self, connection: Connection, table: Table) -> tuple[str, ...]:
        """The codes of `table`, read once per version (by a connection at this version)."""
        found = self.codes_by_table.get(table.name)
        if found is None:
            found = tuple(connection.scalars(select(table.c.code).order_by(table.c.code)))
            self.codes_by_table[table.name] = found
        return found

    def check(self, connection: Connection, selection: Selection) -> None:
        """422 for the first filter of `selection` naming a code its table does not hold."""
        for declared in selection.declared:
            if declared.checked_by is not None:
                known = self.codes(connection, declared.checked_by)
                check_codes(declared.name, selection.get(declared.name), known)


_cache: dict[str, Catalog] = {}
_lock = Lock()


def get_catalog(connection: Connection, *, version: int) -> Catalog:
    """The catalog of `version`, from the cache or a new, empty one."""
    key = str(connection.engine.url)
    cached = _cache.get(key)
    if cached is not None and cached.version == version:
        return cached
    catalog = Catalog(version)
    with _lock:
        _cache[key] = catalog
    return catalog


def check_codes(parameter: str, given: Sequence[str], known: tuple[str, ...]) -> None:
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
