"""The bundle format: the seed data and the bulk-import format are the same YAML (or JSON) file.

A bundle is a mapping with any of these lists, each record keyed by its stable code:

    format: statsapi-bundle/1
    sources:      [{code, title_zh, title_en, publisher_zh, publisher_en, published_on,
                    year_covered, url?, language?, text_file? | text?}]  # text_file: relative
    units:        [{code, name_zh, name_en}]
    categories:   [{code, name_zh, name_en, description_zh?, description_en?, display_order?}]
    regions:      [{code, name_zh, name_en, level, parent?}]
    indicators:   [{code, category, unit, measure_type, name_zh, name_en,
                    description_zh?, description_en?, display_order?, single_event?}]
    defaults:     {source?, year?, region?, qualifier?}           # applied to every observation
    observations: [{indicator, region, year, value, qualifier?, source, quote, note?, unit?,
                    derived?}]

Values are exact decimals in base units (1027.3万元 is written 10273000); a YAML float such as
96.6 is read as the decimal 96.6, never as a binary float. An observation's unit is its
indicator's unless it names another (a measure whose unit changed from one year to the next).
References (an observation's indicator, an indicator's category...) name a code defined in the
same bundle or already in the database. Every observation keeps the provenance rules
(app/provenance.py: the quote is in the source's text and states the value, unless `derived`).
Unknown keys are errors, so a typo never silently drops a field. YAML is read as YAML 1.2 reads
numbers (190:20:30 is text, not 685230); anchors may be set, but aliases (*name) are refused; a
source's `text_file` names a file inside the bundle's folder."""

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field as dataclass_field
from datetime import date
from decimal import Decimal, InvalidOperation
from itertools import islice
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from yaml.composer import ComposerError

from app.bounds import CODE_PATTERN, MAX_YEAR, MIN_YEAR, REGION_CODE_PATTERN
from app.decimals import DecimalRangeError, parse_decimal
from app.models import MeasureType, Qualifier, RegionLevel

FORMAT = "statsapi-bundle/1"

# A file with a million faulty rows would otherwise answer a million errors (hundreds of MB):
# the first MAX_ERRORS are listed, the rest only counted. A partner fixes a file from its
# first hundred errors; the count says how far there is to go.
MAX_ERRORS = 100
# An error names a record by a few of its fields, cut to this many characters: enough to find
# the row, too short to echo a hostile file back.
MAX_LABEL_CHARS = 64
# An unknown field is named by its key; a reason may quote the value. Both are cut.
MAX_FIELD_CHARS = 64
MAX_REASON_CHARS = 200
# No field of the format holds a number of more than 15 significant digits (app/decimals.py),
# or a year or an order of more than 4 digits. A number of magnitude past 10**100 (or below
# 10**-100) is refused before anything converts it: Python refuses int() of 4,300 digits, and
# turning Decimal("1e9999999") into an int would take minutes.
MAX_NUMBER_DIGITS = 100


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class RecordError:
    file: str
    record: str  # "observations[12]" or "observations[12] (indicator=..., region=...)"
    field: str
    reason: str
    # Where the record is in the file, to list errors in file order: (section, row or index).
    at: tuple[int, int] = dataclass_field(default=(0, 0), compare=False)
    # For an unknown code: the code, and the defined codes that look like it (difflib), best first.
    unknown: str | None = None
    close_matches: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Fields and reasons can carry a client's text (an unknown key, a bad value): cut.
        object.__setattr__(self, "field", _short(self.field, MAX_FIELD_CHARS))
        object.__setattr__(self, "reason", _short(self.reason, MAX_REASON_CHARS))

    def __str__(self) -> str:
        where = f"{self.file}: {self.record}" if self.record else self.file
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


