"""Injected faults through real HTTP: latency, dropped connections, path scoping, and the
out-of-order order events switch (sections 3, 4, 5)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from allegro_sync.emulator.config import Switches

from .conftest import Harness, MakeHarness


async def test_latency_delays_requests(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    await emu.control("POST", "/faults", {"latency_ms": 200})
    started = time.monotonic()
    status, _, _ = await emu.api("GET", "/me", token)
    assert status == 200
    assert time.monotonic() - started >= 0.2
    await emu.control("DELETE", "/faults")
    started = time.monotonic()
    await emu.api("GET", "/me", token)
    assert time.monotonic() - started < 0.2


async def test_dropped_connection_is_a_client_error(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    await emu.control("POST", "/faults", {"drop_connections_rate": 1.0})
    with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        await emu.api("GET", "/me", token)
    await emu.control("DELETE", "/faults")
    assert (await emu.api("GET", "/me", token))[0] == 200


async def test_faults_apply_only_to_their_paths(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    await emu.control(
        "POST",
        "/faults",
        {"error_5xx_rate": 1.0, "status_429_seconds": 0, "paths": ["/order/"]},
    )
    assert (await emu.api("GET", "/me", token))[0] == 200
    assert (await emu.api("GET", "/sale/offers", token))[0] == 200
    assert (await emu.api("GET", "/order/events", token))[0] == 503
    assert (await emu.api("GET", "/order/checkout-forms", token))[0] == 503
    await emu.control("POST", "/faults", {"status_429_seconds": 60, "paths": ["/me"]})
    assert (await emu.api("GET", "/me", token))[0] == 429
    assert (await emu.api("GET", "/order/events", token))[0] == 200


async def test_endpoint_latency_delays_only_that_endpoint_with_an_answer_read_before(
    emu: Harness,
) -> None:
    seller, token = await emu.seller_with_token()
    offer = await emu.control("POST", f"/sellers/{seller['id']}/offers", {"name": "A", "stock": 5})
    await emu.control("POST", "/faults", {"endpoint_latency_ms": {"GET /sale/offers": 300}})
    started = time.monotonic()
    assert (await emu.api("GET", "/sale/offer-events", token))[0] == 200
    assert time.monotonic() - started < 0.3  # another endpoint of the same path family

    async def listing() -> int:
        _, page, _ = await emu.api("GET", f"/sale/offers?offer.id={offer['id']}", token)
        return int(page["offers"][0]["stock"]["available"])

    started = time.monotonic()
    read = asyncio.create_task(listing())
    await asyncio.sleep(0.1)
    # a purchase while the answer travels: the answer still shows the state it was computed on
    await emu.control("POST", "/purchases", {"offer_id": offer["id"], "quantity": 2})
    assert await read == 5
    assert time.monotonic() - started >= 0.3
    await emu.control("DELETE", "/faults")
    assert await listing() == 3


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint_latency_ms": {"GET /sale/nothing-here": 300}},
        {"endpoint_latency_ms": {"POST /sale/offers": 300}},
        {"endpoint_latency_ms": {"GET /sale/offers": -1}},
        {"endpoint_latency_ms": ["GET /sale/offers"]},
        {"error_5xx_rate": 2},
        {"latency_ms": "slow"},
        {"paths": "/order/"},
        {"latency": 300},
    ],
)
async def test_faults_are_validated(emu: Harness, body: dict[str, object]) -> None:
    async with emu.session.post(emu.url("/__control__/faults"), json=body) as response:
        assert response.status == 400
        assert (await response.json())["error"]


async def test_out_of_order_events_are_each_seen_once(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(switches=Switches(out_of_order_events=True))
    seller, token = await emu.seller_with_token()
    offer = await emu.control("POST", f"/sellers/{seller['id']}/offers", {"name": "A", "stock": 9})
    forms = []
    for _ in range(3):
        form = await emu.control("POST", "/purchases", {"offer_id": offer["id"], "then": "fill-in"})
        forms.append(form["id"])
        await emu.advance(5)
    for form_id in forms:
        await emu.control("POST", f"/checkout-forms/{form_id}/pay")
        await emu.advance(5)
    seen: list[dict[str, str]] = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&from={cursor}" if cursor else "")
        _, page, _ = await emu.api("GET", f"/order/events{query}", token)
        if not page["events"]:
            break
        seen.extend(page["events"])
        cursor = page["events"][-1]["id"]
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids))
    # Per form: BOUGHT, FILLED_IN, READY_FOR_PROCESSING, then the late FILLED_IN.
    assert len(seen) == 3 * 4
    occurred = [e["occurredAt"] for e in seen]
    assert occurred != sorted(occurred)
