"""The admin API's OpenAPI document against the running daemon (issue 14, "Also deliver"):
every route of the admin API is described with its method and nothing else is, the served
document is the committed one, and a seeded schemathesis run over every operation finds no
5xx, no response off its documented schema and no error outside the JSON error format."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core import NotSet

from allegro_sync.daemon.api.openapi import admin_openapi
from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.panel import PREFIX as PANEL_PREFIX
from scripts.admin_openapi import DOCUMENT
from tests.e2e.conftest import Admin, Emulator
from tests.helpers import ADMIN_TOKEN

EXAMPLES = 25  # per operation and generation mode (valid inputs, then invalid ones)
METHODS = ("get", "put", "post", "patch", "delete")
# HTML for a browser unless the client asks for JSON (Accept: application/json)
HTML_ERRORS = frozenset({"/oauth/callback"})


def served_routes(daemon: Daemon) -> set[tuple[str, str]]:
    """(method, path template) of every route of the admin API, the panel's left out (HEAD
    comes with each GET)."""
    assert daemon.http_runner is not None
    found = set()
    for route in daemon.http_runner.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or path.startswith(PANEL_PREFIX):
            continue
        found.add((route.method.lower(), path))
    return found


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


async def test_the_document_describes_exactly_the_routes(daemon: Daemon, admin: Admin) -> None:
    document = admin_openapi()
    assert served_routes(daemon) == documented_routes(document)
    status, served = await admin.call("GET", "/openapi.json")
    assert status == 200
    assert served == json.loads(DOCUMENT.read_text("utf-8")) == document
    async with admin.session.get(admin.url + "/openapi.json") as response:
        assert response.status == 401  # the admin token guards it as every admin route


JSON_TYPES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}


def allowed_types(schema: dict[str, Any]) -> set[str]:
    """The JSON types a property's schema lets through (``type`` or the ``anyOf`` of them)."""
    if "anyOf" in schema:
        return set().union(*(allowed_types(one) for one in schema["anyOf"]))
    kind = schema["type"]
    return {kind} if isinstance(kind, str) else set(kind)


async def test_an_account_as_served_has_the_documented_keys_and_types(
    admin: Admin, emulator: Emulator
) -> None:
    connected = await admin.connect(emulator, await emulator.seller("opisany"))
    status, _ = await admin.call(
        "PATCH",
        f"/accounts/{connected['id']}",
        {"orders_from": (datetime.now(UTC) - timedelta(days=3)).isoformat()},
    )
    assert status == 200
    status, served = await admin.call("GET", f"/accounts/{connected['id']}")
    assert status == 200
    schema = admin_openapi()["components"]["schemas"]["Account"]
    assert set(served) == set(schema["properties"]) == set(schema["required"])
    wrong = {
        key: (JSON_TYPES[type(value)], sorted(allowed_types(schema["properties"][key])))
        for key, value in served.items()
        if JSON_TYPES[type(value)] not in allowed_types(schema["properties"][key])
    }
    assert wrong == {}
    for key in ("created_at", "orders_from"):  # date-times as the document says
        prop = schema["properties"][key]
        assert "date-time" in {one.get("format") for one in prop.get("anyOf", [prop])}
        assert datetime.fromisoformat(served[key]).tzinfo is not None


@dataclass
class Findings:
    operations: int = 0
    examples: int = 0
    server_errors: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)


def _check_error_format(case: Any, response: schemathesis.Response) -> str | None:
    if response.status_code < 400:
        return None
    headers = {name.lower(): values for name, values in response.headers.items()}
    kind = (headers.get("content-type") or [""])[0]
    if not kind.startswith("application/json"):
        if case.operation.path in HTML_ERRORS and kind.startswith("text/html"):
            return None
        return f"{response.status_code} as {kind!r}"
    body = response.json()
    if not (isinstance(body, dict) and isinstance(body.get("error"), str)):
        return f"{response.status_code} without error: {body!r}"
    if not isinstance(body.get("detail"), str):
        return f"{response.status_code} without detail: {body!r}"
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _examine(
    case: Any, mode: GenerationMode, session: requests.Session, base_url: str, found: Findings
) -> None:
    """Send one case and note what is wrong with the answer."""
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    found.examples += 1
    response = case.call(base_url=base_url, session=session, headers=auth, timeout=30)
    body = "" if isinstance(case.body, NotSet) else str(case.body)[:200]
    where = f"{case.operation.label} ({mode.value}) {case.path_parameters} {case.query} {body}"
    if response.status_code >= 500:
        found.server_errors.append(f"{where} -> {response.status_code}")
    try:
        case.validate_response(response, checks=CHECKS, headers=auth)
    except (Exception, BaseExceptionGroup) as exc:  # every failing check
        found.mismatches.append(f"{where}: {str(exc)[:600]}")
    problem = _check_error_format(case, response)
    if problem:
        found.mismatches.append(f"{where}: {problem}")


def _examiner(
    mode: GenerationMode, session: requests.Session, base_url: str, found: Findings
) -> Callable[[Any], None]:
    def examine(case: Any) -> None:
        _examine(case, mode, session, base_url, found)

    return examine


def fuzz(base_url: str) -> Findings:
    """Every operation, EXAMPLES valid and EXAMPLES invalid cases each, derandomized; run in a
    thread (schemathesis calls over ``requests``) while the daemon serves on the event loop."""
    schema = schemathesis.openapi.from_dict(admin_openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    # deleting last: the other operations meet the account that exists
    operations.sort(key=lambda op: op.method.lower() == "delete")
    found = Findings(operations=len(operations))
    session = requests.Session()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = settings(
                max_examples=EXAMPLES,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(
                given(operation.as_strategy(generation_mode=mode))(
                    _examiner(mode, session, base_url, found)
                )
            )
            try:
                run()
            except Unsatisfiable:
                # nothing to make invalid: an operation without parameters or body
                assert mode is GenerationMode.NEGATIVE, operation.label
    session.close()
    return found


@pytest.mark.slow
async def test_fuzzing_the_admin_api_finds_no_server_error(
    admin: Admin, emulator: Emulator
) -> None:
    # one connected account: ids 1.. meet a real one (the strategies try small ids first)
    await admin.connect(emulator, await emulator.seller("fuzzed"))
    started = time.monotonic()
    findings = await asyncio.to_thread(fuzz, admin.url)
    seconds = time.monotonic() - started
    print(
        f"\nschemathesis: {findings.operations} operations, {findings.examples} examples"
        f" ({EXAMPLES} valid + {EXAMPLES} invalid per operation at most), {seconds:.0f} s,"
        f" {len(findings.server_errors)} server errors, {len(findings.mismatches)} mismatches"
    )
    assert not findings.server_errors, "\n".join(findings.server_errors[:30])
    assert not findings.mismatches, "\n".join(findings.mismatches[:30])
