"""Clock-driven offer lifecycle: scheduled activation and draft deletion (sections 8.3, 9.4)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from .conftest import Harness, MakeHarness
from .test_offers import criteria, tasks

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PUBLICATION = "offer-publication-commands"


async def _status(emu: Harness, token: str, offer_id: str) -> str:
    status, po, _ = await emu.api("GET", f"/sale/product-offers/{offer_id}", token)
    assert status == 200, po
    return str(po["publication"]["status"])


async def test_scheduled_activation_waits_for_the_clock(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(start_time=START, access_token_ttl=10**8)
    seller, token = await emu.seller_with_token()
    draft = await emu.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "A", "status": "INACTIVE"}
    )
    when = START + timedelta(hours=2)
    body = {
        "publication": {"action": "ACTIVATE", "scheduledFor": when.isoformat()},
        "offerCriteria": criteria(draft["id"]),
    }
    cid = str(uuid.uuid4())
    status, _, _ = await emu.api("PUT", f"/sale/{PUBLICATION}/{cid}", token, body)
    assert status == 201
    (task,) = await tasks(emu, token, PUBLICATION, cid)
    assert task["status"] == "SUCCESS"
    assert await _status(emu, token, draft["id"]) == "ACTIVATING"
    _, listing, _ = await emu.api("GET", "/sale/offers?publication.status=ACTIVATING", token)
    assert listing["offers"][0]["publication"]["startingAt"] == "2026-03-01T14:00:00.000Z"
    await emu.advance(2 * 3600 - 1)
    assert await _status(emu, token, draft["id"]) == "ACTIVATING"
    await emu.advance(1)
    assert await _status(emu, token, draft["id"]) == "ACTIVE"
    _, events, _ = await emu.api("GET", "/sale/offer-events", token)
    assert [e["type"] for e in events["offerEvents"]] == ["OFFER_ACTIVATED"]
    assert events["offerEvents"][0]["occurredAt"] == "2026-03-01T14:00:00.000Z"


async def test_scheduled_for_in_the_past_is_refused(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(start_time=START)
    seller, token = await emu.seller_with_token()
    draft = await emu.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "A", "status": "INACTIVE"}
    )
    body = {
        "publication": {"action": "ACTIVATE", "scheduledFor": "2026-02-28T12:00:00.000Z"},
        "offerCriteria": criteria(draft["id"]),
    }
    status, err, _ = await emu.api("PUT", f"/sale/{PUBLICATION}/{uuid.uuid4()}", token, body)
    assert status == 422 and err["errors"][0]["path"] == "publication.scheduledFor"


async def test_untouched_drafts_are_deleted_after_60_days(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(access_token_ttl=10**8)
    seller, token = await emu.seller_with_token()
    sid = seller["id"]
    stale = await emu.control("POST", f"/sellers/{sid}/offers", {"name": "A", "status": "INACTIVE"})
    edited = await emu.control(
        "POST", f"/sellers/{sid}/offers", {"name": "B", "status": "INACTIVE"}
    )
    active = await emu.control("POST", f"/sellers/{sid}/offers", {"name": "C"})
    await emu.advance(30 * 86400)
    status, _, _ = await emu.api(
        "PATCH", f"/sale/product-offers/{edited['id']}", token, {"name": "Wiertarka udarowa B2"}
    )
    assert status == 202
    await emu.advance(30 * 86400 + 1)
    status, err, _ = await emu.api("GET", f"/sale/product-offers/{stale['id']}", token)
    assert status == 404 and err["errors"][0]["code"] == "OfferNotFoundException"
    assert await _status(emu, token, edited["id"]) == "INACTIVE"
    assert await _status(emu, token, active["id"]) == "ACTIVE"
    _, listing, _ = await emu.api("GET", "/sale/offers", token)
    assert {o["id"] for o in listing["offers"]} == {edited["id"], active["id"]}
    await emu.advance(30 * 86400)
    assert (await emu.api("GET", f"/sale/product-offers/{edited['id']}", token))[0] == 404
