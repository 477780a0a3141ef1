"""Order journal, checkout forms, fulfillment and invoices (sections 5, 6)."""

from __future__ import annotations

import io
from typing import Any

from .conftest import Harness, MakeHarness


async def _shop(emu: Harness, stock: int = 50) -> tuple[dict[str, Any], str, dict[str, Any]]:
    seller, token = await emu.seller_with_token()
    offer = await emu.control(
        "POST",
        f"/sellers/{seller['id']}/offers",
        {"name": "Kubek", "stock": stock, "price": "19.90", "external_id": "SKU-1"},
    )
    return seller, token, offer


async def test_state_machine_and_updated_at(emu: Harness) -> None:
    _, token, offer = await _shop(emu)
    form = await emu.control(
        "POST",
        "/purchases",
        {
            "offer_id": offer["id"],
            "quantity": 2,
            "buyer": {"company": "ACME Sp. z o.o.", "nip": "5260250274", "country": "PL"},
        },
    )
    _, cf, _ = await emu.api("GET", f"/order/checkout-forms/{form['id']}", token)
    assert cf["status"] == "BOUGHT" and cf["payment"] is None
    assert cf["buyer"]["email"].endswith("@allegromail.pl") and "+" in cf["buyer"]["email"]
    await emu.control("POST", f"/checkout-forms/{form['id']}/pay")
    _, cf, _ = await emu.api("GET", f"/order/checkout-forms/{form['id']}", token)
    assert cf["status"] == "READY_FOR_PROCESSING"
    assert cf["invoice"]["address"]["company"]["taxId"] == "5260250274"
    assert cf["summary"]["totalToPay"]["amount"] == "54.79"
    assert cf["lineItems"][0]["offer"]["external"] == {"id": "SKU-1"}
    updated, revision = cf["updatedAt"], cf["revision"]
    await emu.advance(5)
    status, _, _ = await emu.api(
        "PUT",
        f"/order/checkout-forms/{form['id']}/fulfillment?checkoutForm.revision={revision}",
        token,
        {"status": "PROCESSING"},
    )
    assert status == 204
    _, cf, _ = await emu.api("GET", f"/order/checkout-forms/{form['id']}", token)
    assert cf["updatedAt"] == updated and cf["revision"] != revision
    status, _body, _ = await emu.api(
        "PUT",
        f"/order/checkout-forms/{form['id']}/fulfillment?checkoutForm.revision={revision}",
        token,
        {"status": "SENT"},
    )
    assert status == 409
    status, _, _ = await emu.api(
        "PUT", f"/order/checkout-forms/{form['id']}/fulfillment", token, {"status": "RETURNED"}
    )
    assert status == 422
    assert (await emu.control("GET", "/fulfillments"))["count"] == 1


async def test_cod_cancel_and_foreign_buyers(emu: Harness) -> None:
    _, token, offer = await _shop(emu)
    cod = await emu.control(
        "POST",
        "/purchases",
        {
            "offer_id": offer["id"],
            "payment_type": "CASH_ON_DELIVERY",
            "buyer": {"country": "DE"},
            "then": "fill-in",
        },
    )
    _, cf, _ = await emu.api("GET", f"/order/checkout-forms/{cod['id']}", token)
    assert cf["status"] == "READY_FOR_PROCESSING" and cf["payment"]["type"] == "CASH_ON_DELIVERY"
    assert cf["delivery"]["address"]["countryCode"] == "DE"
    gone = await emu.control(
        "POST",
        "/purchases",
        {"offer_id": offer["id"], "buyer": {"country": "UA"}, "then": "cancel"},
    )
    _, cf, _ = await emu.api("GET", f"/order/checkout-forms/{gone['id']}", token)
    assert cf["status"] == "CANCELLED"
    _, events, _ = await emu.api("GET", "/order/events?type=BUYER_CANCELLED", token)
    assert [e["order"]["checkoutForm"]["id"] for e in events["events"]] == [gone["id"]]


async def test_journal_cursor_limit_and_stats(emu: Harness) -> None:
    _, token, offer = await _shop(emu)
    for _ in range(3):
        await emu.control("POST", "/purchases", {"offer_id": offer["id"], "then": "pay"})
    _, page, _ = await emu.api("GET", "/order/events?limit=4", token)
    ids = [e["id"] for e in page["events"]]
    assert len(ids) == 4 and ids == sorted(ids, key=int)
    _, rest, _ = await emu.api("GET", f"/order/events?from={ids[-1]}", token)
    assert len(rest["events"]) == 5 and rest["events"][0]["id"] not in ids
    _, stats, _ = await emu.api("GET", "/order/event-stats", token)
    assert stats["latestEvent"]["id"] == rest["events"][-1]["id"]
    assert (await emu.api("GET", "/order/events?limit=1001", token))[0] == 422
    assert (await emu.api("GET", "/order/events?limit=0", token))[0] == 422


