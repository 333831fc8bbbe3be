"""The one loader: seed bundles, partner imports and the CLI all apply bundles through here.

Applying a bundle is one write transaction: every record is checked first (references resolve, no
key twice, every observation keeps the provenance rules of app/provenance.py), and any error raises
`BundleError` before anything is written, so a bad file writes nothing. Records are matched by their
natural keys (codes; indicator x region x year), so applying the same bundle twice changes nothing.
Every observation that is created or changed gets a revision row holding its new state, and the data
version moves when anything changed."""

import difflib
import hashlib
import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update

from app import provenance, sanity
from app.bundle import SECTION_RANK, ErrorList, LoadedBundle, ObservationRecord, RecordError
from app.models import (
    category_table,
    indicator_table,
    region_table,
    source_table,
    unit_table,
)
from app.provenance import Claim, SourceFacts
from app.writes import (
    UNKNOWN_SOURCE_HINT,
    Action,
    NewState,
    bump_data_version,
    upsert_observations,
)


@dataclass
class RowOutcome:
    section: str
    key: str
    action: Action


@dataclass
class ImportReport:
    bundle: str
    dry_run: bool = False
    rows: list[RowOutcome] = field(default_factory=list)

    def count(self, section: str, action: Action) -> int:
        return sum(1 for row in self.rows if row.section == section and row.action == action)

    @property
    def changed_anything(self) -> bool:
        return any(row.action != "unchanged" for row in self.rows)

    def summary(self) -> dict[str, dict[str, int]]:
        sections = dict.fromkeys(row.section for row in self.rows)
        return {
            section: {
                action: self.count(section, action)
                for action in ("created", "changed", "unchanged")
            }
            for section in sections
        }


PROGRESS_CHUNK = 1000


def _code_ids(connection: Connection, table: Table) -> dict[str, int]:
    """code -> id for one reference table, read once per import."""
    return {code: id_ for code, id_ in connection.execute(select(table.c.code, table.c.id))}


def _upsert_by_code(
    connection: Connection,
    table: Table,
    section: str,
    records: Iterable[dict[str, Any]],
    report: ImportReport,
) -> None:
    """Insert records whose code is new, update those whose fields differ, count the rest."""
    records = list(records)
    if not records:
        return
    columns = [table.c[name] for name in records[0]]
    codes = [record["code"] for record in records]
    existing = {
        row.code: row._mapping
        for row in connection.execute(select(table.c.id, *columns).where(table.c.code.in_(codes)))
    }
    for record in records:
        current = existing.get(record["code"])
        if current is None:
            connection.execute(insert(table).values(**record))
            report.rows.append(RowOutcome(section, record["code"], "created"))
        elif any(current[name] != value for name, value in record.items()):
            connection.execute(update(table).where(table.c.id == current["id"]).values(**record))
            report.rows.append(RowOutcome(section, record["code"], "changed"))
        else:
            report.rows.append(RowOutcome(section, record["code"], "unchanged"))


def _check_unique(loaded: LoadedBundle, section: str, keys: Sequence[Any]) -> list[RecordError]:
    """A key given twice: the later record repeats the first. A record left out for its format
    errors counts by its code, so that fixing it does not bring a new error."""
    places = zip(loaded.positions.get(section, range(len(keys))), keys, strict=True)
    dropped = sorted((place, code) for code, place in loaded.dropped.get(section, {}).items())
    seen: dict[Any, int] = {}
    errors = []
    for place, key in heapq.merge(places, dropped, key=lambda item: item[0]):
        first = seen.setdefault(key, place)
        if first != place:
            label, repeated = loaded.label_at(section, place), loaded.label_at(section, first)
            at = (SECTION_RANK[section], place)
            errors.append(RecordError(loaded.name, label, "", f"repeats {repeated}", at=at))
    return errors


def _left_out(loaded: LoadedBundle, section: str) -> dict[str, int]:
    """The codes only records left out for their errors define -> the first one's place."""
    dropped = loaded.dropped.get(section, {})
    if not dropped:
        return {}
    kept = {record.code for record in getattr(loaded.bundle, section)}
    return {code: place for code, place in dropped.items() if code not in kept}


