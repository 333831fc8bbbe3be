"""Mixed read/write load for checks/load/run.py (locust).

Readers (most users) ask the main reads: observations filtered by indicator, region and a year
range; a page of 100 by category; a comparison table; a CSV list; and 304 revalidations (a GET for
the ETag, then the same GET with If-None-Match). Writers GET one value's ETag and PUT a new value
with If-Match (412 is the expected answer when another writer got there first), and now and then
import a few CSV rows for synthetic years (the 1990s, away from the real 2023 review, and
years the review, published in 2024, can state).

Every value written here is SYNTHETIC load data, marked so in its note; to keep the provenance
rules (app/provenance.py) it quotes a clause of the review and is marked derived. It goes to the
throwaway database that run.py creates. Every acknowledged (2xx) write is appended as one JSON
line to $STATSAPI_LOAD_ACK_FILE for run.py's audit; the status of every answer, by request name,
is written as JSON to $STATSAPI_LOAD_STATS_FILE when locust quits. The write key's token comes
from $STATSAPI_LOAD_TOKEN.
"""

import csv
import io
import json
import os
import random
import time
from collections import Counter, defaultdict
from typing import Any

from locust import FastHttpUser, between, constant, events, task

TOKEN = os.environ.get("STATSAPI_LOAD_TOKEN", "")
ACK_FILE = os.environ.get("STATSAPI_LOAD_ACK_FILE", "load-acks.jsonl")
STATS_FILE = os.environ.get("STATSAPI_LOAD_STATS_FILE", "load-stats.json")

API = "/api/v1"
SOURCE = "cz-tyjrswj-2023-review"
CITY = "320400"
# Real codes from seed/changzhou-2023-review.yaml.
READ_INDICATORS = [
    "adaptive_training_trainees",
    "job_fairs_held",
    "job_fair_applicants",
    "military_support_project_funds",
    "preferential_cards_issued",
    "subsidised_loans_amount",
    "transferred_officers_public_placement_rate",
]
CATEGORIES = [
    "employment_entrepreneurship",
    "military_civilian_support",
    "service_support",
    "political_guidance",
]
# Few keys, so that writers contend for them and If-Match is exercised (412s).
PUT_INDICATORS = ["adaptive_training_trainees", "job_fairs_held", "military_support_project_funds"]
IMPORT_INDICATORS = [
    "adaptive_training_trainees",
    "job_fairs_held",
    "job_fair_applicants",
    "military_support_project_funds",
]
IMPORT_REGIONS = [CITY, "320411", "320412"]
SYNTHETIC_YEARS = range(1990, 2000)
# A clause of the review's text; the values are marked derived, their note says SYNTHETIC.
REVIEW_CLAUSE = "本地现场招聘会19场"
SYNTHETIC_NOTE = "SYNTHETIC: written by the load check in a throwaway database"
CSV_COLUMNS = [
    *("indicator", "region", "year", "value", "qualifier", "note", "source", "quote", "derived")
]

# --- what happened, for run.py -------------------------------------------------------------

STATUSES: dict[str, Counter[str]] = defaultdict(Counter)  # request name -> status -> count
PROBLEMS: Counter[str] = Counter()  # unexpected answers but 5xx: 4xx, bad bodies, resets
TIMES: dict[str, float] = {}


def _ack(record: dict[str, Any]) -> None:
    """Append one acknowledged write; flushed at once, so a killed run keeps what it had."""
    with open(ACK_FILE, "a", encoding="utf-8") as acks:
        acks.write(json.dumps(record, sort_keys=True) + "\n")


def _status_label(response: Any) -> str:
    status = int(getattr(response, "status_code", 0) or 0)
    if status == 0:
        return "connection error"
    if status == 503:
        has_retry_after = bool(response.headers and response.headers.get("Retry-After"))
        return "503 under lock" if has_retry_after else "503 without Retry-After"
    return str(status)


@events.request.add_listener
def _count(name: str, response: Any, exception: Any, **_kwargs: Any) -> None:
    label = _status_label(response)
    STATUSES[name][label] += 1
    if label == "connection error":
        PROBLEMS[f"connection error: {type(exception).__name__}: {exception}"[:200]] += 1


@events.test_start.add_listener
def _started(**_kwargs: Any) -> None:
    TIMES["start"] = time.time()