class ErrorList:
    """The errors found in a file: every one counted, the first MAX_ERRORS in file order kept.

    Checks run one after another (format, references, provenance), each in its own order; the
    list keeps the MAX_ERRORS earliest by position, so a partner reads them row by row."""

    def __init__(self, errors: Iterable[RecordError] = ()) -> None:
        self._found: list[RecordError] = []
        self.total = 0
        self.extend(errors)

    def __bool__(self) -> bool:
        return self.total > 0

    @property
    def kept(self) -> list[RecordError]:
        self._trim()
        return self._found

    def _trim(self) -> None:
        self._found.sort(key=lambda error: error.at)  # stable: a row's errors keep their order
        del self._found[MAX_ERRORS:]

    def add(self, error: RecordError) -> None:
        self.total += 1
        self._found.append(error)
        if len(self._found) >= 2 * MAX_ERRORS:  # trimmed in batches: memory stays bounded
            self._trim()

    def extend(self, errors: Iterable[RecordError]) -> None:
        for error in errors:
            self.add(error)

    def merge(self, other: "ErrorList") -> None:
        """Add `other`'s errors: its kept ones listed, all of them counted."""
        self._found.extend(other.kept)
        self.total += other.total
        self._trim()

    def add_validation(
        self, error: ValidationError, *, file: str, record: str, at: tuple[int, int] = (0, 0)
    ) -> None:
        """Pydantic's errors for one record, counted without building those past the cap."""
        for item in error.errors(include_url=False, include_input=False)[:MAX_ERRORS]:
            field_name = ".".join(str(part) for part in item["loc"])
            self._found.append(RecordError(file, record, field_name, item["msg"], at=at))
        self.total += error.error_count()
        if len(self._found) >= 2 * MAX_ERRORS:
            self._trim()

    def raise_if_any(self) -> None:
        if self:
            raise BundleError(self)


class BundleError(Exception):
    """A bundle that cannot be loaded; names the file, the record and the field.

    `errors` holds at most MAX_ERRORS of them; `total` counts them all.
    """

    def __init__(self, errors: Iterable[RecordError] | ErrorList) -> None:
        found = errors if isinstance(errors, ErrorList) else ErrorList(errors)
        self.errors = found.kept
        self.total = found.total
        more = self.total - len(self.errors)
        text = "; ".join(str(error) for error in self.errors)
        super().__init__(f"{text} (and {more} more)" if more else text)


def _code_to_str(value: Any) -> Any:
    # YAML reads 320400 as an int; a region code is text.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def refuse_nul(value: Any) -> Any:
    """Text with a NUL character cannot be stored (PostgreSQL refuses it): an error, early."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


def refuse_huge_number(value: Any) -> Any:
    """A number read as a Decimal with more than MAX_NUMBER_DIGITS digits, refused before any
    conversion (pydantic would turn Decimal("1e9999999") into an int digit by digit)."""
    if (
        isinstance(value, Decimal)
        and value.is_finite()
        and abs(value.adjusted()) > MAX_NUMBER_DIGITS
    ):
        raise ValueError(f"a number of more than {MAX_NUMBER_DIGITS} digits")
    return value


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    _no_nul = field_validator("*", mode="before")(refuse_nul)
    _no_huge_number = field_validator("*", mode="before")(refuse_huge_number)


class SourceRecord(_Record):
    """A published document: the source that observations quote."""

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
    """A unit of measure (base units: yuan, persons, percent...)."""

    code: str = Field(pattern=CODE_PATTERN, max_length=64)
    name_zh: str = Field(min_length=1, max_length=50)
    name_en: str = Field(min_length=1, max_length=100)


class CategoryRecord(_Record):
    """A section of the review, grouping indicators."""

    code: str = Field(pattern=CODE_PATTERN, max_length=64)
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    description_zh: str | None = None
    description_en: str | None = None
    display_order: int = 0


class RegionRecord(_Record):
    """A GB/T 2260 administrative division."""

    code: str = Field(pattern=REGION_CODE_PATTERN)
    name_zh: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=100)
    level: RegionLevel
    parent: str | None = Field(default=None, pattern=REGION_CODE_PATTERN)

    _codes = field_validator("code", "parent", mode="before")(_code_to_str)


class IndicatorRecord(_Record):
    """A measured quantity, in one category and one unit."""

    code: str = Field(pattern=CODE_PATTERN, max_length=100)
    category: str = Field(pattern=CODE_PATTERN)
    unit: str = Field(pattern=CODE_PATTERN)
    measure_type: MeasureType
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=300)
    description_zh: str | None = None
    description_en: str | None = None
    display_order: int = 0
    single_event: bool = False  # one event, not a yearly series: comparisons say not_a_series


# CSV injection (OWASP): a spreadsheet runs a cell that starts with one of these as a formula.
# This one rule refuses such text on the way in (imports, PUT) and defuses it on every way out
# (the API's CSV and `statsapi export --format csv`).
FORMULA_PREFIXES = ("=", "+", "-", "@")
# OWASP also lists a leading tab and carriage return because spreadsheets skip leading blanks
# before they look: so the check looks past all leading whitespace (" =1+1", "\n=1+1").
# A plain signed number ("-3", "+2.5") is not refused: a spreadsheet reads it as that number and
# runs nothing, and a figure may be quoted alone. Anything after the number ("-2+3+cmd|' /C
# calc'!A0", "-3%") makes it a formula. No quote of the seed starts with any of these.
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def starts_like_formula(text: str) -> bool:
    """True when a spreadsheet would evaluate `text` as a formula."""
    start = text.lstrip()
    return start.startswith(FORMULA_PREFIXES) and _PLAIN_NUMBER.fullmatch(start) is None


def refuse_formula(text: str | None) -> str | None:
    """A cell that a spreadsheet would run as a formula is refused, not stored."""
    if text is not None and starts_like_formula(text):
        raise ValueError(
            "starts like a spreadsheet formula (=, +, -, @): start the quote at a word or figure"
        )
    return text


def defuse_formula(value: Any) -> Any:
    """Text a spreadsheet would run, prefixed with ' so that it shows as text; the rest as is."""
    return "'" + value if isinstance(value, str) and starts_like_formula(value) else value


