"""Allegro's shipment management ("Wysyłam z Allegro") as the emulator serves it: asynchronous
create, cancel and pickup commands, a repeated command id, labels and the protocol as files,
and what Allegro refuses."""

from __future__ import annotations

import json
import uuid
from typing import Any

from allegro_sync.emulator.parcels import BASE
from allegro_sync.emulator.sales import DELIVERY_METHODS
from tests.emulator.conftest import VND, Harness

COURIER = DELIVERY_METHODS[False][0]  # DPD, 31.5 kg
ADDRESS = {
    "name": "Sklep Testowy",
    "street": "Prosta 1",
    "postalCode": "00-001",
    "city": "Warszawa",
    "countryCode": "PL",
    "email": "sklep@example.com",
    "phone": "500600700",
}


def _input(weight: float = 2.5, method: str = COURIER, **extra: Any) -> dict[str, Any]:
    return {
        "deliveryMethodId": method,
        "sender": ADDRESS,
        "receiver": {**ADDRESS, "name": "Jan Kowalski", "email": "jan@allegromail.pl"},
        "packages": [
            {
                "type": "PACKAGE",
                "length": {"value": 30, "unit": "CENTIMETER"},
                "width": {"value": 20, "unit": "CENTIMETER"},
                "height": {"value": 10, "unit": "CENTIMETER"},
                "weight": {"value": weight, "unit": "KILOGRAMS"},
            }
        ],
        "labelFormat": "PDF",
        **extra,
    }


async def _file(emu: Harness, path: str, token: str, body: Any) -> tuple[int, bytes, str]:
    headers = {
        "Accept": f"application/octet-stream, {VND}",
        "Authorization": f"Bearer {token}",
        "Content-Type": VND,
    }
    async with emu.session.post(emu.url(path), data=json.dumps(body), headers=headers) as r:
        return r.status, await r.read(), r.content_type


async def _run(emu: Harness, token: str, kind: str, command_id: str) -> dict[str, Any]:
    """Read a command's status until it ends (the clock moves by a second between reads)."""
    for _ in range(5):
        status, body, _ = await emu.api("GET", f"{BASE}/{kind}/{command_id}", token)
        assert status == 200, body
        if body["status"] != "IN_PROGRESS":
            return dict(body)
        await emu.advance(1)
    raise AssertionError("the command never ended")


async def _parcel(emu: Harness, token: str, **extra: Any) -> str:
    command_id = str(uuid.uuid4())
    status, _, _ = await emu.api(
        "POST",
        f"{BASE}/shipments/create-commands",
        token,
        {"commandId": command_id, "input": _input(**extra)},
    )
    assert status == 200
    done = await _run(emu, token, "shipments/create-commands", command_id)
    assert done["status"] == "SUCCESS", done
    return str(done["shipmentId"])


