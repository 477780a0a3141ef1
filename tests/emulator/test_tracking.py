"""Carrier parcel tracking as Allegro answers it: ``GET /order/carriers/{carrierId}/tracking``,
histories that advance with the emulator's clock, unknown waybills, and the spec's limits."""

from __future__ import annotations

from typing import Any

from tests.emulator.conftest import Harness

HOUR = 3600


async def _tracked(emu: Harness, *waybills: str) -> tuple[str, str]:
    """A seller's id and token, with a paid order carrying ``waybills`` (INPOST)."""
    seller, token = await emu.seller_with_token()
    offer = await emu.control("POST", f"/sellers/{seller['id']}/offers", {"stock": 5})
    form = await emu.control("POST", "/purchases", {"offer_id": offer["id"], "then": "pay"})
    for waybill in waybills:
        status, _, _ = await emu.api(
            "POST",
            f"/order/checkout-forms/{form['id']}/shipments",
            token,
            {"carrierId": "INPOST", "waybill": waybill},
        )
        assert status == 201
    return seller["id"], token


async def _later(emu: Harness, seller_id: str, seconds: float) -> str:
    """The clock moved on; a fresh token (an access token lasts 12 hours)."""
    await emu.advance(seconds)
    return str((await emu.login(seller_id))["access_token"])


async def _track(emu: Harness, token: str, carrier: str, *waybills: str) -> tuple[int, Any]:
    query = "&".join(f"waybill={w}" for w in waybills)
    status, body, _ = await emu.api("GET", f"/order/carriers/{carrier}/tracking?{query}", token)
    return status, body


def _codes(entry: dict[str, Any]) -> list[str]:
    return [s["code"] for s in entry["trackingDetails"]["statuses"]]


async def test_a_history_advances_with_the_clock_until_delivered(emu: Harness) -> None:
    seller_id, token = await _tracked(emu, "620001", "RET620002")
    status, body = await _track(emu, token, "INPOST", "620001", "RET620002", "NOPE")
    assert status == 200, body
    assert body["carrierId"] == "INPOST"
    parcel, returned, unknown = body["waybills"]
    assert _codes(parcel) == ["PENDING"] and _codes(returned) == ["PENDING"]
    assert unknown == {"waybill": "NOPE"}  # the carrier does not know it: no trackingDetails
    details = parcel["trackingDetails"]
    assert details["createdAt"] == details["updatedAt"] and details["createdAt"].endswith("Z")

    token = await _later(emu, seller_id, 7 * HOUR)
    _, body = await _track(emu, token, "INPOST", "620001")
    assert _codes(body["waybills"][0]) == ["PENDING", "IN_TRANSIT"]
    token = await _later(emu, seller_id, 20 * HOUR)
    _, body = await _track(emu, token, "INPOST", "620001", "RET620002")
    parcel, returned = body["waybills"]
    assert _codes(parcel) == [
        "PENDING",
        "IN_TRANSIT",
        "IN_TRANSIT",
        "RELEASED_FOR_DELIVERY",
        "DELIVERED",
    ]
    statuses = parcel["trackingDetails"]["statuses"]
    assert [s["occurredAt"] for s in statuses] == sorted(s["occurredAt"] for s in statuses)
    assert parcel["trackingDetails"]["updatedAt"] == statuses[-1]["occurredAt"]
    assert _codes(returned) == ["PENDING", "IN_TRANSIT", "NOTICE_LEFT"]
    token = await _later(emu, seller_id, 80 * HOUR)
    _, body = await _track(emu, token, "INPOST", "RET620002")
    assert _codes(body["waybills"][0])[-1] == "RETURNED"
    # another carrier does not know an INPOST waybill
    _, body = await _track(emu, token, "DPD", "620001")
    assert body["waybills"] == [{"waybill": "620001"}]


async def test_a_scripted_history_and_the_limits_of_a_call(emu: Harness) -> None:
    _, token = await _tracked(emu)
    script = {"statuses": [{"code": "IN_TRANSIT", "after_seconds": 0}]}
    await emu.control("PUT", "/tracking/DHL/JJD01", script)
    await emu.control(
        "PUT",
        "/tracking/DHL/JJD02",
        {"statuses": [{"code": "ISSUE", "after_seconds": 0}]},
    )
    status, body = await _track(emu, token, "DHL", "JJD01", "JJD02")
    assert status == 200 and [_codes(e) for e in body["waybills"]] == [["IN_TRANSIT"], ["ISSUE"]]

    status, body = await _track(emu, token, "DHL", *(f"W{n}" for n in range(20)))
    assert status == 200 and len(body["waybills"]) == 20
    status, err = await _track(emu, token, "DHL", *(f"W{n}" for n in range(21)))
    assert status == 400 and err["errors"][0]["path"] == "waybill"
    status, err = await _track(emu, token, "PIGEON", "W1")
    assert status == 400 and err["errors"][0]["path"] == "carrierId"
    status, err, _ = await emu.api("GET", "/order/carriers/DHL/tracking", token)
    assert status == 400 and err["errors"][0]["code"] == "VALIDATION_ERROR"
    assert (await emu.api("GET", "/order/carriers/DHL/tracking?waybill=1", None))[0] == 401
