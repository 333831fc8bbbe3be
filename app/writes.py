"""Every change to an observation goes through here: imports, the seed, PUT and DELETE.

A change writes the new state to `observation` and appends it to `observation_revision`, in the
caller's write transaction; nothing is ever overwritten without a revision, and a delete keeps
the last state in the history. Revision numbers count up per indicator x region x year across
deletes and re-creations, so an ETag built from one never comes back for a different state.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)

from app import provenance, queries, sanity
from app.db import write_transaction
from app.errors import InvalidParameterError, NotFoundError, PreconditionFailedError
from app.etags import etag_matches
from app.keys import ApiKeyInfo, touch_key
from app.models import (
    data_version_table,
    indicator_table,
    observation_table,
    region_table,
    revision_table,
    source_table,
    unit_table,
    utcnow,
)

Action = Literal["created", "changed", "unchanged"]
STATE_FIELDS = ("value", "unit_id", "qualifier", "source_id", "quote", "note", "derived")
CHUNK = 500  # keys per IN list, whatever the size of the import
COVER_SLACK = 2  # _matching reads at most twice as many cells as it was asked for

SeriesYear = tuple[int, int, int]  # indicator_id, region_id, year


@dataclass(frozen=True)
class NewState:
    key: SeriesYear
    value: Decimal
    unit_id: int
    qualifier: str
    source_id: int
    quote: str
    note: str | None
    derived: bool = False

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STATE_FIELDS}


def _key_columns(table: Any) -> Any:
    return tuple_(table.c.indicator_id, table.c.region_id, table.c.year)


def _identity(key: SeriesYear) -> dict[str, int]:
    return {"indicator_id": key[0], "region_id": key[1], "year": key[2]}


def _chunks(keys: Sequence[SeriesYear]) -> Iterator[list[SeriesYear]]:
    """The keys in order (neighbours share indicator and region), CHUNK at a time."""
    ordered = sorted(set(keys))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _matching(table: Any, keys: list[SeriesYear]) -> Any:
    """A WHERE clause that finds these keys' rows (and, when it is cheaper, a few more).

    Keys from an import usually fill a block (some indicators x regions x years): then three
    short IN lists find them, a statement that psycopg caches and PostgreSQL plans at once
    (a 20,000-row import read its rows in 0.5 s this way, 2.5 s with the exact list of
    triples). The block may hold at most COVER_SLACK times as many cells as there are keys,
    so the rows read stay bounded by the import's size; otherwise the exact list."""
    indicators, regions, years = ({key[i] for key in keys} for i in range(3))
    if len(indicators) * len(regions) * len(years) <= COVER_SLACK * len(keys):
        return and_(
            table.c.indicator_id.in_(indicators),
            table.c.region_id.in_(regions),
            table.c.year.in_(years),
        )
    return _key_columns(table).in_(keys)


def current_rows(connection: Connection, keys: Sequence[SeriesYear]) -> dict[SeriesYear, Any]:
    """The published rows for these keys (absent keys are missing from the result)."""
    found: dict[SeriesYear, Any] = {}
    for chunk in _chunks(keys):
        wanted = set(chunk)
        rows = connection.execute(
            select(observation_table).where(_matching(observation_table, chunk))
        )
        for row in rows:
            key = (row.indicator_id, row.region_id, row.year)
            if key in wanted:
                found[key] = row._mapping
    return found


def _last_revisions(connection: Connection, keys: Sequence[SeriesYear]) -> dict[SeriesYear, int]:
    numbers: dict[SeriesYear, int] = {}
    for chunk in _chunks(keys):
        wanted = set(chunk)
        rows = connection.execute(
            select(
                revision_table.c.indicator_id,
                revision_table.c.region_id,
                revision_table.c.year,
                func.max(revision_table.c.revision),
            )
            .where(_matching(revision_table, chunk))
            .group_by(
                revision_table.c.indicator_id, revision_table.c.region_id, revision_table.c.year
            )
        )
        numbers.update({key: r[3] for r in rows if (key := (r[0], r[1], r[2])) in wanted})
    return numbers