async def test_a_parcel_is_made_once_per_command_id_with_a_pdf_label(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    command_id = str(uuid.uuid4())
    body = {"commandId": command_id, "input": _input(referenceNumber="ZAM/1")}
    path = f"{BASE}/shipments/create-commands"
    status, answer, headers = await emu.api("POST", path, token, body)
    assert status == 200 and answer["commandId"] == command_id and headers["Retry-After"]
    # the same command id again: refused as Allegro's batch commands refuse it, no second parcel
    status, again, _ = await emu.api("POST", path, token, body)
    assert status == 409 and again["errors"][0]["message"] == "Command id was already used"
    first = await emu.api("GET", f"{path}/{command_id}", token)
    assert first[1]["status"] == "IN_PROGRESS"  # it takes a moment
    done = await _run(emu, token, "shipments/create-commands", command_id)
    assert done["status"] == "SUCCESS"
    parcels = (await emu.control("GET", "/parcels"))["parcels"]
    assert len(parcels) == 1 and parcels[0]["id"] == done["shipmentId"]

    status, details, _ = await emu.api("GET", f"{BASE}/shipments/{done['shipmentId']}", token)
    assert status == 200 and details["carrier"] == "DPD"
    assert details["packages"][0]["waybill"] == parcels[0]["waybills"][0]
    assert details["referenceNumber"] == "ZAM/1"

    status, pdf, ctype = await _file(
        emu, f"{BASE}/label", token, {"shipmentIds": [done["shipmentId"]], "pageSize": "A6"}
    )
    assert status == 200 and ctype == "application/octet-stream"
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    assert parcels[0]["waybills"][0].encode() in pdf


async def test_allegro_refuses_too_heavy_and_unknown_methods(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    path = f"{BASE}/shipments/create-commands"
    status, err, _ = await emu.api("POST", path, token, {"input": _input(method="nope")})
    # the spec declares 400 (no 422) for a bad request here
    assert status == 400 and err["errors"][0]["path"] == "input.deliveryMethodId"
    status, err, _ = await emu.api("POST", path, token, {"input": {"sender": ADDRESS}})
    assert status == 400 and err["errors"][0]["code"] == "VALIDATION_ERROR"  # required fields
    command_id = str(uuid.uuid4())
    status, _, _ = await emu.api(
        "POST", path, token, {"commandId": command_id, "input": _input(weight=40)}
    )
    assert status == 200
    done = await _run(emu, token, "shipments/create-commands", command_id)
    assert done["status"] == "ERROR" and "shipmentId" not in done
    [error] = done["errors"]
    assert error["code"] == "PACKAGE_WEIGHT_LIMIT_EXCEEDED" and "31.5 kg" in error["userMessage"]
    assert (await emu.control("GET", "/parcels"))["parcels"] == []
    status, _, _ = await emu.api("GET", f"{path}/{uuid.uuid4()}", token)
    assert status == 404


async def test_zpl_labels_protocol_pickup_and_cancel(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    zpl = await _parcel(emu, token, labelFormat="ZPL")
    status, text, _ = await _file(emu, f"{BASE}/label", token, {"shipmentIds": [zpl]})
    assert status == 200 and text.startswith(b"^XA") and b"^XZ" in text
    other = await _parcel(emu, token)

    status, pdf, _ = await _file(emu, f"{BASE}/protocol", token, {"shipmentIds": [zpl, other]})
    assert status == 200 and pdf.startswith(b"%PDF") and b"Parcels: 2" in pdf

    status, proposals, _ = await emu.api(
        "POST", f"{BASE}/pickup-proposals", token, {"shipmentIds": [zpl], "address": ADDRESS}
    )
    assert status == 200
    slot = proposals[0]["proposals"][0]["pickupTimes"][0]
    pickup_id = str(uuid.uuid4())
    pickup = {
        "commandId": pickup_id,
        "input": {
            "shipmentIds": [zpl],
            "pickupDateProposalId": slot["date"],
            "pickupTime": slot,
            "address": ADDRESS,
        },
    }
    status, _, _ = await emu.api("POST", f"{BASE}/pickups/create-commands", token, pickup)
    assert status == 200
    done = await _run(emu, token, "pickups/create-commands", pickup_id)
    assert done["status"] == "SUCCESS" and done["pickupId"] and done["carrierPickupId"]

    async def cancel(shipment_id: str) -> dict[str, Any]:
        command_id = str(uuid.uuid4())
        body = {"commandId": command_id, "input": {"shipmentId": shipment_id}}
        status, _, _ = await emu.api("POST", f"{BASE}/shipments/cancel-commands", token, body)
        assert status == 200
        return await _run(emu, token, "shipments/cancel-commands", command_id)

    refused = await cancel(zpl)  # handed to the courier already
    assert refused["status"] == "ERROR"
    assert refused["errors"][0]["code"] == "SHIPMENT_CANNOT_BE_CANCELLED"
    assert (await cancel(other))["status"] == "SUCCESS"
    _, details, _ = await emu.api("GET", f"{BASE}/shipments/{other}", token)
    assert details["canceledDate"]
    status, err, _ = await emu.api(
        "POST", f"{BASE}/label", token, {"shipmentIds": [other]}, headers={"Accept": VND}
    )
    assert status == 400 and "cancelled" in err["errors"][0]["message"]


async def test_the_carrier_tracks_a_parcel_made_with_allegro(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    shipment_id = await _parcel(emu, token)
    status, details, _ = await emu.api("GET", f"{BASE}/shipments/{shipment_id}", token)
    assert status == 200
    waybill = details["packages"][0]["waybill"]
    await emu.advance(3600)
    status, body, _ = await emu.api(
        "GET", f"/order/carriers/{details['carrier']}/tracking?waybill={waybill}", token
    )
    assert status == 200, body
    [entry] = body["waybills"]
    assert entry["waybill"] == waybill and entry["trackingDetails"]["statuses"], entry


async def test_a_receiver_that_cannot_be_reached_or_a_locker_without_a_point_is_refused(
    emu: Harness,
) -> None:
    _, token = await emu.seller_with_token()
    path = f"{BASE}/shipments/create-commands"
    bare = {**ADDRESS, "email": "", "phone": " ", "postalCode": ""}
    status, err, _ = await emu.api("POST", path, token, {"input": {**_input(), "receiver": bare}})
    assert status == 400
    assert [e["path"] for e in err["errors"]] == [
        "input.receiver.email",
        "input.receiver.phone",
        "input.receiver.postalCode",
    ]
    locker = _input(method=DELIVERY_METHODS[True][0])
    status, err, _ = await emu.api("POST", path, token, {"input": locker})
    assert status == 400 and err["errors"][0]["path"] == "input.receiver.point"
    locker["receiver"] = {**locker["receiver"], "point": "POZ08A"}
    status, _, _ = await emu.api("POST", path, token, {"input": locker})
    assert status == 200
    [parcel] = (await emu.control("GET", "/parcels"))["parcels"]
    assert parcel["carrier"] == "INPOST"
