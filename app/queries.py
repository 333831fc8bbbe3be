"""Read queries: SQL only (no HTTP). Each list is one statement with an explicit, total order.

Functions take an open connection and keyword-only, already-validated arguments, and return plain
dicts shaped like the public schemas (app/schemas.py), ready to render as JSON or CSV.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, bindparam, false, func, literal_column, or_, select

from app.filters import (
    YEAR_KINDS,
    Selection,
    Shape,
    conditions,
)
from app.models import (
    category_table as category,
    data_version_table as data_version,
    indicator_table as indicator,
    observation_table as observation,
    region_table as region,
    revision_table as revision,
    source_table as source,
    unit_table as unit,
)
from app.prepared import fetch, fetch_one, in_list, list_values, statement_cache

parent_region = region.alias("parent_region")

# The labels a row carries, under the names the public schemas give them.
INDICATOR_LABELS = (
    indicator.c.code.label("indicator"),
    indicator.c.name_zh.label("indicator_name_zh"),
    indicator.c.name_en.label("indicator_name_en"),
    indicator.c.measure_type,
)
REGION_LABELS = (
    region.c.code.label("region"),
    region.c.name_zh.label("region_name_zh"),
    region.c.name_en.label("region_name_en"),
)
UNIT_LABELS = (
    unit.c.code.label("unit"),
    unit.c.name_zh.label("unit_name_zh"),
    unit.c.name_en.label("unit_name_en"),
)
# An indicator's own fields, as the API and bundles name them (its code, category and unit
# aside, which each caller labels as it needs).
INDICATOR_FIELDS = (
    indicator.c.measure_type,
    indicator.c.name_zh,
    indicator.c.name_en,
    indicator.c.description_zh,
    indicator.c.description_en,
    indicator.c.display_order,
    indicator.c.single_event,
)
# Each indicator with its category and its unit.
INDICATORS_WITH_CATEGORY_AND_UNIT = indicator.join(
    category, indicator.c.category_id == category.c.id
).join(unit, indicator.c.unit_id == unit.c.id)


def row_dict(row: Any) -> dict[str, Any]:
    """A result row as a dict with plain `str` keys (orjson rejects SQLAlchemy's label type)."""
    return {str(key): value for key, value in row._mapping.items()}


# Constants written into the SQL text, so that statements built here can be prepared once
# (app/prepared.py binds only named values).
ONE: Any = literal_column("1")
DELETE: Any = literal_column("'delete'")


_DATA_VERSION = select(
    data_version.c.version, data_version.c.changed_at, data_version.c.change_seq
).where(data_version.c.id == ONE)


class DataVersion(NamedTuple):
    version: int
    changed_at: datetime | None
    change_seq: int  # the last change sequence number handed out (app/writes.py)


def get_data_version(connection: Connection, *, transaction: bool = True) -> DataVersion:
    """The data version, when it last moved and the last change sequence number; (0, None, 0)
    before anything was loaded.

    `transaction=False` reads it alone, outside a transaction (one statement needs none)."""
    row = fetch_one(connection, _DATA_VERSION, {}, transaction=transaction)
    if row is None:
        return DataVersion(0, None, 0)
    return DataVersion(int(row["version"]), row["changed_at"], int(row["change_seq"]))


def _unit(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "code": row["unit"],
        "name_zh": row["unit_name_zh"],
        "name_en": row["unit_name_en"],
    }


def _indicator_select() -> Select[Any]:
    return (
        select(indicator.c.code, category.c.code.label("category"), *UNIT_LABELS, *INDICATOR_FIELDS)
        .select_from(INDICATORS_WITH_CATEGORY_AND_UNIT)
        .order_by(category.c.display_order, indicator.c.display_order, indicator.c.code)
    )


def _indicator_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    """An indicator as the public schema shapes it, from a row's mapping."""
    return {
        **{key: row[key] for key in _INDICATOR_KEYS},
        "unit": _unit(row),
    }


_INDICATOR_KEYS = (
    "code",
    "category",
    "name_zh",
    "name_en",
    "measure_type",
    "description_zh",
    "description_en",
    "display_order",
    "single_event",
)


def _count_by(column: Any) -> Any:
    """Rows per value of `column` (a foreign key): a subquery of (key, n)."""
    return select(column.label("key"), func.count().label("n")).group_by(column).subquery()


CATEGORY_FIELDS = (
    "code",
    "name_zh",
    "name_en",
    "description_zh",
    "description_en",
    "display_order",
)
SOURCE_FIELDS = (
    *("title_zh", "title_en", "publisher_zh", "publisher_en", "published_on", "url"),
    *("year_covered", "language", "text_sha256"),
)


def list_categories(connection: Connection) -> list[dict[str, Any]]:
    """Every category in review order, with how many indicators each has."""
    counts = _count_by(indicator.c.category_id)
    rows = connection.execute(
        select(
            *(category.c[name] for name in CATEGORY_FIELDS),
            func.coalesce(counts.c.n, 0).label("indicator_count"),
        )
        .select_from(category.outerjoin(counts, counts.c.key == category.c.id))
        .order_by(category.c.display_order, category.c.code)
    )
    return [row_dict(row) for row in rows]


def get_category(connection: Connection, code: str) -> dict[str, Any] | None:
    """One category with its indicators, or None."""
    categories = [c for c in list_categories(connection) if c["code"] == code]
    if not categories:
        return None
    rows = connection.execute(_indicator_select().where(category.c.code == code))
    return {**categories[0], "indicators": [_indicator_dict(row._mapping) for row in rows]}


@dataclass(frozen=True)
class IndicatorFilters:
    """Which indicators: by category, name text, and where and when they have data."""

    where: Selection
    text: str | None = None


def list_indicators(connection: Connection, filters: IndicatorFilters) -> list[dict[str, Any]]:
    """Indicators, filtered by category, name text, and where/when they have data."""
    categories, regions = filters.where.get("category"), filters.where.get("region")
    text, year = filters.text, filters.where.get("year")
    statement = _indicator_select()
    if categories:
        statement = statement.where(category.c.code.in_(categories))
    if text:
        # The text itself, not a LIKE pattern: `%` and `_` are escaped (`q=_` matched all).
        needle = text.lower()
        statement = statement.where(
            or_(
                func.lower(indicator.c.name_zh).contains(needle, autoescape=True),
                func.lower(indicator.c.name_en).contains(needle, autoescape=True),
            )
        )
    if regions or year is not None:
        having_data = select(observation.c.id).where(observation.c.indicator_id == indicator.c.id)
        if regions:
            having_data = having_data.join(region, observation.c.region_id == region.c.id).where(
                region.c.code.in_(regions)
            )
        if year is not None:
            having_data = having_data.where(observation.c.year == year)
        statement = statement.where(having_data.exists())
    return [_indicator_dict(row._mapping) for row in connection.execute(statement)]


@statement_cache
def _indicators_by_code(count: int) -> Select[Any]:
    return _indicator_select().where(in_list(indicator.c.code, "code", count))


def list_indicators_by_code(connection: Connection, *, codes: list[str]) -> list[dict[str, Any]]:
    """The indicators with these codes (those that exist), in display order."""
    rows = fetch(connection, _indicators_by_code(len(codes)), list_values("code", codes))
    return [_indicator_dict(row) for row in rows]


def get_indicator(connection: Connection, code: str) -> dict[str, Any] | None:
    """One indicator with the years and regions that have data, or None."""
    row = connection.execute(_indicator_select().where(indicator.c.code == code)).first()
    if row is None:
        return None
    coverage = connection.execute(
        select(observation.c.year, region.c.code, region.c.name_zh, region.c.name_en)
        .select_from(
            observation.join(indicator, observation.c.indicator_id == indicator.c.id).join(
                region, observation.c.region_id == region.c.id
            )
        )
        .where(indicator.c.code == code)
        .order_by(observation.c.year, region.c.code)
    ).all()
    regions = {
        r.code: {"code": r.code, "name_zh": r.name_zh, "name_en": r.name_en} for r in coverage
    }
    return {
        **_indicator_dict(row._mapping),
        "years": sorted({r.year for r in coverage}),
        "regions": [regions[key] for key in sorted(regions)],
        "observation_count": len(coverage),
    }


def list_regions(connection: Connection) -> list[dict[str, Any]]:
    """Every region by code, with its parent's code and how many observations it has."""
    counts = _count_by(observation.c.region_id)
    rows = connection.execute(
        select(
            region.c.code,
            region.c.name_zh,
            region.c.name_en,
            region.c.level,
            parent_region.c.code.label("parent"),
            func.coalesce(counts.c.n, 0).label("observation_count"),
        )
        .select_from(
            region.outerjoin(parent_region, region.c.parent_id == parent_region.c.id).outerjoin(
                counts, counts.c.key == region.c.id
            )
        )
        .order_by(region.c.code)
    )
    return [row_dict(row) for row in rows]


def get_region(connection: Connection, code: str) -> dict[str, Any] | None:
    """One region with its children and the years that have data there, or None."""
    regions = list_regions(connection)
    found = next((r for r in regions if r["code"] == code), None)
    if found is None:
        return None
    children = [
        {"code": r["code"], "name_zh": r["name_zh"], "name_en": r["name_en"]}
        for r in regions
        if r["parent"] == code
    ]
    years = connection.scalars(
        select(observation.c.year)
        .distinct()
        .join(region, observation.c.region_id == region.c.id)
        .where(region.c.code == code)
        .order_by(observation.c.year)
    ).all()
    return {**found, "children": children, "years": list(years)}


def list_years(connection: Connection) -> list[dict[str, Any]]:
    """Each year with data, ascending, with its number of observations."""
    rows = connection.execute(
        select(observation.c.year, func.count().label("observation_count"))
        .group_by(observation.c.year)
        .order_by(observation.c.year)
    )
    return [row_dict(row) for row in rows]


def list_sources(connection: Connection, code: str | None = None) -> list[dict[str, Any]]:
    """Sources by publication date (not their texts, but whether one is stored), or the one
    with `code`."""
    counts = _count_by(observation.c.source_id)
    statement = (
        select(
            source.c.code.label("id"),
            *(source.c[name] for name in SOURCE_FIELDS),
            source.c.text.is_not(None).label("has_text"),
            func.coalesce(counts.c.n, 0).label("observation_count"),
        )
        .select_from(source.outerjoin(counts, counts.c.key == source.c.id))
        .order_by(source.c.published_on, source.c.code)
    )
    if code is not None:
        statement = statement.where(source.c.code == code)
    return [row_dict(row) for row in connection.execute(statement)]


def get_source_text(connection: Connection, code: str) -> tuple[bool, str | None]:
    """(whether the source exists, its stored text or None)."""
    row = connection.execute(select(source.c.text).where(source.c.code == code)).first()
    return (row is not None, row.text if row else None)


# --- observations -------------------------------------------------------------------------


def observation_states(*, as_of: Any = None, changed_after: Any = None, since: Any = None) -> Any:
    """The observations as a table: published now, as they stood at `as_of`, or (with
    `changed_after` or `since`) only those whose latest change came later (recorded after the
    time `changed_after`, numbered after the change sequence number `since`), deletions
    included and marked.

    Columns: id, indicator_id, region_id, year, value, unit_id, qualifier, source_id, quote,
    note, derived, revision, change_seq, updated_at, deleted. `as_of`, `changed_after` and
    `since` are values or bound parameters (`bindparam`) standing for them.

    A series' state at T is its revision recorded by T that no later revision recorded by T
    supersedes: one probe of `ix_observation_revision_as_of` per revision read, never a ranking
    of the whole history (a window over 120,000 revisions took seconds, issue 11). With
    `changed_after` alone, only the revisions recorded after it are read; with `since`, only
    those numbered after it (`ix_observation_revision_change_seq`).
    """
    changes = changed_after is not None or since is not None
    if as_of is None and not changes:
        return select(
            *(observation.c[name] for name in STATE_COLUMNS),
            observation.c.updated_at,
            false().label("deleted"),
        ).subquery("states")
    later = revision.alias("later")
    superseded = select(ONE).where(
        later.c.indicator_id == revision.c.indicator_id,
        later.c.region_id == revision.c.region_id,
        later.c.year == revision.c.year,
        later.c.revision > revision.c.revision,
    )
    conditions = []
    if as_of is not None:
        superseded = superseded.where(later.c.recorded_at <= as_of)
        conditions.append(revision.c.recorded_at <= as_of)
    conditions.append(~superseded.exists())
    if not changes:
        conditions.append(revision.c.action != DELETE)
    if changed_after is not None:
        conditions.append(revision.c.recorded_at > changed_after)
    if since is not None:
        conditions.append(revision.c.change_seq > since)
    states = select(
        *(revision.c[name] for name in STATE_COLUMNS),
        revision.c.recorded_at.label("updated_at"),
        (revision.c.action == DELETE).label("deleted"),
    ).where(*conditions)
    return states.subquery("states")


STATE_COLUMNS = (
    "id",
    "indicator_id",
    "region_id",
    "year",
    "value",
    "unit_id",
    "qualifier",
    "source_id",
    "quote",
    "note",
    "derived",
    "revision",
    "change_seq",
)
TIEBREAK = ("indicator", "region", "year")


def _sort_columns(states: Any) -> dict[str, tuple[Any, ...]]:
    """The columns each sort key orders by. Categories and indicators go in the review's
    order (display order, as /categories, /indicators and /comparisons list them), the code
    breaking ties."""
    categories = (category.c.display_order, category.c.code)
    return {
        "indicator": (*categories, indicator.c.display_order, indicator.c.code),
        "region": (region.c.code,),
        "year": (states.c.year,),
        "value": (states.c.value,),
        "category": categories,
        "change_seq": (states.c.change_seq,),
    }


def _order_by(sort: str, states: Any) -> list[Any]:
    columns = _sort_columns(states)
    keys = [key for key in sort.split(",") if key]
    named = {key.lstrip("-") for key in keys}
    keys += [key for key in TIEBREAK if key not in named]
    return [
        column.desc() if key.startswith("-") else column.asc()
        for key in keys
        for column in columns[key.lstrip("-")]
    ]


# An OFFSET reads every row it skips: a page further than this is heavy work (app/blocking.py),
# about a millisecond per 10,000 rows skipped on SQLite.
CHEAP_OFFSET = 10_000
DEFAULT_SORT = "indicator,region,year"
CHANGE_SORT = "change_seq"  # the order of `since` answers: a page ends where the next begins


@dataclass(frozen=True)
class ObservationFilters:
    """What an observation list asks for: the declared filters' values (app/filters.py), the
    latest N years of each series, the vintage (`as_of`), changes since (`changed_after`),
    the changes after a sequence number (`since`), the order and the page."""

    where: Selection
    sort: str = DEFAULT_SORT
    latest: int | None = None
    as_of: datetime | None = None
    changed_after: datetime | None = None
    since: int | None = None
    limit: int = 100
    offset: int = 0

    @property
    def heavy(self) -> bool:
        """Whether the work grows with the history or the offset rather than with the page."""
        history = (self.as_of, self.changed_after, self.since)
        return any(value is not None for value in history) or self.offset > CHEAP_OFFSET


@dataclass(frozen=True)
class ListShape:
    """What decides the SQL text of an observation list: which filters, how many codes in each,
    the sort. The values themselves are bound (`list_parameters`), so one statement per shape is
    built and compiled once (app/prepared.py)."""

    filters: Shape = ()
    latest: bool = False
    as_of: bool = False
    changed_after: bool = False
    since: bool = False
    sort: str = ""

    @classmethod
    def of(cls, filters: ObservationFilters) -> "ListShape":
        return cls(
            filters=filters.where.shape,
            latest=filters.latest is not None,
            as_of=filters.as_of is not None,
            changed_after=filters.changed_after is not None,
            since=filters.since is not None,
            sort=filters.sort,
        )


def list_parameters(filters: ObservationFilters) -> dict[str, Any]:
    """The values bound into the statement of `ListShape.of(filters)`."""
    return {
        **filters.where.bound(),
        "latest": filters.latest,
        "as_of": filters.as_of,
        "changed_after": filters.changed_after,
        "since": filters.since,
        "limit": filters.limit,
        "offset": filters.offset,
    }


def _conditions(shape: ListShape, states: Any) -> list[Any]:
    tables = {**JOINED_TABLES, "states": states}
    where = conditions(shape.filters, tables)
    if shape.latest:
        # Rank each series' years before any series filter, so filters never change them.
        rank = (
            func.row_number()
            .over(
                partition_by=(states.c.indicator_id, states.c.region_id),
                order_by=states.c.year.desc(),
            )
            .label("rank")
        )
        years = conditions(shape.filters, tables, kinds=YEAR_KINDS)
        ranked = select(states.c.id, rank).where(*years).subquery()
        latest = select(ranked.c.id).where(ranked.c.rank <= bindparam("latest"))
        where.append(states.c.id.in_(latest))
    return where


# The tables an observation list joins (`_joined`), by the names filters use (app/filters.py).
JOINED_TABLES = {
    "indicator": indicator,
    "category": category,
    "unit": unit,
    "region": region,
    "source": source,
}


def _joined(states: Any) -> Any:
    return (
        states.join(indicator, states.c.indicator_id == indicator.c.id)
        .join(category, indicator.c.category_id == category.c.id)
        .join(unit, states.c.unit_id == unit.c.id)
        .join(region, states.c.region_id == region.c.id)
        .join(source, states.c.source_id == source.c.id)
    )


@statement_cache
def list_statements(shape: ListShape) -> tuple[Select[Any], Select[Any]]:
    """(one page, the count over all pages) for an observation list of this shape."""
    time = revision.c.recorded_at.type
    states = observation_states(
        as_of=bindparam("as_of", type_=time) if shape.as_of else None,
        changed_after=bindparam("changed_after", type_=time) if shape.changed_after else None,
        since=bindparam("since", type_=revision.c.change_seq.type) if shape.since else None,
    )
    conditions = _conditions(shape, states)
    page = (
        _observation_select(states)
        .where(*conditions)
        .order_by(*_order_by(shape.sort, states))
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    count = select(func.count().label("total")).select_from(_joined(states)).where(*conditions)
    return page, count


def list_observations(
    connection: Connection, filters: ObservationFilters
) -> tuple[list[dict[str, Any]], int]:
    """One page of observations with their labels, and the total over all pages."""
    page, count = list_statements(ListShape.of(filters))
    values = list_parameters(filters)
    rows = fetch(connection, page, values)
    if rows and filters.offset == 0 and len(rows) < filters.limit:
        total = len(rows)  # the whole result fits on this page: no need to count
    else:
        total = fetch(connection, count, values)[0]["total"]
    return [_observation_dict(row) for row in rows], total


def get_observation(
    connection: Connection, indicator_code: str, region_code: str, year: int
) -> dict[str, Any] | None:
    """One published observation with its labels, or None."""
    states = observation_states()
    row = connection.execute(
        _observation_select(states).where(
            indicator.c.code == indicator_code, region.c.code == region_code, states.c.year == year
        )
    ).first()
    return _observation_dict(row) if row else None


def _observation_select(states: Any) -> Select[Any]:
    return select(
        *INDICATOR_LABELS,
        indicator.c.display_order,
        category.c.code.label("category"),
        category.c.display_order.label("category_display_order"),
        *REGION_LABELS,
        states.c.year,
        states.c.value,
        *UNIT_LABELS,
        states.c.qualifier,
        states.c.note,
        states.c.derived,
        source.c.code.label("source_id"),
        states.c.quote,
        states.c.revision,
        states.c.change_seq,
        states.c.updated_at,
        states.c.deleted,
    ).select_from(_joined(states))


def _observation_dict(row: Any) -> dict[str, Any]:
    data = row if isinstance(row, dict) else row_dict(row)
    data["source"] = {"id": data.pop("source_id"), "quote": data.pop("quote")}
    data["deleted"] = bool(data["deleted"])
    return data


def list_revisions(
    connection: Connection, indicator_code: str, region_code: str, year: int
) -> list[dict[str, Any]]:
    """Every state an observation has had, oldest first (deletions included)."""
    rows = connection.execute(
        select(
            revision.c.revision,
            revision.c.action,
            revision.c.value,
            unit.c.code.label("unit"),
            revision.c.qualifier,
            source.c.code.label("source_id"),
            revision.c.quote,
            revision.c.note,
            revision.c.derived,
            revision.c.recorded_at,
            revision.c.recorded_by,
        )
        .select_from(
            revision.join(indicator, revision.c.indicator_id == indicator.c.id)
            .join(region, revision.c.region_id == region.c.id)
            .join(unit, revision.c.unit_id == unit.c.id)
            .join(source, revision.c.source_id == source.c.id)
        )
        .where(
            indicator.c.code == indicator_code,
            region.c.code == region_code,
            revision.c.year == year,
        )
        .order_by(revision.c.revision)
    )
    result = []
    for row in rows:
        data = row_dict(row)
        data["source"] = {"id": data.pop("source_id"), "quote": data.pop("quote")}
        result.append(data)
    return result
