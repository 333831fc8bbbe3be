"""Values checked for sense (app/sanity.py) on every write path and by `statsapi check`."""

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from app import provenance
from app.db import write_transaction
from app.keys import Scope, create_key
from app.models import indicator_table, observation_table
from app.sanity import Measure, problems
from tests.conftest import ClientFactory, bearer, snapshot
from tests.factories import REVIEW_CLAUSE

SESSIONS = Measure("session", "flow")
PERSONS = Measure("person", "flow")
RATE = Measure("percent", "rate")


@pytest.mark.parametrize(
    ("value", "measure", "expected"),
    [
        ("-3", SESSIONS, [("value", "non-negative rule")]),
        ("1.5", SESSIONS, [("value", "count rule")]),
        ("-1.5", PERSONS, [("value", "non-negative rule"), ("value", "count rule")]),
        ("150", RATE, [("value", "rate rule")]),
        ("-0.1", RATE, [("value", "non-negative rule"), ("value", "rate rule")]),
        ("100.1", Measure("ratio", "rate"), [("value", "rate rule")]),  # the measure type says
        ("-1", Measure("yuan", "flow"), [("value", "non-negative rule")]),
        ("19", Measure("session", "flow", unit="person"), [("unit", "unit rule")]),
        ("5", Measure("person", "flow", unit="yuan"), [("unit", "unit rule")]),
    ],
)
def test_nonsense_breaks_the_named_rule(value: str, measure: Measure, expected: list) -> None:  # type: ignore[type-arg]
    found = problems(Decimal(value), measure)
    assert [(field, message.split(":")[0]) for field, message in found] == expected
    assert all(value in message or field == "unit" for field, message in found)


@pytest.mark.parametrize(
    ("value", "measure"),
    [
        ("0", SESSIONS),
        ("19", SESSIONS),
        ("19.000", SESSIONS),  # a whole number written with decimals
        ("0", RATE),
        ("96.6", RATE),
        ("100", RATE),
        ("1.5", Measure("ratio", "ratio")),
        ("10273000.55", Measure("yuan", "flow")),
        ("608", Measure("person", "flow", unit="person_time")),  # a published unit change
        ("608", Measure("person_time", "flow", unit="person")),
        ("608", Measure("person", "flow", unit="person")),  # the indicator's own, named
        ("-5.5", Measure("synthetic_score", "flow")),  # a unit no rule knows
    ],
)
def test_sense_passes(value: str, measure: Measure) -> None:
    assert problems(Decimal(value), measure) == []


# The dry run of issue 15, on the seed: job fairs (sessions) and a placement rate (percent).
# SYNTHETIC values, derived with a note, so that only the sense rules can refuse them.
NONSENSE = [
    ("job_fairs_held", {"value": "-3"}, "value", "non-negative rule"),
    ("job_fairs_held", {"value": "1.5"}, "value", "count rule"),
    ("transferred_officers_public_placement_rate", {"value": "150"}, "value", "rate rule"),
    ("job_fairs_held", {"value": "19", "unit": "person"}, "unit", "unit rule"),
]


@pytest.fixture
def seeded(make_client: ClientFactory, seeded_engine: Engine) -> tuple[TestClient, str]:
    return make_client(seeded_engine), create_key(seeded_engine, name="p", scopes={Scope.write})


@pytest.mark.parametrize(("indicator", "fields", "field", "rule"), NONSENSE)
def test_a_put_of_nonsense_is_422_naming_the_field_and_the_rule(
    seeded: tuple[TestClient, str],
    seeded_engine: Engine,
    indicator: str,
    fields: dict[str, str],
    field: str,
    rule: str,
) -> None:
    api, token = seeded
    before = snapshot(seeded_engine)
    body = {"source": "cz-tyjrswj-2023-review", "quote": REVIEW_CLAUSE, "derived": True}
    body |= {"note": "SYNTHETIC nonsense (test)", **fields}
    response = api.put(
        f"/api/v1/observations/{indicator}/320400/2023", json=body, headers=bearer(token)
    )
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["field"], e["message"].split(":")[0]) for e in errors] == [(field, rule)]
    assert snapshot(seeded_engine) == before


def test_an_import_of_nonsense_names_each_row_and_rule(seeded: tuple[TestClient, str]) -> None:
    api, token = seeded
    lines = ["indicator,region,year,value,qualifier,note,source,quote,unit,derived"]
    for year, (indicator, fields, _, _) in enumerate(NONSENSE, 2020):  # one key each
        unit = fields.get("unit", "")
        lines.append(
            f"{indicator},320400,{year},{fields['value']},exact,SYNTHETIC nonsense (test),"
            f"cz-tyjrswj-2023-review,{REVIEW_CLAUSE},{unit},true"
        )
    response = api.post(
        "/api/v1/imports?dry_run=true",
        content="\r\n".join(lines) + "\r\n",
        headers=bearer(token, **{"Content-Type": "text/csv"}),
    )
    assert response.status_code == 422, response.text
    found = [
        (e["record"], e["field"], e["message"].split(":")[0]) for e in response.json()["errors"]
    ]
    assert found == [
        (f"row {number}", field, rule) for number, (_, _, field, rule) in enumerate(NONSENSE, 2)
    ]


def test_statsapi_check_finds_nonsense_stored_behind_the_api(seeded_engine: Engine) -> None:
    with seeded_engine.connect() as connection:
        assert provenance.check_stored(connection) == []  # the seed makes sense
    fairs = select(indicator_table.c.id).where(indicator_table.c.code == "job_fairs_held")
    with write_transaction(seeded_engine) as connection:
        connection.execute(
            update(observation_table)
            .where(observation_table.c.indicator_id == fairs.scalar_subquery())
            .values(value=Decimal("-3"), derived=True, note="SYNTHETIC nonsense (test)")
        )
    with seeded_engine.connect() as connection:
        failures = [str(failure) for failure in provenance.check_stored(connection)]
    assert failures == [
        "job_fairs_held/320400/2023: value: non-negative rule: a value in session is not "
        "below 0, not -3"
    ]
