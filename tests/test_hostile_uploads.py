"""Hostile uploads: files built to exhaust a worker or to crash the parser get a small 422.

Each attack is sent through `POST /api/v1/imports` with a write key (the parsing runs before the
admin check, so a write key reaches every section), with and without `dry_run`. The probe at the
end sends the worst of them to a live server and measures the worker's memory.
"""

import csv
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from app import bundle
from app.bundle import MAX_ERRORS, BundleError, read_bundle_file, write_csv
from app.config import get_settings
from app.models import observation_table, source_table
from app.rendering import render_csv
from tests.conftest import DatabaseFactory
from tests.factories import SYNTHETIC_SOURCE, world_observation
from tests.live import rss_mb, serving, write_key
from tests.test_cli import _statsapi

URL = "/api/v1/imports"
HEADER = "indicator,region,year,value,qualifier,note,source,quote"
PROBLEM = "application/problem+json"
# Each hostile body is answered within this: before the fix, 1e9999999 in `year` took 14 s and
# the alias bomb far longer; a loaded 2-core machine needs a few seconds for the rest.
MAX_SECONDS = 8
# Worst case of a capped answer: MAX_ERRORS errors of at most ~550 bytes each (labels, fields
# and reasons are cut), so 64 KiB holds any of them.
MAX_ANSWER_BYTES = 64 * 1024


def _post(
    api: TestClient, token: str, body: str | bytes, content_type: str, *, dry_run: bool = False
) -> httpx.Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return api.post(
        URL,
        content=data,
        params={"dry_run": "true"} if dry_run else {},
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )


def _refused(response: httpx.Response) -> dict[str, Any]:
    """A 422 problem, small, listing at most MAX_ERRORS errors."""
    assert response.status_code == 422, response.text[:2000]
    assert response.headers["content-type"] == PROBLEM
    assert len(response.content) < MAX_ANSWER_BYTES
    problem: dict[str, Any] = response.json()
    assert 0 < len(problem["errors"]) <= MAX_ERRORS
    return problem


def _csv_line(**cells: str) -> str:
    row = {**{k: str(v) for k, v in world_observation().items()}, "qualifier": "", "note": ""}
    row.update(cells)
    return ",".join(row[column] for column in HEADER.split(","))


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    with caplog.at_level(logging.INFO):
        yield
    logged = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not logged, [r.getMessage() for r in logged]


def alias_bomb(levels: int = 7, width: int = 10) -> str:
    """Billion laughs: `levels` lists, each `width` aliases of the one before (width**levels)."""
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * width)}]")
    lines.append(f"observations:\n  - indicator: *a{levels}")
    return "\n".join(lines) + "\n"


# -- 1. aliases, the C loader and short labels ------------------------------------------------


@pytest.mark.parametrize("dry_run", [False, True])
def test_yaml_aliases_are_refused_before_they_expand(
    api: TestClient, token: str, dry_run: bool, no_tracebacks: None
) -> None:
    started = time.monotonic()
    problem = _refused(_post(api, token, alias_bomb(), "application/yaml", dry_run=dry_run))
    assert time.monotonic() - started < MAX_SECONDS
    assert "alias" in problem["errors"][0]["message"]


def test_a_single_harmless_alias_is_refused_too(api: TestClient, token: str) -> None:
    text = yaml.safe_dump({"observations": [world_observation()]}) + "other: *x\n"
    text = text.replace("source:", "source: &x", 1)
    problem = _refused(_post(api, token, text, "application/yaml"))
    assert "alias" in problem["detail"]


def test_yaml_is_read_with_the_c_loader_and_floats_stay_exact() -> None:
    assert issubclass(bundle.DecimalSafeLoader, yaml.CSafeLoader)
    document = bundle.parse_document("a: 96.6\nb: 1_000.25\n", name="x")
    assert document == {"a": Decimal("96.6"), "b": Decimal("1000.25")}


def test_error_labels_hold_only_short_scalar_text(api: TestClient, token: str) -> None:
    long_code = "x" * 10_000
    observation = world_observation(indicator=long_code, region={"nested": ["a"] * 1000}, year=2030)
    body = json.dumps({"observations": [observation]})
    problem = _refused(_post(api, token, body, "application/json"))
    record = problem["errors"][0]["record"]
    assert record.startswith("observations[0] (indicator=xxx")
    assert len(record) < 120 and "nested" not in record and "year=2030" in record
    assert all(len(error["message"]) <= 300 for error in problem["errors"])


def test_a_huge_unknown_key_is_cut_in_the_answer(api: TestClient, token: str) -> None:
    body = json.dumps({"observations": [world_observation(**{"k" * 100_000: 1})]})
    problem = _refused(_post(api, token, body, "application/json"))
    assert all(len(error["field"]) <= 100 for error in problem["errors"])


