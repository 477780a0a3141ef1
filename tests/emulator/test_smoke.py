"""First end-to-end pass: login, /me, an order, an offer command."""

from __future__ import annotations

import asyncio

from .conftest import Harness


async def test_login_me_order_and_command(emu: Harness) -> None:
    seller, token = await emu.seller_with_token()
    status, me, headers = await emu.api("GET", "/me", token)
    assert status == 200 and me["login"] == "shop" and "trace-id" in headers
    offer = await emu.control(
        "POST",
        f"/sellers/{seller['id']}/offers",
        {"name": "X", "ean": "5901234123457", "stock": 3, "price": "9.99"},
    )
    form = await emu.control(
        "POST", "/purchases", {"offer_id": offer["id"], "quantity": 1, "then": "pay"}
    )
    status, events, _ = await emu.api("GET", "/order/events", token)
    assert [e["type"] for e in events["events"]] == ["BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING"]
    status, cf, _ = await emu.api("GET", f"/order/checkout-forms/{form['id']}", token)
    assert status == 200 and cf["status"] == "READY_FOR_PROCESSING"
    status, rep, _ = await emu.api(
        "PUT",
        "/sale/offer-quantity-change-commands/6f1c2a54-1d7e-4c1b-9f0e-0d6c1a2b3c4d",
        token,
        {
            "modification": {"changeType": "FIXED", "value": 7},
            "offerCriteria": [{"type": "CONTAINS_OFFERS", "offers": [{"id": offer["id"]}]}],
        },
    )
    assert status == 201, rep
    await asyncio.sleep(0.01)
    status, rep, _ = await emu.api(
        "GET", "/sale/offer-quantity-change-commands/6f1c2a54-1d7e-4c1b-9f0e-0d6c1a2b3c4d", token
    )
    assert rep["completedAt"] is not None and rep["taskCount"]["success"] == 1


async def test_bulk_purchases_make_that_many_forms_and_events(emu: Harness) -> None:
    seller = await emu.seller("bulk")
    offer = await emu.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "x", "stock": 1000, "price": "1.00"}
    )
    made = await emu.control(
        "POST", "/purchases", {"offer_id": offer["id"], "count": 25, "then": "pay"}
    )
    assert made["count"] == 25 and len(set(made["checkout_form_ids"])) == 25
    form = await emu.control("GET", f"/checkout-forms/{made['checkout_form_ids'][-1]}")
    assert form["status"] == "READY_FOR_PROCESSING"
