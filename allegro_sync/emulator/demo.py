"""The demo marketplace: a seller with offers and a steady stream of purchases."""

from __future__ import annotations

import asyncio
import logging
import random
from decimal import Decimal
from typing import Any

from .buyers import random_profile
from .context import Emulator
from .models import Seller
from .offer_ops import create_offer, create_seller
from .sales import SaleError, cancel, fill_in, merge_and_pay, pay, purchase

log = logging.getLogger(__name__)

DEMO_OFFERS = (
    ("Smartfon Nokia 3310 odnowiony", "5901234123457", 25, "199.00"),
    ("Ładowarka USB-C 65W", "5906789012344", 120, "79.99"),
    ("Słuchawki bezprzewodowe ANC", "4006381333931", 40, "349.00"),
    ("Wiertarka udarowa 800W", "5901234567891", 8, "259.90"),
    ("Żarówka LED E27 10W (4 szt.)", "5907623456780", 300, "39.99"),
)


def seed_demo(emulator: Emulator) -> Seller:
    """Create ``demo-shop`` with a handful of offers that carry EANs and images."""
    market = emulator.market
    seller = create_seller(market, "demo-shop", extra_emails=["biuro@demo-shop.example"])
    for n, (name, ean, stock, price) in enumerate(DEMO_OFFERS, start=1):
        create_offer(
            market,
            seller,
            name=name,
            ean=ean,
            stock=stock,
            price=Decimal(price),
            image_url=f"https://a.allegroimg.com/original/demo/{n}.jpg",
            external_id=f"SKU-{n:04d}",
        )
    create_offer(
        market,
        seller,
        name="Aukcja: stary aparat",
        format="AUCTION",
        stock=1,
        price=Decimal("50.00"),
        external_id="SKU-AUCTION",
    )
    emulator.authorize_as = seller.id
    return seller


def _random_terms(rng: random.Random, price: Decimal) -> dict[str, Any]:
    """Sale terms for the demo: 23% VAT on most lines, 8% or an exemption on some, a coupon
    or a voucher now and then, rarely a surcharge."""
    roll = rng.random()
    terms: dict[str, Any] = {}
    if roll < 0.1:
        terms["tax"] = {"rate": "8.00", "subject": "GOODS", "exemption": None}
    elif roll < 0.15:
        terms["tax"] = {"rate": None, "subject": "SERVICES", "exemption": "MONEY_EQUIVALENT"}
    if rng.random() < 0.15 and price > Decimal("10.00"):
        terms["discount"] = {"type": "COUPON", "amount": "5.00"}
    if rng.random() < 0.1:
        terms["voucher"] = {"value": "20.00"}
    if rng.random() < 0.05:
        terms["surcharge"] = "9.99"
    return terms


async def purchase_stream(emulator: Emulator, seller: Seller, every: float) -> None:
    """Every ``every`` seconds a buyer purchases; most pay, some choose cash on delivery,
    a few cancel or never pay; with the merge switch, some pay two forms at once."""
    market = emulator.market
    rng = market.ids.rng
    unpaid = []
    while True:
        await asyncio.sleep(every)
        live = [
            market.offers[i]
            for i in market.offers_by_seller[seller.id]
            if market.offers[i].status == "ACTIVE" and market.offers[i].format == "BUY_NOW"
        ]
        if not live:
            continue
        offer = rng.choice(live)
        cod = rng.random() < 0.2
        try:
            form = purchase(
                market,
                offer,
                min(offer.stock, rng.randint(1, 3)),
                random_profile(market.ids),
                "CASH_ON_DELIVERY" if cod else "ONLINE",
                None,
                _random_terms(rng, offer.price),
            )
            roll = rng.random()
            if cod:
                fill_in(market, form)
            elif roll < 0.75:
                pay(market, form)
            elif roll < 0.85:
                cancel(market, form)
            else:
                unpaid.append(form)
            if emulator.config.switches.merge_checkout_forms and len(unpaid) >= 2:
                merge_and_pay(market, unpaid[:2])
                unpaid = unpaid[2:]
            log.info("demo purchase %s %s", form.id, form.status)
        except SaleError as err:
            log.info("demo purchase skipped: %s", err)
