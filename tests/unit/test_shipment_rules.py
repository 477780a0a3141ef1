"""The decisions of ``shipment.added``: carrier, lines, the request body, whether the order
becomes SENT; and the carrier cache (one read a day, again on an unknown id at most every ten
minutes). The end-to-end runs are in ``tests/e2e/test_shipments.py``."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from allegro_sync.adapters.allegro.carriers import CarrierCatalog
from allegro_sync.contract import ShipmentAdded, ShipmentLine
from allegro_sync.errors import BadInput
from allegro_sync.handlers.parcels import RetryBounds, exhausted, give_up_reason
from allegro_sync.handlers.shipments import (
    SentStepBounds,
    allegro_body,
    carrier_of,
    check_lines,
    sent_step_exhausted,
    should_mark_sent,
)


def _message(**fields: Any) -> ShipmentAdded:
    body = {"checkout_form_id": str(uuid.uuid4()), "carrier_id": "dpd", "waybill": "W1", **fields}
    return ShipmentAdded.model_validate(body)


def test_carrier_ids_are_upper_case_and_other_needs_a_name() -> None:
    assert carrier_of(_message(carrier_name="ignored")) == ("DPD", None)
    assert carrier_of(_message(carrier_id="other", carrier_name="Zenek")) == ("OTHER", "Zenek")
    with pytest.raises(BadInput, match="carrier_name"):
        carrier_of(_message(carrier_id="OTHER"))


def test_lines_must_be_the_orders_once_each_and_within_the_quantity() -> None:
    ordered = {"a": 2, "b": 1}
    assert check_lines(None, ordered) is None
    assert check_lines([], ordered) is None  # empty: the whole order, as Allegro reads it
    lines = [ShipmentLine(line_item_id="a", quantity=2)]
    assert check_lines(lines, ordered) == lines
    with pytest.raises(BadInput, match="not on the order"):
        check_lines([ShipmentLine(line_item_id="c", quantity=1)], ordered)
    with pytest.raises(BadInput, match="more than the 1 bought"):
        check_lines([ShipmentLine(line_item_id="b", quantity=2)], ordered)
    with pytest.raises(BadInput, match="named twice"):
        check_lines([ShipmentLine(line_item_id="a", quantity=1)] * 2, ordered)


def test_the_body_is_the_specs_and_names_lines_only_when_given() -> None:
    assert allegro_body("DPD", "W1", None, None) == {"carrierId": "DPD", "waybill": "W1"}
    lines = [ShipmentLine(line_item_id="a", quantity=1)]
    assert allegro_body("OTHER", "W1", "Zenek", lines) == {
        "carrierId": "OTHER",
        "waybill": "W1",
        "carrierName": "Zenek",
        "lineItems": [{"id": "a"}],
    }


@pytest.mark.parametrize(
    ("status", "marks"),
    [
        ("NEW", True),
        ("PROCESSING", True),
        ("READY_FOR_SHIPMENT", True),
        ("READY_FOR_PICKUP", True),
        (None, True),
        ("SENT", False),
        ("PICKED_UP", False),
        ("CANCELLED", False),
        ("SUSPENDED", False),
        ("RETURNED", False),
    ],
)
def test_a_tracking_number_never_moves_an_order_backwards(status: str | None, marks: bool) -> None:
    assert should_mark_sent(True, status) is marks
    assert should_mark_sent(False, status) is False


class _Allegro:
    """Counts carrier-list reads (the real client is exercised end to end)."""

    def __init__(self) -> None:
        self.reads = 0
        self.ids = ["DPD", "OTHER"]

    async def get(self, account_id: int, path: str, *, action: str) -> dict[str, Any]:
        assert path == "/order/carriers"
        self.reads += 1
        return {"carriers": [{"id": i} for i in self.ids]}


async def test_the_carrier_list_is_read_once_a_day_and_again_for_a_new_id() -> None:
    allegro, now = _Allegro(), [0.0]
    catalog = CarrierCatalog(allegro, clock=lambda: now[0])  # type: ignore[arg-type]
    assert await catalog.knows(1, "DPD") and await catalog.knows(1, "OTHER")
    assert not await catalog.knows(1, "PIGEON")  # a fresh list: not read again
    assert allegro.reads == 1
    allegro.ids.append("PIGEON")
    now[0] = 601.0
    assert await catalog.knows(1, "PIGEON")  # an unknown id reads a list ten minutes old
    assert allegro.reads == 2
    assert await catalog.knows(2, "DPD")  # per account (sandbox and production differ)
    now[0] = 601.0 + 86400
    assert await catalog.knows(1, "DPD")
    assert allegro.reads == 4


def test_a_parcel_step_is_given_up_after_its_failures_or_its_time() -> None:
    bounds = RetryBounds(max_failures=3, give_up_after=600.0)
    young = {"step_seconds": 10.0}
    assert not exhausted(young, 2, bounds)
    assert exhausted(young, 3, bounds)
    assert exhausted({"step_seconds": 600.0}, 0, bounds)
    row = {
        "status": "creating",
        "step_seconds": 120.0,
        "command_id": "c-1",
        "cancel_command_id": None,
    }
    reason = give_up_reason(row, 3, "AllegroUnavailable: 503")
    assert "3 failed attempts over 2 min" in reason and "503" in reason and "c-1" in reason
    assert "had not ended" in give_up_reason(row, 0, None)
    cancel = {**row, "status": "cancelling", "cancel_command_id": "k-9"}
    assert "cancel was not carried out (command k-9)" in give_up_reason(cancel, 3, "x")


def test_a_sent_step_is_given_up_after_its_attempts_or_its_time() -> None:
    bounds = SentStepBounds(max_attempts=5, give_up_after=60.0)
    assert not sent_step_exhausted(4, 59.0, bounds)
    assert sent_step_exhausted(5, 0.0, bounds)
    assert sent_step_exhausted(1, 60.0, bounds)
