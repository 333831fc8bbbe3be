"""Every change to an observation goes through here: imports, the seed, PUT and DELETE.

A change writes the new state to `observation` and appends it to `observation_revision`, in the
caller's write transaction; nothing is ever overwritten without a revision, and a delete keeps
the last state in the history. Revision numbers count up per indicator x region x year across
deletes and re-creations, so an ETag built from one never comes back for a different state.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import Connection, delete, func, insert, select, tuple_, update

from app.models import observation_table, revision_table, utcnow

Action = Literal["created", "changed", "unchanged"]
STATE_FIELDS = ("value", "unit_id", "qualifier", "source_id", "quote", "note")
CHUNK = 500  # keys per IN list, whatever the size of the import

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

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in STATE_FIELDS}


def _key_columns(table: Any) -> Any:
    return tuple_(table.c.indicator_id, table.c.region_id, table.c.year)


def _identity(key: SeriesYear) -> dict[str, int]:
    return {"indicator_id": key[0], "region_id": key[1], "year": key[2]}


def current_rows(connection: Connection, keys: Sequence[SeriesYear]) -> dict[SeriesYear, Any]:
    """The published rows for these keys (absent keys are missing from the result)."""
    found: dict[SeriesYear, Any] = {}
    for start in range(0, len(keys), CHUNK):
        chunk = list(keys[start : start + CHUNK])
        rows = connection.execute(
            select(observation_table).where(_key_columns(observation_table).in_(chunk))
        )
        found.update({(r.indicator_id, r.region_id, r.year): r._mapping for r in rows})
    return found


def _last_revisions(connection: Connection, keys: Sequence[SeriesYear]) -> dict[SeriesYear, int]:
    numbers: dict[SeriesYear, int] = {}
    for start in range(0, len(keys), CHUNK):
        chunk = list(keys[start : start + CHUNK])
        rows = connection.execute(
            select(
                revision_table.c.indicator_id,
                revision_table.c.region_id,
                revision_table.c.year,
                func.max(revision_table.c.revision),
            )
            .where(_key_columns(revision_table).in_(chunk))
            .group_by(
                revision_table.c.indicator_id, revision_table.c.region_id, revision_table.c.year
            )
        )
        numbers.update({(r[0], r[1], r[2]): r[3] for r in rows})
    return numbers


def upsert_observations(
    connection: Connection, states: Sequence[NewState], *, recorded_by: str
) -> list[Action]:
    """Create or change each observation; returns what happened to each, in order."""
    keys = [state.key for state in states]
    existing = current_rows(connection, keys)
    new_keys = [key for key in keys if key not in existing]
    history = _last_revisions(connection, new_keys) if new_keys else {}
    now = utcnow()
    stamp = {"recorded_at": now, "recorded_by": recorded_by}
    inserts, revisions, actions = [], [], []
    for state in states:
        current = existing.get(state.key)
        fields = state.fields()
        if current is None:
            revision = history.get(state.key, 0) + 1
            inserts.append(
                {**_identity(state.key), **fields, "revision": revision}
                | {"created_at": now, "updated_at": now}
            )
            revisions.append(
                {**_identity(state.key), **fields, **stamp, "revision": revision}
                | {"action": "create"}
            )
            actions.append("created")
        elif any(current[name] != value for name, value in fields.items()):
            revision = current["revision"] + 1
            connection.execute(
                update(observation_table)
                .where(observation_table.c.id == current["id"])
                .values(**fields, revision=revision, updated_at=now)
            )
            revisions.append(
                {**_identity(state.key), **fields, **stamp, "revision": revision}
                | {"action": "update"}
            )
            actions.append("changed")
        else:
            actions.append("unchanged")
    if inserts:
        connection.execute(insert(observation_table), inserts)
    if revisions:
        connection.execute(insert(revision_table), revisions)
    return actions  # type: ignore[return-value]


def delete_observation(connection: Connection, current: Any, *, recorded_by: str) -> None:
    """Remove a published observation, keeping its last state in the history."""
    connection.execute(delete(observation_table).where(observation_table.c.id == current["id"]))
    connection.execute(
        insert(revision_table).values(
            **{name: current[name] for name in ("indicator_id", "region_id", "year")},
            **{name: current[name] for name in STATE_FIELDS},
            revision=current["revision"] + 1,
            action="delete",
            recorded_at=utcnow(),
            recorded_by=recorded_by,
        )
    )