class ObservationRecord(_Record):
    """One value: an indicator in a region and a year, with the quote that states it."""

    indicator: str = Field(pattern=CODE_PATTERN)
    region: str = Field(pattern=REGION_CODE_PATTERN)
    year: int = Field(ge=MIN_YEAR, le=MAX_YEAR)
    value: Decimal
    unit: str | None = Field(default=None, pattern=CODE_PATTERN)  # default: the indicator's
    qualifier: Qualifier = Qualifier.exact
    source: str = Field(pattern=CODE_PATTERN)
    quote: str = Field(min_length=1, max_length=2000)
    note: str | None = Field(default=None, max_length=2000)
    derived: bool = False  # computed by the bureau: the note says how (app/provenance.py)

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
    """Values given to every observation of the bundle that leaves them out."""

    source: str | None = None
    year: int | None = None
    region: str | None = None
    qualifier: Qualifier | None = None

    _codes = field_validator("region", mode="before")(_code_to_str)


class Bundle(_Record):
    """A bundle: reference records (admin scope) and observations, keyed by their codes."""

    format: Literal["statsapi-bundle/1"] = "statsapi-bundle/1"
    sources: list[SourceRecord] = []
    units: list[UnitRecord] = []
    categories: list[CategoryRecord] = []
    regions: list[RegionRecord] = []
    indicators: list[IndicatorRecord] = []
    observations: list[ObservationRecord] = []


SECTIONS: dict[str, type[_Record]] = {
    "sources": SourceRecord,
    "units": UnitRecord,
    "categories": CategoryRecord,
    "regions": RegionRecord,
    "indicators": IndicatorRecord,
    "observations": ObservationRecord,
}
SECTION_RANK = {section: rank for rank, section in enumerate(SECTIONS)}


def upload_schemas(*, ref_template: str) -> dict[str, dict[str, Any]]:
    """The JSON Schema of a bundle as a client sends it, as named definitions: `Bundle` and
    each model it refers to, referred to through `ref_template` (`#/components/schemas/{model}`).

    It is `Bundle`'s own schema plus the `defaults` section, whose fields an observation may
    then leave out (so they are not required there)."""
    bundle = Bundle.model_json_schema(ref_template=ref_template)
    definitions = bundle.pop("$defs")
    defaults = ObservationDefaults.model_json_schema(ref_template=ref_template)
    definitions.update(defaults.pop("$defs", {}))
    definitions[ObservationDefaults.__name__] = defaults
    # `defaults: null` is read as no defaults (`_apply_defaults`), so the schema allows it.
    bundle["properties"]["defaults"] = {
        "anyOf": [
            {"$ref": ref_template.format(model=ObservationDefaults.__name__)},
            {"type": "null"},
        ]
    }
    observation = definitions[ObservationRecord.__name__]
    observation["required"] = [
        name for name in observation["required"] if name not in ObservationDefaults.model_fields
    ]
    return {Bundle.__name__: bundle, **definitions}


