"""The bundle format: the seed data and the bulk-import format are the same YAML (or JSON) file.

A bundle is a mapping with any of these lists, each record keyed by its stable code:

    format: statsapi-bundle/1
    sources:      [{code, title_zh, title_en, publisher_zh, publisher_en, published_on,
                    year_covered, url?, language?, text_file? | text?}]  # text_file: relative
    units:        [{code, name_zh, name_en}]
    categories:   [{code, name_zh, name_en, description_zh?, description_en?, display_order?}]
    regions:      [{code, name_zh, name_en, level, parent?}]
    indicators:   [{code, category, unit, measure_type, name_zh, name_en,
                    description_zh?, description_en?, display_order?}]
    defaults:     {source?, year?, region?, qualifier?}           # applied to every observation
    observations: [{indicator, region, year, value, qualifier?, source, quote, note?, unit?}]

Values are exact decimals in base units (1027.3万元 is written 10273000); a YAML float such as
96.6 is read as the decimal 96.6, never as a binary float. An observation's unit is its
indicator's unless it names another (a measure whose unit changed from one year to the next).
References (an observation's indicator, an indicator's category...) name a code defined in the
same bundle or already in the database. Unknown keys are errors, so a typo never silently drops
a field.
"""

import csv
import io
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from app.decimals import DecimalRangeError, parse_decimal
from app.models import MeasureType, Qualifier, RegionLevel

FORMAT = "statsapi-bundle/1"
CODE_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
REGION_CODE_PATTERN = r"^[0-9]{6}$"
MIN_YEAR, MAX_YEAR = 1949, 2100


class BundleError(Exception):
    """A bundle that cannot be loaded; names the file, the record and the field."""

    def __init__(self, errors: list["RecordError"]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


@dataclass(frozen=True)
class RecordError:
    file: str
    record: str  # "observations[12]" or "observations[12] (indicator=..., region=...)"
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.record}" if self.record else self.file
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


def _code_to_str(value: Any) -> Any:
    # YAML reads 320400 as an int; a region code is text.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def refuse_nul(value: Any) -> Any:
    """Text with a NUL character cannot be stored (PostgreSQL refuses it): an error, early."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    _no_nul = field_validator("*", mode="before")(refuse_nul)


class SourceRecord(_Record):
    code: str = Field(pattern=CODE_PATTERN, max_length=100)
    title_zh: str = Field(min_length=1, max_length=300)
    title_en: str = Field(min_length=1, max_length=300)
    publisher_zh: str = Field(min_length=1, max_length=200)
    publisher_en: str = Field(min_length=1, max_length=200)
    published_on: date
    year_covered: int = Field(ge=MIN_YEAR, le=MAX_YEAR)
    url: str | None = Field(default=None, max_length=1000)
    language: str = Field(default="zh-Hans", max_length=20)
    text_file: str | None = Field(default=None, description="Path of the full text, relative")
    text: str | None = Field(default=None, description="The full text, inline (exports)")

    @model_validator(mode="after")
    def _one_text(self) -> "SourceRecord":
        if self.text_file is not None and self.text is not None:
            raise ValueError("give text_file or text, not both")
        return self


class UnitRecord(_Record):
    code: str = Field(pattern=CODE_PATTERN, max_length=64)
    name_zh: str = Field(min_length=1, max_length=50)
    name_en: str = Field(min_length=1, max_length=100)


class CategoryRecord(_Record):
    code: str = Field(pattern=CODE_PATTERN, max_length=64)
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    description_zh: str | None = None
    description_en: str | None = None
    display_order: int = 0


class RegionRecord(_Record):
    code: str = Field(pattern=REGION_CODE_PATTERN)
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=100)
    level: RegionLevel
    parent: str | None = Field(default=None, pattern=REGION_CODE_PATTERN)

    _codes = field_validator("code", "parent", mode="before")(_code_to_str)


class IndicatorRecord(_Record):
    code: str = Field(pattern=CODE_PATTERN, max_length=100)
    category: str = Field(pattern=CODE_PATTERN)
    unit: str = Field(pattern=CODE_PATTERN)
    measure_type: MeasureType
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=300)
    description_zh: str | None = None
    description_en: str | None = None
    display_order: int = 0


FORMULA_PREFIXES = ("=", "+", "@", "\t", "\r")


def refuse_formula(text: str | None) -> str | None:
    """A cell that a spreadsheet would run as a formula is refused, not stored."""
    if text is not None and text.startswith(FORMULA_PREFIXES):
        raise ValueError("starts like a spreadsheet formula (=, +, @); quote the text as published")
    return text


class ObservationRecord(_Record):
    indicator: str = Field(pattern=CODE_PATTERN)
    region: str = Field(pattern=REGION_CODE_PATTERN)
    year: int = Field(ge=MIN_YEAR, le=MAX_YEAR)
    value: Decimal
    unit: str | None = Field(default=None, pattern=CODE_PATTERN)  # default: the indicator's
    qualifier: Qualifier = Qualifier.exact
    source: str = Field(pattern=CODE_PATTERN)
    quote: str = Field(min_length=1, max_length=2000)
    note: str | None = Field(default=None, max_length=2000)

    _codes = field_validator("region", mode="before")(_code_to_str)
    _text = field_validator("quote", "note")(refuse_formula)

    @field_validator("value", mode="before")
    @classmethod
    def _exact_value(cls, raw: Any) -> Decimal:
        try:
            return parse_decimal(raw)
        except DecimalRangeError as error:
            raise ValueError(str(error)) from None


class ObservationDefaults(_Record):
    source: str | None = None
    year: int | None = None
    region: str | None = None
    qualifier: Qualifier | None = None

    _codes = field_validator("region", mode="before")(_code_to_str)


class Bundle(_Record):
    format: Literal["statsapi-bundle/1"] = "statsapi-bundle/1"
    sources: list[SourceRecord] = []
    units: list[UnitRecord] = []
    categories: list[CategoryRecord] = []
    regions: list[RegionRecord] = []
    indicators: list[IndicatorRecord] = []
    observations: list[ObservationRecord] = []


@dataclass
class LoadedBundle:
    """A validated bundle, with the source texts it refers to read from disk."""

    name: str
    bundle: Bundle
    source_texts: dict[str, str]  # source code -> full text
    observation_labels: list[str] | None = None  # "row 7" for CSV; default observations[i]

    def label(self, section: str, index: int) -> str:
        """How an error names a record: `observations[3]`, or `row 5` in a CSV file."""
        if section == "observations" and self.observation_labels is not None:
            return self.observation_labels[index]
        return f"{section}[{index}]"


class _DecimalSafeLoader(yaml.SafeLoader):
    """SafeLoader that reads YAML floats as Decimals (96.6 stays 96.6)."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    return Decimal(loader.construct_scalar(node).replace("_", ""))


_DecimalSafeLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def parse_document(text: str, *, name: str) -> Any:
    """Parse YAML or JSON text (JSON is YAML, but parse it as JSON for exact decimals)."""
    try:
        if text.lstrip().startswith(("{", "[")):
            return json.loads(text, parse_float=Decimal)
        return yaml.load(text, Loader=_DecimalSafeLoader)  # SafeLoader: no objects
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        raise BundleError([RecordError(name, "", "", f"not valid YAML or JSON: {error}")]) from None


def _apply_defaults(document: dict[str, Any], name: str) -> None:
    raw_defaults = document.pop("defaults", None) or {}
    try:
        defaults = ObservationDefaults.model_validate(raw_defaults)
    except ValidationError as error:
        raise BundleError(_record_errors(error, name, prefix="defaults")) from None
    given = defaults.model_dump(exclude_none=True)
    for record in document.get("observations") or []:
        if isinstance(record, dict):
            for key, value in given.items():
                record.setdefault(key, value)


def _describe_record(document: dict[str, Any], section: str, index: int) -> str:
    records = document.get(section)
    label = f"{section}[{index}]"
    if isinstance(records, list) and index < len(records) and isinstance(records[index], dict):
        record = records[index]
        keys = ("indicator", "region", "year") if section == "observations" else ("code",)
        named = ", ".join(f"{key}={record[key]}" for key in keys if key in record)
        if named:
            label += f" ({named})"
    return label


def _record_errors(
    error: ValidationError, name: str, *, prefix: str = "", document: dict[str, Any] | None = None
) -> list[RecordError]:
    errors = []
    for item in error.errors():
        location = [str(part) for part in item["loc"]]
        if prefix:
            record, fields = prefix, location
        elif len(location) >= 2 and location[1].isdigit():
            record = _describe_record(document or {}, location[0], int(location[1]))
            fields = location[2:]
        else:
            record, fields = "", location
        errors.append(RecordError(name, record, ".".join(fields), item["msg"]))
    return errors


