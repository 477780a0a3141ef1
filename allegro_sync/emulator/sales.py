"""Buyer and seller actions on checkout forms, each producing its order journal events.

``updatedAt`` moves only on buyer actions (purchase, filling in, payment, cancellation);
``revision`` moves on every change of the form, seller fulfillment updates included.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .buyers import make_buyer
from .models import CheckoutForm, LineItem, Offer
from .offer_ops import set_stock
from .state import Marketplace
from .views import order_event_order

PAYMENT_TYPES = ("ONLINE", "CASH_ON_DELIVERY")
FULFILLMENT_STATUSES = (
    "NEW",
    "PROCESSING",
    "READY_FOR_SHIPMENT",
    "READY_FOR_PICKUP",
    "SENT",
    "PICKED_UP",
    "CANCELLED",
    "SUSPENDED",
    "RETURNED",
)
# RETURNED is only ever set by Allegro itself.
SELLER_FULFILLMENT_STATUSES = tuple(s for s in FULFILLMENT_STATUSES if s != "RETURNED")
DELIVERY_METHODS = {
    False: ("1fa56f79-4b6a-4821-a6f2-ca9c16d5c925", "Allegro Kurier DPD"),
    True: ("2488f7b7-5d1c-4d65-b85c-4cbcf253fd93", "Allegro Paczkomaty InPost"),
}


# The line's tax when a purchase names none: Polish standard VAT on goods.
STANDARD_TAX: dict[str, str | None] = {"rate": "23.00", "subject": "GOODS", "exemption": None}
DISCOUNT_TYPES = (
    "BUNDLE",
    "UNIT_PERCENTAGE_DISCOUNT",
    "WHOLESALE_PRICE_LIST",
    "LARGE_ORDER_DISCOUNT",
    "TURNOVER_DISCOUNT",
    "COUPON",
    "CAMPAIGN",
)


class SaleError(Exception):
    """An action the current state does not allow."""


def _amount(value: Any, what: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise SaleError(f'{what} must be an amount such as "2.50"') from None
    if not amount.is_finite() or amount <= 0:
        raise SaleError(f"{what} must be above 0")
    return amount.quantize(Decimal("0.01"))


def _line_terms(market: Marketplace, offer: Offer, terms: Mapping[str, Any]) -> dict[str, Any]:
    """The LineItem fields of a purchase's ``terms``: ``tax`` ({rate, subject, exemption}, null
    for none; default 23% on goods), ``discount`` ({type, amount}: per unit off the offer's
    price), ``voucher`` ({code, value})."""
    tax = terms.get("tax", STANDARD_TAX)
    if tax is not None and not isinstance(tax, Mapping):
        raise SaleError("tax must be {rate, subject, exemption} or null")
    fields: dict[str, Any] = {
        "price": offer.price,
        "tax": (
            None
            if tax is None
            else {k: None if tax.get(k) is None else str(tax[k]) for k in STANDARD_TAX}
        ),
    }
    discount = terms.get("discount")
    voucher = terms.get("voucher")
    if not all(isinstance(t, Mapping) for t in (discount, voucher) if t is not None):
        raise SaleError("discount and voucher must be objects")
    if discount is not None:
        kind = str(discount.get("type", "COUPON"))
        if kind not in DISCOUNT_TYPES:
            raise SaleError(f"discount.type must be one of {DISCOUNT_TYPES}")
        off = _amount(discount.get("amount"), "discount.amount")
        if off >= offer.price:
            raise SaleError("discount.amount must be below the offer's price")
        fields.update(price=offer.price - off, original_price=offer.price, discounts=[kind])
    if voucher is not None:
        fields["vouchers"] = [
            {
                "code": str(voucher.get("code") or market.ids.code(10).upper()),
                "type": "NOTEBOOKS_FOR_TEACHERS",
                "status": "ACTIVE",
                "value": {
                    "amount": str(_amount(voucher.get("value", "50.00"), "voucher.value")),
                    "currency": offer.currency,
                },
                "externalTransactionId": market.ids.uuid(),
            }
        ]
    return fields


def _bump_revision(form: CheckoutForm) -> None:
    form.revision_counter += 1
    digest = hashlib.sha256(f"{form.id}:{form.revision_counter}".encode()).hexdigest()
    form.revision = digest[:8]


def _emit(
    market: Marketplace, form: CheckoutForm, event_type: str, occurred_at: datetime | None = None
) -> None:
    market.emit_order_event(
        form.seller_id, event_type, {"order": order_event_order(form)}, occurred_at
    )


def masked_email(market: Marketplace, seller_id: str, buyer_id: str) -> str:
    """``<10-char code per buyer-seller pair>+<hex per transaction>@allegromail.pl``."""
    key = (seller_id, buyer_id)
    code = market.mail_codes.get(key)
    if code is None:
        code = market.ids.code(10, "abcdefghijklmnopqrstuvwxyz0123456789")
        market.mail_codes[key] = code
    return f"{code}+{market.ids.hex(9)}@allegromail.pl"


def purchase(
    market: Marketplace,
    offer: Offer,
    quantity: int,
    buyer_profile: dict[str, Any],
    payment_type: str = "ONLINE",
    message_to_seller: str | None = None,
    terms: Mapping[str, Any] | None = None,
) -> CheckoutForm:
    """A buyer buys ``quantity`` of ``offer``: a BOUGHT form, stock taken, BOUGHT event.

    ``terms``: the line's ``tax``, ``discount`` and ``voucher`` (``_line_terms``), ``smart``
    (Allegro Smart; default: when the buyer picks a parcel locker) and ``surcharge`` (an amount
    the buyer pays on top, shown once paid)."""
    if payment_type not in PAYMENT_TYPES:
        raise SaleError(f"payment_type must be one of {PAYMENT_TYPES}")
    if offer.status != "ACTIVE":
        raise SaleError(f"offer {offer.id} is {offer.status}, not ACTIVE")
    if quantity < 1 or quantity > offer.stock:
        raise SaleError(f"cannot buy {quantity} of {offer.stock} available")
    terms = terms or {}
    surcharge = terms.get("surcharge")
    surcharge_amount = None if surcharge is None else _amount(surcharge, "surcharge")
    now = market.now()
    buyer = make_buyer(market.ids, buyer_profile)
    buyer.email = masked_email(market, offer.seller_id, buyer.id)
    item = LineItem(
        id=market.ids.uuid(),
        offer_id=offer.id,
        offer_name=offer.name,
        external_id=offer.external_id,
        quantity=quantity,
        currency=offer.currency,
        bought_at=now,
        **_line_terms(market, offer, terms),
    )
    form = CheckoutForm(
        id=market.ids.uuid(),
        seller_id=offer.seller_id,
        buyer=buyer,
        line_items=[item],
        payment_type=payment_type,
        payment_id=market.ids.uuid(),
        delivery_method=DELIVERY_METHODS[buyer.pickup_point],
        delivery_cost=Decimal("0.00") if buyer.pickup_point else Decimal("14.99"),
        created_at=now,
        updated_at=now,
        message_to_seller=message_to_seller,
        smart=bool(terms.get("smart", buyer.pickup_point)),
        surcharge=surcharge_amount,
        surcharge_id=market.ids.uuid() if surcharge_amount is not None else None,
    )
    _bump_revision(form)
    market.forms[form.id] = form
    market.forms_by_seller[form.seller_id].append(form.id)
    offer.sales.append((now, quantity))
    set_stock(market, offer, offer.stock - quantity)
    _emit(market, form, "BOUGHT")
    return form


def fill_in(market: Marketplace, form: CheckoutForm) -> None:
    """The buyer fills in delivery and payment (repeatable). Cash on delivery is then ready."""
    if form.status not in ("BOUGHT", "FILLED_IN"):
        raise SaleError(f"form is {form.status}")
    form.filled_in = True
    form.status = "FILLED_IN"
    form.updated_at = market.now()
    _bump_revision(form)
    _emit(market, form, "FILLED_IN")
    if form.payment_type == "CASH_ON_DELIVERY":
        _ready(market, form)


def pay(market: Marketplace, form: CheckoutForm) -> None:
    """The buyer pays online (filling the form in first when needed)."""
    if form.status == "READY_FOR_PROCESSING":
        raise SaleError("form is already READY_FOR_PROCESSING")
    if form.status == "CANCELLED":
        raise SaleError("form is CANCELLED")
    if form.payment_type == "CASH_ON_DELIVERY":
        fill_in(market, form)
        return
    switches = market.config.switches
    filled_at = market.now()
    if not form.filled_in or not switches.out_of_order_events:
        if not form.filled_in:
            form.filled_in = True
            form.status = "FILLED_IN"
            form.updated_at = filled_at
            _bump_revision(form)
            _emit(market, form, "FILLED_IN")
        form.paid_at = market.now()
        _ready(market, form)
        return
    # Out of order: the payment is journalled first, then a late FILLED_IN with an
    # earlier occurredAt.
    form.paid_at = market.now()
    _ready(market, form)
    _emit(market, form, "FILLED_IN", filled_at - timedelta(seconds=1))


def _ready(market: Marketplace, form: CheckoutForm) -> None:
    form.status = "READY_FOR_PROCESSING"
    form.updated_at = market.now()
    _bump_revision(form)
    _emit(market, form, "READY_FOR_PROCESSING")
    if market.config.switches.duplicate_ready_event:
        _emit(market, form, "READY_FOR_PROCESSING")


def cancel(market: Marketplace, form: CheckoutForm, *, auto: bool = False) -> None:
    """The buyer (or Allegro, ``auto``) cancels: CANCELLED, stock back, a cancel event."""
    if form.status == "CANCELLED":
        raise SaleError("form is already CANCELLED")
    form.status = "CANCELLED"
    form.updated_at = market.now()
    _bump_revision(form)
    if not form.stock_returned:
        form.stock_returned = True
        for item in form.line_items:
            offer = market.offers.get(item.offer_id)
            if offer is not None and not offer.archived:
                set_stock(market, offer, offer.stock + item.quantity)
    _emit(market, form, "AUTO_CANCELLED" if auto else "BUYER_CANCELLED")


def merge_and_pay(market: Marketplace, forms: list[CheckoutForm]) -> CheckoutForm:
    """A buyer pays several unpaid forms at once: a new form carrying all their line items
    (same line-item ids) supersedes the old ones, which stay unpaid for ever."""
    if len(forms) < 2:
        raise SaleError("merging needs at least two forms")
    first = forms[0]
    for form in forms:
        if form.status not in ("BOUGHT", "FILLED_IN") or form.seller_id != first.seller_id:
            raise SaleError(f"form {form.id} cannot be merged")
    now = market.now()
    merged = CheckoutForm(
        id=market.ids.uuid(),
        seller_id=first.seller_id,
        buyer=first.buyer,
        line_items=[item for form in forms for item in form.line_items],
        payment_type=first.payment_type,
        payment_id=market.ids.uuid(),
        delivery_method=first.delivery_method,
        delivery_cost=first.delivery_cost,
        created_at=now,
        updated_at=now,
    )
    _bump_revision(merged)
    market.forms[merged.id] = merged
    market.forms_by_seller[merged.seller_id].append(merged.id)
    for form in forms:
        form.superseded_by = merged.id
        # The old forms' stock stays taken: it now belongs to the merged form.
        form.stock_returned = True
    _emit(market, merged, "BOUGHT")
    pay(market, merged)
    return merged


def set_fulfillment(market: Marketplace, form: CheckoutForm, status: str) -> None:
    """The seller changes fulfillment.status: new revision, event, ``updatedAt`` untouched."""
    form.fulfillment_status = status
    _bump_revision(form)
    _emit(market, form, "FULFILLMENT_STATUS_CHANGED")
