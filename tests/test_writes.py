"""The write path: PUT and DELETE of one value, keys and scopes, preconditions, history,
vintages (`as_of`, `updated_after`) and concurrent writers. Runs on the SYNTHETIC world."""

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from app.db import write_transaction
from app.keys import Scope, create_key, hash_token, revoke_key
from app.models import api_key_table
from tests.conftest import ClientFactory, bearer, snapshot
from tests.factories import SYNTHETIC_SOURCE

URL = "/api/v1/observations"
PROBLEM = "application/problem+json"
# World values (tests/factories.py): (year - 2000) * 10 + series number.
TRAINED_CZ_2023 = ("trained", "320400", 2023)  # 230, exists
FUNDS_CZ_2023 = ("funds", "320400", 2023)  # 232, exists
FUNDS_WUJIN_2023 = ("funds", "320412", 2023)  # 233, exists
TRAINED_WUJIN_2023 = ("trained", "320412", 2023)  # no such series in the world: a fresh key

Key = tuple[str, str, int]


# --- fixtures and helpers -------------------------------------------------------------------


def _path(key: Key) -> str:
    indicator, region, year = key
    return f"{URL}/{indicator}/{region}/{year}"


def _body(value: Any = "1", **fields: Any) -> dict[str, Any]:
    return {"value": value, "source": SYNTHETIC_SOURCE, "quote": "synthetic quote"} | fields


def _exact(response: httpx.Response) -> Any:
    """The JSON body with numbers as exact decimals."""
    return json.loads(response.text, parse_float=Decimal, parse_int=Decimal)


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    return body


def _error_fields(response: httpx.Response) -> set[str]:
    return {error["field"] for error in _problem(response, 422)["errors"]}


def _insert_raw_key(engine: Engine, *, name: str, scopes: str) -> str:
    """A key row with any scopes string (create_key only makes write/admin keys)."""
    token = secrets.token_urlsafe(32)
    with write_transaction(engine) as connection:
        connection.execute(
            insert(api_key_table).values(
                name=name,
                token_sha256=hash_token(token),
                scopes=scopes,
                created_at=datetime.now(UTC),
            )
        )
    return token


def _revision_count(engine: Engine) -> int:
    return snapshot(engine)[1]


def _etag_revision(etag: str) -> int:
    assert etag.startswith('"r') and etag.endswith('"'), etag
    return int(etag[2:-1])


def _tick() -> datetime:
    """A time strictly between the write before and the write after."""
    time.sleep(0.005)
    now = datetime.now(UTC)
    time.sleep(0.005)
    return now


