"""The OpenAPI document is a contract a generated client can use: openapi-python-client builds a
client from the live server's `/openapi.json` without one warning, and that client reads, compares
and writes against the server (openapi-python-client.yaml says how it treats the import's CSV and
YAML bodies)."""

import importlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from app.config import PROJECT_ROOT
from tests.conftest import DatabaseFactory
from tests.live import Server, serving, write_token

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
CONFIG = PROJECT_ROOT / "openapi-python-client.yaml"
PACKAGE = "statsapi_client"  # package_name_override in CONFIG
# A server to start and a client to generate: about 4 s on an idle 2-core machine, 10 s busy.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(
    databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str]]:
    """A live server over a seeded database of its own, and a write key's token."""
    url = databases.fresh("seeded")
    token = write_token(url, name="generated-client")
    with serving(url, tmp_path_factory.mktemp("live") / "server.log") as live:
        yield live, token


@pytest.fixture(scope="module")
def generated(server: tuple[Server, str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The generator's output and the generated package, imported."""
    if not GENERATOR.exists():
        pytest.fail(f"{GENERATOR} is missing: pip install -e '.[dev]'")
    live, _ = server
    workdir = tmp_path_factory.mktemp("client")
    document = workdir / "openapi.json"
    document.write_bytes(httpx.get(f"{live.url}/openapi.json", timeout=10).content)
    output = workdir / "out"
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            *("--path", str(document), "--output-path", str(output), "--config", str(CONFIG)),
        ],
        # The generator formats its output with ruff, a dev dependency in this bin directory.
        env={**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    sys.path.insert(0, str(output))
    try:
        yield result, importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(output))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_the_generator_prints_no_warning(generated: Any) -> None:
    result, _ = generated
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed
    for word in ("warning", "error", "skipping"):
        assert word not in printed.lower(), printed


def test_a_generated_client_lists_filtered_observations(
    generated: Any, server: tuple[Server, str]
) -> None:
    _, package = generated
    live, _ = server
    list_observations = _module("api.observations.list_observations")
    with package.Client(base_url=live.url) as client:
        page = list_observations.sync(
            client=client, indicator=["adaptive_training_trainees"], region=["320400"]
        )
    assert [(o.indicator, o.region, o.year) for o in page.data] == [
        ("adaptive_training_trainees", "320400", 2023)
    ]
    assert Decimal(str(page.data[0].value)) == 608


def test_a_generated_client_compares_two_years(generated: Any, server: tuple[Server, str]) -> None:
    _, package = generated
    live, _ = server
    list_comparisons = _module("api.comparisons.list_comparisons")
    with package.Client(base_url=live.url) as client:
        comparisons = list_comparisons.sync(client=client, year=2023, limit=5)
    assert comparisons.data, "the seed compares 2023 with its base year"
    assert all(c.year == 2023 for c in comparisons.data)


def test_a_generated_client_writes_with_a_key(generated: Any, server: tuple[Server, str]) -> None:
    _, package = generated
    live, token = server
    put_observation = _module("api.observations.put_observation")
    get_observation = _module("api.observations.get_observation")
    observation_write = _module("models.observation_write")
    body = observation_write.ObservationWrite(
        value="612",
        source="cz-tyjrswj-2023-review",
        quote="退役士兵适应性培训608人次",
        derived=True,
        note="SYNTHETIC: the review states 608",
    )
    where = {"indicator": "adaptive_training_trainees", "region": "320400", "year": 2023}
    with package.AuthenticatedClient(base_url=live.url, token=token) as client:
        written = put_observation.sync_detailed(**where, client=client, body=body)
        assert written.status_code == 200, written.content
        read = get_observation.sync(**where, client=client)
    assert Decimal(str(read.value)) == 612
    with package.Client(base_url=live.url) as anonymous:
        refused = put_observation.sync_detailed(**where, client=anonymous, body=body)
    assert refused.status_code == 401


def test_a_generated_client_imports_a_typed_bundle_and_a_csv_file(
    generated: Any, server: tuple[Server, str]
) -> None:
    _, package = generated
    live, token = server
    import_file = _module("api.imports.import_file")
    models = _module("models")
    row = {
        "indicator": "adaptive_training_trainees",
        "region": "320400",
        "year": 2023,
        "value": "608",
        "qualifier": "exact",
        "note": "",
        "source": "cz-tyjrswj-2023-review",
        "quote": "退役士兵适应性培训608人次",
    }
    record = models.ObservationRecord.from_dict({**row, "note": None})
    bundle = models.Bundle(observations=[record])
    csv = ",".join(row) + "\r\n" + ",".join(map(str, row.values()))
    csv_file = package.types.File(payload=io.BytesIO(csv.encode()), mime_type="text/csv")
    with package.AuthenticatedClient(base_url=live.url, token=token) as client:
        for body, kind in ((bundle, "bundle"), (csv_file, "csv")):
            answer = import_file.sync_detailed(client=client, body=body, dry_run=True)
            assert answer.status_code == 200, answer.content
            report = answer.parsed
            assert (report.format_, report.dry_run, report.applied) == (kind, True, False)