# -- 2. error amplification and the row limit -------------------------------------------------


@pytest.mark.parametrize("dry_run", [False, True])
def test_errors_stop_at_the_cap_and_the_answer_counts_the_rest(
    api: TestClient, token: str, dry_run: bool
) -> None:
    body = json.dumps({"observations": [{}] * 1000})
    problem = _refused(_post(api, token, body, "application/json", dry_run=dry_run))
    assert len(problem["errors"]) == MAX_ERRORS
    assert problem["error_count"] >= 1000 * 4  # indicator, region, year, value, ... each missing
    assert f"and {problem['error_count'] - 1} more" in problem["detail"]


def test_csv_errors_stop_at_the_cap(api: TestClient, token: str) -> None:
    problem = _refused(_post(api, token, HEADER + "\r\n" + "a\r\n" * 1000, "text/csv"))
    assert len(problem["errors"]) == MAX_ERRORS
    assert problem["error_count"] > 1000


def test_reference_errors_stop_at_the_cap(api: TestClient, token: str) -> None:
    lines = [_csv_line(indicator="nope", year=str(1950 + n)) for n in range(150)]
    body = HEADER + "\r\n" + "\r\n".join(lines) + "\r\n"
    problem = _refused(_post(api, token, body, "text/csv"))
    assert len(problem["errors"]) == MAX_ERRORS
    assert problem["error_count"] == 150
    assert problem["errors"][0] == {
        "field": "indicator",
        "in": "body",
        "record": "row 2",
        "message": "unknown code 'nope'",
        "unknown": ["nope"],
        "close_matches": {"nope": []},
    }


def test_the_bundle_error_itself_keeps_at_most_the_cap() -> None:
    errors = [bundle.RecordError("f", f"row {n}", "x", "bad") for n in range(MAX_ERRORS * 3)]
    error = BundleError(errors)
    assert len(error.errors) == MAX_ERRORS and error.total == MAX_ERRORS * 3


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps({"observations": [{}] * 11}), "application/json"),
        ("observations:\n" + "- {}\n" * 11, "application/yaml"),
        (HEADER + "\r\n" + "a\r\n" * 11, "text/csv"),
    ],
)
def test_the_row_limit_is_checked_before_any_row_is_validated(
    api: TestClient, token: str, monkeypatch: pytest.MonkeyPatch, body: str, content_type: str
) -> None:
    monkeypatch.setattr(get_settings(), "max_import_rows", 10)
    problem = _refused(_post(api, token, body, content_type))
    assert problem["errors"] == [
        {
            "field": "observations",
            "in": "body",
            "record": "",
            "message": "at most 10 rows per import; this file has 11",
        }
    ]


def test_rows_up_to_the_limit_are_validated(
    api: TestClient, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "max_import_rows", 2)
    lines = [_csv_line(year="2030"), _csv_line(year="2031")]
    response = _post(api, token, HEADER + "\r\n" + "\r\n".join(lines) + "\r\n", "text/csv")
    assert response.status_code == 200, response.text


# -- 12. edge inputs: 422 naming the field, never a 500 ---------------------------------------

BIG_INT = "1" * 5000  # past Python's int-str limit (4,300 digits)


def _yaml_observation(**raw: str) -> str:
    fields = {k: json.dumps(v) for k, v in world_observation().items()}
    fields.update(raw)
    return "observations:\n  - " + "\n    ".join(f"{k}: {v}" for k, v in fields.items()) + "\n"


def _json_observation(**raw: str) -> str:
    fields = {k: json.dumps(v) for k, v in world_observation().items()}
    fields.update(raw)
    inner = ", ".join(f'"{k}": {v}' for k, v in fields.items())
    return '{"observations": [{' + inner + "}]}"


