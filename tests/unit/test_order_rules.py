"""The order decision (O1): announce once, when paid or cash on delivery, after orders-from."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from allegro_sync.handlers.orders import bought_at, decide_order, order_created_payload

BOUGHT = "2026-11-20T10:00:00.000Z"


def form(
    status: str = "READY_FOR_PROCESSING", payment_type: str = "ONLINE", paid: bool = True
) -> dict[str, Any]:
    return {
        "id": "7c6e5e1e-0000-4000-8000-000000000001",
        "status": status,
        "payment": {
            "type": payment_type,
            "finishedAt": "2026-11-20T10:05:00.000Z" if paid else None,
            "paidAmount": {"amount": "39.98", "currency": "PLN"} if paid else None,
        },
        "lineItems": [
            {"id": "l1", "boughtAt": BOUGHT},
            {"id": "l2", "boughtAt": "2026-11-20T09:59:00.000Z"},
        ],
        "summary": {"totalToPay": {"amount": "39.98", "currency": "PLN"}},
        "delivery": {
            "method": {"name": "Paczkomat"},
            "cost": {"amount": "9.99"},
            "address": {"city": "Poznań"},
        },
        "invoice": {"required": True},
    }


def decide(f: dict[str, Any], **overrides: Any) -> Any:
    options: dict[str, Any] = {
        "auto_create_orders": True,
        "orders_from": None,
        "announced": False,
        "cancelled": False,
        "superseded": False,
        "lines_announced_elsewhere": False,
    }
    options.update(overrides)
    return decide_order(f, **options)


def test_paid_ready_form_is_announced() -> None:
    decision = decide(form())
    assert (decision.announce, decision.cancel) == (True, False)


def test_cash_on_delivery_is_ready_without_payment() -> None:
    assert decide(form(payment_type="CASH_ON_DELIVERY", paid=False)).announce


@pytest.mark.parametrize("status", ["BOUGHT", "FILLED_IN"])
def test_unpaid_forms_wait(status: str) -> None:
    assert not decide(form(status=status, paid=False)).announce


@pytest.mark.parametrize(
    "override",
    [
        {"auto_create_orders": False},
        {"announced": True},
        {"superseded": True},
        {"lines_announced_elsewhere": True},
        {"orders_from": datetime(2026, 11, 21, tzinfo=UTC)},
    ],
)
def test_no_announcement(override: dict[str, Any]) -> None:
    assert not decide(form(), **override).announce


def test_orders_from_compares_the_earliest_line() -> None:
    assert bought_at(form()) == datetime(2026, 11, 20, 9, 59, tzinfo=UTC)
    assert decide(form(), orders_from=datetime(2026, 11, 20, 9, 59, tzinfo=UTC)).announce
    assert not decide(form(), orders_from=datetime(2026, 11, 20, 9, 59, 1, tzinfo=UTC)).announce


def test_cancellation_only_of_announced_orders_and_once() -> None:
    cancelled = form(status="CANCELLED")
    assert decide(cancelled, announced=True).cancel
    assert not decide(cancelled, announced=True, cancelled=True).cancel
    assert not decide(cancelled).cancel
    assert not decide(cancelled).announce


def test_payload_follows_the_contract() -> None:
    account = {"id": 3, "login": "shop"}
    lines = [
        {
            "offer_id": "1",
            "product_id": None,
            "ean": None,
            "name": "Kubek",
            "quantity": 2,
            "unit_price": "19.99",
            "image_url": None,
        },
    ]
    payload = order_created_payload(account, form(), lines, None)
    assert set(payload) >= {
        "checkout_form_id",
        "account_id",
        "account_login",
        "status",
        "bought_at",
        "currency",
        "total",
        "payment",
        "delivery",
        "invoice_required",
        "customer",
        "lines",
    }
    assert payload["payment"] == {
        "type": "ONLINE",
        "paid_at": "2026-11-20T10:05:00.000Z",
        "amount": "39.98",
    }
    assert payload["delivery"]["method"] == "Paczkomat" and payload["delivery"]["cost"] == "9.99"
    assert payload["invoice_required"] is True
    assert payload["total"] == "39.98" and payload["currency"] == "PLN"
    assert payload["lines"][0]["unit_price"] == "19.99"


def test_fields_in_shapes_the_spec_does_not_give_are_null_not_a_failure() -> None:
    """A form whose 2026 fields are missing, null or oddly shaped still gives an order.created:
    nulls for what cannot be read, empty lists for lists."""
    account = {"id": 3, "login": "shop"}
    odd = form()
    odd["lineItems"][0].update(tax="23%", discounts=None, vouchers=[None, "x"], price={})
    odd.update(
        invoice={"required": True, "address": "ul. Długa 1"},
        surcharges=None,
        summary={"totalToPay": {"amount": "39.98"}},
        delivery={
            "method": {"id": None},
            "time": [],
            "smart": "yes",
            "calculatedNumberOfPackages": "2",
        },
        buyer={"phoneNumber": None},
    )
    lines = [
        {
            "id": odd["lineItems"][0]["id"],
            "offer_id": "1",
            "product_id": None,
            "ean": None,
            "name": "Kubek",
            "quantity": 2,
            "unit_price": "19.99",
            "image_url": None,
        },
    ]
    payload = order_created_payload(account, odd, lines, None)
    [line] = payload["lines"]
    assert line["tax"] is None and line["paid"] is None
    assert line["discounts"] == [] and line["vouchers"] == []
    assert payload["invoice"] == {"required": True, "address": None, "due_date": None}
    assert payload["surcharges"] == [] and payload["total_to_pay"] is None
    delivery = payload["delivery"]
    assert [delivery[k] for k in ("method_id", "smart", "time", "number_of_packages")] == [None] * 4
    assert payload["phone_number"] is None
