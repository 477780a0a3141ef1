"""The receiver of a parcel from the order's delivery address (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from allegro_sync.errors import BadInput
from allegro_sync.handlers.parcels import receiver_of, waybills_of

FORM: dict[str, Any] = {
    "buyer": {"email": "jan@allegromail.pl", "phoneNumber": "600700800"},
    "delivery": {
        "address": {
            "firstName": "Jan",
            "lastName": "Kowalski",
            "street": "Długa 2",
            "city": "Poznań",
            "zipCode": "60-001",
        },
        "pickupPoint": {"id": "POZ08A"},
    },
}


def test_the_receiver_is_the_delivery_address_with_its_point() -> None:
    receiver = receiver_of(FORM)
    assert receiver["name"] == "Jan Kowalski" and receiver["point"] == "POZ08A"
    assert receiver["postalCode"] == "60-001" and receiver["phone"] == "600700800"


def test_a_receiver_the_carrier_cannot_reach_is_bad_input() -> None:
    form = {**FORM, "buyer": {"email": ""}}
    with pytest.raises(BadInput, match="no email, phone"):
        receiver_of(form)


def test_every_package_waybill_with_its_own_carrier() -> None:
    details = {
        "carrier": "ALLEGRO",
        "packages": [
            {"waybill": "A1", "transportingInfo": [{"carrierId": "DPD", "carrierWaybill": "A1"}]},
            {"waybill": "A2"},
            {"waybill": "A1"},
            {},
        ],
    }
    assert waybills_of(details) == [("A1", "DPD"), ("A2", "ALLEGRO")]
