"""Fast JSON for ``GET /sale/offers`` entries.

A 1000-offer page is about 1 MB of JSON; building a dict per offer and encoding it costs
more than the rest of the request. Here each entry is written straight from a template,
escaping only the free-text fields. :func:`views.offer_listing` stays the readable
definition of the shape; a test checks both produce the same document.
"""

from __future__ import annotations

import json
from decimal import Decimal

from .clock import iso
from .models import Offer, Seller
from .offer_ops import sold_last_30_days
from .state import Marketplace

CENT = Decimal("0.01")
_escape = json.encoder.encode_basestring  # JSON string literal, non-ASCII kept as is


def _text(value: str | None) -> str:
    return "null" if value is None else _escape(value)


def _money(amount: Decimal, currency: str) -> str:
    return f'{{"amount": "{amount.quantize(CENT)}", "currency": {_escape(currency)}}}'


def seller_tail(seller: Seller) -> tuple[str, str]:
    """The seller-dependent parts of every entry (after-sales ids, shipping rates)."""
    after_sales = (
        '{"impliedWarranty": {"id": ' + _escape(seller.implied_warranties[0]["id"]) + "}, "
        '"returnPolicy": {"id": ' + _escape(seller.return_policies[0]["id"]) + "}, "
        '"warranty": null}'
    )
    delivery = '{"shippingRates": {"id": ' + _escape(seller.shipping_rates[0]["id"]) + "}}"
    return after_sales, delivery


def offer_listing_json(market: Marketplace, offer: Offer, tail: tuple[str, str]) -> str:
    """One listing entry, identical to ``dumps(views.offer_listing(...))``."""
    live = offer.status in ("ACTIVE", "ACTIVATING")
    auction = offer.format == "AUCTION"
    price = _money(offer.price, offer.currency)
    image = "null" if not offer.image_url else '{"url": ' + _escape(offer.image_url) + "}"
    external = "null" if not offer.external_id else '{"id": ' + _escape(offer.external_id) + "}"
    sold = sold_last_30_days(market, offer) if offer.sales else 0
    ended = None if live else iso(offer.ended_at)
    after_sales, delivery = tail
    return (
        f'{{"id": {_escape(offer.id)}, "name": {_escape(offer.name)}, '
        f'"category": {{"id": {_escape(offer.category_id)}}}, "primaryImage": {image}, '
        f'"sellingMode": {{"format": {_escape(offer.format)}, "price": {price}, '
        f'"minimalPrice": null, "startingPrice": {price if auction else "null"}}}, '
        f'"saleInfo": {{"currentPrice": {price if auction else "null"}, '
        f'"biddersCount": {0 if auction else "null"}}}, '
        f'"stock": {{"available": {offer.stock}, "sold": {sold}}}, '
        '"stats": {"watchersCount": 0, "visitsCount": 0}, '
        f'"publication": {{"status": {_escape(offer.status)}, '
        f'"startingAt": {_text(iso(offer.starting_at))}, '
        f'"startedAt": {_text(iso(offer.started_at))}, "endingAt": null, '
        f'"endedAt": {_text(ended)}, '
        '"marketplaces": {"base": {"id": "allegro-pl"}, "additional": []}}, '
        f'"afterSalesServices": {after_sales}, "additionalServices": null, '
        f'"external": {external}, "delivery": {delivery}, '
        '"b2b": {"buyableOnlyByBusiness": false}, "fundraisingCampaign": null, '
        '"additionalMarketplaces": {}}'
    )