@events.quitting.add_listener
def _dump(environment: Any, **_kwargs: Any) -> None:
    TIMES.setdefault("stop", time.time())
    total = environment.stats.total
    summary = {
        "requests": total.num_requests,
        "locust_failures": total.num_failures,
        "rps": total.total_rps,
        "p50_ms": total.get_response_time_percentile(0.5),
        "p99_ms": total.get_response_time_percentile(0.99),
        "max_ms": total.max_response_time,
        "seconds": TIMES["stop"] - TIMES.get("start", TIMES["stop"]),
        "statuses": {name: dict(counts) for name, counts in sorted(STATUSES.items())},
        "problems": dict(PROBLEMS),
    }
    with open(STATS_FILE, "w", encoding="utf-8") as out:
        json.dump(summary, out, indent=2, sort_keys=True)


@events.test_stop.add_listener
def _stopped(**_kwargs: Any) -> None:
    TIMES["stop"] = time.time()


# --- users ---------------------------------------------------------------------------------


def _synthetic_value() -> str:
    """A fresh integer (exact in SQLite's REAL too), so that each write is a real change."""
    return str(random.randrange(10**9, 10**12))


class _ApiUser(FastHttpUser):
    abstract = True
    network_timeout = 20.0
    connection_timeout = 5.0

    def _fail(self, response: Any, kind: str) -> None:
        """Mark a request failed; 5xx and other unexpected answers are counted for run.py."""
        label = _status_label(response)
        if not label.startswith("5") and label != "connection error":
            PROBLEMS[f"{kind}: {label}"] += 1  # 5xx and connection errors: counted by _count
        response.failure(f"{kind}: HTTP {label}")

    def _read(self, url: str, name: str, *, check: str = "json", etag: str | None = None) -> Any:
        """GET `url`; 200 with a well-formed body is a success, and so is 304 when `etag` is
        sent. Returns the response (or None when it failed)."""
        headers = {"If-None-Match": etag} if etag else {}
        with self.client.get(url, name=name, headers=headers, catch_response=True) as response:
            if etag and response.status_code == 304:
                return response
            if response.status_code != 200:
                self._fail(response, name)
                return None
            problem = _body_problem(response, check)
            if etag and not problem and response.headers.get("ETag") == etag:
                problem = "200, not 304, for the ETag sent in If-None-Match"
            if problem:
                PROBLEMS[f"{name}: {problem}"] += 1
                response.failure(problem)
                return None
            return response


def _body_problem(response: Any, check: str) -> str | None:
    """A short reason when a 200 body is not what the endpoint promises."""
    content_type = (response.headers.get("Content-Type") or "") if response.headers else ""
    if check == "csv":
        if not content_type.startswith("text/csv"):
            return f"CSV asked, got {content_type!r}"
        if not (response.content or b"").startswith(b"\xef\xbb\xbf"):
            return "CSV without its UTF-8 byte-order mark"
        return None
    try:
        body = response.json()
    except ValueError:
        return f"body is not JSON ({content_type!r})"
    if check == "list" and not isinstance(body.get("data"), list):
        return "JSON list without a data array"
    if not (response.headers and response.headers.get("ETag")):
        return "GET answer without an ETag"
    return None


class Reader(_ApiUser):
    """Dashboards and partners reading: the bulk of the traffic."""

    weight = 12
    wait_time = constant(0)

    @task(4)
    def observations_filtered(self) -> None:
        indicator = random.choice(READ_INDICATORS)
        first, last = random.choice([(2019, 2023), (2020, 2025), (2023, 2023), (2018, 2099)])
        url = f"{API}/observations?indicator={indicator}&region={CITY}&from={first}&to={last}"
        self._read(url, "GET observations (indicator, region, years)", check="list")

    @task(2)
    def page_by_category(self) -> None:
        category = random.choice(CATEGORIES)
        url = f"{API}/observations?category={category}&limit=100&sort=-value"
        self._read(url, "GET observations (category page of 100)", check="list")

    @task(2)
    def comparison_table(self) -> None:
        category = random.choice(CATEGORIES)
        url = f"{API}/comparisons?year=2023&category={category}"
        self._read(url, "GET comparisons (year, category)", check="list")

    @task(1)
    def csv_list(self) -> None:
        category = random.choice(CATEGORIES)
        url = f"{API}/observations?category={category}&limit=100&format=csv"
        self._read(url, "GET observations CSV", check="csv")

    @task(2)
    def revalidate_list(self) -> None:
        category = random.choice(CATEGORIES)
        url = f"{API}/observations?category={category}&year=2023"
        first = self._read(url, "GET observations (ETag for revalidation)", check="list")
        if first is not None and first.headers.get("ETag"):
            # 304 unless a writer moved the data version in between (then a fresh 200).
            self._read(url, "GET observations If-None-Match", etag=first.headers["ETag"])

    @task(1)
    def revalidate_value(self) -> None:
        url = f"{API}/observations/{random.choice(READ_INDICATORS)}/{CITY}/2023"
        first = self._read(url, "GET one value (ETag for revalidation)")
        if first is not None and first.headers.get("ETag"):
            self._read(url, "GET one value If-None-Match", etag=first.headers["ETag"])


