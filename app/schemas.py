"""The public contract: query parameters, response bodies and their documented examples.

Field names here are the API's; keep them stable. Examples are real figures from the 2023 review.
Responses are rendered by `app.rendering` (orjson, exact decimals); these models document them
and define the CSV columns (`csv_columns`).
"""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from fastapi import Path
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    field_validator,
)

from app.bounds import CODE_PATTERN, MAX_YEAR, MIN_YEAR
from app.bundle import refuse_formula, refuse_nul
from app.comparisons import (
    APPROXIMATE_TOLERANCE,
    ComparisonFilters,
    SeriesFilters,
    SummaryFilters,
    YearPair,
)
from app.decimals import DecimalRangeError, parse_decimal
from app.examples import EXAMPLES
from app.filters import (
    COMPARISON_FILTERS,
    INDICATOR_FILTERS,
    OBSERVATION_FILTERS,
    SERIES_FILTERS,
    SUMMARY_FILTERS,
    Filter,
    Kind,
    Selection,
)
from app.models import MeasureType, Qualifier, RegionLevel
from app.queries import CHANGE_SORT, DEFAULT_SORT, IndicatorFilters, ObservationFilters

Q = TypeVar("Q", bound=BaseModel)

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
MAX_CODES_PER_FILTER = 100
MAX_OFFSET = 10_000_000

# A JSON number, written from the exact decimal (never a float): 96.6, 10273000.
ExactNumber = Annotated[
    Decimal,
    WithJsonSchema({"type": "number", "description": "Exact decimal in base units."}),
]

Year = Annotated[int, Field(ge=MIN_YEAR, le=MAX_YEAR, examples=[2023])]
# Every list that can grow with the data is paged with these (default DEFAULT_PAGE_SIZE).
PageLimit = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"Page size (at most {MAX_PAGE_SIZE}).",
        examples=[100],
    ),
]
PageOffset = Annotated[
    int,
    Field(ge=0, le=MAX_OFFSET, description="Rows to skip; follow `next` instead.", examples=[0]),
]
Format = Literal["json", "csv"]

FORMAT_DESCRIPTION = (
    "Response format. `csv` gives UTF-8 CSV with a byte-order mark (Excel shows Chinese "
    "correctly) and one header row; `Accept: text/csv` does the same. Default: JSON."
)


def _split_codes(values: list[str]) -> list[str]:
    """`a,b&c` -> [a, b, c]: filters are repeatable and comma-separated."""
    codes = [code.strip() for value in values for code in value.split(",")]
    codes = [code for code in codes if code]
    if len(codes) > MAX_CODES_PER_FILTER:
        raise ValueError(f"at most {MAX_CODES_PER_FILTER} codes per filter")
    return list(dict.fromkeys(codes))


def _to_not_before_from(to: int | None, info: ValidationInfo) -> int | None:
    start = info.data.get("from_")
    if to is not None and start is not None and start > to:
        raise ValueError(f"must not be before `from` ({start})")
    return to


def _base_before_year(base_year: int | None, info: ValidationInfo) -> int | None:
    year = info.data.get("year")
    if base_year is not None and year is not None and base_year >= year:
        raise ValueError(f"must be before `year` ({year})")
    return base_year


ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_timestamp(value: Any) -> Any:
    """Times are ISO 8601 text; pydantic would also read `0.5` as seconds after 1970."""
    if value is not None and not (isinstance(value, str) and ISO_TIMESTAMP.match(value)):
        raise ValueError("must be an ISO 8601 date and time with a zone, e.g. 2024-06-01T00:00:00Z")
    return value


def _in_utc(value: datetime | None) -> datetime | None:
    """Times are compared in UTC. One whose UTC instant falls outside the years 1 to 9999
    (`0001-01-01T00:00:00+01:00`, `9999-12-31T23:59:59-01:00`) has no datetime to compare
    with, so it is refused, naming the parameter, rather than failing as a 500."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is outside the years 1 to 9999 once converted to UTC") from None


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    # The filters declared in app/filters.py whose fields `with_filters` added.
    declared_filters: ClassVar[tuple[Filter, ...]] = ()

    def selection(self) -> Selection:
        """The declared filters' values, for the query layer."""
        return Selection(
            self.declared_filters,
            {f.name: _plain(getattr(self, f.attribute)) for f in self.declared_filters},
        )