def _check_references(connection: Connection, loaded: LoadedBundle) -> ErrorList:
    """Every code a record names is defined in the bundle or already in the database.

    The errors are counted, and the first bundle.MAX_ERRORS kept (a file of 100,000 rows
    naming an unknown code is one count, not 400,000 errors in memory). A code that only a
    record with errors defines is said to be so, not said to be unknown.
    """
    bundle, name = loaded.bundle, loaded.name
    errors = ErrorList()
    for section, records in (
        ("sources", bundle.sources),
        ("units", bundle.units),
        ("categories", bundle.categories),
        ("regions", bundle.regions),
        ("indicators", bundle.indicators),
    ):
        errors.extend(_check_unique(loaded, section, [record.code for record in records]))
    errors.extend(
        _check_unique(
            loaded,
            "observations",
            [(obs.indicator, obs.region, obs.year) for obs in bundle.observations],
        )
    )

    def known(table: Table, defined: Iterable[str]) -> set[str]:
        return set(_code_ids(connection, table)) | set(defined)

    pools = {
        "units": known(unit_table, (u.code for u in bundle.units)),
        "categories": known(category_table, (c.code for c in bundle.categories)),
        "regions": known(region_table, (r.code for r in bundle.regions)),
        "sources": known(source_table, (s.code for s in bundle.sources)),
        "indicators": known(indicator_table, (i.code for i in bundle.indicators)),
    }
    left_out = {kind: _left_out(loaded, kind) for kind in pools}
    suggested: dict[tuple[str, str], tuple[str, ...]] = {}

    def missing(section: str, index: int, field_name: str, code: str | None, kind: str) -> None:
        if code is None:
            return
        place = left_out[kind].get(code)
        if place is not None:
            # Defined in this file by a record with errors: that record is the one to fix
            # (even when the database has the code: the file means to change it).
            reason = (
                f"{code!r} is defined by {loaded.label_at(kind, place)}, which has errors: this "
                "record is checked against it once that one is fixed"
            )
            at = loaded.position(section, index)
            errors.add(RecordError(name, loaded.label(section, index), field_name, reason, at=at))
            return
        pool = pools[kind]
        if code not in pool:
            # The codes that look like it, as a query parameter's error gives them (once per
            # code: a file naming one unknown code in every row costs one lookup).
            key = (field_name, code)
            if key not in suggested:
                suggested[key] = tuple(difflib.get_close_matches(code, sorted(pool), n=5))
            matches = suggested[key]
            reason = f"unknown code {code!r}"
            if matches:
                reason += f"; did you mean {', '.join(map(repr, matches))}?"
            if field_name == "source":
                reason += f"; {UNKNOWN_SOURCE_HINT}"
            errors.add(
                RecordError(
                    name,
                    loaded.label(section, index),
                    field_name,
                    reason,
                    at=loaded.position(section, index),
                    unknown=code,
                    close_matches=matches,
                )
            )

    for index, region in enumerate(bundle.regions):
        missing("regions", index, "parent", region.parent, "regions")
    for index, indicator in enumerate(bundle.indicators):
        missing("indicators", index, "category", indicator.category, "categories")
        missing("indicators", index, "unit", indicator.unit, "units")
    for index, obs in enumerate(bundle.observations):
        missing("observations", index, "unit", obs.unit, "units")
        missing("observations", index, "indicator", obs.indicator, "indicators")
        missing("observations", index, "region", obs.region, "regions")
        missing("observations", index, "source", obs.source, "sources")
    for source in bundle.sources:
        if source.text_file is not None and source.code not in loaded.source_texts:
            errors.add(RecordError(name, source.code, "text_file", "text was not read"))
    return errors


def _cited_sources(connection: Connection, loaded: LoadedBundle) -> dict[str, SourceFacts]:
    """Each cited source as it will stand once the bundle is applied: a source the bundle
    defines replaces the stored one, whose text stays when the bundle gives none."""
    cited = {obs.source for obs in loaded.bundle.observations}
    sources = provenance.stored_sources(connection, cited)
    for record in loaded.bundle.sources:
        stored = sources.get(record.code)
        text = loaded.source_texts.get(record.code, stored.text if stored else None)
        sources[record.code] = SourceFacts(record.code, record.published_on, text)
    return sources


def _check_provenance(connection: Connection, loaded: LoadedBundle) -> ErrorList:
    """Every observation keeps the provenance and sense rules (app/provenance.py, which runs
    app/sanity.py); each problem is an
    error naming the row and the field, as the other row-level errors do."""
    errors = ErrorList()
    sources = _cited_sources(connection, loaded)
    measures = provenance.stored_measures(connection)
    for indicator in loaded.bundle.indicators:  # as they will stand once the bundle is applied
        measures[indicator.code] = (indicator.unit, indicator.measure_type.value)
    # A source or indicator that only a record with errors defines: _check_references says so,
    # and the value is checked once that record is fixed (not against a stored definition the
    # file means to change).
    left_out_sources = _left_out(loaded, "sources")
    left_out_indicators = _left_out(loaded, "indicators")
    for index, obs in enumerate(loaded.bundle.observations):
        if obs.source not in sources or obs.indicator not in measures:
            continue  # an unknown source or indicator: _check_references says so
        if obs.source in left_out_sources or obs.indicator in left_out_indicators:
            continue
        measure = sanity.Measure(*measures[obs.indicator], unit=obs.unit)
        claim = Claim(
            obs.year, obs.value, obs.qualifier.value, obs.quote, obs.note, obs.derived, measure
        )
        for problem in provenance.check(claim, sources[obs.source]):
            record = loaded.label("observations", index)
            at = loaded.position("observations", index)
            errors.add(RecordError(loaded.name, record, problem.field, problem.message, at=at))
    return errors


