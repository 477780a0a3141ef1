"""Offers, the offer journal and batch commands (sections 7, 8, 9)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from .conftest import Harness, MakeHarness


def criteria(*ids: str) -> list[dict[str, Any]]:
    return [{"type": "CONTAINS_OFFERS", "offers": [{"id": i} for i in ids]}]


async def command(
    emu: Harness, token: str, kind: str, body: dict[str, Any], cid: str | None = None
) -> tuple[int, Any]:
    cid = cid or str(uuid.uuid4())
    status, rep, _ = await emu.api("PUT", f"/sale/{kind}/{cid}", token, body)
    return status, rep


async def tasks(emu: Harness, token: str, kind: str, cid: str) -> list[dict[str, Any]]:
    await asyncio.sleep(0.01)
    _, body, _ = await emu.api("GET", f"/sale/{kind}/{cid}/tasks", token)
    return list(body["tasks"])


async def test_listing_filters_and_ean(emu: Harness) -> None:
    seller, token = await emu.seller_with_token()
    sid = seller["id"]
    a = await emu.control(
        "POST",
        f"/sellers/{sid}/offers",
        {
            "name": "A",
            "ean": "5901234123457",
            "image_url": "https://img/a.jpg",
            "external_id": "E1",
        },
    )
    await emu.control("POST", f"/sellers/{sid}/offers", {"name": "B", "format": "AUCTION"})
    _, body, _ = await emu.api("GET", "/sale/offers?sellingMode.format=AUCTION", token)
    assert [o["name"] for o in body["offers"]] == ["B"]
    _, body, _ = await emu.api("GET", "/sale/offers?external.id=E1", token)
    offer = body["offers"][0]
    assert offer["primaryImage"]["url"] == "https://img/a.jpg"
    assert offer["sellingMode"]["price"]["amount"] == "10.00"
    _, po, _ = await emu.api("GET", f"/sale/product-offers/{a['id']}", token)
    params = po["productSet"][0]["product"]["parameters"]
    assert {"id": "225693", "values": ["5901234123457"]}.items() <= params[0].items()
    assert (await emu.api("GET", "/sale/offers?limit=1001", token))[0] == 400


async def test_bulk_offers_paging(emu: Harness) -> None:
    seller, token = await emu.seller_with_token()
    await emu.control(
        "POST",
        f"/sellers/{seller['id']}/offers",
        {"count": 2500, "name": "Item {n}", "ean_base": "5900000000000"},
    )
    seen = set()
    for offset in range(0, 3000, 1000):
        _, body, _ = await emu.api("GET", f"/sale/offers?limit=1000&offset={offset}", token)
        seen.update(o["id"] for o in body["offers"])
        assert body["totalCount"] == 2500
    assert len(seen) == 2500


async def test_sell_out_ends_offer_and_journal(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(access_token_ttl=10**8)
    seller, token = await emu.seller_with_token()
    offer = await emu.control("POST", f"/sellers/{seller['id']}/offers", {"name": "A", "stock": 1})
    await emu.control("POST", "/purchases", {"offer_id": offer["id"]})
    _, body, _ = await emu.api("GET", "/sale/offer-events", token)
    types = [e["type"] for e in body["offerEvents"]]
    assert types == ["OFFER_ACTIVATED", "OFFER_STOCK_CHANGED", "OFFER_ENDED"]
    assert body["offerEvents"][-1]["offer"]["publication"]["endedBy"] == "EMPTY_STOCK"
    first = body["offerEvents"][0]["id"]
    _, rest, _ = await emu.api("GET", f"/sale/offer-events?from={first}", token)
    assert len(rest["offerEvents"]) == 2
    await emu.advance(25 * 3600)
    status, err, _ = await emu.api("GET", f"/sale/offer-events?from={first}", token)
    assert status == 400 and err["errors"][0]["path"] == "from"


async def test_commands(emu: Harness) -> None:
    seller, token = await emu.seller_with_token()
    offer = await emu.control("POST", f"/sellers/{seller['id']}/offers", {"name": "A", "stock": 5})
    cid = str(uuid.uuid4())
    body = {
        "modification": {"changeType": "FIXED", "value": 0},
        "offerCriteria": criteria(offer["id"]),
    }
    status, rep = await command(emu, token, "offer-quantity-change-commands", body, cid)
    assert status == 201 and rep["completedAt"] is None and rep["taskCount"]["total"] == 0
    (task,) = await tasks(emu, token, "offer-quantity-change-commands", cid)
    assert task["status"] == "FAIL" and task["errors"][0]["code"] == "INVALID_OFFER_QUANTITY"
    status, _ = await command(emu, token, "offer-quantity-change-commands", body, cid)
    assert status == 409
    many = {
        "modification": {"type": "FIXED_PRICE", "price": {"amount": "1.00", "currency": "PLN"}},
        "offerCriteria": criteria(*[str(i) for i in range(1001)]),
    }
    assert (await command(emu, token, "offer-price-change-commands", many))[0] == 422
    price = {
        "modification": {"type": "FIXED_PRICE", "price": {"amount": "12.50", "currency": "PLN"}},
        "offerCriteria": criteria(offer["id"]),
    }
    cid = str(uuid.uuid4())
    await command(emu, token, "offer-price-change-commands", price, cid)
    (task,) = await tasks(emu, token, "offer-price-change-commands", cid)
    assert task["status"] == "SUCCESS"
    _, po, _ = await emu.api("GET", f"/sale/product-offers/{offer['id']}", token)
    assert po["sellingMode"]["price"]["amount"] == "12.50"
    assert len((await emu.control("GET", "/commands"))["commands"]) == 2


async def test_activate_revives_within_60_days(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(access_token_ttl=10**8)
    seller, token = await emu.seller_with_token()
    sid = seller["id"]
    buy_now = await emu.control("POST", f"/sellers/{sid}/offers", {"name": "A", "stock": 3})
    auction = await emu.control(
        "POST", f"/sellers/{sid}/offers", {"name": "B", "format": "AUCTION"}
    )
    old = await emu.control("POST", f"/sellers/{sid}/offers", {"name": "C", "stock": 3})
    for o in (buy_now, auction, old):
        await emu.control("POST", f"/offers/{o['id']}/end")
    await emu.advance(30 * 86400)
    pub = {
        "publication": {"action": "ACTIVATE"},
        "offerCriteria": criteria(buy_now["id"], auction["id"]),
    }
    cid = str(uuid.uuid4())
    await command(emu, token, "offer-publication-commands", pub, cid)
    result = {
        t["offer"]["id"]: t["status"]
        for t in await tasks(emu, token, "offer-publication-commands", cid)
    }
    assert result == {buy_now["id"]: "SUCCESS", auction["id"]: "FAIL"}
    _, events, _ = await emu.api("GET", "/sale/offer-events?type=OFFER_ACTIVATED", token)
    assert events["offerEvents"][-1]["offer"]["id"] == buy_now["id"]
    await emu.advance(31 * 86400)
    status, _body, _ = await emu.api("GET", f"/sale/product-offers/{old['id']}", token)
    assert status == 404
    cid = str(uuid.uuid4())
    await command(
        emu,
        token,
        "offer-publication-commands",
        {"publication": {"action": "ACTIVATE"}, "offerCriteria": criteria(old["id"])},
        cid,
    )
    (task,) = await tasks(emu, token, "offer-publication-commands", cid)
    assert task["status"] == "FAIL"


async def test_change_budget(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(price_changes_per_hour=2)
    seller, token = await emu.seller_with_token()
    ids = [
        (await emu.control("POST", f"/sellers/{seller['id']}/offers", {"name": "A"}))["id"]
        for _ in range(3)
    ]
    body = {
        "modification": {"type": "INCREASE_PERCENTAGE", "percentage": "10"},
        "offerCriteria": criteria(*ids),
    }
    assert (await command(emu, token, "offer-price-change-commands", body))[0] == 429
    await emu.advance(3601)
    body["offerCriteria"] = criteria(*ids[:2])
    assert (await command(emu, token, "offer-price-change-commands", body))[0] == 201


async def test_a_command_body_allegro_would_refuse_gets_its_422_not_an_echo(emu: Harness) -> None:
    """The peer's lesson (OL#1017): a stand-in that takes any body hides a client whose every
    stock update Allegro refuses. The emulator reads bodies against Allegro's schema."""
    seller, token = await emu.seller_with_token()
    offer = await emu.control("POST", f"/sellers/{seller['id']}/offers", {"name": "A", "stock": 5})
    wrong = [
        ({"modification": {"changeType": "SET", "value": 3}}, "modification.changeType"),
        ({"modification": {"changeType": "FIXED", "value": "3"}}, "modification.value"),
        (
            {
                "modification": {"changeType": "FIXED", "value": 3},
                "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": 7}]}],
            },
            "offerCriteria[0].offers[0].id",
        ),
    ]
    for body, path in wrong:
        body.setdefault("offerCriteria", criteria(offer["id"]))
        status, err = await command(emu, token, "offer-quantity-change-commands", body)
        assert status == 422, (body, err)
        entry = err["errors"][0]
        assert set(entry) >= {"code", "message", "details", "path", "userMessage"}
        assert entry["path"] == path, err
    _, po, _ = await emu.api("GET", f"/sale/product-offers/{offer['id']}", token)
    assert po["stock"]["available"] == 5
    assert (await emu.control("GET", "/commands"))["commands"] == []
