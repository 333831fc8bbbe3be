"""What the benchmark loads: the app's endpoints, and the same SQL as Datasette canned queries.

Each database gets the same targets with its own codes: the seed's codes are real ones from
the 2023 review, the synthetic database's are `synthetic_*` (bench/generate.py). The Datasette
queries are the SQL the app runs for the same answer (same joins, columns and order), so that a
ratio compares the two servers and not two questions.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Codes:
    indicator: str
    region: str
    category: str
    year: int
    first_year: int


CODES = {
    "seed": Codes(
        "adaptive_training_trainees", "320400", "employment_entrepreneurship", 2023, 2014
    ),
    "synthetic": Codes("synthetic_i0001", "990100", "synthetic_c001", 2023, 2014),
}
CODES["small"] = CODES["synthetic"]


@dataclass(frozen=True)
class Target:
    name: str
    what: str  # one line for the table
    path: str  # with {placeholders} from Codes
    peer: str | None = None  # the Datasette canned query answering the same question
    revalidate: bool = False  # send If-None-Match with the ETag of a first answer: 304


TRIVIAL = "trivial"
TARGETS = [
    Target(TRIVIAL, "GET /healthz (no database)", "/healthz"),
    Target(
        "filtered",
        "observations: 1 indicator x 1 region, a year range",
        "/api/v1/observations?indicator={indicator}&region={region}&from={first_year}&to={year}",
        peer="filtered",
    ),
    Target(
        "page",
        "observations: page of 100 by category and year",
        "/api/v1/observations?category={category}&year={year}&limit=100",
        peer="page",
    ),
    Target(
        "comparisons",
        "comparisons: 1 category, all regions, year over year",
        "/api/v1/comparisons?category={category}&year={year}",
        peer="comparisons",
    ),
    Target(
        "series",
        "an indicator's series in 1 region",
        "/api/v1/indicators/{indicator}/series?region={region}",
        peer="series",
    ),
    Target(
        "revalidate",
        "304: the page of 100 revalidated with If-None-Match",
        "/api/v1/observations?category={category}&year={year}&limit=100",
        revalidate=True,
    ),
    Target(
        "csv",
        "CSV: the page of 100",
        "/api/v1/observations?category={category}&year={year}&limit=100&format=csv",
    ),
]

_OBSERVATION_COLUMNS = """
    i.code AS indicator, i.name_zh AS indicator_name_zh, i.name_en AS indicator_name_en,
    c.code AS category, r.code AS region, r.name_zh AS region_name_zh,
    r.name_en AS region_name_en, o.year, o.value, u.code AS unit, u.name_zh AS unit_name_zh,
    u.name_en AS unit_name_en, o.qualifier, o.note, s.code AS source_id, o.quote, o.revision,
    o.updated_at
"""
_OBSERVATION_JOINS = """
    FROM observation o
    JOIN indicator i ON o.indicator_id = i.id
    JOIN category c ON i.category_id = c.id
    JOIN unit u ON o.unit_id = u.id
    JOIN region r ON o.region_id = r.id
    JOIN source s ON o.source_id = s.id
"""

# Datasette canned queries: name -> (SQL, parameters from Codes).
PEER_QUERIES: dict[str, tuple[str, dict[str, str]]] = {
    "filtered": (
        f"SELECT {_OBSERVATION_COLUMNS} {_OBSERVATION_JOINS}"
        " WHERE i.code = :indicator AND r.code = :region AND o.year BETWEEN :first AND :last"
        " ORDER BY i.code, r.code, o.year",
        {"indicator": "indicator", "region": "region", "first": "first_year", "last": "year"},
    ),
    # The app also counts the matching rows for `total`; so does this query (a window count).
    "page": (
        f"SELECT {_OBSERVATION_COLUMNS}, count(*) OVER () AS total {_OBSERVATION_JOINS}"
        " WHERE c.code = :category AND o.year = :year"
        " ORDER BY i.code, r.code, o.year LIMIT 100",
        {"category": "category", "year": "year"},
    ),
    # Year over year: each series with a value in either year, both values side by side and
    # the change computed in SQL (the app computes it with decimals and interval rules).
    "comparisons": (
        """
        SELECT i.code AS indicator, i.name_zh AS indicator_name_zh,
            i.name_en AS indicator_name_en, i.measure_type, c.code AS category,
            r.code AS region, r.name_zh AS region_name_zh, r.name_en AS region_name_en,
            u.code AS unit, u.name_zh AS unit_name_zh, u.name_en AS unit_name_en,
            cur.value, cur.qualifier, base.value AS base_value,
            base.qualifier AS base_qualifier, cur.value - base.value AS change,
            round((cur.value - base.value) * 100.0 / abs(base.value), 2) AS change_pct
        FROM indicator i
        JOIN category c ON i.category_id = c.id
        JOIN unit u ON i.unit_id = u.id
        JOIN region r
        LEFT JOIN observation cur ON cur.indicator_id = i.id AND cur.region_id = r.id
            AND cur.year = :year
        LEFT JOIN observation base ON base.indicator_id = i.id AND base.region_id = r.id
            AND base.year = :year - 1
        WHERE c.code = :category AND (cur.id IS NOT NULL OR base.id IS NOT NULL)
        ORDER BY c.display_order, i.display_order, i.code, r.code
        """,
        {"category": "category", "year": "year"},
    ),
    "series": (
        """
        SELECT i.code AS indicator, r.code AS region, r.name_zh AS region_name_zh,
            r.name_en AS region_name_en, o.year, o.value, o.qualifier, u.code AS unit,
            o.value - lag(o.value) OVER (ORDER BY o.year) AS change
        FROM observation o
        JOIN indicator i ON o.indicator_id = i.id
        JOIN region r ON o.region_id = r.id
        JOIN unit u ON o.unit_id = u.id
        WHERE i.code = :indicator AND r.code = :region
        ORDER BY o.year
        """,
        {"indicator": "indicator", "region": "region"},
    ),
}


def app_path(target: Target, codes: Codes) -> str:
    return target.path.format(**vars(codes))


def peer_path(database: str, query: str, codes: Codes) -> str:
    _sql, parameters = PEER_QUERIES[query]
    values = "&".join(f"{name}={getattr(codes, field)}" for name, field in parameters.items())
    return f"/{database}/{query}.json?_shape=objects&{values}"


def datasette_metadata(databases: list[str]) -> dict[str, object]:
    queries = {name: {"sql": sql} for name, (sql, _parameters) in PEER_QUERIES.items()}
    return {"databases": {database: {"queries": queries} for database in databases}}