def _plain(value: Any) -> Any:
    """A list of codes or enum members as a tuple of strings; a year as it is."""
    if isinstance(value, list):
        return tuple(getattr(item, "value", item) for item in value)
    return value


def _parameter(declared: Filter) -> tuple[Any, Any]:
    """The query-model field (type with its checks and documentation, default) of a filter."""
    alias = declared.name if declared.attribute != declared.name else None
    documented = Field(alias=alias, description=declared.description, examples=[declared.example])
    if declared.kind is Kind.codes:
        return Annotated[list[str], AfterValidator(_split_codes), documented], []
    if declared.kind is Kind.choices:
        return Annotated[list[declared.choices], documented], []  # type: ignore[name-defined]
    if declared.kind is Kind.year_to:
        return Annotated[Year | None, AfterValidator(_to_not_before_from), documented], None
    return Annotated[Year | None, documented], None


def with_filters(base: type[Q], declared: tuple[Filter, ...]) -> type[Q]:
    """`base` with a field for each declared filter, in order (`_parameter`)."""
    model = create_model(  # type: ignore[call-overload]
        f"{base.__name__}Filters",
        __base__=base,
        **{f.attribute: _parameter(f) for f in declared},
    )
    model.declared_filters = declared
    return model


class FormatQuery(_Query):
    format: Format | None = Field(default=None, description=FORMAT_DESCRIPTION, examples=["csv"])


class IndicatorQuery(with_filters(FormatQuery, INDICATOR_FILTERS)):  # type: ignore[misc]
    q: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Text to find in the Chinese or English name (case-insensitive).",
        examples=["培训"],
    )

    def filters(self) -> IndicatorFilters:
        return IndicatorFilters(where=self.selection(), text=self.q)


SORT_KEYS = "indicator|region|year|value|category|change_seq"
SORT_PATTERN = rf"^-?({SORT_KEYS})(,-?({SORT_KEYS}))*$"


def _sort_keys_once(sort: str) -> str:
    """A key given twice (`year,-year`) means nothing more, but each spelling would be a new
    statement shape for the server to build and keep (app/prepared.py)."""
    keys = [key.lstrip("-") for key in sort.split(",")]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"each key at most once; repeated: {', '.join(repeated)}")
    return sort


def _since_in_change_order(sort: str | None, info: ValidationInfo) -> str | None:
    """A `since` answer is paged by its last row's change sequence number (`next`): in any
    other order a page would not end where the next begins."""
    if sort is not None and info.data.get("since") is not None and sort != CHANGE_SORT:
        raise ValueError(
            f"with `since`, rows come in change order; leave out `sort` or give {CHANGE_SORT}"
        )
    return sort


class ObservationQuery(with_filters(FormatQuery, OBSERVATION_FILTERS)):  # type: ignore[misc]
    since: int | None = Field(
        default=None,
        ge=0,
        le=2**31 - 1,
        description=(
            "Sync by cursor: only what was added, changed or deleted after the change with "
            "this sequence number (`change_seq` on every row; `X-Change-Seq` on every answer), "
            "deletions with `deleted: true` and their last state, in change order. Numbers are "
            "handed out at commit, in commit order, so nothing is missed whatever the clocks "
            "say: give the last `change_seq` you have seen (or the `X-Change-Seq` of the last "
            "page of your previous sync), follow `next` to the end; `0` to start."
        ),
        examples=[120],
    )
    sort: str | None = Field(
        default=None,
        pattern=SORT_PATTERN,
        max_length=100,
        description=(
            "Comma-separated keys among indicator, region, year, value, category, change_seq, "
            "each at most once; `-` sorts descending. Categories and indicators sort in the "
            "review's order (their `display_order`, as /categories, /indicators and "
            "/comparisons list them), not alphabetically. Ties are always broken by indicator, "
            f"region, year, so pages are stable. Default: `{DEFAULT_SORT}`; with `since`, "
            f"`{CHANGE_SORT}` (the only order `since` takes)."
        ),
        examples=["-year,indicator"],
    )
    latest: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description=(
            "Only the N most recent years of each indicator x region series (within `year`, "
            "`from` and `to` when given). The other filters choose series; they never change "
            "which years a series keeps."
        ),
        examples=[1],
    )
    as_of: AwareDatetime | None = Field(
        default=None,
        description=(
            "Answer as the data stood at this time (ISO 8601 with a zone, e.g. "
            "`2024-06-01T00:00:00Z`, within the years 1 to 9999 in UTC): the published vintage "
            "then, before later corrections."
        ),
        examples=["2024-06-01T00:00:00Z"],
    )
    updated_after: AwareDatetime | None = Field(
        default=None,
        description=(
            "Only what was added, changed or deleted after this time (ISO 8601 with a zone, "
            "within the years 1 to 9999 in UTC); deletions come back with `deleted: true` and "
            "their last state. For people: a time is stamped by a server's clock before its "
            "change commits, so a program keeping a copy in sync should poll with `since`."
        ),
        examples=["2024-06-01T00:00:00Z"],
    )
    _times = field_validator("as_of", "updated_after", mode="before")(_iso_timestamp)
    _utc = field_validator("as_of", "updated_after")(_in_utc)
    _sort = field_validator("sort")(_sort_keys_once)
    _change_order = field_validator("sort")(_since_in_change_order)

    limit: PageLimit = DEFAULT_PAGE_SIZE
    offset: PageOffset = 0

    def filters(self) -> ObservationFilters:
        return ObservationFilters(
            where=self.selection(),
            sort=self.sort or (DEFAULT_SORT if self.since is None else CHANGE_SORT),
            latest=self.latest,
            as_of=self.as_of,
            changed_after=self.updated_after,
            since=self.since,
            limit=self.limit,
            offset=self.offset,
        )


