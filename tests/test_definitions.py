"""Definitions that survive a comparison (issue 13): the corrected names reach databases seeded
before them (migration 0006, reversible), and a single event is never compared as a series."""

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import build_engine
from app.migrate import downgrade, upgrade
from app.models import indicator_table, unit_table
from app.seeding import seed_directory
from tests.conftest import SEED_DIR, DatabaseFactory

API = "/api/v1"


def _texts(engine) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                indicator_table.c.code,
                indicator_table.c.name_zh,
                indicator_table.c.name_en,
                indicator_table.c.description_zh,
                indicator_table.c.description_en,
                indicator_table.c.single_event,
            )
        )
        texts = {row.code: tuple(row[1:]) for row in rows}
        post = connection.execute(select(unit_table.c.name_en).where(unit_table.c.code == "post"))
        texts["unit:post"] = (post.scalar_one(),)
    return texts


def test_migration_0006_brings_an_older_database_to_the_seeds_definitions_and_back(
    databases: DatabaseFactory,
) -> None:
    engine = build_engine(databases.fresh("empty"))
    try:
        seed_directory(engine, SEED_DIR)
        seeded = _texts(engine)
        downgrade(engine, "0005")  # the text as the 2023 seed first had it
        older = _texts(engine)
        assert older["assigned_soldier_posts_per_person"][0] == "人岗比例"
        assert older["unit:post"] == ("jobs offered",)
        assert (
            older["large_accident_claim_paid"][3] == "One case, the first of its kind in Jiangsu."
        )
        assert not older["large_accident_claim_paid"][4]
        upgrade(engine)
        assert _texts(engine) == seeded
        assert seeded["large_accident_claim_paid"][4] is True
        assert seeded["wechat_monthly_reads"][1].endswith("in its peak month")
    finally:
        engine.dispose()


def test_an_operators_own_text_is_left_alone_by_the_migration(databases: DatabaseFactory) -> None:
    engine = build_engine(databases.fresh("empty"))
    try:
        seed_directory(engine, SEED_DIR)
        downgrade(engine, "0005")
        with engine.begin() as connection:
            connection.execute(
                indicator_table.update()
                .where(indicator_table.c.code == "wechat_monthly_reads")
                .values(name_en="Operator's own name")
            )
        upgrade(engine)
        assert _texts(engine)["wechat_monthly_reads"][1] == "Operator's own name"
    finally:
        engine.dispose()


def test_a_single_event_is_not_a_series_in_comparisons_or_series(client: TestClient) -> None:
    pairs = client.get(
        f"{API}/comparisons", params={"year": 2023, "indicator": "large_accident_claim_paid"}
    ).json()["data"]
    assert [(p["reason"], p["comparable"], p["change"]) for p in pairs] == [
        ("not_a_series", False, None)
    ]
    series = client.get(f"{API}/indicators/large_accident_claim_paid/series").json()
    assert series["indicator"]["single_event"] is True
    [region] = series["series"]
    assert region["cagr_reason"] == "not_a_series"
    assert [point["reason"] for point in region["points"]] == ["not_a_series"]
    other = client.get(f"{API}/indicators/job_fairs_held").json()
    assert other["single_event"] is False
