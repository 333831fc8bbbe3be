"""Sync by cursor: every change numbered at commit (`change_seq`), `since=<seq>` on
/observations, `X-Change-Seq` on the answer. A poller that follows the cursor misses nothing,
even when a write stamped earlier (a server whose clock is behind) commits later."""

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, func, select

from app import exporter, queries, writes
from app.db import read_connection, write_transaction
from app.models import (
    data_version_table,
    indicator_table,
    observation_table,
    region_table,
    revision_table,
    source_table,
    utcnow,
)
from tests.conftest import bearer

URL = "/api/v1/observations"
SOURCE = "synthetic-test-source"
Key = tuple[str, str, int]


def _key(row: dict[str, Any]) -> Key:
    return (row["indicator"], row["region"], row["year"])


def _published(client: TestClient) -> dict[Key, Decimal]:
    """What the API publishes now, by key."""
    rows = client.get(URL, params={"limit": 1000}).json()["data"]
    return {_key(row): Decimal(str(row["value"])) for row in rows}


class Mirror:
    """A partner's copy, kept in sync as the README says: by cursor (`since`), or by time
    (`updated_after`, the latest `updated_at` seen)."""

    def __init__(self) -> None:
        self.values: dict[Key, Decimal] = {}
        self.cursor = 0
        self.time: datetime | None = None

    def apply(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if row["deleted"]:
                self.values.pop(_key(row), None)
            else:
                self.values[_key(row)] = Decimal(str(row["value"]))

    def by_cursor(self, client: TestClient, *, limit: int = 4) -> None:
        url: str | None = f"{URL}?since={self.cursor}&limit={limit}"
        while url:
            response = client.get(url)
            assert response.status_code == 200, response.text
            body = response.json()
            self.apply(body["data"])
            seqs = [row["change_seq"] for row in body["data"]]
            assert seqs == sorted(seqs) and all(seq > self.cursor for seq in seqs)
            self.cursor = max([self.cursor, *seqs])
            url = body["next"]
        # Caught up: every change up to the answer's X-Change-Seq is in the mirror now.
        self.cursor = max(self.cursor, int(response.headers["x-change-seq"]))

    def by_time(self, client: TestClient) -> None:
        params: dict[str, Any] = {"limit": 1000}
        if self.time is not None:
            params["updated_after"] = self.time.isoformat()
        rows = client.get(URL, params=params).json()["data"]
        self.apply(rows)
        stamps = [datetime.fromisoformat(row["updated_at"]) for row in rows]
        self.time = max([*stamps, *([self.time] if self.time else [])], default=None)


def _ids(connection: Connection, indicator: str, region: str) -> tuple[int, int, int, int]:
    found = connection.execute(
        select(indicator_table.c.id, indicator_table.c.unit_id).where(
            indicator_table.c.code == indicator
        )
    ).one()
    region_id = connection.execute(
        select(region_table.c.id).where(region_table.c.code == region)
    ).scalar_one()
    source_id = connection.execute(
        select(source_table.c.id).where(source_table.c.code == SOURCE)
    ).scalar_one()
    return found.id, found.unit_id, region_id, source_id


def write_value(
    engine: Engine, key: Key, value: int, *, before_commit: Callable[[], None] = lambda: None
) -> None:
    """One server's write of one value (the service functions PUT uses), in one transaction;
    `before_commit` runs after the value is written and before it commits."""
    indicator, region, year = key
    with write_transaction(engine) as connection:
        indicator_id, unit_id, region_id, source_id = _ids(connection, indicator, region)
        state = writes.NewState(
            key=(indicator_id, region_id, year),
            value=Decimal(value),
            unit_id=unit_id,
            qualifier="exact",
            source_id=source_id,
            quote=f"synthetic {indicator} {value}",
            note=None,
        )
        writes.upsert_observations(connection, [state], recorded_by="server")
        writes.bump_data_version(connection)
        before_commit()


def delete_value(engine: Engine, key: Key) -> None:
    indicator, region, year = key
    with write_transaction(engine) as connection:
        indicator_id, _, region_id, _ = _ids(connection, indicator, region)
        current = writes.current_rows(connection, [(indicator_id, region_id, year)])
        if current:
            [row] = current.values()
            writes.delete_observation(connection, row, recorded_by="server")
            writes.bump_data_version(connection)


BEHIND = "server-with-a-slow-clock"
SKEW = timedelta(minutes=1)


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes from the thread named BEHIND are stamped by a clock a minute slow, as a second
    app server's might be (the one machine's clock cannot be made to run backwards)."""

    def now() -> datetime:
        behind = threading.current_thread().name == BEHIND
        return utcnow() - SKEW if behind else utcnow()

    monkeypatch.setattr(writes, "utcnow", now)


def _thread(name: str, work: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            work()
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def test_a_write_stamped_earlier_that_commits_later_is_missed_by_time_not_by_cursor(
    api: TestClient, engine: Engine, clocks: None
) -> None:
    by_cursor, by_time = Mirror(), Mirror()
    by_cursor.by_cursor(api)
    by_time.by_time(api)
    assert by_cursor.values == by_time.values == _published(api)

    on_time_holds_lock, slow_written, slow_may_commit = (threading.Event() for _ in range(3))
    release_on_time = threading.Event()
    errors: list[BaseException] = []

    def on_time() -> None:
        def hold() -> None:
            on_time_holds_lock.set()
            release_on_time.wait(30)

        write_value(engine, ("trained", "320400", 2019), 111, before_commit=hold)

    def slow() -> None:
        def hold() -> None:
            slow_written.set()
            slow_may_commit.wait(30)

        write_value(engine, ("funds", "320412", 2020), 222, before_commit=hold)

    first = _thread("server-on-time", on_time, errors)
    assert on_time_holds_lock.wait(30)
    second = _thread(BEHIND, slow, errors)  # waits for the write lock: writers take turns
    release_on_time.set()
    first.join(30)
    assert slow_written.wait(30)
    # The on-time write has committed; the slow-clock one (stamped a minute earlier) has not.
    by_cursor.by_cursor(api)
    by_time.by_time(api)
    assert by_cursor.values == by_time.values == _published(api)
    slow_may_commit.set()
    second.join(30)
    assert errors == []

    by_cursor.by_cursor(api)
    by_time.by_time(api)
    published = _published(api)
    assert published[("funds", "320412", 2020)] == 222
    assert by_cursor.values == published
    assert by_time.values[("funds", "320412", 2020)] != 222  # missed: stamped before `time`


def test_a_poller_following_the_cursor_through_concurrent_writes_misses_nothing(
    api: TestClient, engine: Engine, clocks: None
) -> None:
    mirror = Mirror()
    mirror.by_cursor(api)
    keys = [("trained", "320400", 2019), ("trained", "320411", 2021), ("share", "320400", 2023)]
    errors: list[BaseException] = []

    def writer(offset: int) -> Callable[[], None]:
        def work() -> None:
            for step in range(12):
                key = keys[(step + offset) % len(keys)]
                if step % 5 == 4:
                    delete_value(engine, key)
                else:
                    write_value(engine, key, 1000 * offset + step)

        return work

    writers = [_thread(name, writer(n), errors) for n, name in enumerate(["server", BEHIND])]
    polls = 0
    while any(thread.is_alive() for thread in writers):
        mirror.by_cursor(api, limit=2)
        polls += 1
    for thread in writers:
        thread.join(30)
    assert errors == []
    mirror.by_cursor(api, limit=2)
    assert mirror.values == _published(api)
    assert polls >= 1


def test_every_change_has_the_next_number_and_rows_carry_their_latest(
    api: TestClient, engine: Engine, token: str
) -> None:
    start = int(api.get(URL).headers["x-change-seq"])
    assert start == 25  # the world's 25 values, one change each
    path = f"{URL}/trained/320400/2019"
    body = {"value": 7, "source": SOURCE, "quote": "synthetic trained"}
    assert api.put(path, json=body, headers=bearer(token)).json()["change_seq"] == start + 1
    assert api.put(path, json=body, headers=bearer(token)).json()["change_seq"] == start + 1
    assert api.delete(path, headers=bearer(token)).status_code == 204
    assert api.put(path, json=body, headers=bearer(token)).json()["change_seq"] == start + 3

    with engine.connect() as connection:
        numbers = connection.scalars(
            select(revision_table.c.change_seq).order_by(revision_table.c.id)
        ).all()
        latest = connection.execute(
            select(observation_table.c.change_seq, func.max(revision_table.c.change_seq))
            .join(
                revision_table,
                (revision_table.c.indicator_id == observation_table.c.indicator_id)
                & (revision_table.c.region_id == observation_table.c.region_id)
                & (revision_table.c.year == observation_table.c.year),
            )
            .group_by(observation_table.c.id, observation_table.c.change_seq)
        ).all()
        counter = connection.scalar(select(data_version_table.c.change_seq))
    assert numbers == list(range(1, start + 4))  # no gap, no repeat, in order of recording
    assert all(row[0] == row[1] for row in latest)
    assert counter == start + 3


def test_since_answers_the_changes_after_it_deletions_included_in_change_order(
    api: TestClient, token: str
) -> None:
    start = int(api.get(URL).headers["x-change-seq"])
    body = {"value": 9, "source": SOURCE, "quote": "synthetic"}
    api.put(f"{URL}/share/320400/2020", json=body, headers=bearer(token))
    api.delete(f"{URL}/funds/320400/2021", headers=bearer(token))
    api.put(f"{URL}/trained/320411/2019", json=body, headers=bearer(token))

    response = api.get(URL, params={"since": start})

    rows = response.json()["data"]
    assert [(_key(row), row["deleted"], row["change_seq"]) for row in rows] == [
        (("share", "320400", 2020), False, start + 1),
        (("funds", "320400", 2021), True, start + 2),
        (("trained", "320411", 2019), False, start + 3),
    ]
    assert response.headers["x-change-seq"] == str(start + 3)
    assert api.get(URL, params={"since": start + 3}).json()["data"] == []
    csv = api.get(URL, params={"since": start, "format": "csv"}).text.splitlines()
    assert "change_seq" in csv[0].split(",") and len(csv) == 4


def test_since_pages_by_cursor_so_a_change_between_pages_is_not_skipped(
    api: TestClient, token: str
) -> None:
    first = api.get(URL, params={"since": 0, "limit": 10}).json()
    assert first["next"] == f"{URL}?limit=10&since=10"
    # A row of the first page changes: its new state goes to the end, and nothing shifts.
    body = {"value": 5, "source": SOURCE, "quote": "synthetic"}
    changed = _key(first["data"][0])
    api.put(f"{URL}/{changed[0]}/{changed[1]}/{changed[2]}", json=body, headers=bearer(token))
    seen = [_key(row) for row in first["data"]]
    url = first["next"]
    while url:
        page = api.get(url).json()
        seen += [_key(row) for row in page["data"]]
        url = page["next"]
    assert len(set(seen)) == 25 and seen[-1] == changed


def test_since_takes_no_other_order(world: TestClient) -> None:
    response = world.get(URL, params={"since": 0, "sort": "year"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "sort"
    assert world.get(URL, params={"since": 0, "sort": "change_seq"}).status_code == 200


@pytest.mark.parametrize("since", ["-1", "x", "2147483648"])
def test_a_bad_since_is_a_422_naming_it(world: TestClient, since: str) -> None:
    response = world.get(URL, params={"since": since})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "since"


def test_a_read_sees_one_snapshot_whatever_commits_meanwhile(engine: Engine) -> None:
    """The rows of an answer and the X-Change-Seq it reports come from one snapshot: a write
    that commits between two statements of a read is in neither (PostgreSQL's READ COMMITTED
    would show it to the second; reads there are REPEATABLE READ)."""
    with read_connection(engine) as connection:
        before = queries.get_data_version(connection)
        write_value(engine, ("trained", "320400", 2019), 4242)  # another connection commits
        after = queries.get_data_version(connection)
        values = {row["value"] for row in exporter.export_observations(connection, 2019)}
    assert after == before
    assert Decimal(4242) not in values
    with read_connection(engine) as connection:
        assert queries.get_data_version(connection).change_seq == before.change_seq + 1