def _states(client: TestClient, **params: Any) -> dict[Key, dict[str, Any]]:
    response = client.get(URL, params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    body = _exact(response)
    assert body["total"] == len(body["data"])
    return {(r["indicator"], r["region"], r["year"]): r for r in body["data"]}


def _history(client: TestClient, key: Key) -> list[dict[str, Any]]:
    response = client.get(f"{_path(key)}/revisions")
    assert response.status_code == 200, response.text
    return _exact(response)["data"]


# --- 1. who may write -----------------------------------------------------------------------


def _no_header(engine: Engine) -> dict[str, Any]:
    return {}


def _basic(engine: Engine) -> dict[str, Any]:
    return {"headers": {"Authorization": "Basic xyz"}}


def _bearer_nothing(engine: Engine) -> dict[str, Any]:
    return {"headers": {"Authorization": "Bearer"}}


def _bearer_blank(engine: Engine) -> dict[str, Any]:
    return {"headers": {"Authorization": "Bearer    "}}


def _unknown(engine: Engine) -> dict[str, Any]:
    create_key(engine, name="someone", scopes={Scope.write})  # a real key exists, not this one
    return {"headers": bearer(secrets.token_urlsafe(32))}


def _revoked(engine: Engine) -> dict[str, Any]:
    token = create_key(engine, name="former", scopes={Scope.admin})
    assert revoke_key(engine, name="former")
    return {"headers": bearer(token)}


def _in_query_string(engine: Engine) -> dict[str, Any]:
    token = create_key(engine, name="leaky", scopes={Scope.write})
    return {"params": {"access_token": token, "token": token}}


def _no_scopes(engine: Engine) -> dict[str, Any]:
    return {"headers": bearer(_insert_raw_key(engine, name="nothing", scopes=""))}


def _other_scope(engine: Engine) -> dict[str, Any]:
    return {"headers": bearer(_insert_raw_key(engine, name="reader", scopes="read export"))}


def _write_scope(engine: Engine) -> dict[str, Any]:
    return {"headers": bearer(create_key(engine, name="partner", scopes={Scope.write}))}


def _admin_scope(engine: Engine) -> dict[str, Any]:
    return {"headers": bearer(create_key(engine, name="bureau", scopes={Scope.admin}))}


Credentials = Callable[[Engine], dict[str, Any]]
# (credentials, status, the `error` the challenge names, or None for none)
REJECTED: dict[str, tuple[Credentials, int, str | None]] = {
    "no-header": (_no_header, 401, None),
    "basic-scheme": (_basic, 401, "invalid_request"),
    "bearer-nothing": (_bearer_nothing, 401, "invalid_request"),
    "bearer-blank": (_bearer_blank, 401, "invalid_request"),
    "unknown-token": (_unknown, 401, "invalid_token"),
    "revoked-token": (_revoked, 401, "invalid_token"),
    "token-in-query-string": (_in_query_string, 401, None),
    "key-without-scopes": (_no_scopes, 403, "insufficient_scope"),
    "key-with-other-scopes": (_other_scope, 403, "insufficient_scope"),
}
ACCEPTED: dict[str, Credentials] = {"write-key": _write_scope, "admin-key": _admin_scope}


def _send(client: TestClient, method: str, key: Key, **kwargs: Any) -> httpx.Response:
    if method == "PUT":
        return client.put(_path(key), json=_body("4321"), **kwargs)
    return client.delete(_path(key), **kwargs)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("kind", list(REJECTED))
def test_write_without_a_usable_key_is_refused_and_writes_nothing(
    api: TestClient, engine: Engine, method: str, kind: str
) -> None:
    credentials, status, error = REJECTED[kind]
    kwargs = credentials(engine)
    before = snapshot(engine)

    response = _send(api, method, FUNDS_CZ_2023, **kwargs)

    _problem(response, status)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="statsapi"')
    if error is None:
        assert "error=" not in challenge
    else:
        assert f'error="{error}"' in challenge
    if status == 403:
        assert 'scope="write"' in challenge
    assert snapshot(engine) == before
    assert api.get(_path(FUNDS_CZ_2023)).json()["value"] == 232


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize("kind", list(ACCEPTED))
def test_write_with_a_write_or_admin_key_succeeds(
    api: TestClient, engine: Engine, method: str, kind: str
) -> None:
    kwargs = ACCEPTED[kind](engine)
    revisions = _revision_count(engine)

    response = _send(api, method, FUNDS_CZ_2023, **kwargs)

    assert response.status_code == (200 if method == "PUT" else 204), response.text
    assert _revision_count(engine) == revisions + 1
    after = api.get(_path(FUNDS_CZ_2023))
    if method == "PUT":
        assert _exact(after)["value"] == Decimal("4321")
    else:
        assert after.status_code == 404


# --- 2. hashes, never tokens ----------------------------------------------------------------


def test_api_key_rows_hold_the_tokens_sha256_and_never_the_token(
    api: TestClient, engine: Engine
) -> None:
    tokens = {
        "partner": create_key(engine, name="partner", scopes={Scope.write}),
        "bureau": create_key(engine, name="bureau", scopes={Scope.admin}),
        "former": create_key(engine, name="former", scopes={Scope.write}),
    }
    revoke_key(engine, name="former")
    used = api.put(_path(FUNDS_CZ_2023), json=_body("5"), headers=bearer(tokens["partner"]))
    assert used.status_code == 200  # the key was used (last_used_at written) before the check

    with engine.connect() as connection:
        rows = connection.execute(select(api_key_table)).all()

    assert {row.name for row in rows} == set(tokens)
    for row in rows:
        assert row.token_sha256 == hashlib.sha256(tokens[row.name].encode()).hexdigest()
        for column, value in row._mapping.items():
            for token in tokens.values():
                assert token not in str(value), f"a token is stored in api_key.{column}"
                assert token[:16] not in str(value), f"part of a token is in api_key.{column}"


# --- 3. create, replace, delete, re-create --------------------------------------------------


def test_put_creates_replaces_and_delete_removes_with_a_full_history(
    api: TestClient, engine: Engine, tokens: dict[str, str]
) -> None:
    path = _path(TRAINED_WUJIN_2023)

    created = api.put(path, json=_body("11"), headers=bearer(tokens["write"]))
    assert created.status_code == 201, created.text
    assert created.headers["location"] == path
    assert created.headers["etag"] == '"r1"'
    assert _exact(created)["value"] == Decimal("11")
    assert _exact(created)["revision"] == 1
    fetched = api.get(path)
    assert fetched.headers["etag"] == '"r1"'
    assert _exact(fetched)["value"] == Decimal("11")

    replaced = api.put(path, json=_body("12", note="corrected"), headers=bearer(tokens["admin"]))
    assert replaced.status_code == 200, replaced.text
    assert "location" not in replaced.headers
    assert replaced.headers["etag"] == '"r2"'
    assert _exact(replaced)["value"] == Decimal("12")

    before_same = snapshot(engine)
    same = api.put(path, json=_body("12.000", note="corrected"), headers=bearer(tokens["write"]))
    assert same.status_code == 200, same.text
    assert same.headers["etag"] == '"r2"'
    assert snapshot(engine) == before_same  # no revision, no data version bump

    history = _history(api, TRAINED_WUJIN_2023)
    assert [(h["revision"], h["action"], h["value"]) for h in history] == [
        (1, "create", Decimal("11")),
        (2, "update", Decimal("12")),
    ]
    assert [h["recorded_by"] for h in history] == ["partner", "bureau"]
    assert history[1]["note"] == "corrected"
    recorded = [datetime.fromisoformat(h["recorded_at"]) for h in history]
    assert all(t.tzinfo is not None for t in recorded)
    assert recorded[0] <= recorded[1] <= datetime.now(UTC)

    deleted = api.delete(path, headers=bearer(tokens["write"]))
    assert deleted.status_code == 204
    assert deleted.content == b""
    _problem(api.get(path), 404)
    assert TRAINED_WUJIN_2023 not in _states(api, indicator="trained")
    _problem(api.delete(path, headers=bearer(tokens["write"])), 404)
    history = _history(api, TRAINED_WUJIN_2023)
    assert len(history) == 3
    assert history[2]["revision"] == 3
    assert history[2]["action"] == "delete"
    assert history[2]["value"] == Decimal("12")  # the last state, kept
    assert history[2]["note"] == "corrected"
    assert history[2]["recorded_by"] == "partner"

    recreated = api.put(path, json=_body("13"), headers=bearer(tokens["write"]))
    assert recreated.status_code == 201, recreated.text
    assert recreated.headers["etag"] == '"r4"'  # numbering continues: "r1" never comes back
    assert api.get(path).headers["etag"] == '"r4"'
    assert [h["action"] for h in _history(api, TRAINED_WUJIN_2023)] == [
        "create",
        "update",
        "delete",
        "create",
    ]
    stale = api.put(path, json=_body("14"), headers=bearer(tokens["write"], **{"If-Match": '"r1"'}))
    assert _problem(stale, 412)["current_etag"] == '"r4"'


def test_put_over_a_loaded_value_keeps_the_loaded_state_in_the_history(
    api: TestClient, tokens: dict[str, str]
) -> None:
    response = api.put(_path(TRAINED_CZ_2023), json=_body("231"), headers=bearer(tokens["write"]))

    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"r2"'
    history = _history(api, TRAINED_CZ_2023)
    assert [(h["action"], h["value"], h["recorded_by"]) for h in history] == [
        ("create", Decimal("230"), "test"),
        ("update", Decimal("231"), "partner"),
    ]
    assert history[0]["source"]["quote"] == "synthetic trained 320400 2023"


# --- 4. two writers, one ETag ---------------------------------------------------------------


def test_second_writer_with_a_stale_etag_gets_412_and_changes_nothing(
    make_client: ClientFactory, engine: Engine, tokens: dict[str, str]
) -> None:
    writer_a, writer_b = make_client(engine), make_client(engine)
    path = _path(FUNDS_CZ_2023)
    etag_a = writer_a.get(path).headers["etag"]
    etag_b = writer_b.get(path).headers["etag"]
    assert etag_a == etag_b == '"r1"'

    first = writer_a.put(
        path, json=_body("777"), headers=bearer(tokens["write"], **{"If-Match": etag_a})
    )
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == '"r2"'
    revisions = _revision_count(engine)

    second = writer_b.put(
        path, json=_body("888"), headers=bearer(tokens["admin"], **{"If-Match": etag_b})
    )

    assert _problem(second, 412)["current_etag"] == '"r2"'
    assert _revision_count(engine) == revisions
    published = writer_b.get(path)
    assert published.headers["etag"] == '"r2"'
    assert _exact(published)["value"] == Decimal("777")
    assert Decimal("888") not in [h["value"] for h in _history(writer_b, FUNDS_CZ_2023)]
    stale_delete = writer_b.delete(path, headers=bearer(tokens["write"], **{"If-Match": etag_b}))
    assert _problem(stale_delete, 412)["current_etag"] == '"r2"'
    assert writer_b.get(path).status_code == 200


def test_if_match_on_a_missing_value_is_412_not_a_create(
    api: TestClient, engine: Engine, tokens: dict[str, str]
) -> None:
    before = snapshot(engine)
    response = api.put(
        _path(TRAINED_WUJIN_2023),
        json=_body("1"),
        headers=bearer(tokens["write"], **{"If-Match": '"r1"'}),
    )
    assert "current_etag" not in _problem(response, 412)
    assert snapshot(engine) == before


@pytest.mark.parametrize("written", ["r1", " r1 ", 'W/"r0", r1'])
def test_if_match_reads_a_strong_tag_written_without_quotes(
    api: TestClient, tokens: dict[str, str], written: str
) -> None:
    """RFC 9110 wants `"r1"`; a bare `r1` can only mean that tag, so it is not a mismatch."""
    response = api.put(
        _path(FUNDS_CZ_2023),
        json=_body("777"),
        headers=bearer(tokens["write"], **{"If-Match": written}),
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"r2"'


@pytest.mark.parametrize("written", ["r9", "W/r1", 'W/"r1"', "'r1'"])
def test_if_match_still_refuses_other_tags_written_bare_or_weak(
    api: TestClient, engine: Engine, tokens: dict[str, str], written: str
) -> None:
    before = snapshot(engine)
    response = api.put(
        _path(FUNDS_CZ_2023),
        json=_body("777"),
        headers=bearer(tokens["write"], **{"If-Match": written}),
    )
    assert _problem(response, 412)["current_etag"] == '"r1"'
    assert snapshot(engine) == before


def test_if_none_match_star_creates_only(
    api: TestClient, engine: Engine, tokens: dict[str, str]
) -> None:
    create_only = bearer(tokens["write"], **{"If-None-Match": "*"})
    before = snapshot(engine)

    existing = api.put(_path(FUNDS_CZ_2023), json=_body("1"), headers=create_only)
    assert _problem(existing, 412)["current_etag"] == '"r1"'
    assert snapshot(engine) == before

    fresh = api.put(_path(TRAINED_WUJIN_2023), json=_body("2"), headers=create_only)
    assert fresh.status_code == 201, fresh.text
    assert fresh.headers["etag"] == '"r1"'

    again = api.put(_path(TRAINED_WUJIN_2023), json=_body("3"), headers=create_only)
    assert _problem(again, 412)["current_etag"] == '"r1"'
    assert _exact(api.get(_path(TRAINED_WUJIN_2023)))["value"] == Decimal("2")


# --- 5. what a body and a path may say ------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"source": "no-such-source"}, "source"),
        ({"unit": "no_such_unit"}, "unit"),
        ({"revision": 99}, "revision"),
        ({"id": 1}, "id"),
        ({"recorded_by": "someone-else"}, "recorded_by"),
        ({"value": "1234567890123456"}, "value"),  # 16 significant digits
        ({"value": 1234567890123456}, "value"),
        ({"value": "12345678901234.56"}, "value"),
        ({"value": "0.1234567"}, "value"),  # 7 decimal places
        ({"value": 0.1234567}, "value"),
        ({"value": "NaN"}, "value"),
        ({"value": True}, "value"),
    ],
    ids=lambda item: json.dumps(item) if isinstance(item, dict) else str(item),
)
def test_invalid_body_is_422_naming_the_field_and_writes_nothing(
    api: TestClient, engine: Engine, tokens: dict[str, str], fields: dict[str, Any], named: str
) -> None:
    before = snapshot(engine)
    response = api.put(
        _path(FUNDS_CZ_2023),
        json=_body(**{"value": "5", **fields}),
        headers=bearer(tokens["write"]),
    )
    assert named in _error_fields(response)
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("1E+100", id="string-1E+100"),
        pytest.param(1e100, id="number-1e100"),
        pytest.param("9" * 40, id="40-digits"),
        pytest.param("1.0000000000000000000000000001", id="28-decimal-places"),
    ],
)
def test_out_of_range_value_is_422_naming_value(
    api: TestClient, engine: Engine, tokens: dict[str, str], value: Any
) -> None:
    before = snapshot(engine)
    response = api.put(_path(FUNDS_CZ_2023), json=_body(value), headers=bearer(tokens["write"]))
    assert "value" in _error_fields(response)
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        pytest.param("96.6", "96.6", id="string-96.6"),
        pytest.param(96.6, "96.6", id="number-96.6"),
        pytest.param("123456789012345", "123456789012345", id="15-significant-digits"),
        pytest.param("123456789.123456", "123456789.123456", id="6-decimal-places"),
        pytest.param("0.000001", "0.000001", id="small-fraction"),
        pytest.param("10273000", "10273000", id="integer"),
    ],
)
def test_value_in_range_is_stored_and_served_exactly(
    api: TestClient, tokens: dict[str, str], sent: Any, stored: str
) -> None:
    response = api.put(_path(FUNDS_CZ_2023), json=_body(sent), headers=bearer(tokens["write"]))
    assert response.status_code == 200, response.text
    assert f'"value":{stored},' in response.text
    served = api.get(_path(FUNDS_CZ_2023))
    assert f'"value":{stored},' in served.text
    assert _exact(served)["value"] == Decimal(stored)
    assert _history(api, FUNDS_CZ_2023)[-1]["value"] == Decimal(stored)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize(
    ("key", "status", "named"),
    [
        pytest.param(
            ("no_such_indicator", "320400", 2023), 404, "no_such_indicator", id="unknown-indicator"
        ),
        pytest.param(("trained", "999999", 2023), 404, "999999", id="unknown-region"),
        pytest.param(("trained", "320400", 1800), 422, "year", id="year-1800"),
        pytest.param(("trained", "320400", 2101), 422, "year", id="year-2101"),
    ],
)
def test_bad_path_is_404_or_422_and_writes_nothing(
    api: TestClient,
    engine: Engine,
    tokens: dict[str, str],
    method: str,
    key: Key,
    status: int,
    named: str,
) -> None:
    before = snapshot(engine)
    response = _send(api, method, key, headers=bearer(tokens["write"]))
    problem = _problem(response, status)
    if status == 422:
        assert {(e["field"], e["in"]) for e in problem["errors"]} == {("year", "path")}
    else:
        assert named in problem["detail"]
    assert snapshot(engine) == before


