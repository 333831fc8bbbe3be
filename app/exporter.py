"""Export: what `statsapi import` (and POST /imports) reads back.

The JSON export is a complete bundle (reference data, source texts inline, observations), so
exporting and importing into an empty database reproduces every observation exactly. The CSV
export holds observations only, for a database that has the reference data already.

`statsapi export` and `GET /api/v1/export` write the same bytes (`json_pieces`, `csv_pieces`):
the rows are read in one transaction (one snapshot), then written out a chunk of observations at
a time, so the body is never one string as large as the data.
"""

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, select

from app.bundle import FORMAT, write_csv
from app.models import (
    category_table as category,
    indicator_table as indicator,
    observation_table as observation,
    region_table as region,
    source_table as source,
    unit_table as unit,
)
from app.queries import INDICATOR_FIELDS, INDICATORS_WITH_CATEGORY_AND_UNIT, row_dict
from app.rendering import UTF8_BOM, dump_json

# Observations per piece of an export's body: about 200 KB of JSON, a few ms to encode.
CHUNK_ROWS = 500

parent = region.alias("parent")


def export_observations(connection: Connection, year: int | None = None) -> list[dict[str, Any]]:
    """Observations as bundle records, in indicator, region, year order."""
    statement = (
        select(
            indicator.c.code.label("indicator"),
            region.c.code.label("region"),
            observation.c.year,
            observation.c.value,
            observation.c.qualifier,
            observation.c.note,
            source.c.code.label("source"),
            observation.c.quote,
            unit.c.code.label("unit"),
            observation.c.derived,
        )
        .select_from(
            observation.join(indicator, observation.c.indicator_id == indicator.c.id)
            .join(region, observation.c.region_id == region.c.id)
            .join(source, observation.c.source_id == source.c.id)
            .join(unit, observation.c.unit_id == unit.c.id)
        )
        .order_by(indicator.c.code, region.c.code, observation.c.year)
    )
    if year is not None:
        statement = statement.where(observation.c.year == year)
    return [row_dict(row) for row in connection.execute(statement)]


def export_bundle(connection: Connection, year: int | None = None) -> dict[str, Any]:
    """A complete bundle: every reference record, and the observations (of `year`, if given)."""

    def rows(statement: Any) -> list[dict[str, Any]]:
        return [row_dict(row) for row in connection.execute(statement)]

    sources = rows(
        select(
            source.c.code,
            source.c.title_zh,
            source.c.title_en,
            source.c.publisher_zh,
            source.c.publisher_en,
            source.c.published_on,
            source.c.year_covered,
            source.c.url,
            source.c.language,
            source.c.text,
        ).order_by(source.c.code)
    )
    for record in sources:
        record["published_on"] = record["published_on"].isoformat()
    return {
        "format": FORMAT,
        "sources": sources,
        "units": rows(select(unit.c.code, unit.c.name_zh, unit.c.name_en).order_by(unit.c.code)),
        "categories": rows(
            select(*(c for c in category.c if c.name != "id")).order_by(category.c.code)
        ),
        "regions": rows(
            select(
                region.c.code,
                region.c.name_zh,
                region.c.name_en,
                region.c.level,
                parent.c.code.label("parent"),
            )
            .select_from(region.outerjoin(parent, region.c.parent_id == parent.c.id))
            .order_by(region.c.parent_id.is_not(None), region.c.code)
        ),
        "indicators": rows(
            select(
                indicator.c.code,
                category.c.code.label("category"),
                unit.c.code.label("unit"),
                *INDICATOR_FIELDS,
            )
            .select_from(INDICATORS_WITH_CATEGORY_AND_UNIT)
            .order_by(indicator.c.code)
        ),
        "observations": export_observations(connection, year=year),
    }


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), CHUNK_ROWS):
        yield rows[start : start + CHUNK_ROWS]


def json_pieces(bundle: dict[str, Any]) -> Iterator[bytes]:
    """`dump_json(bundle)`, byte for byte, in pieces: the reference data, then the
    observations (the last key) CHUNK_ROWS at a time."""
    observations = bundle["observations"]
    head = dump_json({key: value for key, value in bundle.items() if key != "observations"})
    yield head[:-1] + b',"observations":['
    for number, chunk in enumerate(_chunks(observations)):
        body = dump_json(chunk)[1:-1]  # the rows without the list's brackets
        yield body if number == 0 else b"," + body
    yield b"]}"


def csv_pieces(rows: list[dict[str, Any]]) -> Iterator[bytes]:
    """Observation rows as CSV that `statsapi import` reads (`write_csv`), with a byte-order
    mark, in pieces of CHUNK_ROWS rows: the header with the first."""
    header, _ = write_csv([]).split("\r\n", 1)
    yield f"{UTF8_BOM}{header}\r\n".encode()
    for chunk in _chunks(rows):
        _, body = write_csv(chunk).split("\r\n", 1)  # each piece without its header
        yield body.encode()
