"""Tracking numbers on orders as Allegro takes them: the carrier list, POST and GET
``/order/checkout-forms/{id}/shipments``, and Allegro's refusals."""

from __future__ import annotations

import uuid
from typing import Any

from tests.emulator.conftest import Harness


async def _order(emu: Harness) -> tuple[str, str, dict[str, Any]]:
    """A seller's token, the path of a paid order, and the order."""
    seller, token = await emu.seller_with_token()
    offer = await emu.control("POST", f"/sellers/{seller['id']}/offers", {"stock": 5})
    form = await emu.control("POST", "/purchases", {"offer_id": offer["id"], "then": "pay"})
    path = f"/order/checkout-forms/{form['id']}"
    _, order, _ = await emu.api("GET", path, token)
    return token, path, order


async def test_the_carrier_list_names_the_big_carriers_and_other(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    status, body, headers = await emu.api("GET", "/order/carriers", token)
    assert status == 200
    ids = {c["id"] for c in body["carriers"]}
    assert {"ALLEGRO", "INPOST", "DPD", "DHL", "UPS", "GLS", "POCZTA_POLSKA", "OTHER"} <= ids
    assert next(c for c in body["carriers"] if c["id"] == "INPOST")["name"] == "InPost"
    assert "max-age" in headers["Cache-Control"]
    assert (await emu.api("GET", "/order/carriers", None))[0] == 401


async def test_a_tracking_number_is_added_and_listed(emu: Harness) -> None:
    token, path, order = await _order(emu)
    status, listing, _ = await emu.api("GET", f"{path}/shipments", token)
    assert status == 200 and listing == {"shipments": []}
    status, created, _ = await emu.api(
        "POST", f"{path}/shipments", token, {"carrierId": "INPOST", "waybill": "6200123456789"}
    )
    assert status == 201, created
    line_ids = [i["id"] for i in order["lineItems"]]
    assert created["waybill"] == "6200123456789" and created["carrierId"] == "INPOST"
    assert [i["id"] for i in created["lineItems"]] == line_ids  # none named: the whole order
    assert created["id"] and created["createdAt"].endswith("Z")
    _, listing, _ = await emu.api("GET", f"{path}/shipments", token)
    assert listing["shipments"] == [created]
    _, form, _ = await emu.api("GET", path, token)
    assert form["fulfillment"]["shipmentSummary"]["lineItemsSent"] == "ALL"
    assert form["fulfillment"]["status"] == "NEW"  # a tracking number sets no status


async def test_other_carrier_needs_a_name_and_line_items_must_be_the_orders(emu: Harness) -> None:
    token, path, order = await _order(emu)
    line_id = order["lineItems"][0]["id"]
    ok = {"carrierId": "OTHER", "carrierName": "Kurier Zenek", "waybill": "ZEN-1"}
    status, created, _ = await emu.api(
        "POST", f"{path}/shipments", token, {**ok, "lineItems": [{"id": line_id}]}
    )
    assert status == 201 and created["carrierName"] == "Kurier Zenek"
    assert created["lineItems"] == [{"id": line_id}]
    status, err, _ = await emu.api(
        "POST", f"{path}/shipments", token, {"carrierId": "OTHER", "waybill": "ZEN-2"}
    )
    assert status == 400 and err["errors"][0]["path"] == "carrierName"
    status, err, _ = await emu.api(
        "POST", f"{path}/shipments", token, {**ok, "lineItems": [{"id": str(uuid.uuid4())}]}
    )
    assert status == 422 and "does not belong" in err["errors"][0]["message"]


async def test_allegro_refusals_and_the_same_waybill_twice(emu: Harness) -> None:
    token, path, _ = await _order(emu)

    async def post(body: dict[str, Any], where: str = path) -> tuple[int, Any]:
        status, answer, _ = await emu.api("POST", f"{where}/shipments", token, body)
        return status, answer

    status, err = await post({"carrierId": "PIGEON", "waybill": "1"})
    assert status == 400 and err["errors"][0]["code"] == "VALIDATION_ERROR"
    assert err["errors"][0]["path"] == "carrierId" and "PIGEON" in err["errors"][0]["message"]
    assert (await post({"carrierId": "DPD", "waybill": ""}))[0] == 400
    assert (await post({"carrierId": "DPD"}))[0] == 400
    assert (await post({"carrierId": "DPD", "waybill": "x" * 65}))[0] == 400
    assert (await post({"carrierId": "DPD", "waybill": "1", "lineItems": "all"}))[0] == 422
    missing = f"/order/checkout-forms/{uuid.uuid4()}"
    assert (await post({"carrierId": "DPD", "waybill": "1"}, missing))[0] == 404
    assert (await post({"carrierId": "DPD", "waybill": "x" * 64}))[0] == 201
    # Allegro takes the same waybill twice: keeping it once is the client's job
    assert (await post({"carrierId": "DPD", "waybill": "x" * 64}))[0] == 201
    _, listing, _ = await emu.api("GET", f"{path}/shipments", token)
    assert len(listing["shipments"]) == 2
    recorded = await emu.control("GET", "/shipments")
    assert recorded["count"] == 2