# --- 6. the data version ------------------------------------------------------------------


def test_list_etag_moves_on_every_change_and_only_then(
    api: TestClient, tokens: dict[str, str]
) -> None:
    params = {"indicator": "funds"}
    first = api.get(URL, params=params)
    etag_1 = first.headers["etag"]
    assert api.get(URL, params=params, headers={"If-None-Match": etag_1}).status_code == 304

    changed = api.put(_path(FUNDS_CZ_2023), json=_body("999"), headers=bearer(tokens["write"]))
    assert changed.status_code == 200
    after_put = api.get(URL, params=params, headers={"If-None-Match": etag_1})
    assert after_put.status_code == 200
    etag_2 = after_put.headers["etag"]
    assert etag_2 != etag_1
    assert _states(api, **params)[FUNDS_CZ_2023]["value"] == Decimal("999")

    same = api.put(_path(FUNDS_CZ_2023), json=_body("999"), headers=bearer(tokens["write"]))
    assert same.status_code == 200
    assert api.get(URL, params=params, headers={"If-None-Match": etag_2}).status_code == 304

    assert api.delete(_path(FUNDS_CZ_2023), headers=bearer(tokens["write"])).status_code == 204
    after_delete = api.get(URL, params=params, headers={"If-None-Match": etag_2})
    assert after_delete.status_code == 200
    assert after_delete.headers["etag"] not in (etag_1, etag_2)
    assert FUNDS_CZ_2023 not in {
        (r["indicator"], r["region"], r["year"]) for r in after_delete.json()["data"]
    }