def validate_document(document: Any, *, name: str) -> Bundle:
    """Check a parsed document against the bundle format; errors name record and field."""
    if not isinstance(document, dict):
        raise BundleError([RecordError(name, "", "", "a bundle is a mapping of sections")])
    document = dict(document)
    _apply_defaults(document, name)
    try:
        return Bundle.model_validate(document)
    except ValidationError as error:
        raise BundleError(_record_errors(error, name, document=document)) from None


def load_uploaded(text: str, *, name: str) -> LoadedBundle:
    """A bundle received over HTTP: texts must be inline, never a path on this server."""
    bundle = validate_document(parse_document(text, name=name), name=name)
    errors = [
        RecordError(
            name,
            f"sources[{index}] (code={source.code})",
            "text_file",
            "not allowed in an upload: give the text inline as `text`",
        )
        for index, source in enumerate(bundle.sources)
        if source.text_file is not None
    ]
    if errors:
        raise BundleError(errors)
    texts = {s.code: s.text for s in bundle.sources if s.text is not None}
    return LoadedBundle(name=name, bundle=bundle, source_texts=texts)


def read_bundle_file(path: Path) -> LoadedBundle:
    """Read, parse and validate a bundle file, and the source texts it names."""
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BundleError([RecordError(name, "", "", "the file is not UTF-8")]) from None
    bundle = validate_document(parse_document(text, name=name), name=name)
    texts: dict[str, str] = {}
    for index, source in enumerate(bundle.sources):
        if source.text is not None:
            texts[source.code] = source.text
        if source.text_file is None:
            continue
        text_path = (path.parent / source.text_file).resolve()
        try:
            texts[source.code] = text_path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            record = f"sources[{index}] (code={source.code})"
            raise BundleError([RecordError(name, record, "text_file", str(error))]) from None
    return LoadedBundle(name=name, bundle=bundle, source_texts=texts)


# --- CSV: observations only, for partners who work in spreadsheets --------------------------

CSV_COLUMNS = ("indicator", "region", "year", "value", "qualifier", "note", "source", "quote")
CSV_OPTIONAL_COLUMNS = ("unit",)


def decode_upload(data: bytes, *, name: str) -> str:
    """UTF-8 text (a byte-order mark is dropped); any other encoding is a clear error."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        reason = "the file is UTF-16: save it as UTF-8 (in Excel: CSV UTF-8)"
        raise BundleError([RecordError(name, "", "", reason)])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        reason = (
            f"the file is not UTF-8 (byte {error.start}); if it came from Excel or WPS it may be "
            "GBK: save it as CSV UTF-8"
        )
        raise BundleError([RecordError(name, "", "", reason)]) from None


def parse_csv(text: str, *, name: str) -> LoadedBundle:
    """Observations from CSV with the columns CSV_COLUMNS (and optionally `unit`).

    Records are labelled by their line in the file (`row 2` is the first after the header), so
    a partner finds the faulty cell at once.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [column.strip() for column in reader.fieldnames or []]
    missing = [column for column in CSV_COLUMNS if column not in header]
    unknown = [c for c in header if c not in CSV_COLUMNS and c not in CSV_OPTIONAL_COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing columns {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown columns {', '.join(unknown)}")
        reason = "; ".join(parts) + f" (expected: {','.join(CSV_COLUMNS)})"
        raise BundleError([RecordError(name, "row 1", "", reason)])
    reader.fieldnames = header
    records: list[ObservationRecord] = []
    labels: list[str] = []
    errors: list[RecordError] = []
    for row in reader:
        line = f"row {reader.line_num}"
        if None in row:
            errors.append(RecordError(name, line, "", "more cells than columns"))
            continue
        values = {key: (value if value != "" else None) for key, value in row.items()}
        if values.get("qualifier") is None:
            values.pop("qualifier", None)
        try:
            records.append(ObservationRecord.model_validate(values))
            labels.append(line)
        except ValidationError as error:
            errors += [
                RecordError(name, line, ".".join(str(p) for p in item["loc"]), item["msg"])
                for item in error.errors()
            ]
    if errors:
        raise BundleError(errors)
    bundle = Bundle(observations=records)
    return LoadedBundle(name=name, bundle=bundle, source_texts={}, observation_labels=labels)


def write_csv(rows: list[dict[str, Any]]) -> str:
    """Observations as CSV that `parse_csv` reads back (UTF-8 text; the caller adds a BOM)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=[*CSV_COLUMNS, *CSV_OPTIONAL_COLUMNS], lineterminator="\r\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return buffer.getvalue()
