"""The OpenAPI description: written from the vendor documentation (quirks included), shipped in the
package, served by the sandbox, and checked against the sandbox by schemathesis, a property-based API
tester, which must find nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import zipfile
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from kopechka._endpoints import ENDPOINTS
from kopechka._hooks import operation, path_template
from kopechka.testing import AutoMail, Sandbox
from kopechka.testing._spec import document

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
# every operation of the vendor documentation, by the vendor's own paths: the one endpoint table's
DOCUMENTED = {(e.method, path_template(e.path.format(id="x"))) for e in ENDPOINTS}


def operations() -> set[tuple[str, str]]:
    return {
        (m.upper(), p) for p, item in document()["paths"].items() for m in item if m != "parameters"
    }


def schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = document()["components"]["schemas"][name]
    return found


def test_every_documented_operation_and_no_other() -> None:
    assert operations() == DOCUMENTED
    assert len(DOCUMENTED) == len(ENDPOINTS)  # no two rows for one operation


def test_each_operation_is_named_after_its_client_method() -> None:
    """The description's ``operationId`` is the client method's name (camelCase), and the hooks
    report a call under that method's name."""
    ids = {
        (method.upper(), path): spec["operationId"]
        for path, item in document()["paths"].items()
        for method, spec in item.items()
        if method != "parameters"
    }
    for (method, path), operation_id in ids.items():
        name = operation(method, path)
        assert operation_id == re.sub(r"_(\w)", lambda m: m.group(1).upper(), name), (method, path)
    assert document()["openapi"] == "3.1.0"
    assert document()["servers"][0]["url"] == "https://api.kopechka.com/api/v1"
    assert document()["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": "Your API key, on every request.",
    }  # fmt: skip


def test_the_vendors_quirks_are_written_down() -> None:
    listing = document()["paths"]["/orders"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]
    assert set(listing["schema"]["required"]) == {"success", "data", "pagination"}  # beside data
    cancel = schema("Cancellation")
    assert "data" not in cancel["properties"]
    assert "refundAmount" in cancel["properties"]
    messages = schema("MessageList")
    assert set(messages["required"]) == {"success", "messages", "order"}
    assert "created_at" in schema("OrderSummary")["required"]
    assert "from" in schema("Message")["required"]
    assert "id" not in schema("CreatedOrder")["required"]
    assert schema("Money")["type"] == "number"


def test_every_exclusion_of_the_test_configuration_has_its_note() -> None:
    """Each check narrowed in schemathesis.toml names an operation whose spec explains why."""
    config = CONFIG.read_text()
    narrowed = set(re.findall(r'include-operation-id = "(\w+)"', config))
    assert narrowed == {"createOrder", "cancelOrder", "startPolling"}
    by_id = {
        op["operationId"]: op
        for item in document()["paths"].values() for m, op in item.items() if m != "parameters"
    }  # fmt: skip
    for operation_id in narrowed:
        notes = [key for key in by_id[operation_id] if key.startswith("x-kopechka-")]
        assert notes, f"{operation_id} has no x-kopechka- note"
    assert "x-kopechka-after-cancel" in by_id["cancelOrder"]  # why use_after_free is off
    assert "enabled = false" in config.split("[checks.use_after_free]")[1].split("[")[0]


def test_shipped_in_the_package() -> None:
    shipped = resources.files("kopechka.testing").joinpath("openapi.json").read_bytes()
    assert json.loads(shipped) == document()


@pytest.mark.slow
def test_wheel_and_sdist_include_it(tmp_path: Path) -> None:
    code = (
        "import sys; from hatchling.builders.wheel import WheelBuilder;"
        "from hatchling.builders.sdist import SdistBuilder;"
        "out = sys.argv[1];"
        "print(*WheelBuilder('.').build(directory=out, versions=['standard']));"
        "print(*SdistBuilder('.').build(directory=out, versions=['standard']))"
    )
    built = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=True,
    ).stdout.split()  # fmt: skip
    wheel, sdist = Path(built[0]), Path(built[1])
    with zipfile.ZipFile(wheel) as built_wheel:
        assert "kopechka/testing/openapi.json" in built_wheel.namelist()
    with tarfile.open(sdist) as built_sdist:
        names = built_sdist.getnames()
    assert any(n.endswith("/src/kopechka/testing/openapi.json") for n in names)


@pytest.mark.slow
@pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="schemathesis 4.32+ needs Python 3.11: the 3.11-3.13 lanes run this test",
)
def test_schemathesis_finds_nothing(tmp_path: Path) -> None:
    """Every operation, every phase (examples, coverage, fuzzing, stateful), the default checks,
    positive and negative data, a fixed seed: see schemathesis.toml for the few narrowed checks.
    Mail lands at once (auto_mail delay 0) so the stateful phase reaches a successful
    start-polling; the balance is large enough for every purchase it makes."""
    with Sandbox(balance=Decimal("1000000000.00"), auto_mail=AutoMail(delay=0)) as sb:
        result = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color",
             "run", sb.openapi_url],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        tested = {(r.method, r.path) for r in sb.requests}
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "No issues found" in output, output[-3000:]
    assert f"Selected: {len(DOCUMENTED)}/{len(DOCUMENTED)}" in output
    assert f"Tested: {len(DOCUMENTED)}" in output
    assert "failures" not in output.split("SUMMARY")[-1].lower(), output[-3000:]
    for method, template in DOCUMENTED:
        pattern = re.compile("^/api/v1" + re.sub(r"\{\w+\}", "[^/]+", template) + "$")
        assert any(m == method and pattern.match(p) for m, p in tested), (method, template)