EDGE_INPUTS = {
    "yaml-inf": (_yaml_observation(value=".inf"), "application/yaml", "value"),
    "yaml-minus-inf": (_yaml_observation(value="-.Inf"), "application/yaml", "value"),
    "yaml-nan": (_yaml_observation(value=".nan"), "application/yaml", "value"),
    "yaml-inf-year": (_yaml_observation(year=".inf"), "application/yaml", "year"),
    "yaml-sexagesimal": (_yaml_observation(value="190:20:30.15"), "application/yaml", "value"),
    "yaml-sexagesimal-int": (_yaml_observation(year="33:45"), "application/yaml", "year"),
    "yaml-big-int-value": (_yaml_observation(value=BIG_INT), "application/yaml", "value"),
    "yaml-big-int-year": (_yaml_observation(year=BIG_INT), "application/yaml", "year"),
    "yaml-big-int-quote": (_yaml_observation(quote=BIG_INT), "application/yaml", "quote"),
    "yaml-bad-date": (_yaml_observation(year="2023-02-30"), "application/yaml", "year"),
    "json-big-int-value": (_json_observation(value=BIG_INT), "application/json", "value"),
    "json-big-int-year": (_json_observation(year=BIG_INT), "application/json", "year"),
    "json-huge-exponent-year": (_json_observation(year="1e9999999"), "application/json", "year"),
    "json-nan": (_json_observation(value="NaN"), "application/json", "value"),
    "json-deep": (
        '{"observations": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "application/json",
        "body",
    ),
    "yaml-deep": ("observations: " + "[" * 3000 + "]" * 3000 + "\n", "application/yaml", "body"),
    "yaml-deep-in-a-field": (  # within libyaml's 1,000 levels: the field's check names it
        _yaml_observation(note="[" * 900 + "]" * 900),
        "application/yaml",
        "note",
    ),
    "json-deep-in-a-field": (
        _json_observation(note="[" * 500 + "]" * 500),
        "application/json",
        "note",
    ),
    "csv-long-cell": (
        f"{HEADER}\r\n{_csv_line()}\r\n{_csv_line(quote=chr(34) + 'x' * 200_000 + chr(34))}\r\n",
        "text/csv",
        "body",
    ),
}


@pytest.mark.parametrize("dry_run", [False, True], ids=["write", "dry-run"])
@pytest.mark.parametrize("case", list(EDGE_INPUTS))
def test_edge_inputs_are_422_naming_the_field(
    api: TestClient, token: str, case: str, dry_run: bool, no_tracebacks: None
) -> None:
    body, content_type, field = EDGE_INPUTS[case]
    started = time.monotonic()
    problem = _refused(_post(api, token, body, content_type, dry_run=dry_run))
    assert time.monotonic() - started < MAX_SECONDS
    assert field in {error["field"] for error in problem["errors"]}, problem["errors"]


def test_a_long_csv_cell_names_its_row(api: TestClient, token: str) -> None:
    body, content_type, _ = EDGE_INPUTS["csv-long-cell"]
    problem = _refused(_post(api, token, body, content_type))
    assert problem["errors"][0]["record"] == "row 3"
    assert "131072" in problem["errors"][0]["message"]


def test_nesting_names_the_document(api: TestClient, token: str) -> None:
    body, content_type, _ = EDGE_INPUTS["json-deep"]
    problem = _refused(_post(api, token, body, content_type))
    assert "nested deeper than" in problem["detail"]


# -- 10. text_file stays inside the bundle's folder -------------------------------------------


def _source_bundle(folder: Path, text_file: str) -> Path:
    source = {
        "code": "sneaky",
        "title_zh": "x",
        "title_en": "x",
        "publisher_zh": "x",
        "publisher_en": "x",
        "published_on": "2024-01-01",
        "year_covered": 2023,
        "text_file": text_file,
    }
    path = folder / "bundle.yaml"
    path.write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "text_file", ["../../../../../../../../etc/hostname", "/etc/hostname", "sub/../../outside.txt"]
)
def test_text_file_outside_the_bundle_folder_is_refused(tmp_path: Path, text_file: str) -> None:
    folder = tmp_path / "bundle"
    (folder / "sub").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("secret", encoding="utf-8")
    with pytest.raises(BundleError) as raised:
        read_bundle_file(_source_bundle(folder, text_file))
    [error] = raised.value.errors
    assert (error.record, error.field) == ("sources[0] (code=sneaky)", "text_file")
    assert "inside the bundle's folder" in error.reason


def test_a_symlink_out_of_the_bundle_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    folder.mkdir()
    (tmp_path / "outside.txt").write_text("secret", encoding="utf-8")
    (folder / "text.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(BundleError) as raised:
        read_bundle_file(_source_bundle(folder, "text.txt"))
    assert raised.value.errors[0].field == "text_file"


def test_text_files_inside_the_folder_are_read(tmp_path: Path) -> None:
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("全文", encoding="utf-8")
    loaded = read_bundle_file(_source_bundle(tmp_path, "texts/a.txt"))
    assert loaded.source_texts == {"sneaky": "全文"}


# -- 14. formula cells: refused on the way in, defused on every way out -----------------------

FORMULAS = [
    "=1+1",
    "+1+1",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1)",
    " =1+1",
    "\n=1+1",
    "\t=1+1",
    "\r\n-1+1",
]
NOT_FORMULAS = ["-3", "+2.5", "608人次", "退役士兵适应性培训608人次", "a=b", "1-2", "\tafter a tab"]


