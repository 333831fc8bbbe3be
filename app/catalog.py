"""The codes that exist, cached per data version: checks filters without a query per code.

Reference data is small (tens to a few thousand codes). Each process keeps, for the newest data
version it has seen, the codes of each table a filter was checked against, with the names a
filter accepts in their place (read at the first check); a write anywhere moves the version, so
a stale set is never used.

Names (`region=武进区`, `region=wujin district`) become their codes here, before a statement's
shape is taken: the statement cache sees codes only, so names add no shapes.
"""

import difflib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from threading import Lock

from sqlalchemy import Connection, Table, select

from app.errors import InvalidParameterError
from app.filters import Filter, Selection

MAX_LISTED_ALLOWED = 20  # list every allowed code when there are this few; else close matches


@dataclass(frozen=True)
class Entries:
    """A table's codes, and what a name given in their place stands for."""

    codes: tuple[str, ...]
    # Each code's names, as stored (for error messages), in the filter's column order.
    labels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Case-folded name -> its code; a name two codes share stands for neither and is left out.
    by_name: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Sequence[Sequence[str]]) -> "Entries":
        """From rows of (code, name, ...) in code order."""
        codes = tuple(row[0] for row in rows)
        labels = {row[0]: tuple(name for name in row[1:] if name) for row in rows}
        named: dict[str, set[str]] = defaultdict(set)
        for code, names in labels.items():
            for name in names:
                named[name.casefold()].add(code)
        by_name = {name: next(iter(found)) for name, found in named.items() if len(found) == 1}
        return cls(codes, labels, by_name)

    @cached_property
    def known(self) -> frozenset[str]:
        return frozenset(self.codes)

    def code_of(self, given: str) -> str | None:
        """The code `given` is or names, or None."""
        if given in self.known:
            return given
        return self.by_name.get(given.casefold())


@dataclass
class Catalog:
    version: int
    entries_by_table: dict[tuple[str, tuple[str, ...]], Entries] = field(default_factory=dict)

    def entries(
        self, connection: Connection, table: Table, named_by: tuple[str, ...] = ()
    ) -> Entries:
        """The codes (and names) of `table`, read once per version (by a connection at this
        version)."""
        key = (table.name, named_by)
        found = self.entries_by_table.get(key)
        if found is None:
            columns = [table.c.code, *(table.c[name] for name in named_by)]
            rows = connection.execute(select(*columns).order_by(table.c.code)).all()
            found = Entries.of(rows) if named_by else Entries(tuple(row[0] for row in rows))
            self.entries_by_table[key] = found
        return found

    def resolve(self, connection: Connection, selection: Selection) -> Selection:
        """`selection` with each name given replaced by its code; 422 for the first filter
        naming a code or name its table does not hold."""
        resolved = {}
        for declared in selection.declared:
            if declared.checked_by is not None and selection.get(declared.name):
                entries = self.entries(connection, declared.checked_by, declared.named_by)
                resolved[declared.name] = resolve_codes(
                    declared, selection.get(declared.name), entries
                )
        if all(selection.get(name) == codes for name, codes in resolved.items()):
            return selection
        return Selection(selection.declared, {**selection.values, **resolved})


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


def resolve_codes(declared: Filter, given: Sequence[str], entries: Entries) -> tuple[str, ...]:
    """The codes that `given` are or name, each once, in order; 422 naming the filter when
    any is unknown, with the allowed codes (and their names) or close matches."""
    found = {value: entries.code_of(value) for value in given}
    unknown = [value for value, code in found.items() if code is None]
    if not unknown:
        return tuple(dict.fromkeys(code for code in found.values() if code is not None))
    details: dict[str, object] = {"unknown": unknown}
    what = "code or name" if declared.named_by else "code"
    listed = ", ".join(repr(value) for value in unknown)
    message = f"unknown {what} {listed}"
    if len(entries.codes) <= MAX_LISTED_ALLOWED:
        details["allowed"] = list(entries.codes)
        if declared.named_by:
            details["names"] = {code: list(names) for code, names in entries.labels.items()}
            choices = "; ".join(
                f"{code} ({', '.join(names)})" for code, names in entries.labels.items()
            )
            message = f"{message}; give a code or a name: {choices}"
    else:
        candidates = [*entries.codes, *(n for names in entries.labels.values() for n in names)]
        matches = {value: difflib.get_close_matches(value, candidates, n=5) for value in unknown}
        details["close_matches"] = matches
    raise InvalidParameterError.for_field("query", declared.name, message, **details)