class Unit(BaseModel):
    """A unit of measure, with its Chinese and English labels."""

    code: str = Field(examples=["person_time"])
    name_zh: str = Field(examples=["人次"])
    name_en: str = Field(examples=["person-times"])


class Indicator(BaseModel):
    """A named measure with a unit, in one category."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["Indicator"]]})

    code: str = Field(examples=["adaptive_training_trainees"])
    category: str = Field(examples=["employment_entrepreneurship"])
    name_zh: str = Field(examples=["退役士兵适应性培训人次"])
    name_en: str = Field(examples=["Adaptive training of demobilised soldiers (person-times)"])
    unit: Unit
    measure_type: MeasureType = Field(
        description="`flow`: within the year; `stock`: at year end; `rate`: percent; `ratio`."
    )
    description_zh: str | None = None
    description_en: str | None = None
    display_order: int
    single_event: bool = Field(
        description="A single event (one claim), not a yearly series: comparisons and series "
        "answer `not_a_series` rather than a change.",
        examples=[False],
    )


class RegionRef(BaseModel):
    """A region's code and labels."""

    code: str = Field(examples=["320411"])
    name_zh: str = Field(examples=["新北区"])
    name_en: str = Field(examples=["Xinbei District"])


class IndicatorDetail(Indicator):
    """An indicator, with the years and regions that have data."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["IndicatorDetail"]]})

    years: list[int] = Field(description="Years with data, ascending.", examples=[[2023]])
    regions: list[RegionRef] = Field(description="Regions with data, by code.")
    observation_count: int


class Category(BaseModel):
    """A section of the annual review."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["Category"]]})

    code: str = Field(examples=["employment_entrepreneurship"])
    name_zh: str = Field(examples=["退役军人力量不断汇聚"])
    name_en: str = Field(examples=["Employment, training and entrepreneurship"])
    description_zh: str | None = None
    description_en: str | None = None
    display_order: int = Field(examples=[3])
    indicator_count: int


class CategoryDetail(Category):
    """A category with its indicators, in display order."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["CategoryDetail"]]})

    indicators: list[Indicator]


class Region(BaseModel):
    """An administrative division (GB/T 2260)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["Region"]]})

    code: str = Field(description="GB/T 2260 division code.", examples=["320411"])
    name_zh: str = Field(examples=["新北区"])
    name_en: str = Field(examples=["Xinbei District"])
    level: RegionLevel
    parent: str | None = Field(description="Code of the enclosing region.", examples=["320400"])
    observation_count: int


class RegionDetail(Region):
    """A region with its child regions and the years that have data there."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["RegionDetail"]]})

    children: list[RegionRef]
    years: list[int] = Field(description="Years with data in this region.", examples=[[2023]])


class YearSummary(BaseModel):
    """A year that has data, and how many observations it has."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["YearSummary"]]})

    year: int = Field(examples=[2023])
    observation_count: int


