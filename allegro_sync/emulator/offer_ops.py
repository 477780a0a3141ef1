"""Offer lifecycle: creation, stock and price changes, ending, reviving, with journal events."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .catalog import DEFAULT_CATEGORY, seller_settings
from .models import Offer, Seller
from .state import ARCHIVE_AFTER, DRAFT_LIFETIME, Marketplace

FORMATS = ("BUY_NOW", "AUCTION", "ADVERTISEMENT")
STATUSES = ("INACTIVE", "ACTIVATING", "ACTIVE", "ENDED")
LIVE = ("ACTIVE", "ACTIVATING")


class OfferRuleError(Exception):
    """A change the marketplace refuses; ``code`` goes into the task report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def create_seller(
    market: Marketplace,
    login: str,
    *,
    sandbox: bool | None = None,
    extra_emails: list[str] | None = None,
    company_name: str | None = None,
    tax_id: str | None = None,
) -> Seller:
    """Register a seller account with default after-sales conditions and shipping rates."""
    if login in market.sellers_by_login:
        raise ValueError(f"login {login!r} already exists")
    settings = seller_settings(market.ids)
    seller = Seller(
        id=market.ids.user_id(),
        login=login,
        sandbox=market.config.sandbox if sandbox is None else sandbox,
        first_name="Jan",
        last_name="Sprzedawca",
        email=f"{login}@example.com",
        company_name=company_name,
        tax_id=tax_id,
        extra_emails=list(extra_emails or []),
        created_at=market.now(),
        return_policies=settings["return_policies"],
        implied_warranties=settings["implied_warranties"],
        warranties=settings["warranties"],
        shipping_rates=settings["shipping_rates"],
    )
    market.sellers[seller.id] = seller
    market.sellers_by_login[login] = seller
    market.offers_by_seller[seller.id] = []
    market.forms_by_seller[seller.id] = []
    return seller