def upsert_observations(
    connection: Connection, states: Sequence[NewState], *, recorded_by: str
) -> list[Action]:
    """Create or change each observation; returns what happened to each, in order.

    A bounded number of statements whatever the number of states: existing rows and revision
    numbers are read CHUNK keys at a time, and the inserts, updates and revisions are each one
    executemany, so a large import holds the write lock for seconds (app/config.py,
    `max_import_rows`), not for one round trip per row."""
    keys = [state.key for state in states]
    existing = current_rows(connection, keys)
    new_keys = [key for key in keys if key not in existing]
    history = _last_revisions(connection, new_keys) if new_keys else {}
    now = utcnow()
    stamp = {"recorded_at": now, "recorded_by": recorded_by}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    revisions: list[dict[str, Any]] = []
    actions: list[Action] = []
    changed: list[dict[str, Any]] = []  # the insert or update of each revision, in order
    for state in states:
        current = existing.get(state.key)
        fields = state.fields()
        if current is None:
            revision = history.get(state.key, 0) + 1
            row = {**_identity(state.key), **fields, "revision": revision} | {
                "created_at": now,
                "updated_at": now,
            }
            inserts.append(row)
            action: Action = "created"
        elif any(current[name] != value for name, value in fields.items()):
            revision = current["revision"] + 1
            row = {"row_id": current["id"], **fields, "revision": revision, "updated_at": now}
            updates.append(row)
            action = "changed"
        else:
            actions.append("unchanged")
            continue
        revisions.append(
            {**_identity(state.key), **fields, **stamp, "revision": revision}
            | {"action": "create" if action == "created" else "update"}
        )
        changed.append(row)
        actions.append(action)
    first = reserve_changes(connection, len(revisions))
    for number, (row, recorded) in enumerate(zip(changed, revisions, strict=True), start=first):
        row["change_seq"] = recorded["change_seq"] = number
    if inserts:
        connection.execute(insert(observation_table), inserts)
    if updates:
        connection.execute(
            update(observation_table).where(observation_table.c.id == bindparam("row_id")),
            updates,
        )
    if revisions:
        connection.execute(insert(revision_table), revisions)
    return actions


def delete_observation(connection: Connection, current: Any, *, recorded_by: str) -> None:
    """Remove a published observation, keeping its last state in the history."""
    connection.execute(delete(observation_table).where(observation_table.c.id == current["id"]))
    connection.execute(
        insert(revision_table).values(
            **{name: current[name] for name in ("indicator_id", "region_id", "year")},
            **{name: current[name] for name in STATE_FIELDS},
            revision=current["revision"] + 1,
            change_seq=reserve_changes(connection, 1),
            action="delete",
            recorded_at=utcnow(),
            recorded_by=recorded_by,
        )
    )


# --- single values (PUT and DELETE on /observations/{indicator}/{region}/{year}) ----------


def observation_etag(revision: int) -> str:
    """The ETag of one observation's state; revision numbers never repeat for a key."""
    return f'"r{revision}"'


def _etag_matches(header: str, current: Any) -> bool:
    """If-Match compares strongly (app/etags.py); `*` matches any current state."""
    if current is None:
        return False
    return etag_matches(header, observation_etag(current["revision"]), weak=False)


def check_preconditions(current: Any, *, if_match: str | None, if_none_match: str | None) -> None:
    """412 when If-Match names a state that is no longer current (or If-None-Match: * and the
    value exists): two editors never silently overwrite each other."""
    if if_match is not None and not _etag_matches(if_match, current):
        found = observation_etag(current["revision"]) if current is not None else "no value"
        raise PreconditionFailedError(
            f"If-Match {if_match} does not match the current state ({found}); "
            "GET it again, then retry with its ETag.",
            current_etag=observation_etag(current["revision"]) if current is not None else None,
        )
    if if_none_match is not None and if_none_match.strip() == "*" and current is not None:
        raise PreconditionFailedError(
            "If-None-Match: * but a value exists already.",
            current_etag=observation_etag(current["revision"]),
        )


@dataclass(frozen=True)
class ResolvedKey:
    key: SeriesYear
    indicator_unit_id: int
    measure: tuple[str, str]  # the indicator's unit code and measure type (app/sanity.py)


def _resolve_key(connection: Connection, *, indicator: str, region: str, year: int) -> ResolvedKey:
    """The ids behind a path's codes; 404 naming the unknown one."""
    found = connection.execute(
        select(
            indicator_table.c.id,
            indicator_table.c.unit_id,
            indicator_table.c.measure_type,
            unit_table.c.code.label("unit"),
        )
        .join(unit_table, indicator_table.c.unit_id == unit_table.c.id)
        .where(indicator_table.c.code == indicator)
    ).first()
    if found is None:
        raise NotFoundError(f"no indicator with code {indicator!r}")
    region_id = connection.execute(
        select(region_table.c.id).where(region_table.c.code == region)
    ).scalar()
    if region_id is None:
        raise NotFoundError(f"no region with code {region!r}")
    return ResolvedKey(
        key=(found.id, region_id, year),
        indicator_unit_id=found.unit_id,
        measure=(found.unit, found.measure_type),
    )


def _code_id(connection: Connection, table: Any, code: str, field: str) -> int:
    found = connection.execute(select(table.c.id).where(table.c.code == code)).scalar()
    if found is None:
        raise InvalidParameterError.for_field("body", field, f"unknown code {code!r}")
    return int(found)


# What to do about a source the server does not know, said wherever one is cited.
UNKNOWN_SOURCE_HINT = (
    "register it with its text in a bundle's `sources:` (POST /imports; a write key may add a "
    "new source), or ask an admin to define it"
)


@dataclass(frozen=True)
class RequestedValue:
    """One value as a client sends it: codes (source, unit), not ids."""

    value: Decimal
    qualifier: str
    source: str
    quote: str
    note: str | None
    unit: str | None  # None: the indicator's own unit
    derived: bool = False