async def test_realism_switches(make_emulator: MakeHarness) -> None:
    from allegro_sync.emulator.config import Switches

    emu = await make_emulator(
        switches=Switches(duplicate_ready_event=True, out_of_order_events=True)
    )
    _, token, offer = await _shop(emu)
    form = await emu.control("POST", "/purchases", {"offer_id": offer["id"]})
    await emu.control("POST", f"/checkout-forms/{form['id']}/fill-in")
    await emu.control("POST", f"/checkout-forms/{form['id']}/pay")
    _, events, _ = await emu.api("GET", "/order/events", token)
    types = [e["type"] for e in events["events"]]
    assert types.count("READY_FOR_PROCESSING") == 2


async def test_merged_forms(emu: Harness) -> None:
    _, token, offer = await _shop(emu)
    a = await emu.control("POST", "/purchases", {"offer_id": offer["id"]})
    b = await emu.control("POST", "/purchases", {"offer_id": offer["id"]})
    merged = await emu.control("POST", "/checkout-forms/merge", {"ids": [a["id"], b["id"]]})
    _, cf, _ = await emu.api("GET", f"/order/checkout-forms/{merged['checkout_form_id']}", token)
    assert len(cf["lineItems"]) == 2 and cf["status"] == "READY_FOR_PROCESSING"


async def test_list_limits(emu: Harness) -> None:
    _, token, offer = await _shop(emu)
    await emu.control("POST", "/purchases", {"offer_id": offer["id"], "then": "pay"})
    await emu.control("POST", "/purchases", {"offer_id": offer["id"]})
    _, body, _ = await emu.api("GET", "/order/checkout-forms?status=READY_FOR_PROCESSING", token)
    assert body["count"] == 1 and body["totalCount"] == 1
    assert (await emu.api("GET", "/order/checkout-forms?limit=101", token))[0] == 422
    status, body, _ = await emu.api("GET", "/order/checkout-forms?offset=9950&limit=100", token)
    assert status == 422 and body["errors"][0]["code"] == "VALIDATION_ERROR"
    assert (await emu.api("GET", "/order/checkout-forms/not-a-uuid", token))[0] == 422


async def test_invoices(emu: Harness) -> None:
    _, token, offer = await _shop(emu)
    form = await emu.control("POST", "/purchases", {"offer_id": offer["id"], "then": "pay"})
    base = f"/order/checkout-forms/{form['id']}/invoices"
    status, inv, _ = await emu.api(
        "POST", base, token, {"file": {"name": "FV_1.pdf"}, "invoiceNumber": "FV/1"}
    )
    assert status == 201
    pdf = {"Content-Type": "application/pdf"}
    status, _, _ = await emu.api(
        "PUT",
        f"{base}/{inv['id']}/file",
        token,
        raw=io.BytesIO(b"x" * (3 * 1024 * 1024 + 1)),
        headers=pdf,
    )
    assert status == 413
    status, _, _ = await emu.api(
        "PUT", f"{base}/{inv['id']}/file", token, raw=b"%PDF-1.4", headers=pdf
    )
    assert status == 200
    status, _, _ = await emu.api(
        "POST", base, token, {"file": {"name": "FV_2.pdf"}, "invoiceNumber": "FV/2"}
    )
    assert status == 409
    _, listing, _ = await emu.api("GET", base, token)
    assert listing["invoices"][0]["file"]["securityVerification"]["status"] == "WAITING"
    assert (await emu.control("GET", "/invoices"))["invoices"][0]["size"] == 8


async def test_a_lost_event_is_never_journalled_but_the_form_moves_on(emu: Harness) -> None:
    _, token, offer = await _shop(emu)
    lost = await emu.control(
        "POST", "/order-events/lose", {"type": "READY_FOR_PROCESSING", "count": 1}
    )
    assert lost == {"pending": {"READY_FOR_PROCESSING": 1}}
    first = await emu.control("POST", "/purchases", {"offer_id": offer["id"], "then": "pay"})
    second = await emu.control("POST", "/purchases", {"offer_id": offer["id"], "then": "pay"})
    _, events, _ = await emu.api("GET", "/order/events", token)
    ready = [
        e["order"]["checkoutForm"]["id"]
        for e in events["events"]
        if e["type"] == "READY_FOR_PROCESSING"
    ]
    assert ready == [second["id"]]  # the first payment's event was lost, only that one
    _, cf, _ = await emu.api("GET", f"/order/checkout-forms/{first['id']}", token)
    assert cf["status"] == "READY_FOR_PROCESSING"
    _, listing, _ = await emu.api(
        "GET", f"/order/checkout-forms?updatedAt.gte={cf['updatedAt']}&sort=updatedAt", token
    )
    assert first["id"] in [f["id"] for f in listing["checkoutForms"]]
    for refused in ({"type": "PAID"}, {"type": "BOUGHT", "count": -1}):
        async with emu.session.post(emu.url("/__control__/order-events/lose"), json=refused) as r:
            assert r.status == 400, refused