def _apply_reference_data(
    connection: Connection, loaded: LoadedBundle, report: ImportReport
) -> None:
    bundle = loaded.bundle
    sources = []
    for source in bundle.sources:
        record = source.model_dump(exclude={"text_file", "text"})
        text = loaded.source_texts.get(source.code)
        if text is not None:
            record["text"] = text
            record["text_sha256"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        sources.append(record)
    _upsert_by_code(connection, source_table, "sources", sources, report)
    _upsert_by_code(connection, unit_table, "units", (u.model_dump() for u in bundle.units), report)
    _upsert_by_code(
        connection,
        category_table,
        "categories",
        (c.model_dump() for c in bundle.categories),
        report,
    )
    # Parents before children, so that each parent id exists when its child is written.
    regions = sorted(bundle.regions, key=lambda region: region.parent is not None)
    for region in regions:
        record = region.model_dump(exclude={"parent"})
        record["level"] = region.level.value
        record["parent_id"] = (
            _code_ids(connection, region_table)[region.parent] if region.parent else None
        )
        _upsert_by_code(connection, region_table, "regions", [record], report)
    categories = _code_ids(connection, category_table)
    units = _code_ids(connection, unit_table)
    indicators = []
    for indicator in bundle.indicators:
        record = indicator.model_dump(exclude={"category", "unit"})
        record["measure_type"] = indicator.measure_type.value
        record["category_id"] = categories[indicator.category]
        record["unit_id"] = units[indicator.unit]
        indicators.append(record)
    _upsert_by_code(connection, indicator_table, "indicators", indicators, report)


def _apply_observations(
    connection: Connection,
    observations: Sequence[ObservationRecord],
    report: ImportReport,
    recorded_by: str,
    on_progress: Callable[[int], None] | None,
) -> None:
    if not observations:
        return
    indicators = _code_ids(connection, indicator_table)
    regions = _code_ids(connection, region_table)
    sources = _code_ids(connection, source_table)
    units = _code_ids(connection, unit_table)
    indicator_units = dict(
        (row.id, row.unit_id)
        for row in connection.execute(select(indicator_table.c.id, indicator_table.c.unit_id))
    )
    states = []
    for obs in observations:
        key = (indicators[obs.indicator], regions[obs.region], obs.year)
        states.append(
            NewState(
                key=key,
                value=obs.value,
                unit_id=units[obs.unit] if obs.unit else indicator_units[key[0]],
                qualifier=obs.qualifier.value,
                source_id=sources[obs.source],
                quote=obs.quote,
                note=obs.note,
                derived=obs.derived,
            )
        )
    actions: list[Action] = []
    for start in range(0, len(states), PROGRESS_CHUNK):
        chunk = states[start : start + PROGRESS_CHUNK]
        actions += upsert_observations(connection, chunk, recorded_by=recorded_by)
        if on_progress is not None:
            on_progress(len(chunk))
    for obs, action in zip(observations, actions, strict=True):
        label = f"{obs.indicator}/{obs.region}/{obs.year}"
        report.rows.append(RowOutcome("observations", label, action))


def apply_bundle(
    connection: Connection,
    loaded: LoadedBundle,
    *,
    recorded_by: str,
    dry_run: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Apply a validated bundle inside the caller's write transaction.

    Raises BundleError (and writes nothing the caller commits) when any record is wrong. With
    `dry_run`, does the same work and reports, then leaves the transaction for the caller to
    roll back. `on_progress` is called with the number of observations done after each chunk.
    """
    # One pass: the rows that failed the format checks, then every reference and provenance
    # error of the rows that passed, listed together in file order.
    errors = ErrorList()
    for found in (
        loaded.errors,
        _check_references(connection, loaded),
        _check_provenance(connection, loaded),
    ):
        errors.merge(found)
    errors.raise_if_any()
    report = ImportReport(bundle=loaded.name, dry_run=dry_run)
    _apply_reference_data(connection, loaded, report)
    _apply_observations(connection, loaded.bundle.observations, report, recorded_by, on_progress)
    if report.changed_anything:
        bump_data_version(connection)
    return report