# The top level of a bundle, its records left for one-by-one validation (so that errors can be
# counted past MAX_ERRORS without pydantic building every one of them).
_Sections = create_model(  # type: ignore[call-overload]
    "_Sections",
    __base__=_Record,
    format=(Literal["statsapi-bundle/1"], FORMAT),
    **{section: (list[Any], []) for section in SECTIONS},
)


@dataclass
class LoadedBundle:
    """A checked bundle, with the source texts it refers to.

    Records that failed the format checks are left out of `bundle` and their errors kept in
    `errors`: the importer reports them with the rest (unknown codes, provenance, sense) in one
    answer sorted by position, and writes nothing."""

    name: str
    bundle: Bundle
    source_texts: dict[str, str]  # source code -> full text
    # Where each kept record is in the file, for a section that lost records (elsewhere a
    # record's index is its place): its index in the file's section, or its line in a CSV file.
    # So the 8th record of a section stays `observations[7]` when an earlier one was left out.
    positions: dict[str, list[int]] = dataclass_field(default_factory=dict)
    csv: bool = False  # records are named by their line in a CSV file: `row 5`
    errors: ErrorList = dataclass_field(default_factory=ErrorList)
    # Each section that lost records, with the codes they define -> the first one's place: an
    # observation naming such a code is told so, not told the code is unknown.
    dropped: dict[str, dict[str, int]] = dataclass_field(default_factory=dict)

    def position(self, section: str, index: int) -> tuple[int, int]:
        """Where the bundle's `index`th record of `section` is in the file, for RecordError.at."""
        places = self.positions.get(section)
        return SECTION_RANK[section], index if places is None else places[index]

    def label(self, section: str, index: int) -> str:
        """How an error names a record: `observations[3]`, or `row 5` in a CSV file."""
        return self.label_at(section, self.position(section, index)[1])

    def label_at(self, section: str, place: int) -> str:
        """How an error names the record at `place` in the file (RecordError.at[1])."""
        return f"row {place}" if self.csv else f"{section}[{place}]"

    def defines(self, section: str) -> bool:
        """Whether the file has records of `section`, whether they passed the checks or not."""
        return bool(getattr(self.bundle, section)) or section in self.dropped


# --- YAML and JSON -----------------------------------------------------------------------------


class DecimalSafeLoader(yaml.CSafeLoader):
    """libyaml's safe loader (no objects; nesting bounded at 1,000 levels), reading YAML floats
    as Decimals (96.6 stays 96.6), and numbers or dates Python cannot hold as their text, so
    that the field's own check names them."""


def _construct_decimal(loader: DecimalSafeLoader, node: yaml.ScalarNode) -> Decimal | str:
    text = loader.construct_scalar(node)
    if ":" in text:
        return text  # YAML 1.1 sexagesimal (190:20:30.15): kept as written, as YAML 1.2 reads it
    special = text.lstrip("+-").lower()
    if special in (".inf", ".nan"):  # the field's check refuses them (a finite number)
        return Decimal(("-" if text.startswith("-") else "") + special[1:])
    try:
        return Decimal(text.replace("_", ""))
    except InvalidOperation:
        return text  # `!!float x`


def _construct_int(loader: DecimalSafeLoader, node: yaml.ScalarNode) -> int | Decimal | str:
    text = loader.construct_scalar(node)
    if ":" in text:
        return text  # YAML 1.1 sexagesimal (190:20:30 would be 685230): kept as written
    if len(text) > MAX_NUMBER_DIGITS:  # a Decimal, refused by size (int() raises past 4,300)
        try:
            return Decimal(text.replace("_", ""))
        except InvalidOperation:
            return text  # 0x... of a hundred digits
    try:
        return loader.construct_yaml_int(node)
    except (ValueError, IndexError):
        return text  # `!!int x`, `!!int ""`