class Source(BaseModel):
    """A published document that figures are quoted from."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["Source"]]})

    id: str = Field(examples=["cz-tyjrswj-2023-review"])
    title_zh: str = Field(examples=["年度盘点 | 2023,常州退役军人工作这一年"])
    title_en: str
    publisher_zh: str
    publisher_en: str
    published_on: date = Field(examples=["2024-01-02"])
    url: str | None
    year_covered: int = Field(examples=[2023])
    language: str = Field(examples=["zh-Hans"])
    text_sha256: str | None = Field(description="SHA-256 of the UTF-8 text, for verification.")
    text_url: str | None = Field(
        description="Where the stored full text is served.",
        examples=["/api/v1/sources/cz-tyjrswj-2023-review/text"],
    )
    observation_count: int


DERIVED_DESCRIPTION = (
    "True when the bureau computed the value (a sum, a rate) rather than stated it: the note says "
    "how, and the quote is not required to state the number."
)


class ObservationSource(BaseModel):
    """Where a value was published: the source and the clause that states it."""

    id: str = Field(examples=["cz-tyjrswj-2023-review"])
    quote: str = Field(
        description="The clause of the source text that states the figure, verbatim.",
        examples=["退役士兵适应性培训608人次"],
    )


class Observation(BaseModel):
    """One yearly value of an indicator in a region, labelled and sourced."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["Observation"]]})

    indicator: str = Field(examples=["adaptive_training_trainees"])
    indicator_name_zh: str = Field(examples=["退役士兵适应性培训人次"])
    indicator_name_en: str = Field(
        examples=["Adaptive training of demobilised soldiers (person-times)"]
    )
    measure_type: MeasureType = Field(
        description="The indicator's: `flow`, `stock`, `rate` (percent) or `ratio`."
    )
    display_order: int = Field(
        description="The indicator's place in its category, in the review's order.", examples=[1]
    )
    category: str = Field(examples=["employment_entrepreneurship"])
    category_display_order: int = Field(
        description="The category's place in the review.", examples=[3]
    )
    region: str = Field(examples=["320400"])
    region_name_zh: str = Field(examples=["常州市"])
    region_name_en: str = Field(examples=["Changzhou"])
    year: int = Field(examples=[2023])
    value: ExactNumber = Field(examples=[608])
    unit: str = Field(examples=["person_time"])
    unit_name_zh: str = Field(examples=["人次"])
    unit_name_en: str = Field(examples=["person-times"])
    qualifier: Qualifier = Field(
        description=(
            "`exact`; `at_least` (余, 多, 超, +: the value is a lower bound); "
            "`approximate` (近, 约); `at_most`."
        )
    )
    note: str | None = None
    derived: bool = Field(description=DERIVED_DESCRIPTION, examples=[False])
    source: ObservationSource
    revision: int = Field(description="How many states this value has had.", examples=[1])
    change_seq: int = Field(
        description=(
            "The change sequence number of this state: strictly increasing in commit order "
            "across all values; give the last one you have seen as `since`."
        ),
        examples=[57],
    )
    updated_at: datetime = Field(description="When this state was recorded.")
    deleted: bool = Field(
        description="True only in `updated_after` and `since` answers, for a value since deleted."
    )


class ListBody(BaseModel):
    """A list with its length."""

    total: int = Field(description="Number of items.")


class CategoryList(ListBody):
    """Every category, in review order."""

    data: list[Category]


class IndicatorList(ListBody):
    """The indicators matching the filters, in display order."""

    data: list[Indicator]


class RegionList(ListBody):
    """Every region, by code."""

    data: list[Region]


class YearList(ListBody):
    """Every year with data, ascending."""

    data: list[YearSummary]


class SourceList(ListBody):
    """Every source, by publication date."""

    data: list[Source]


class ObservationPage(BaseModel):
    """One page of observations; follow `next` to the end."""

    data: list[Observation]
    total: int = Field(description="Rows matching the filters, over all pages.")
    limit: int
    offset: int
    next: str | None = Field(
        description="URL of the next page (also in the `Link` header); null on the last page.",
        examples=["/api/v1/observations?limit=100&offset=100"],
    )


# --- comparisons ---------------------------------------------------------------------------

Direction = Literal["up", "down", "flat", "unknown"]
Reason = Literal[
    "no_base_value", "no_current_value", "base_is_zero", "unit_changed", "not_a_series"
]
ChangeQualifier = Literal["exact", "at_least", "at_most", "approximate", "unbounded"]
NullableNumber = Annotated[
    Decimal | None,
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "null"}]}),
]


