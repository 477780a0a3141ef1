"""The contract check itself: the vendored spec matches the emulator's routes and a fresh cut,
and a planted deviation, on either side of an exchange, is reported."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from allegro_sync.emulator import contract
from allegro_sync.emulator.app import EmulatorConfig, create_app
from allegro_sync.emulator.context import EMULATOR_KEY
from allegro_sync.emulator.openapi import subset
from allegro_sync.emulator.tokens import ALL_SCOPES

ROOT = Path(__file__).resolve().parents[2]
VND = "application/vnd.allegro.public.v1+json"
FULL_SPECS = [
    ROOT.parent / "shared/reference/allegro-openapi-2026-07-18.yaml",
    Path("/work/shared/reference/allegro-openapi-2026-07-18.yaml"),
]


def test_the_subset_names_its_source_date_and_checksum() -> None:
    head = (ROOT / "allegro_sync/emulator/allegro-openapi-subset.yaml").read_text()[:1000]
    assert "developer.allegro.pl/swagger.yaml" in head
    assert "2026-07-18" in head
    assert "7d5ce8822477e66e48d23be8dbc8cc3f6bd21d05d7712b024de2a85f99ce31e5" in head


def test_a_fresh_cut_of_the_full_spec_gives_the_vendored_file() -> None:
    full = next((p for p in FULL_SPECS if p.exists()), None)
    if full is None:
        pytest.skip("the full spec is not beside the repository")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts/cut_openapi.py"), str(full), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_route_the_emulator_serves_is_an_operation_of_the_spec() -> None:
    spec = subset()
    app = create_app(EmulatorConfig())
    sample = {
        "id": "c0ffee00-0000-4000-8000-000000000001",
        "command_id": "c0ffee00-0000-4000-8000-000000000002",
        "offer_id": "7610768778",
        "operation_id": "c0ffee00-0000-4000-8000-000000000003",
        "invoice_id": "c0ffee00-0000-4000-8000-000000000004",
        "product_id": "c0ffee00-0000-4000-8000-000000000005",
        "commandId": "c0ffee00-0000-4000-8000-000000000005",
        "shipmentId": "c0ffee00-0000-4000-8000-000000000006",
        "carrierId": "INPOST",
    }
    kinds = (
        "return-policies",
        "implied-warranties",
        "warranties",
        "offer-price-change-commands",
        "offer-quantity-change-commands",
        "offer-publication-commands",
    )
    checked = 0
    missing = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = str(info.get("path") or info.get("formatter") or "")
        if template.startswith(("/__control__", "/auth/oauth")) or route.method == "HEAD":
            continue
        concrete = template
        for name, value in sample.items():
            concrete = concrete.replace("{" + name + "}", value)
        candidates = (
            [concrete.replace("{kind}", k) for k in kinds] if "{kind}" in concrete else [concrete]
        )
        pattern = info.get("pattern")
        for path in candidates:
            if pattern is not None and not pattern.fullmatch(path):
                continue  # not a kind this route serves
            checked += 1
            if spec.operation(route.method, path) is None:
                missing.append(f"{route.method} {path}")
    assert not missing, missing
    assert checked == len(list(spec.operations())), "the spec lists operations nobody serves"


# -- planted deviations -------------------------------------------------------------------


def test_a_wrong_field_type_an_unknown_field_and_an_undeclared_status_are_reported() -> None:
    spec = subset()
    op, _ = spec.operation("GET", "/sale/offer-quantity-change-commands/x") or (None, None)
    assert op is not None
    good = {
        "id": "x",
        "createdAt": "2026-07-18T10:00:00.000Z",
        "completedAt": None,
        "taskCount": {"total": 1, "success": 1, "failed": 0},
    }
    assert contract.check_response(spec, op, 200, VND, json.dumps(good).encode()) == []
    bad = {**good, "taskCount": {"total": "1", "success": 1, "failed": 0}, "extra": 1}
    found = [str(v) for v in contract.check_response(spec, op, 200, VND, json.dumps(bad).encode())]
    assert any("taskCount.total: expected integer" in f for f in found), found
    assert any("extra: property not in the spec" in f for f in found), found
    teapot = contract.check_response(spec, op, 418, VND, b"{}")
    assert [str(v) for v in teapot] == [
        "(body): status 418 is not declared for GET /sale/offer-quantity-change-commands/"
        "{commandId}"
    ]


def test_an_error_in_the_vendor_media_type_where_the_spec_says_application_json() -> None:
    spec = subset()
    found = spec.operation("GET", "/sale/offer-events")
    assert found is not None
    body = json.dumps({"errors": [{"code": "VALIDATION_ERROR", "message": "bad cursor"}]})
    assert contract.check_response(spec, found[0], 400, "application/json", body.encode()) == []
    wrong = contract.check_response(spec, found[0], 400, VND, body.encode())
    assert wrong and "Content-Type" in str(wrong[0])


def test_an_enum_value_the_spec_lacks_is_reported() -> None:
    spec = subset()
    company = {"name": "Firma", "ids": [{"type": "PL_VAT", "value": "5250001009"}]}
    schema = {"$ref": "#/components/schemas/CheckoutFormInvoiceAddressCompany"}
    found = [str(v) for v in spec.validate(schema, company, strict=True)]
    assert any(f.startswith("ids[0].type: 'PL_VAT' is not one of") for f in found), found


async def _planted(
    mutate: Callable[[web.StreamResponse], Awaitable[web.StreamResponse]],
) -> tuple[contract.ContractLog, TestServer]:
    """An emulator whose answers pass through ``mutate`` before the contract check sees them."""
    app = create_app(EmulatorConfig(seed=3))

    @web.middleware
    async def plant(request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        return await mutate(response) if not request.path.startswith("/__") else response

    app.middlewares.insert(0, plant)
    log = contract.install(app)  # outermost: it sees the planted answer
    server = TestServer(app)
    await server.start_server()
    return log, server


async def _token(session: aiohttp.ClientSession, server: TestServer) -> str:
    async with session.post(server.make_url("/__control__/sellers"), json={"login": "c"}) as r:
        seller = await r.json()
    emulator = server.app[EMULATOR_KEY]
    grant = emulator.tokens.new_grant("demo-client", seller["id"], ALL_SCOPES)
    return emulator.tokens.issue(grant).access.token


async def test_a_deviation_planted_in_a_served_answer_is_seen_over_http() -> None:
    async def wrong_type(response: web.StreamResponse) -> web.StreamResponse:
        if isinstance(response, web.Response) and response.status == 200 and response.body:
            assert isinstance(response.body, bytes)
            data = json.loads(response.body)
            if "latestEvent" in data:
                data["latestEvent"] = {"id": 17, "occurredAt": "yesterday"}
                response.body = json.dumps(data).encode()
        return response

    log, server = await _planted(wrong_type)
    try:
        async with aiohttp.ClientSession() as session:
            token = await _token(session, server)
            headers = {"Authorization": f"Bearer {token}", "Accept": VND}
            async with session.get(server.make_url("/order/event-stats"), headers=headers) as r:
                assert r.status == 200
            async with session.get(
                server.make_url("/order/events"), params={"since": "1"}, headers=headers
            ) as r:
                assert r.status == 200
    finally:
        await server.close()
    found = [str(f) for f in log.findings]
    assert (
        "response GET /order/event-stats -> 200: latestEvent.id: expected string, got "
        "integer" in found
    ), found
    assert any("latestEvent.occurredAt: 'yesterday' is not an ISO 8601" in f for f in found)
    assert "request GET /order/events: query since: parameter not in the spec" in found, found
