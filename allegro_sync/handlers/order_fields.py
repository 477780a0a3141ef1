"""What an ERP needs to book an order, read from the checkout form (issue 13 item 4).

The ``order.created`` fields added in 2026, each taken from the field the official spec names
(``CheckoutForm``, ``CheckoutFormLineItem``, ``CheckoutFormDeliveryReference``,
``CheckoutFormInvoiceInfo``, ``CheckoutFormSummary``): a field the form lacks (or gives as null,
or in a shape it should not have) is null, a list it lacks is empty; reading never fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from allegro_sync.handlers.tax_ids import TAX_ID_TYPES, tax_id_of


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _text(value: Any) -> str | None:
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def money(value: Any) -> dict[str, str] | None:
    """``{amount, currency}`` of an Allegro price, or None when either part is missing."""
    price = _obj(value)
    amount, currency = _text(price.get("amount")), _text(price.get("currency"))
    if amount is None or currency is None:
        return None
    return {"amount": amount, "currency": currency}


def _times(amount: str | None, quantity: Any) -> str | None:
    """The line's paid total: unit price x quantity, to the cent as Allegro counts money."""
    if amount is None:
        return None
    try:
        total = Decimal(amount) * int(quantity)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return str(total.quantize(Decimal("0.01")))


def line_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    """A line item's fields beyond the stored line: its id, the price before the line's
    discounts, what the line cost (unit price x quantity), tax, discounts, vouchers."""
    price = money(item.get("price"))
    original = money(item.get("originalPrice"))
    tax = item.get("tax")
    return {
        "line_item_id": _text(item.get("id")),
        "currency": price["currency"] if price else None,
        "original_unit_price": original["amount"] if original else None,
        "paid": _times(price["amount"] if price else None, item.get("quantity")),
        "tax": (
            {
                "rate": _text(tax.get("rate")),
                "subject": _text(tax.get("subject")),
                "exemption": _text(tax.get("exemption")),
            }
            if isinstance(tax, Mapping)
            else None
        ),
        "discounts": [{"type": _text(d.get("type"))} for d in _list(item.get("discounts"))],
        "vouchers": [
            {
                "code": _text(v.get("code")),
                "type": _text(v.get("type")),
                "status": _text(v.get("status")),
                "value": money(v.get("value")),
                "external_transaction_id": _text(v.get("externalTransactionId")),
            }
            for v in _list(item.get("vouchers"))
        ],
    }


def lines_by_id(form: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The form's line items by id."""
    return {str(i.get("id")): i for i in _list(form.get("lineItems"))}


def delivery_fields(delivery: Mapping[str, Any]) -> dict[str, Any]:
    """The delivery's fields beyond method name, cost, address and pickup point: the method's id
    and name, the Smart flag, the delivery and dispatch times, the number of packages."""
    method = _obj(delivery.get("method"))
    time = delivery.get("time")
    smart = delivery.get("smart")
    packages = delivery.get("calculatedNumberOfPackages")
    dispatch = _obj(time).get("dispatch")
    return {
        "method_id": _text(method.get("id")),
        "method_name": _text(method.get("name")),
        "smart": smart if isinstance(smart, bool) else None,
        # time.guaranteed is deprecated in favour of time.from / time.to: not read
        "time": (
            {
                "from": _text(time.get("from")),
                "to": _text(time.get("to")),
                "dispatch": (
                    {"from": _text(dispatch.get("from")), "to": _text(dispatch.get("to"))}
                    if isinstance(dispatch, Mapping)
                    else None
                ),
            }
            if isinstance(time, Mapping)
            else None
        ),
        "number_of_packages": (
            packages if isinstance(packages, int) and not isinstance(packages, bool) else None
        ),
    }


def _tax_ids(company: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every typed id of ``company.ids[]`` whose type is in the spec's enum, in Allegro's order
    and as Allegro gives it (what goes on the invoice); none: the deprecated ``taxId``, cleaned
    of labels such as "NIP: " and typed, as the customer card reads it."""
    typed = []
    for entry in _list(company.get("ids")):
        kind = str(entry.get("type") or "").strip().upper()
        value = str(entry.get("value") or "").strip()
        if kind in TAX_ID_TYPES and value:
            typed.append({"type": kind, "value": value})
    if typed:
        return typed
    fallback = tax_id_of({"taxId": company.get("taxId")})
    return [fallback.as_json()] if fallback is not None else []


def invoice_block(invoice: Any) -> dict[str, Any] | None:
    """``invoice`` for the ERP: required, the address with the company (name, typed tax ids,
    VAT payer status) or the natural person, the due date; None when the form has none."""
    if not isinstance(invoice, Mapping):
        return None
    address = invoice.get("address")
    block: dict[str, Any] | None = None
    if isinstance(address, Mapping):
        company = address.get("company")
        person = address.get("naturalPerson")
        block = {
            "street": _text(address.get("street")),
            "city": _text(address.get("city")),
            "zip_code": _text(address.get("zipCode")),
            "country_code": _text(address.get("countryCode")),
            "company": (
                {
                    "name": _text(company.get("name")),
                    "tax_ids": _tax_ids(company),
                    "vat_payer_status": _text(company.get("vatPayerStatus")),
                }
                if isinstance(company, Mapping)
                else None
            ),
            "natural_person": (
                {
                    "first_name": _text(person.get("firstName")),
                    "last_name": _text(person.get("lastName")),
                }
                if isinstance(person, Mapping)
                else None
            ),
        }
    return {
        "required": invoice.get("required") is True,
        "address": block,
        "due_date": _text(invoice.get("dueDate")),
    }


def surcharges(form: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The buyer's additional payments (``surcharges[]``, each shaped as a payment)."""
    found = []
    for payment in _list(form.get("surcharges")):
        paid = money(payment.get("paidAmount"))
        found.append(
            {
                "id": _text(payment.get("id")),
                "type": _text(payment.get("type")),
                "provider": _text(payment.get("provider")),
                "paid_at": _text(payment.get("finishedAt")),
                "amount": paid["amount"] if paid else None,
                "currency": paid["currency"] if paid else None,
            }
        )
    return found


def phone_number(form: Mapping[str, Any]) -> str | None:
    """The buyer's phone number; without one, the delivery address's (the receiver's)."""
    buyer = _text(_obj(form.get("buyer")).get("phoneNumber"))
    if buyer:
        return buyer
    return _text(_obj(_obj(form.get("delivery")).get("address")).get("phoneNumber")) or None


def form_fields(form: Mapping[str, Any]) -> dict[str, Any]:
    """The form-level fields added to ``order.created`` in 2026."""
    return {
        "total_to_pay": money(_obj(form.get("summary")).get("totalToPay")),
        "message_to_seller": _text(form.get("messageToSeller")) or None,
        "invoice": invoice_block(form.get("invoice")),
        "phone_number": phone_number(form),
        "surcharges": surcharges(form),
    }