class _YearPairQuery(FormatQuery):
    year: Year = Field(description="The year to compare.", examples=[2023])
    base_year: Year | None = Field(
        default=None,
        description="The earlier year to compare with (default: `year` - 1).",
        examples=[2022],
    )

    _base = field_validator("base_year")(_base_before_year)

    def year_pair(self) -> YearPair:
        base_year = self.base_year if self.base_year is not None else self.year - 1
        return YearPair(self.year, base_year)


class ComparisonQuery(with_filters(_YearPairQuery, COMPARISON_FILTERS)):  # type: ignore[misc]
    as_of: AwareDatetime | None = Field(
        default=None,
        description=(
            "Compare the data as it stood at this time (ISO 8601 with a zone, within the years "
            "1 to 9999 in UTC)."
        ),
        examples=["2024-06-01T00:00:00Z"],
    )

    limit: PageLimit = DEFAULT_PAGE_SIZE
    offset: PageOffset = 0

    _times = field_validator("as_of", mode="before")(_iso_timestamp)
    _utc = field_validator("as_of")(_in_utc)

    def filters(self) -> ComparisonFilters:
        return ComparisonFilters(
            years=self.year_pair(),
            where=self.selection(),
            as_of=self.as_of,
            limit=self.limit,
            offset=self.offset,
        )


class SummaryQuery(with_filters(_YearPairQuery, SUMMARY_FILTERS)):  # type: ignore[misc]
    def filters(self) -> SummaryFilters:
        return SummaryFilters(years=self.year_pair(), where=self.selection())


class SeriesQuery(with_filters(FormatQuery, SERIES_FILTERS)):  # type: ignore[misc]
    def filters(self) -> SeriesFilters:
        return SeriesFilters(where=self.selection())


class ExportQuery(FormatQuery):
    year: Year | None = Field(
        default=None,
        description="Only this year's observations (the reference data comes whole).",
        examples=[2023],
    )


# Path parameters: the same name and documentation everywhere.
IndicatorCode = Annotated[
    str, Path(description="Indicator code.", examples=["adaptive_training_trainees"])
]
RegionCode = Annotated[str, Path(description="GB/T 2260 region code.", examples=["320400"])]
CategoryCode = Annotated[
    str, Path(description="Category code.", examples=["employment_entrepreneurship"])
]
SourceId = Annotated[str, Path(description="Source id.", examples=["cz-tyjrswj-2023-review"])]
YearPath = Annotated[int, Path(ge=MIN_YEAR, le=MAX_YEAR, description="Year.", examples=[2023])]


class ChangeFields(BaseModel):
    """How a value moved from its base value (the rules: app/comparisons.py)."""

    change: NullableNumber = Field(
        description="value - base_value in the indicator's unit (percentage points for rates); "
        "null when not comparable or when the change is `unbounded`."
    )
    change_pct: NullableNumber = Field(
        description="change / |base_value| x 100, rounded half up to 2 places; null for rates, "
        "for a zero base and when the change is `unbounded`."
    )
    change_pp: NullableNumber = Field(
        description="For rates: the change in percentage points; null when `unbounded`."
    )
    change_min: NullableNumber = Field(
        description="Lower bound of the change given the qualifiers (`approximate`: "
        f"±{APPROXIMATE_TOLERANCE * 100:.0f}%); "
        "null: unbounded below."
    )
    change_max: NullableNumber = Field(
        description="Upper bound of the change given the qualifiers; null: unbounded above."
    )
    change_qualifier: ChangeQualifier | None = Field(
        description="`exact` only when both values are exact; `at_least` / `at_most`: the change "
        "is bounded below / above only; `unbounded`: on neither side (`at_least` against "
        "`at_least`), so no change figure is given."
    )
    direction: Direction = Field(
        description="`up`/`down` only when the whole change interval says so; else `unknown`."
    )
    comparable: bool
    reason: Reason | None = Field(
        description="Why the values are not comparable, if not: a side is missing "
        "(`no_base_value`, `no_current_value`), `base_is_zero`, `unit_changed`, or "
        "`not_a_series` (the indicator records a single event, such as one claim, whose values "
        "in two years are not a change)."
    )