class Writer(_ApiUser):
    """An editor correcting values with If-Match, and a partner importing small files."""

    weight = 1
    wait_time = between(0.0, 0.05)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    @task(5)
    def put_with_if_match(self) -> None:
        indicator = random.choice(PUT_INDICATORS)
        path = f"{API}/observations/{indicator}/{CITY}/2023"
        current = self._read(path, "GET one value (ETag for PUT)")
        if current is None:
            return
        etag = current.headers.get("ETag", "")
        value = _synthetic_value()
        body = {
            "value": value,
            "qualifier": "exact",
            "source": SOURCE,
            "quote": REVIEW_CLAUSE,
            "note": SYNTHETIC_NOTE,
            "derived": True,
        }
        headers = {**self._auth(), "If-Match": etag}
        with self.client.put(
            path, json=body, headers=headers, name="PUT one value If-Match", catch_response=True
        ) as response:
            if response.status_code == 412:
                response.success()  # expected: another writer changed it since our GET
                return
            if response.status_code not in (200, 201):
                self._fail(response, "PUT one value If-Match")
                return
            new_etag = response.headers.get("ETag", "")
            _ack(
                {
                    "kind": "put",
                    "indicator": indicator,
                    "region": CITY,
                    "year": 2023,
                    "value": value,
                    "if_match": etag,
                    "etag": new_etag,
                    "revision": _revision(new_etag),
                    "base_revision": _revision(etag),
                    "status": response.status_code,
                }
            )
            if _revision(new_etag) is None:
                PROBLEMS["PUT one value If-Match: 2xx without an ETag r<revision>"] += 1
                response.failure("2xx without an ETag r<revision>")

    @task(1)
    def small_import(self) -> None:
        year = random.choice(SYNTHETIC_YEARS)
        keys = random.sample(
            [(i, r) for i in IMPORT_INDICATORS for r in IMPORT_REGIONS], random.randint(2, 4)
        )
        rows = {f"{i}/{r}/{year}": (i, r, year, _synthetic_value()) for i, r in keys}
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        for i, r, y, v in rows.values():
            writer.writerow([i, r, y, v, "exact", SYNTHETIC_NOTE, SOURCE, REVIEW_CLAUSE, "true"])
        headers = {**self._auth(), "Content-Type": "text/csv"}
        data = out.getvalue().encode()  # UTF-8: the review's clause is Chinese
        name = "POST imports CSV"
        with self.client.post(
            f"{API}/imports", data=data, headers=headers, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                self._fail(response, "POST imports CSV")
                return
            try:
                report = response.json()
                outcomes = {row["record"]: row["action"] for row in report["rows"]}
            except (ValueError, KeyError, TypeError):
                PROBLEMS["POST imports CSV: 200 without a readable report"] += 1
                response.failure("200 without a readable report")
                return
            for record, (indicator, region, row_year, value) in rows.items():
                action = outcomes.get(record)
                if action in ("created", "changed"):
                    _ack(
                        {
                            "kind": "import",
                            "indicator": indicator,
                            "region": region,
                            "year": row_year,
                            "value": value,
                            "action": action,
                        }
                    )
            if set(outcomes) != set(rows) or "unchanged" in outcomes.values():
                PROBLEMS["POST imports CSV: report does not match the rows sent"] += 1
                response.failure("report does not match the rows sent")


def _revision(etag: str) -> int | None:
    """The revision in an observation ETag `"r<revision>"`, or None."""
    tag = etag.strip().removeprefix("W/").strip('"')
    return int(tag[1:]) if tag.startswith("r") and tag[1:].isdigit() else None