def _construct_timestamp(loader: DecimalSafeLoader, node: yaml.ScalarNode) -> Any:
    try:
        return loader.construct_yaml_timestamp(node)
    except (ValueError, AttributeError):
        return loader.construct_scalar(node)  # 2023-02-30, `!!timestamp x`: the text


DecimalSafeLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
DecimalSafeLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
DecimalSafeLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _refuse_aliases(root: yaml.Node) -> None:
    """An alias makes two places share one node, and a few nested ones expand to billions of
    values ("billion laughs"): any node reached twice is refused, before anything expands."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            raise ComposerError(
                None, None, "aliases (*name) are not allowed: write the value out", node.start_mark
            )
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.MappingNode):
            stack.extend(part for pair in node.value for part in pair)


def _load_yaml(text: str) -> Any:
    loader = DecimalSafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if "*" in text:  # an alias needs a `*`: most files have none and skip the walk
            _refuse_aliases(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _read_json_int(text: str) -> int | Decimal:
    # Past MAX_NUMBER_DIGITS a Decimal (Python's int() refuses 4,300 digits); refused by size.
    return int(text) if len(text) <= MAX_NUMBER_DIGITS else Decimal(text)


_JSON_START = re.compile(r"\s*[\[{]")


def parse_document(text: str, *, name: str) -> Any:
    """Parse YAML or JSON text (JSON is YAML, but parse it as JSON for exact decimals)."""
    try:
        if _JSON_START.match(text):
            return json.loads(text, parse_float=Decimal, parse_int=_read_json_int)
        return _load_yaml(text)
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        reason = f"not valid YAML or JSON: {error}"
    except RecursionError:  # json.loads past the interpreter's recursion limit (~1,000 levels)
        reason = "nested deeper than the parser allows (a bundle nests 3 levels)"
    except (ValueError, ArithmeticError, LookupError) as error:  # a tag such as `!!bool maybe`
        reason = f"a value cannot be read ({type(error).__name__})"
    raise BundleError([RecordError(name, "", "", reason)])


def _label_text(value: Any) -> str | None:
    """A scalar as short text for an error label; None for anything else (never a list)."""
    if isinstance(value, str | int | Decimal) and not isinstance(value, bool):
        return _short(str(value), MAX_LABEL_CHARS)
    return None


def _describe_record(section: str, index: int, record: Any) -> str:
    label = f"{section}[{index}]"
    if isinstance(record, dict):
        keys = ("indicator", "region", "year") if section == "observations" else ("code",)
        texts = {key: _label_text(record.get(key)) for key in keys}
        named = ", ".join(f"{key}={text}" for key, text in texts.items() if text is not None)
        if named:
            label += f" ({named})"
    return label


M = TypeVar("M", bound=BaseModel)


def _validate(
    model: type[M],
    raw: Any,
    errors: ErrorList,
    *,
    file: str,
    record: str,
    at: tuple[int, int] = (0, 0),
) -> M | None:
    """One record (or the top level) checked; its errors added to `errors`."""
    fields = model.model_fields
    if isinstance(raw, dict) and len(raw) > len(fields):
        # More keys than the model has fields: some are unknown. Said once, not once per key
        # (a record of 100,000 keys would otherwise be 100,000 errors).
        unknown_keys = (_short(str(key), 20) for key in raw if key not in fields)
        unknown = ", ".join(islice(unknown_keys, 5))
        errors.add(RecordError(file, record, "", f"{len(raw)} keys; unknown: {unknown}", at=at))
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        errors.add_validation(error, file=file, record=record, at=at)
        return None


def check_row_count(count: int, *, name: str, max_rows: int | None) -> None:
    """Refuse a file of more than `max_rows` observations, before any row is validated."""
    if max_rows is not None and count > max_rows:
        reason = f"at most {max_rows} rows per import; this file has {count}"
        raise BundleError([RecordError(name, "", "observations", reason)])


def _apply_defaults(document: dict[str, Any], errors: ErrorList, name: str) -> None:
    raw_defaults = document.pop("defaults", None)
    if raw_defaults is None:  # absent, or `defaults:` left empty in YAML
        raw_defaults = {}
    defaults = _validate(ObservationDefaults, raw_defaults, errors, file=name, record="defaults")
    if defaults is None:
        return
    given = defaults.model_dump(exclude_none=True)
    observations = document.get("observations")
    for record in observations if isinstance(observations, list) else []:
        if isinstance(record, dict):
            for key, value in given.items():
                record.setdefault(key, value)


# A source's full text, given its record: ValueError says why it cannot be had (the error of
# its `text_file`).
TextReader = Callable[[SourceRecord], str | None]


def _inline_text(source: SourceRecord) -> str | None:
    return source.text


def _dropped_code(raw: Any) -> str | None:
    """The code a record that failed its checks defines, when it is one a record may name."""
    code = _code_to_str(raw.get("code")) if isinstance(raw, dict) else None
    if isinstance(code, str) and len(code.strip()) <= 100:  # no code is longer (SourceRecord)
        return code.strip()
    return None


def check_document(
    document: Any,
    *,
    name: str,
    max_rows: int | None = None,
    read_text: TextReader = _inline_text,
) -> LoadedBundle:
    """Check a parsed document against the bundle format, record by record.

    A record with errors (naming record and field) is left out of the bundle and its errors
    kept in `errors`, so that the importer lists them with the errors of the records that
    passed (unknown codes, provenance) in one answer. Problems of the whole document (not a
    mapping, an unknown section or `format`, `defaults`, more than `max_rows` observations,
    counted before any is validated) raise BundleError at once: nothing else could be checked.
    Each source's text is `read_text(source)`; its ValueError is an error of `text_file`.
    """
    if not isinstance(document, dict):
        raise BundleError([RecordError(name, "", "", "a bundle is a mapping of sections")])
    observations = document.get("observations")
    check_row_count(
        len(observations) if isinstance(observations, list) else 0, name=name, max_rows=max_rows
    )
    document = dict(document)
    errors = ErrorList()
    _apply_defaults(document, errors, name)
    top = _validate(_Sections, document, errors, file=name, record="")
    errors.raise_if_any()
    assert top is not None
    sections: dict[str, list[_Record]] = {}
    positions: dict[str, list[int]] = {}
    dropped: dict[str, dict[str, int]] = {}
    texts: dict[str, str] = {}
    for section, model in SECTIONS.items():
        kept: list[_Record] = []
        places: list[int] = []
        for index, raw in enumerate(getattr(top, section)):
            at = (SECTION_RANK[section], index)
            label = _describe_record(section, index, raw)
            record = _validate(model, raw, errors, file=name, record=label, at=at)
            if isinstance(record, SourceRecord):
                try:
                    text = read_text(record)
                except ValueError as error:
                    errors.add(RecordError(name, label, "text_file", str(error), at=at))
                    record = None
                else:
                    if text is not None:
                        texts[record.code] = text
            if record is None:
                codes = dropped.setdefault(section, {})
                code = _dropped_code(raw)
                if code is not None:
                    codes.setdefault(code, index)
                continue
            kept.append(record)
            places.append(index)
        sections[section] = kept
        if section in dropped:
            positions[section] = places
    # The records are model instances already: pydantic takes them as they are.
    bundle = Bundle.model_validate({"format": top.format, **sections})
    return LoadedBundle(
        name=name,
        bundle=bundle,
        source_texts=texts,
        positions=positions,
        errors=errors,
        dropped=dropped,
    )


def validate_document(document: Any, *, name: str, max_rows: int | None = None) -> Bundle:
    """A parsed document checked against the bundle format; BundleError lists every record's
    errors (names record and field). With `max_rows`, a document of more observations is
    refused before any is validated."""
    loaded = check_document(document, name=name, max_rows=max_rows)
    loaded.errors.raise_if_any()
    return loaded.bundle


def _refuse_text_file(source: SourceRecord) -> str | None:
    if source.text_file is not None:
        raise ValueError("not allowed in an upload: give the text inline as `text`")
    return source.text


def load_uploaded(text: str, *, name: str, max_rows: int | None = None) -> LoadedBundle:
    """A bundle received over HTTP: texts must be inline, never a path on this server.

    Records with errors are left out, their errors in `errors` (`check_document`)."""
    document = parse_document(text, name=name)
    return check_document(document, name=name, max_rows=max_rows, read_text=_refuse_text_file)


def _read_source_text(folder: Path, text_file: str) -> str:
    """The text of `text_file`, which must resolve (links followed) inside `folder`."""
    path = (folder / text_file).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise ValueError(f"must name a file inside the bundle's folder ({text_file!r} does not)")
    try:
        return path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(str(error)) from None


def read_bundle_file(path: Path, *, keep_errors: bool = False) -> LoadedBundle:
    """Read, parse and check a bundle file, and the source texts it names (`text_file`).

    BundleError lists every record's errors; with `keep_errors`, records with errors are left
    out instead, their errors in `errors`, for the importer to report with its own."""
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BundleError([RecordError(name, "", "", "the file is not UTF-8")]) from None

    def read_text(source: SourceRecord) -> str | None:
        if source.text_file is None:
            return source.text
        return _read_source_text(path.parent, source.text_file)

    loaded = check_document(parse_document(text, name=name), name=name, read_text=read_text)
    if not keep_errors:
        loaded.errors.raise_if_any()
    return loaded


# --- CSV: observations only, for partners who work in spreadsheets --------------------------

CSV_COLUMNS = ("indicator", "region", "year", "value", "qualifier", "note", "source", "quote")
CSV_OPTIONAL_COLUMNS = ("unit", "derived")  # derived: true or false (empty: false)


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


def _csv_records(text: str, *, name: str) -> Iterator[tuple[int, list[str]]]:
    """Each non-blank record with the line it starts on: row 2 starts on line 2 of the file."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    try:
        for cells in reader:
            if cells:
                yield start, cells
            start = reader.line_num + 1
    except csv.Error as error:  # a cell over csv.field_size_limit() (131,072 characters), say
        reason = f"cannot be read as CSV: {error}"
        raise BundleError([RecordError(name, f"row {start}", "", reason)]) from None