class Comparison(ChangeFields):
    """An indicator in a region compared between `year` and `base_year`."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["Comparison"]]})

    indicator: str = Field(examples=["adaptive_training_trainees"])
    indicator_name_zh: str
    indicator_name_en: str
    category: str
    measure_type: MeasureType
    region: str = Field(examples=["320400"])
    region_name_zh: str
    region_name_en: str
    unit: str
    unit_name_zh: str
    unit_name_en: str
    year: int = Field(examples=[2023])
    value: NullableNumber = Field(examples=[608])
    qualifier: Qualifier | None
    base_year: int = Field(examples=[2022])
    base_value: NullableNumber = Field(examples=[None])
    base_qualifier: Qualifier | None


class ComparisonList(BaseModel):
    """One page of the indicator x region pairs with a value in either year, compared; follow
    `next` to the end."""

    year: int
    base_year: int
    total: int = Field(description="Pairs matching the filters, over all pages.")
    limit: int
    offset: int
    next: str | None = Field(
        description="URL of the next page (also in the `Link` header); null on the last page.",
        examples=["/api/v1/comparisons?year=2023&limit=100&offset=100"],
    )
    data: list[Comparison]


class CategoryTile(BaseModel):
    """How the indicators of one category moved: the counts a headline tile shows."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["CategoryTile"]]})

    category: str = Field(examples=["employment_entrepreneurship"])
    name_zh: str
    name_en: str
    up: int
    down: int
    flat: int
    unknown: int = Field(description="Comparable, but the qualifiers leave the direction open.")
    not_comparable: int = Field(
        description="Missing a side, base zero, a changed unit, or not a series."
    )
    total: int


class ComparisonSummary(BaseModel):
    """Per category, how many indicator x region pairs went up, down, flat or unknown."""

    year: int
    base_year: int
    total: int
    data: list[CategoryTile]


class SeriesPoint(ChangeFields):
    """One year of a series, with its change from the previous year with data."""

    year: int = Field(examples=[2023])
    value: ExactNumber = Field(examples=[608])
    qualifier: Qualifier
    unit: str
    base_year: int | None = Field(description="The previous year with a value, if any.")


class RegionSeries(BaseModel):
    """An indicator's yearly values in one region, and the growth rate over the span."""

    region: str = Field(examples=["320400"])
    region_name_zh: str
    region_name_en: str
    first_year: int
    last_year: int
    cagr_pct: NullableNumber = Field(
        description="Compound annual growth rate over first_year..last_year, in percent."
    )
    cagr_reason: str | None = Field(
        description="Why there is no CAGR: single_year, inexact_endpoint, "
        "non_positive_endpoint, unit_changed, rate, not_a_series (a single event)."
    )
    points: list[SeriesPoint]


class IndicatorSeries(BaseModel):
    """An indicator and its series, one per region with data."""

    indicator: Indicator
    series: list[RegionSeries]


def csv_columns(model: type[BaseModel]) -> list[str]:
    """The CSV header of a model: its fields, nested models flattened as `parent_child`.

    Fields inherited from ChangeFields come last, after what identifies the row.
    """
    columns = _model_columns(model)
    if issubclass(model, ChangeFields):
        change = set(ChangeFields.model_fields)
        columns = [c for c in columns if c not in change] + list(ChangeFields.model_fields)
    return columns


def _model_columns(model: type[BaseModel]) -> list[str]:
    columns: list[str] = []
    for name, field in model.model_fields.items():
        annotation: Any = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            columns += [f"{name}_{child}" for child in _model_columns(annotation)]
        else:
            columns.append(name)
    return columns


# --- writes --------------------------------------------------------------------------------