@pytest.mark.parametrize("quote", FORMULAS)
def test_formula_quotes_are_refused_in_csv_imports(api: TestClient, token: str, quote: str) -> None:
    cell = '"' + quote.replace('"', '""') + '"'
    body = HEADER + "\r\n" + _csv_line(quote=cell) + "\r\n"
    problem = _refused(_post(api, token, body, "text/csv"))
    assert [(e["record"], e["field"]) for e in problem["errors"]] == [("row 2", "quote")]


@pytest.mark.parametrize("quote", FORMULAS)
def test_formula_quotes_are_refused_in_a_put(api: TestClient, token: str, quote: str) -> None:
    body = {"value": "5", "source": SYNTHETIC_SOURCE, "quote": quote}
    response = api.put(
        "/api/v1/observations/trained/320400/2030",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["quote"]


@pytest.mark.parametrize("quote", NOT_FORMULAS)
def test_plain_numbers_and_text_are_accepted(api: TestClient, token: str, quote: str) -> None:
    # Derived (its note says how): the quote's figures, if any, need not be the value.
    line = _csv_line(quote=quote, note=quote) + ",true"
    body = HEADER + ",derived\r\n" + line + "\r\n"
    response = _post(api, token, body, "text/csv")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("cell", [*FORMULAS, *NOT_FORMULAS])
def test_every_csv_writer_defuses_the_same_cells(cell: str) -> None:
    row = {**world_observation(quote=cell, note=None), "qualifier": "exact", "unit": None}
    exported = next(csv_rows(write_csv([row])))
    rendered = next(csv_rows(render_csv([row], list(row))[3:].decode()))
    expected = "'" + cell if cell in FORMULAS else cell
    assert exported["quote"] == rendered["quote"] == expected


def csv_rows(text: str) -> Iterator[dict[str, str]]:
    return csv.DictReader(io.StringIO(text, newline=""))


def test_cli_export_defuses_a_stored_formula(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as connection:  # stored before the rule existed, say
        connection.execute(
            observation_table.update()
            .where(observation_table.c.year == 2023)
            .values(quote="-2+3+cmd|' /C calc'!A0")
        )
        assert connection.execute(select(source_table.c.code)).scalar() == SYNTHETIC_SOURCE
    output = tmp_path / "out.csv"
    url = engine.url.render_as_string(hide_password=False)
    result = _statsapi("export", "--format", "csv", "--output", str(output), database_url=url)
    assert result.returncode == 0, result.stderr
    quotes = {row["quote"] for row in csv_rows(output.read_text(encoding="utf-8-sig"))}
    assert "'-2+3+cmd|' /C calc'!A0" in quotes
    assert "-2+3+cmd|' /C calc'!A0" not in quotes


# -- the probe: a live worker's memory while the worst uploads arrive -------------------------

# Before the fix, the 549-byte bomb killed a worker, and the 1 MB bodies below grew one by
# 0.6-1 GB. After it, each is refused at parse time: the worker grows by less than this.
MAX_RSS_GROWTH_MB = 100


class PeakRss:
    """Samples a process's resident memory every 20 ms, keeping the peak."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, rss_mb(pid), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (OSError, AssertionError):
                return  # the worker died: the answers will say so

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.mark.slow
def test_probe_hostile_uploads_leave_a_live_worker_small(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    url = databases.fresh("empty")
    headers = write_key(url)
    attacks = {
        "alias bomb": (alias_bomb().encode(), "application/yaml"),
        "1 MB of {}": (
            b'{"observations": [' + b"{}, " * 262_000 + b"{}]}",
            "application/json",
        ),
        "1 MB of a\\r\\n": ((HEADER + "\r\n").encode() + b"a\r\n" * 349_000, "text/csv"),
        "90k {} rows": (b'{"observations": [' + b"{}, " * 90_000 + b"{}]}", "application/json"),
    }
    with serving(url, tmp_path / "server.log") as server:
        [worker] = server.worker_pids()
        with httpx.Client(base_url=server.url, timeout=15) as client:
            client.get("/api/v1/categories")  # warm up imports and the connection pool
            before = rss_mb(worker)
            with PeakRss(worker) as memory:
                for name, (body, content_type) in attacks.items():
                    response = client.post(
                        URL, content=body, headers={**headers, "Content-Type": content_type}
                    )
                    assert response.status_code == 422, (name, response.text[:500])
                    assert response.headers["content-type"] == PROBLEM, name
                    assert len(response.content) < MAX_ANSWER_BYTES, name
            assert client.get("/healthz").status_code == 200
        growth = memory.peak - before
        print(f"worker RSS {before:.0f} MB, peak {memory.peak:.0f} MB (+{growth:.0f} MB)")
        assert growth < MAX_RSS_GROWTH_MB, server.log_tail()
        assert "Traceback" not in server.log_tail(20_000)