def _check_header(cells: list[str], *, name: str) -> list[str]:
    header = [column.strip() for column in cells]
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
    return header


def parse_csv(text: str, *, name: str, max_rows: int | None = None) -> LoadedBundle:
    """Observations from CSV with the columns CSV_COLUMNS (and optionally `unit`).

    Records are labelled by their line in the file (`row 2` is the first after the header), so
    a partner finds the faulty cell at once. With `max_rows`, a file of more rows is refused
    after a first pass that only counts them.
    """
    if max_rows is not None:
        count = sum(1 for _ in _csv_records(text, name=name)) - 1  # less the header
        check_row_count(count, name=name, max_rows=max_rows)
    rows = _csv_records(text, name=name)
    _, first = next(rows, (0, []))
    header = _check_header(first, name=name)
    records: list[ObservationRecord] = []
    lines: list[int] = []
    errors = ErrorList()
    rank = SECTION_RANK["observations"]
    for line, cells in rows:
        if len(cells) > len(header):
            errors.add(
                RecordError(name, f"row {line}", "", "more cells than columns", at=(rank, line))
            )
            continue
        values: dict[str, Any] = dict.fromkeys(header)
        values.update((key, cell) for key, cell in zip(header, cells, strict=False) if cell != "")
        for optional in ("qualifier", "derived"):  # empty: the record's default
            if values.get(optional) is None:
                values.pop(optional, None)
        record = _validate(
            ObservationRecord, values, errors, file=name, record=f"row {line}", at=(rank, line)
        )
        if record is not None:
            records.append(record)
            lines.append(line)
    # A row's format errors do not stop the file: the importer adds them to the errors it finds
    # in the rows that parsed (unknown codes, provenance), so one answer lists them all.
    bundle = Bundle(observations=records)
    return LoadedBundle(
        name=name,
        bundle=bundle,
        source_texts={},
        positions={"observations": lines},
        csv=True,
        errors=errors,
    )


def _csv_cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"  # as the import reads it
    return "" if value is None else defuse_formula(value)


def write_csv(rows: list[dict[str, Any]]) -> str:
    """Observations as CSV that `parse_csv` reads back (UTF-8 text; the caller adds a BOM).

    Text a spreadsheet would run as a formula (stored before imports refused it) is defused.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=[*CSV_COLUMNS, *CSV_OPTIONAL_COLUMNS], lineterminator="\r\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_cell(value) for key, value in row.items()})
    return buffer.getvalue()