def create_offer(
    market: Marketplace,
    seller: Seller,
    *,
    name: str,
    format: str = "BUY_NOW",
    stock: int = 1,
    price: Decimal = Decimal("10.00"),
    currency: str = "PLN",
    image_url: str | None = None,
    external_id: str | None = None,
    ean: str | None = None,
    status: str = "ACTIVE",
    category_id: str = DEFAULT_CATEGORY,
    ended_days_ago: float | None = None,
) -> Offer:
    """Create an offer directly (control API and demo). ACTIVE offers emit OFFER_ACTIVATED."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    now = market.now()
    offer = Offer(
        id=market.ids.offer_id(),
        seller_id=seller.id,
        name=name,
        format=format,
        status=status,
        stock=stock,
        price=price,
        currency=currency,
        image_url=image_url,
        external_id=external_id,
        ean=ean,
        category_id=category_id,
        created_at=now,
        updated_at=now,
    )
    market.offers[offer.id] = offer
    market.offers_by_seller[seller.id].append(offer.id)
    if status == "ACTIVE":
        offer.started_at = now
        market.emit_offer_event(offer, "OFFER_ACTIVATED", {})
    elif status == "ENDED":
        offer.ended_at = now - timedelta(days=ended_days_ago or 0)
        offer.started_at = offer.ended_at - timedelta(days=1)
        offer.ended_by = "USER"
        market.note_ended(offer)
    elif status == "INACTIVE":
        watch_draft(market, offer)
    return offer


def watch_draft(market: Marketplace, offer: Offer) -> None:
    """Delete a draft (404) once it has gone 60 days without an edit or activation."""

    def check() -> None:
        if offer.archived or offer.status != "INACTIVE":
            return
        due = offer.updated_at + DRAFT_LIFETIME
        if due <= market.now():
            market.mark_gone(offer)
        else:  # edited since: look again 60 days after the last edit
            market.timers.at(due.timestamp(), check)

    market.timers.at((offer.updated_at + DRAFT_LIFETIME).timestamp(), check)


def end_offer(market: Marketplace, offer: Offer, ended_by: str = "USER") -> None:
    """ACTIVE/ACTIVATING -> ENDED, with OFFER_ENDED while the offer is still live."""
    if offer.status == "ENDED":
        raise OfferRuleError("OFFER_ALREADY_ENDED", "The offer has already ended.")
    if offer.status in LIVE:
        market.emit_offer_event(offer, "OFFER_ENDED", {"publication": {"endedBy": ended_by}})
    now = market.now()
    offer.status = "ENDED"
    offer.ended_at = now
    offer.ended_by = ended_by
    offer.updated_at = now
    market.note_ended(offer)


def activate_offer(market: Marketplace, offer: Offer) -> None:
    """Publish a draft or revive an ended Buy Now offer under the same id.

    Auctions and adverts cannot be resumed; an offer needs stock to be activated; offers
    ended more than 60 days ago are archived (callers see them as not found).
    """
    _check_activatable(market, offer)
    if offer.status == "ACTIVE":
        return
    now = market.now()
    offer.status = "ACTIVE"
    offer.started_at = now
    offer.ended_at = None
    offer.ended_by = None
    offer.updated_at = now
    market.emit_offer_event(offer, "OFFER_ACTIVATED", {})


def schedule_activation(market: Marketplace, offer: Offer, when: datetime) -> None:
    """ACTIVATE with ``scheduledFor``: ACTIVATING now, ACTIVE (OFFER_ACTIVATED) once the
    clock passes ``when``. Checks run now, as the task report is written now."""
    _check_activatable(market, offer)
    if offer.status == "ACTIVE":
        return
    offer.status = "ACTIVATING"
    offer.starting_at = when
    offer.ended_at = None
    offer.ended_by = None
    offer.updated_at = market.now()

    def publish() -> None:
        if offer.archived or offer.status != "ACTIVATING" or offer.starting_at != when:
            return  # ended or rescheduled meanwhile
        now = market.now()
        offer.status = "ACTIVE"
        offer.started_at = now
        offer.updated_at = now
        market.emit_offer_event(offer, "OFFER_ACTIVATED", {})

    market.timers.at(when.timestamp(), publish)


def _check_activatable(market: Marketplace, offer: Offer) -> None:
    if offer.archived or (
        offer.status == "ENDED"
        and offer.ended_at is not None
        and market.now() - offer.ended_at > ARCHIVE_AFTER
    ):
        raise OfferRuleError("OfferNotFoundException", f"Offer {offer.id} not found.")
    if offer.status in LIVE:
        return
    if offer.status == "ENDED" and offer.format != "BUY_NOW":
        raise OfferRuleError(
            "IllegalOfferUpdateException.IllegalEndedOfferUpdate",
            "Only Buy Now offers can be resumed; list a new offer instead.",
        )
    if offer.stock < 1:
        raise OfferRuleError(
            "PublicationValidationException.IncorrectStock",
            "An offer can be activated only with stock greater than 0.",
        )


def set_stock(
    market: Marketplace, offer: Offer, stock: int, *, end_when_empty: bool = True
) -> None:
    """Change the available stock; selling out a live offer ends it (EMPTY_STOCK).

    A purchase and a seller's change produce the same OFFER_STOCK_CHANGED event.
    ``end_when_empty=False`` leaves the ending to the caller (an asynchronous PATCH).
    """
    if stock == offer.stock:
        return
    offer.stock = stock
    offer.updated_at = market.now()
    if offer.status in LIVE:
        market.emit_offer_event(offer, "OFFER_STOCK_CHANGED", {})
        if stock <= 0 and end_when_empty:
            end_offer(market, offer, "EMPTY_STOCK")


def set_price(market: Marketplace, offer: Offer, price: Decimal) -> None:
    """Change the Buy Now price."""
    if price == offer.price:
        return
    offer.price = price
    offer.updated_at = market.now()
    if offer.status in LIVE:
        market.emit_offer_event(
            offer,
            "OFFER_PRICE_CHANGED",
            {"marketplaces": [{"id": "allegro-pl", "changeType": "MANUAL"}]},
        )


DETAIL_FIELDS = frozenset({"description", "images", "parameters", "product_parameters"})


def change_offer_fields(market: Marketplace, offer: Offer, changes: dict[str, Any]) -> None:
    """Name / external id / EAN / image edits, and the product data kept in ``details``
    (description, images, product parameters): one OFFER_CHANGED event for a live offer."""
    for key, value in changes.items():
        if key in DETAIL_FIELDS:
            offer.details[key] = value
        else:
            setattr(offer, key, value)
    offer.updated_at = market.now()
    if changes and offer.status in LIVE:
        market.emit_offer_event(offer, "OFFER_CHANGED", {})


def sold_last_30_days(market: Marketplace, offer: Offer) -> int:
    """``stock.sold``: units sold in the last 30 days."""
    since = market.now() - timedelta(days=30)
    return sum(qty for at, qty in offer.sales if at >= since)