class ObservationWrite(BaseModel):
    """The body of a PUT: one value and where it was published. Ids, revisions and times are
    the server's to set, so they are not accepted here. The provenance rules (README,
    "Provenance") are checked: 422 naming `quote`, `value`, `qualifier`, `note` or `source`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "value": 608,
                    "qualifier": "exact",
                    "source": "cz-tyjrswj-2023-review",
                    "quote": "退役士兵适应性培训608人次",
                    "note": None,
                }
            ]
        },
    )

    value: Annotated[
        Decimal,
        WithJsonSchema(
            {
                "anyOf": [{"type": "number"}, {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}],
                "description": "Exact decimal in base units (at most 15 significant digits and "
                "6 decimal places); a string keeps any number exact in transit. Checked for "
                "sense: a count (persons, sessions, items...) is a non-negative whole number; "
                "money and ratios are non-negative; a rate (measure type `rate` or unit "
                "`percent`) is within 0-100 (422 naming `value` and the rule).",
            }
        ),
    ]
    qualifier: Qualifier = Field(default=Qualifier.exact)
    source: str = Field(
        pattern=CODE_PATTERN,
        max_length=100,
        description="Source id (`GET /sources`). An unknown one is 422: register it with its "
        "text in a bundle's `sources:` (`POST /imports`), or ask an admin.",
    )
    quote: str = Field(
        min_length=1,
        max_length=2000,
        description="The clause of the source stating the value, verbatim: when the source has "
        "a stored text it must occur in it character for character (no normalisation), and one "
        "figure it states (万 and 亿 expanded) must equal `value` with the same `qualifier`. "
        'For a source without a stored text, a locator ("sheet 2, row 14") will do; any '
        "figure it states is still checked.",
    )
    note: str | None = Field(
        default=None, max_length=2000, description="Required, saying how, when `derived`."
    )
    # Strict: JSON true or false, never 0 or "yes" (the schema says boolean).
    derived: bool = Field(default=False, strict=True, description=DERIVED_DESCRIPTION)
    unit: str | None = Field(
        default=None,
        pattern=CODE_PATTERN,
        max_length=64,
        description="Unit code, when it differs from the indicator's: only a unit that counts "
        "the same thing (`person_time` for `person`, and back), as a published unit change; "
        "nothing is converted. Any other unit is 422 naming `unit`.",
    )

    _text = field_validator("quote", "note")(refuse_formula)
    _no_nul = field_validator("*", mode="before")(refuse_nul)

    @field_validator("value", mode="before")
    @classmethod
    def _exact(cls, raw: Any) -> Decimal:
        try:
            return parse_decimal(raw)
        except DecimalRangeError as error:
            raise ValueError(str(error)) from None


class Revision(BaseModel):
    """One state an observation has had."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLES["Revision"]]})

    revision: int = Field(examples=[1])
    action: Literal["create", "update", "delete"]
    value: ExactNumber = Field(examples=[608])
    unit: str = Field(examples=["person_time"])
    qualifier: Qualifier
    source: ObservationSource
    note: str | None
    derived: bool = Field(description=DERIVED_DESCRIPTION)
    recorded_at: datetime
    recorded_by: str = Field(
        description="The API key's name, or `seed:<file>` for the seed.",
        examples=["seed:changzhou-2023-review.yaml"],
    )


class RevisionList(BaseModel):
    """Every state an observation has had, oldest first."""

    indicator: str
    region: str
    year: int
    total: int
    data: list[Revision]


class ImportRow(BaseModel):
    """What an import did to one record."""

    section: str = Field(examples=["observations"])
    record: str = Field(
        description="The record's code, or indicator/region/year for an observation.",
        examples=["adaptive_training_trainees/320400/2024"],
    )
    action: Literal["created", "changed", "unchanged"]


class ImportResult(BaseModel):
    """What an import did (or, for a dry run, would do) to each record."""

    format: Literal["csv", "bundle"]
    dry_run: bool
    applied: bool = Field(description="False for a dry run: the report of what would happen.")
    summary: dict[str, dict[str, int]] = Field(
        description="Per section: how many records were created, changed, left unchanged.",
        examples=[{"observations": {"created": 56, "changed": 0, "unchanged": 0}}],
    )
    rows: list[ImportRow] = Field(
        default_factory=list,
        description="Each record and what happened to it. Omitted from a replayed answer "
        "(`Idempotency-Key`), which keeps only the summary.",
    )


class ExtractionQuery(_Query):
    """`POST /extractions`: what the draft's source record says, where the text does not."""

    year: Year = Field(description="The year the review covers.", examples=[2024])
    source_code: str = Field(
        pattern=CODE_PATTERN,
        max_length=100,
        description="The new source's code.",
        examples=["cz-tyjrswj-2024-review"],
    )
    published_on: date | None = Field(
        default=None, description="Default: the text's 发布日期.", examples=["2025-01-03"]
    )
    title_zh: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        description="Default: the text's first line.",
        examples=["年度盘点 | 2024,常州退役军人工作这一年"],
    )
    url: str | None = Field(
        default=None,
        max_length=1000,
        description="Where it is published.",
        examples=["https://tyjrswj.changzhou.gov.cn/"],
    )
    publisher_zh: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Default: the text's 主办单位 and 来源.",
        examples=["常州市退役军人事务局 局办公室"],
    )