def test_one_value_etag_moves_with_its_revision(api: TestClient, tokens: dict[str, str]) -> None:
    path = _path(FUNDS_CZ_2023)
    assert api.get(path, headers={"If-None-Match": '"r1"'}).status_code == 304
    api.put(path, json=_body("1"), headers=bearer(tokens["write"]))
    again = api.get(path, headers={"If-None-Match": '"r1"'})
    assert again.status_code == 200
    assert again.headers["etag"] == '"r2"'


# --- 7. vintages: as_of and updated_after ---------------------------------------------------


def test_as_of_and_updated_after_answer_from_the_history(
    api: TestClient, tokens: dict[str, str]
) -> None:
    write = bearer(tokens["write"])
    t0 = _tick()
    assert api.put(_path(TRAINED_CZ_2023), json=_body("5000"), headers=write).status_code == 200
    t1 = _tick()
    assert api.put(_path(TRAINED_WUJIN_2023), json=_body("42"), headers=write).status_code == 201
    t2 = _tick()
    assert api.delete(_path(FUNDS_WUJIN_2023), headers=write).status_code == 204
    t3 = _tick()

    def at(moment: datetime | str) -> dict[Key, dict[str, Any]]:
        stamp = moment if isinstance(moment, str) else moment.isoformat()
        return _states(api, year=2023, as_of=stamp)

    def value(states: dict[Key, dict[str, Any]], key: Key) -> Decimal | None:
        return states[key]["value"] if key in states else None

    world_load = datetime.fromisoformat(_history(api, FUNDS_WUJIN_2023)[0]["recorded_at"])
    assert at(world_load - timedelta(microseconds=1)) == {}  # before anything was loaded

    vintages = {moment: at(moment) for moment in (t0, t1, t2, t3)}
    expected = {  # trained 320400 (corrected), trained 320412 (created), funds 320412 (deleted)
        t0: (Decimal(230), None, Decimal(233)),
        t1: (Decimal(5000), None, Decimal(233)),
        t2: (Decimal(5000), Decimal(42), Decimal(233)),
        t3: (Decimal(5000), Decimal(42), None),
    }
    for moment, (trained_cz, trained_wujin, funds_wujin) in expected.items():
        states = vintages[moment]
        assert value(states, TRAINED_CZ_2023) == trained_cz
        assert value(states, TRAINED_WUJIN_2023) == trained_wujin
        assert value(states, FUNDS_WUJIN_2023) == funds_wujin
        assert value(states, FUNDS_CZ_2023) == Decimal(232)  # never touched
        assert not any(row["deleted"] for row in states.values())
    assert vintages[t0][TRAINED_CZ_2023]["revision"] == 1
    assert vintages[t1][TRAINED_CZ_2023]["revision"] == 2
    assert len(vintages[t0]) == len(vintages[t3]) == 5
    assert vintages[t3] == _states(api, year=2023)  # nothing changed since t3: as published

    # The boundary: a state counts from the instant it was recorded, in any time zone.
    corrected_at = datetime.fromisoformat(_history(api, TRAINED_CZ_2023)[1]["recorded_at"])
    assert t0 < corrected_at < t1
    assert value(at(corrected_at), TRAINED_CZ_2023) == Decimal(5000)
    assert value(at(corrected_at - timedelta(microseconds=1)), TRAINED_CZ_2023) == Decimal(230)
    beijing = timezone(timedelta(hours=8))
    assert at(t1.astimezone(beijing).isoformat()) == vintages[t1]
    assert at(t0.astimezone(beijing).isoformat()) == vintages[t0]

    changed = _states(api, updated_after=t0.isoformat())
    assert set(changed) == {TRAINED_CZ_2023, TRAINED_WUJIN_2023, FUNDS_WUJIN_2023}
    assert changed[TRAINED_CZ_2023]["deleted"] is False
    assert changed[TRAINED_CZ_2023]["value"] == Decimal(5000)
    assert changed[TRAINED_WUJIN_2023]["deleted"] is False
    assert changed[TRAINED_WUJIN_2023]["value"] == Decimal(42)
    assert changed[FUNDS_WUJIN_2023]["deleted"] is True
    assert changed[FUNDS_WUJIN_2023]["value"] == Decimal(233)  # the last state
    assert changed[FUNDS_WUJIN_2023]["revision"] == 2
    assert set(_states(api, updated_after=t1.isoformat())) == {
        TRAINED_WUJIN_2023,
        FUNDS_WUJIN_2023,
    }
    only_delete = _states(api, updated_after=t2.isoformat())
    assert list(only_delete) == [FUNDS_WUJIN_2023]
    assert only_delete[FUNDS_WUJIN_2023]["deleted"] is True
    assert _states(api, updated_after=t3.isoformat()) == {}
    assert _states(api, updated_after=t2.astimezone(beijing).isoformat()) == only_delete
    assert _states(api, updated_after=t0.isoformat(), indicator="funds") == {
        FUNDS_WUJIN_2023: changed[FUNDS_WUJIN_2023]
    }


