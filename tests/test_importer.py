"""The one loader: idempotent, atomic, and its errors name the file, the record and the field."""

from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, select

from app.bundle import BundleError, read_bundle_file
from app.db import write_transaction
from app.decimals import DecimalRangeError, parse_decimal
from app.importer import apply_bundle
from app.models import observation_table, revision_table
from app.seeding import seed_directory
from tests.conftest import SEED_DIR, SOURCE_TEXT, count_rows, data_version

SEED_FILE = SEED_DIR / "changzhou-2023-review.yaml"


def _write_bundle(tmp_path: Path, document: dict) -> Path:
    (tmp_path / "sources").mkdir(exist_ok=True)
    (tmp_path / "sources" / SOURCE_TEXT.name).write_bytes(SOURCE_TEXT.read_bytes())
    path = tmp_path / "bundle.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def _seed_document() -> dict:
    return yaml.safe_load(SEED_FILE.read_text(encoding="utf-8"))


def _apply(engine: Engine, path: Path):
    with write_transaction(engine) as connection:
        return apply_bundle(connection, read_bundle_file(path), recorded_by="test")


def test_seeding_twice_changes_nothing(empty_engine: Engine) -> None:
    first = seed_directory(empty_engine, SEED_DIR)
    observations = count_rows(empty_engine, observation_table)
    revisions = count_rows(empty_engine, revision_table)
    version = data_version(empty_engine)

    second = seed_directory(empty_engine, SEED_DIR)

    assert first[0].count("observations", "created") == observations > 0
    assert not second[0].changed_anything
    assert second[0].count("observations", "unchanged") == observations
    assert count_rows(empty_engine, observation_table) == observations
    assert count_rows(empty_engine, revision_table) == revisions
    assert data_version(empty_engine) == version


def test_a_bad_record_deep_in_the_file_writes_nothing(empty_engine: Engine, tmp_path) -> None:
    document = _seed_document()
    bad_index = len(document["observations"]) - 3
    document["observations"][bad_index]["indicator"] = "no_such_indicator"

    with pytest.raises(BundleError) as raised:
        _apply(empty_engine, _write_bundle(tmp_path, document))

    [error] = raised.value.errors
    assert (error.file, error.record, error.field) == (
        "bundle.yaml",
        f"observations[{bad_index}]",
        "indicator",
    )
    assert "no_such_indicator" in error.reason
    assert count_rows(empty_engine, observation_table) == 0
    assert data_version(empty_engine) is None


def test_format_errors_name_the_record_and_field(tmp_path) -> None:
    document = _seed_document()
    document["observations"][1]["value"] = "twelve"
    document["observations"][2]["qualifier"] = "roughly"
    document["observations"][3]["colour"] = "red"

    with pytest.raises(BundleError) as raised:
        read_bundle_file(_write_bundle(tmp_path, document))

    located = {(e.record.split(" ")[0], e.field) for e in raised.value.errors}
    assert located == {
        ("observations[1]", "value"),
        ("observations[2]", "qualifier"),
        ("observations[3]", "colour"),
    }
    assert all(e.file == "bundle.yaml" for e in raised.value.errors)


def test_the_same_series_and_year_twice_is_an_error(empty_engine: Engine, tmp_path) -> None:
    document = _seed_document()
    document["observations"].append(dict(document["observations"][0]))

    with pytest.raises(BundleError, match=r"repeats observations\[0\]"):
        _apply(empty_engine, _write_bundle(tmp_path, document))
    assert count_rows(empty_engine, observation_table) == 0


def test_a_changed_value_keeps_the_old_state_as_a_revision(seeded_engine: Engine, tmp_path) -> None:
    document = _seed_document()
    first = document["observations"][0]
    # SYNTHETIC: the review states 608; marked derived (with a note) to pass provenance.
    correction = {"value": "609", "note": "SYNTHETIC correction (test)", "derived": True}
    document["observations"] = [{**first, **correction}]
    version = data_version(seeded_engine)

    report = _apply(seeded_engine, _write_bundle(tmp_path, document))

    assert report.count("observations", "changed") == 1
    assert data_version(seeded_engine) == (version or 0) + 1
    with seeded_engine.connect() as connection:
        history = connection.execute(
            select(revision_table.c.revision, revision_table.c.value, revision_table.c.action)
            .where(revision_table.c.quote == first["quote"])
            .order_by(revision_table.c.revision)
        ).all()
    assert [tuple(row) for row in history] == [
        (1, Decimal(str(first["value"])), "create"),
        (2, Decimal("609"), "update"),
    ]


@pytest.mark.parametrize(
    "text",
    ["96.6", "0.1", "10273000", "123456789.123456", "0.000001", "-5.5", "999999999999999"],
)
def test_decimals_round_trip_exactly(empty_engine: Engine, tmp_path, text: str) -> None:
    document = _seed_document()
    synthetic = {"value": text, "derived": True, "note": "SYNTHETIC: a round-trip test"}
    document["observations"] = [{**document["observations"][0], **synthetic}]
    # A unit no sense rule knows (app/sanity.py), so that any decimal, negative too, is taken.
    document["units"].append({"code": "synthetic_score", "name_zh": "分", "name_en": "points"})
    indicator = next(
        i for i in document["indicators"] if i["code"] == document["observations"][0]["indicator"]
    )
    indicator["unit"] = "synthetic_score"

    _apply(empty_engine, _write_bundle(tmp_path, document))

    with empty_engine.connect() as connection:
        stored = connection.execute(select(observation_table.c.value)).scalar_one()
    assert isinstance(stored, Decimal)
    assert str(stored) == text


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("1E+100", "significant digits"),
        ("9" * 40, "significant digits"),
        ("1.0000000000000000000000000001", "decimal places"),
        ("1234567890123456", "significant digits"),
        ("0.0000001", "decimal places"),
        ("NaN", "finite"),
    ],
)
def test_out_of_range_decimals_are_refused_before_any_rounding(raw: str, message: str) -> None:
    with pytest.raises(DecimalRangeError, match=message):
        parse_decimal(raw)


@pytest.mark.parametrize(
    ("raw", "text"), [("1.2E+5", "120000"), ("96.600", "96.6"), ("-0.0", "0"), (96.6, "96.6")]
)
def test_decimals_are_read_as_written(raw: object, text: str) -> None:
    assert str(parse_decimal(raw)) == text
