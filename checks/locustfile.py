"""Mixed load for checks/load.py: the main reads, with writes (PUT with If-Match, small imports).

Every write the API acknowledges (2xx) is appended to $LOAD_ACK_FILE, so that the audit can
find each one in the revision history afterwards. Written values are SYNTHETIC load data in a
throwaway database, never in one that `make serve` uses.
"""

import os
import random

from locust import FastHttpUser, constant, task

TOKEN = os.environ.get("LOAD_TOKEN", "")
ACK_FILE = os.environ.get("LOAD_ACK_FILE", "acks.tsv")
SOURCE = "cz-tyjrswj-2023-review"
INDICATORS = [
    "adaptive_training_trainees",
    "job_fairs_held",
    "job_fair_applicants",
    "military_support_project_funds",
    "preferential_cards_issued",
]
CATEGORIES = ["employment_entrepreneurship", "military_civilian_support", "service_support"]
OK_OR_EXPECTED = {200, 201, 304, 412}  # 412: another writer won the If-Match race


def _unique_value() -> str:
    return str(random.randrange(10**11, 10**12))


def _ack(kind: str, path: str, value: str, revision: int | str = "") -> None:
    with open(ACK_FILE, "a", encoding="utf-8") as acks:
        acks.write(f"{kind}\t{path}\t{value}\t{revision}\n")


class _User(FastHttpUser):
    abstract = True
    wait_time = constant(0)

    def _get(self, url: str, name: str, **kwargs) -> None:  # type: ignore[no-untyped-def]
        with self.client.get(url, name=name, catch_response=True, **kwargs) as response:
            if response.status_code in OK_OR_EXPECTED:
                response.success()
            else:
                response.failure(f"{response.status_code}")


class Reader(_User):
    weight = 8

    @task(4)
    def observations_filtered(self) -> None:
        indicator = random.choice(INDICATORS)
        url = f"/api/v1/observations?indicator={indicator}&region=320400&from=2019&to=2023"
        self._get(url, "observations filtered")

    @task(2)
    def page_by_category(self) -> None:
        category = random.choice(CATEGORIES)
        self._get(f"/api/v1/observations?category={category}&year=2023&limit=100", "page")

    @task(2)
    def comparison(self) -> None:
        category = random.choice(CATEGORIES)
        self._get(f"/api/v1/comparisons?year=2023&category={category}", "comparisons")

    @task(1)
    def csv_page(self) -> None:
        self._get("/api/v1/observations?limit=100&format=csv", "csv")

    @task(2)
    def revalidate(self) -> None:
        url = "/api/v1/observations?category=service_support"
        first = self.client.get(url, name="304 (first GET)")
        etag = first.headers.get("etag", "")
        self._get(url, "304 revalidation", headers={"If-None-Match": etag})


class Writer(_User):
    weight = 1

    @task(4)
    def put_with_if_match(self) -> None:
        path = f"/api/v1/observations/{random.choice(INDICATORS)}/320400/2023"
        etag = self.client.get(path, name="PUT (GET its ETag)").headers.get("etag", "")
        value = _unique_value()
        body = {"value": value, "source": SOURCE, "quote": "SYNTHETIC load test"}
        headers = {"Authorization": f"Bearer {TOKEN}", "If-Match": etag}
        with self.client.put(
            path, json=body, headers=headers, name="PUT If-Match", catch_response=True
        ) as response:
            if response.status_code in (200, 201):
                _ack("PUT", path, value, response.headers["etag"].strip('"r'))
            elif response.status_code == 412:
                response.success()  # expected: another writer changed it first
            else:
                response.failure(f"{response.status_code}")

    @task(1)
    def small_import(self) -> None:
        year = random.randrange(2090, 2100)
        rows = [(indicator, "320400", year, _unique_value()) for indicator in INDICATORS[:3]]
        lines = ["indicator,region,year,value,qualifier,note,source,quote"] + [
            f"{i},{r},{y},{v},exact,SYNTHETIC load test,{SOURCE},SYNTHETIC load test"
            for i, r, y, v in rows
        ]
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/csv"}
        with self.client.post(
            "/api/v1/imports",
            data="\r\n".join(lines).encode(),
            headers=headers,
            name="import",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                for indicator, region, row_year, value in rows:
                    _ack("IMPORT", f"/api/v1/observations/{indicator}/{region}/{row_year}", value)
            else:
                response.failure(f"{response.status_code}")