def test_comparisons_as_of_use_the_vintage(api: TestClient, tokens: dict[str, str]) -> None:
    write = bearer(tokens["write"])
    t0 = _tick()
    assert api.put(_path(TRAINED_CZ_2023), json=_body("5000"), headers=write).status_code == 200
    t1 = _tick()
    assert api.put(_path(TRAINED_WUJIN_2023), json=_body("42"), headers=write).status_code == 201
    t2 = _tick()
    assert api.delete(_path(FUNDS_WUJIN_2023), headers=write).status_code == 204
    t3 = _tick()

    def rows(moment: datetime) -> dict[tuple[str, str], dict[str, Any]]:
        response = api.get("/api/v1/comparisons", params={"year": 2023, "as_of": moment})
        assert response.status_code == 200, response.text
        return {(r["indicator"], r["region"]): r for r in _exact(response)["data"]}

    before = rows(t0)
    assert before["trained", "320400"]["value"] == Decimal(230)
    assert before["trained", "320400"]["change"] == Decimal(10)
    assert ("trained", "320412") not in before
    assert before["funds", "320412"]["value"] == Decimal(233)

    corrected = rows(t1)
    assert corrected["trained", "320400"]["value"] == Decimal(5000)
    assert corrected["trained", "320400"]["change"] == Decimal(4780)
    assert ("trained", "320412") not in corrected

    created = rows(t2)
    assert created["trained", "320412"]["value"] == Decimal(42)
    assert created["trained", "320412"]["reason"] == "no_base_value"
    assert created["funds", "320412"]["value"] == Decimal(233)

    after_delete = rows(t3)
    assert after_delete["funds", "320412"]["value"] is None
    assert after_delete["funds", "320412"]["reason"] == "no_current_value"
    assert after_delete["funds", "320412"]["base_value"] == Decimal(223)


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        pytest.param(URL, {"as_of": "2024-06-01T00:00:00"}, "as_of", id="observations-as_of"),
        pytest.param(URL, {"as_of": "2024-06-01"}, "as_of", id="observations-as_of-date"),
        pytest.param(
            URL, {"updated_after": "2024-06-01T00:00:00"}, "updated_after", id="updated_after"
        ),
        pytest.param(
            "/api/v1/comparisons",
            {"year": 2023, "as_of": "2024-06-01T00:00:00"},
            "as_of",
            id="comparisons-as_of",
        ),
    ],
)
def test_time_without_a_zone_is_422_naming_the_parameter(
    api: TestClient, path: str, params: dict[str, Any], named: str
) -> None:
    response = api.get(path, params=params)
    assert {(e["field"], e["in"]) for e in _problem(response, 422)["errors"]} == {(named, "query")}


