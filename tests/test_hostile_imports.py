"""Large and concurrent imports: off the event loop, one at a time per worker, few statements,
short write locks, small idempotency records (issue 11, items 3, 8 and 9).

Every row here is SYNTHETIC: the seed's indicators and regions over made-up years and values,
quoted as "SYNTHETIC row n".
"""

from functools import cache

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.auth import Scope, create_key
from app.bundle import MAX_YEAR, read_bundle_file
from tests.conftest import SEED_DIR, ClientFactory, count_statements

URL = "/api/v1/imports"
SOURCE = "cz-tyjrswj-2023-review"
HEADER = "indicator,region,year,value,qualifier,note,source,quote"
LARGE_IMPORT_ROWS = 20_000
# 20,000 changed rows ran 95 statements once batched (20,116 before: one UPDATE a row).
LARGE_IMPORT_MAX_STATEMENTS = LARGE_IMPORT_ROWS // 100


@cache
def _seed_cells() -> tuple[list[str], list[str]]:
    seed = read_bundle_file(SEED_DIR / "changzhou-2023-review.yaml").bundle
    return [i.code for i in seed.indicators], [r.code for r in seed.regions]


def synthetic_csv(rows: int, *, value_offset: int = 0) -> str:
    """SYNTHETIC rows over the seed's indicators x regions, years counting down from MAX_YEAR
    (the seed's own year, 2023, is reached only past about 5,000 rows)."""
    indicators, regions = _seed_cells()
    per_year = len(indicators) * len(regions)
    lines = [HEADER]
    for n in range(rows):
        indicator = indicators[n % len(indicators)]
        region = regions[(n // len(indicators)) % len(regions)]
        year = MAX_YEAR - n // per_year
        lines.append(
            f"{indicator},{region},{year},{n + value_offset},exact,,{SOURCE},SYNTHETIC row {n}"
        )
    return "\r\n".join(lines) + "\r\n"


def _post_csv(api: TestClient, token: str, body: str, **kw):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    headers.update(kw.pop("headers", {}))
    return api.post(URL, content=body.encode(), headers=headers, **kw)


def test_a_large_import_runs_a_bounded_number_of_statements(
    make_client: ClientFactory, seeded_engine: Engine
) -> None:
    api = make_client(seeded_engine)
    token = create_key(seeded_engine, name="bulk", scopes={Scope.write})
    created = _post_csv(api, token, synthetic_csv(LARGE_IMPORT_ROWS))
    assert created.status_code == 200, created.text[:500]
    changed_body = synthetic_csv(LARGE_IMPORT_ROWS, value_offset=1)
    answers = []
    statements = count_statements(
        seeded_engine, lambda: answers.append(_post_csv(api, token, changed_body))
    )
    assert answers[0].status_code == 200, answers[0].text[:500]
    counts = answers[0].json()["summary"]["observations"]
    assert counts == {"created": 0, "changed": LARGE_IMPORT_ROWS, "unchanged": 0}
    assert statements <= LARGE_IMPORT_MAX_STATEMENTS