async def test_updated_at_window_and_a_malformed_date(emu: Harness) -> None:
    _, token, offer = await _shop(emu)
    early = await emu.control("POST", "/purchases", {"offer_id": offer["id"], "then": "pay"})
    await emu.advance(60)
    late = await emu.control("POST", "/purchases", {"offer_id": offer["id"], "then": "pay"})
    _, cf, _ = await emu.api("GET", f"/order/checkout-forms/{late['id']}", token)
    _, old, _ = await emu.api("GET", f"/order/checkout-forms/{early['id']}", token)
    query = (
        f"updatedAt.gte={old['updatedAt']}&updatedAt.lte={old['updatedAt']}"
        "&sort=updatedAt&limit=100"
    )
    _, body, _ = await emu.api("GET", f"/order/checkout-forms?{query}", token)
    assert [f["id"] for f in body["checkoutForms"]] == [early["id"]]
    _, body, _ = await emu.api(
        "GET", f"/order/checkout-forms?updatedAt.gte={cf['updatedAt']}&sort=updatedAt", token
    )
    assert [f["id"] for f in body["checkoutForms"]] == [late["id"]]
    status, body, _ = await emu.api("GET", "/order/checkout-forms?updatedAt.gte=yesterday", token)
    assert status == 400
    [error] = body["errors"]
    assert error["code"] == "VALIDATION_ERROR" and error["path"] == "updatedAt.gte"


async def test_sale_terms_show_on_the_form_as_the_spec_has_them(emu: Harness) -> None:
    """Tax, a coupon, a voucher, Smart with a parcel locker, a surcharge; the answer is held to
    the spec by the harness's contract check."""
    _, token, offer = await _shop(emu)
    form = await emu.control(
        "POST",
        "/purchases",
        {
            "offer_id": offer["id"],
            "quantity": 2,
            "buyer": {"pickup_point": True},
            "discount": {"type": "CAMPAIGN", "amount": "1.90"},
            "voucher": {"code": "ABC123", "value": "10.00"},
            "surcharge": "3.00",
            "then": "pay",
        },
    )
    _, cf, _ = await emu.api("GET", f"/order/checkout-forms/{form['id']}", token)
    [item] = cf["lineItems"]
    assert item["tax"] == {"rate": "23.00", "subject": "GOODS", "exemption": None}
    assert item["price"]["amount"] == "18.00" and item["originalPrice"]["amount"] == "19.90"
    assert item["discounts"] == [{"type": "CAMPAIGN"}]
    assert item["vouchers"][0]["code"] == "ABC123"
    assert item["vouchers"][0]["value"] == {"amount": "10.00", "currency": "PLN"}
    delivery = cf["delivery"]
    assert delivery["smart"] is True and delivery["pickupPoint"]["id"]
    assert delivery["time"]["from"] < delivery["time"]["to"]
    assert (
        set(delivery["time"]["dispatch"]) == {"from", "to"} and "guaranteed" not in delivery["time"]
    )
    assert cf["summary"]["totalToPay"]["amount"] == "36.00"  # the locker costs nothing
    [surcharge] = cf["surcharges"]
    assert surcharge["paidAmount"] == {"amount": "3.00", "currency": "PLN"}

    # no tax named: none on the line; a courier without Smart
    bare = await emu.control(
        "POST", "/purchases", {"offer_id": offer["id"], "tax": None, "then": "pay"}
    )
    _, cf, _ = await emu.api("GET", f"/order/checkout-forms/{bare['id']}", token)
    assert cf["lineItems"][0]["tax"] is None and cf["delivery"]["smart"] is False
    assert cf["surcharges"] == [] and cf["lineItems"][0]["vouchers"] == []

    async with emu.session.post(
        emu.url("/__control__/purchases"),
        json={"offer_id": offer["id"], "discount": {"amount": "19.90"}},
    ) as r:
        assert r.status == 409 and "below the offer's price" in (await r.json())["error"]