# --- 8. concurrent writers ------------------------------------------------------------------

OWN_KEYS = (("trained", "320400", 2019), ("funds", "320400", 2019))
SHARED_KEY = ("funds", "320412", 2023)  # yuan: any value a writer picks is sense
WRITES_PER_THREAD = 30


def test_concurrent_writers_never_lose_an_acknowledged_write(
    make_client: ClientFactory, engine: Engine
) -> None:
    tokens = [
        create_key(engine, name=f"writer-{n}", scopes={Scope.write}) for n in range(len(OWN_KEYS))
    ]
    clients = [make_client(engine) for _ in OWN_KEYS]
    barrier = threading.Barrier(len(OWN_KEYS))
    outcomes: list[list[tuple[Key, str, bool, httpx.Response]]] = [[] for _ in OWN_KEYS]
    failures: list[BaseException] = []

    def run(n: int) -> None:
        try:
            client, own = clients[n], OWN_KEYS[n]
            barrier.wait(timeout=10)
            for i in range(WRITES_PER_THREAD):
                value = str(1000 * (n + 1) + i)  # every write is distinct: each makes a revision
                key = own if i % 3 == 0 else SHARED_KEY
                headers = bearer(tokens[n])
                conditional = i % 3 == 2
                if conditional:
                    headers["If-Match"] = client.get(_path(key)).headers["etag"]
                response = client.put(_path(key), json=_body(value), headers=headers)
                outcomes[n].append((key, value, conditional, response))
        except BaseException as error:  # surfaced below, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(OWN_KEYS))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures
    assert time.monotonic() - started < 20

    acknowledged: dict[Key, dict[int, Decimal]] = {}
    for results in outcomes:
        assert len(results) == WRITES_PER_THREAD
        for key, value, conditional, response in results:
            status = response.status_code
            if status in (200, 201):
                revision = _etag_revision(response.headers["etag"])
                assert _exact(response)["value"] == Decimal(value)
                assert revision not in acknowledged.setdefault(key, {}), "an ETag was reused"
                acknowledged[key][revision] = Decimal(value)
            elif status == 412:
                assert conditional, response.text  # only If-Match writes may lose a race
                assert _problem(response, 412)["current_etag"]
            else:
                _problem(response, 503)
                assert int(response.headers["retry-after"]) > 0
    assert all(len(acknowledged.get(key, {})) > 0 for key in (*OWN_KEYS, SHARED_KEY))

    observer = clients[0]
    for key, acked in acknowledged.items():
        history = _history(observer, key)
        numbers = [h["revision"] for h in history]
        assert numbers == list(range(1, len(history) + 1))  # no gaps, no duplicates
        assert [h["action"] for h in history] == ["create"] + ["update"] * (len(history) - 1)
        recorded = {h["revision"]: h["value"] for h in history[1:]}  # [0]: the world's value
        assert recorded == acked  # every acknowledged write, and nothing else
        latest = max(acked)
        published = observer.get(_path(key))
        assert published.headers["etag"] == f'"r{latest}"'
        assert _exact(published)["value"] == acked[latest]


def test_a_body_that_is_not_json_is_415(api: TestClient, tokens: dict[str, str]) -> None:
    response = api.put(
        _path(FUNDS_CZ_2023),
        content=b"value=5",
        headers={**bearer(tokens["write"]), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"


def test_a_quote_that_looks_like_a_formula_is_refused(
    api: TestClient, tokens: dict[str, str]
) -> None:
    response = api.put(
        _path(FUNDS_CZ_2023), json=_body("5", quote="=1+1"), headers=bearer(tokens["write"])
    )
    assert response.status_code == 422
    assert "quote" in _error_fields(response)


def test_a_nul_character_in_the_body_is_422(api: TestClient, tokens: dict[str, str]) -> None:
    response = api.put(
        _path(FUNDS_CZ_2023), json=_body("5", quote="a\x00b"), headers=bearer(tokens["write"])
    )
    assert response.status_code == 422
    assert "quote" in _error_fields(response)
