"""The order handler's decision over what it read for a batch of forms (``plan_forms``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from allegro_sync.handlers.orders import FormsRead, PreparedOrder, plan_forms

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
ACCOUNT = {
    "id": 1,
    "auto_create_orders": True,
    "orders_from": None,
    "bind_offers_by_ean": False,
}


def _form(n: int, *lines: str) -> PreparedOrder:
    form_id = uuid.UUID(int=n)
    form = {
        "id": str(form_id),
        "status": "READY_FOR_PROCESSING",
        "payment": {"type": "ONLINE", "paidAmount": {"amount": "1.00"}},
        "lineItems": [{"id": line, "boughtAt": "2026-11-20T09:00:00Z"} for line in lines],
    }
    return PreparedOrder(account_id=1, checkout_form_id=form_id, form=form, read_at=NOW)


def _stored(*forms: PreparedOrder, announced: bool = False) -> dict[uuid.UUID, Any]:
    row = {"announced_at": NOW if announced else None, "cancelled_at": None, "superseded_by": None}
    return {f.checkout_form_id: row for f in forms}


def test_a_merged_form_takes_the_lines_over_and_is_announced() -> None:
    old, merged = _form(1, "l1"), _form(2, "l1", "l2")
    held = {"l1": [{"checkout_form_id": old.checkout_form_id, "announced": False}]}
    plan = plan_forms(FormsRead([merged], {1: ACCOUNT}, _stored(merged), held))
    assert plan.supersede == [([old.checkout_form_id], merged.checkout_form_id)]
    assert [f["id"] for f in plan.take_lines] == [str(merged.checkout_form_id)]
    [(_, decision, elsewhere)] = plan.decided
    assert decision.announce and not elsewhere


def test_a_form_whose_lines_went_with_another_order_is_not_announced_nor_takes_them() -> None:
    sent, again = _form(1, "l1"), _form(2, "l1")
    held = {"l1": [{"checkout_form_id": sent.checkout_form_id, "announced": True}]}
    plan = plan_forms(FormsRead([again], {1: ACCOUNT}, _stored(again), held))
    assert plan.supersede == [] and plan.take_lines == []
    [(_, decision, elsewhere)] = plan.decided
    assert not decision.announce and elsewhere