def _check_provenance(
    connection: Connection, resolved: ResolvedKey, requested: RequestedValue
) -> None:
    """422 naming each field that breaks the provenance or sense rules (app/provenance.py)."""
    source = provenance.stored_sources(connection, [requested.source]).get(requested.source)
    if source is None:
        raise InvalidParameterError.for_field(
            "body", "source", f"unknown code {requested.source!r}; {UNKNOWN_SOURCE_HINT}"
        )
    claim = provenance.Claim(
        year=resolved.key[2],
        value=requested.value,
        qualifier=requested.qualifier,
        quote=requested.quote,
        note=requested.note,
        derived=requested.derived,
        measure=sanity.Measure(*resolved.measure, unit=requested.unit),
    )
    problems = provenance.check(claim, source)
    if problems:
        raise InvalidParameterError(
            "; ".join(f"body parameter {p.field!r}: {p.message}" for p in problems),
            errors=[{"field": p.field, "in": "body", "message": p.message} for p in problems],
        )


def _new_state(
    connection: Connection, resolved: ResolvedKey, requested: RequestedValue
) -> NewState:
    """The state a PUT asks for, with its codes and provenance checked (422 naming the body
    field)."""
    unit = requested.unit
    unit_id = _code_id(connection, unit_table, unit, "unit") if unit else None
    _check_provenance(connection, resolved, requested)
    return NewState(
        key=resolved.key,
        value=requested.value,
        unit_id=unit_id or resolved.indicator_unit_id,
        qualifier=requested.qualifier,
        source_id=_code_id(connection, source_table, requested.source, "source"),
        quote=requested.quote,
        note=requested.note,
        derived=requested.derived,
    )


def reserve_changes(connection: Connection, count: int) -> int:
    """The first of `count` new change sequence numbers, taken from the counter in
    `data_version` (`count` 0 takes none, and no lock).

    The UPDATE locks the counter's row until the transaction ends, so a second writer's
    numbers come after the first writer's commit: numbers are handed out in commit order (both
    databases also serialise whole write transactions, app/db.py `write_transaction`; this
    keeps the order even for a transaction begun elsewhere). A poller that asks for the changes
    after the last number it saw (`since`) therefore never misses one committed later with a
    lower number, which timestamps from several servers' clocks cannot promise."""
    if count == 0:
        return 0
    counter = data_version_table.c.change_seq
    last = connection.execute(
        update(data_version_table)
        .where(data_version_table.c.id == 1)
        .values(change_seq=counter + count)
        .returning(counter)
    ).scalar()
    if last is None:  # the first write to a new database: bump_data_version moves it on
        connection.execute(
            insert(data_version_table).values(
                id=1, version=0, change_seq=count, changed_at=utcnow()
            )
        )
        last = count
    return int(last) - count + 1


def bump_data_version(connection: Connection) -> None:
    """Move the data version on (ETags and caches key on it)."""
    now = utcnow()
    updated = connection.execute(
        update(data_version_table)
        .where(data_version_table.c.id == 1)
        .values(version=data_version_table.c.version + 1, changed_at=now)
    )
    if updated.rowcount == 0:
        connection.execute(insert(data_version_table).values(id=1, version=1, changed_at=now))


# --- the services behind PUT and DELETE: each one whole change, in its own transaction -------


@dataclass(frozen=True)
class PutResult:
    action: Action
    observation: dict[str, Any]  # the value as GET returns it, after the change

    @property
    def etag(self) -> str:
        return observation_etag(self.observation["revision"])


def put_value(
    engine: Engine,
    *,
    key: ApiKeyInfo,
    indicator: str,
    region: str,
    year: int,
    requested: RequestedValue,
    if_match: str | None,
    if_none_match: str | None,
) -> PutResult:
    """Create or replace one value under its preconditions, recording the revision and key."""
    with write_transaction(engine) as connection:
        resolved = _resolve_key(connection, indicator=indicator, region=region, year=year)
        current = current_rows(connection, [resolved.key]).get(resolved.key)
        check_preconditions(current, if_match=if_match, if_none_match=if_none_match)
        state = _new_state(connection, resolved, requested)
        [action] = upsert_observations(connection, [state], recorded_by=key.name)
        if action != "unchanged":
            bump_data_version(connection)
        touch_key(connection, key)
        row = queries.get_observation(
            connection, indicator_code=indicator, region_code=region, year=year
        )
    assert row is not None  # written in this transaction
    return PutResult(action=action, observation=row)


def delete_value(
    engine: Engine,
    *,
    key: ApiKeyInfo,
    indicator: str,
    region: str,
    year: int,
    if_match: str | None,
) -> None:
    """Remove one published value under If-Match, keeping it in its history; 404 if absent."""
    with write_transaction(engine) as connection:
        resolved = _resolve_key(connection, indicator=indicator, region=region, year=year)
        current = current_rows(connection, [resolved.key]).get(resolved.key)
        if current is None:
            raise NotFoundError(f"no published value for {indicator} in {region} in {year}")
        check_preconditions(current, if_match=if_match, if_none_match=None)
        delete_observation(connection, current, recorded_by=key.name)
        bump_data_version(connection)
        touch_key(connection, key)
