"""Checklist items 8, 9, 11 and 14 of allegro-api.md through real HTTP: listing filters,
checkout-form filters and sort, fulfillment validation, the invoice list."""

from __future__ import annotations

import json
from typing import Any

from allegro_sync.emulator.context import EMULATOR_KEY
from allegro_sync.emulator.listing_json import offer_listing_json, seller_tail
from allegro_sync.emulator.views import offer_listing

from .conftest import Harness, MakeHarness


async def _offers(emu: Harness, sid: str, n: int, **fields: Any) -> list[str]:
    made = await emu.control("POST", f"/sellers/{sid}/offers", {"count": n, **fields})
    return list(made["ids"])


async def test_offer_listing_filters(emu: Harness) -> None:
    seller, token = await emu.seller_with_token()
    sid = seller["id"]
    active = await _offers(emu, sid, 3, external_id="A-{n}")
    drafts = await _offers(emu, sid, 2, status="INACTIVE")
    ended = await _offers(emu, sid, 1, status="ENDED")

    async def ids(query: str) -> list[str]:
        status, body, _ = await emu.api("GET", f"/sale/offers?{query}", token)
        assert status == 200, body
        return [o["id"] for o in body["offers"]]

    assert await ids(f"offer.id={active[0]}&offer.id={drafts[1]}") == [drafts[1], active[0]]
    assert await ids("external.id=A-1&external.id=A-3") == [active[2], active[0]]
    both = await ids("publication.status=INACTIVE&publication.status=ENDED")
    assert both == [*reversed(ended), *reversed(drafts)]
    assert await ids("") == list(reversed(active + drafts + ended))
    too_many = "&".join(f"external.id=X{i}" for i in range(101))
    assert (await emu.api("GET", f"/sale/offers?{too_many}", token))[0] == 400
    assert (await emu.api("GET", f"/sale/offers?external.id={'x' * 101}", token))[0] == 400
    assert (await emu.api("GET", "/sale/offers?publication.status=GONE", token))[0] == 400


async def test_listing_template_matches_the_shape(emu: Harness) -> None:
    seller = await emu.seller()
    sid = seller["id"]
    await emu.control(
        "POST", f"/sellers/{sid}/offers", {"name": 'Łódź "x"', "image_url": "https://i/a.jpg"}
    )
    await emu.control("POST", f"/sellers/{sid}/offers", {"name": "B", "format": "AUCTION"})
    await emu.control("POST", f"/sellers/{sid}/offers", {"name": "C", "status": "ENDED"})
    market = emu.server.app[EMULATOR_KEY].market
    owner = market.sellers[sid]
    for offer in market.offers.values():
        text = offer_listing_json(market, offer, seller_tail(owner))
        assert json.loads(text) == offer_listing(market, offer, owner)


async def test_checkout_form_filters_and_sort(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(access_token_ttl=10**8)
    seller, token = await emu.seller_with_token()
    offer = await emu.control("POST", f"/sellers/{seller['id']}/offers", {"stock": 20})
    first = await emu.control(
        "POST", "/purchases", {"offer_id": offer["id"], "buyer": {"login": "ala"}}
    )
    await emu.advance(10)
    second = await emu.control(
        "POST",
        "/purchases",
        {"offer_id": offer["id"], "then": "pay", "buyer": {"pickup_point": True}},
    )
    await emu.advance(10)
    await emu.control("POST", f"/checkout-forms/{first['id']}/fill-in")

    async def ids(query: str) -> list[str]:
        status, body, _ = await emu.api("GET", f"/order/checkout-forms?{query}", token)
        assert status == 200, body
        assert body["count"] == len(body["checkoutForms"])
        return [f["id"] for f in body["checkoutForms"]]

    assert await ids("") == [second["id"], first["id"]]
    assert await ids("sort=lineItems.boughtAt") == [first["id"], second["id"]]
    assert await ids("sort=-updatedAt") == [first["id"], second["id"]]
    assert await ids("status=READY_FOR_PROCESSING") == [second["id"]]
    assert await ids("buyer.login=ala") == [first["id"]]
    _, form, _ = await emu.api("GET", f"/order/checkout-forms/{second['id']}", token)
    method = form["delivery"]["method"]["id"]
    assert await ids(f"delivery.method.id={method}") == [second["id"]]
    assert await ids(f"payment.id={form['payment']['id']}") == [second["id"]]
    assert await ids("marketplace.id=allegro-pl") == [second["id"], first["id"]]
    assert await ids("fulfillment.shipmentSummary.lineItemsSent=ALL") == []
    await emu.api(
        "PUT", f"/order/checkout-forms/{second['id']}/fulfillment", token, {"status": "SENT"}
    )
    assert await ids("fulfillment.shipmentSummary.lineItemsSent=ALL") == [second["id"]]
    assert await ids("fulfillment.status=SENT") == [second["id"]]
    assert (await emu.api("GET", "/order/checkout-forms?sort=price", token))[0] == 422
    assert (await emu.api("GET", "/order/checkout-forms?offset=9950&limit=100", token))[0] == 422
    await emu.advance(366 * 86400)  # only the last 12 months are listed
    assert await ids("") == []


async def test_fulfillment_and_invoice_list(emu: Harness) -> None:
    seller, token = await emu.seller_with_token()
    offer = await emu.control("POST", f"/sellers/{seller['id']}/offers", {"stock": 5})
    form = await emu.control("POST", "/purchases", {"offer_id": offer["id"], "then": "pay"})
    path = f"/order/checkout-forms/{form['id']}"
    status, err, _ = await emu.api("PUT", f"{path}/fulfillment", token, {"status": "LOST"})
    assert status == 422 and err["errors"][0]["code"] == "VALIDATION_ERROR"
    status, listing, _ = await emu.api("GET", f"{path}/invoices", token)
    assert status == 200 and listing == {"invoices": [], "hasExternalInvoices": False}
    meta = {"file": {"name": "FV_1.pdf"}, "invoiceNumber": "FV/1/2026"}
    status, created, _ = await emu.api("POST", f"{path}/invoices", token, meta)
    assert status == 201
    status, _, _ = await emu.api(
        "PUT",
        f"{path}/invoices/{created['id']}/file",
        token,
        raw=b"%PDF-1.4 test",
        headers={"Content-Type": "application/pdf"},
    )
    assert status == 200
    _, listing, _ = await emu.api("GET", f"{path}/invoices", token)
    (invoice,) = listing["invoices"]
    assert invoice["id"] == created["id"] and invoice["invoiceNumber"] == "FV/1/2026"
    assert invoice["file"]["name"] == "FV_1.pdf" and invoice["file"]["uploadedAt"]
    assert invoice["file"]["securityVerification"]["status"] == "WAITING"
    await emu.advance(10)
    _, listing, _ = await emu.api("GET", f"{path}/invoices", token)
    assert listing["invoices"][0]["file"]["securityVerification"]["status"] == "ACCEPTED"
