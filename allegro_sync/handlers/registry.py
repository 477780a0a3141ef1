"""Routing keys to handlers: the literal map the consumers dispatch by.

``build_routes`` binds each handler's dependencies (the composition root passes them in); the map
is checked at start-up so that a queue never receives a type nobody handles by mistake.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.broker.consumer import Route
from allegro_sync.adapters.broker.topology import ERP_QUEUE, JOURNAL_QUEUE
from allegro_sync.contract import (
    PriceChanged,
    PriceListUpserted,
    ProductUpserted,
    StockChanged,
)
from allegro_sync.handlers import catalog, prices, stock
from allegro_sync.handlers.fulfillment import fulfillment_routes
from allegro_sync.handlers.invoices import invoice_routes
from allegro_sync.handlers.offers import offer_routes
from allegro_sync.handlers.orders import order_routes


def erp_routes() -> dict[str, Route]:
    """What the ERP sends (``erp.events``). Stock and price changes are handled per consumer
    batch (``handle_many``): recorded version-guarded and propagated to bound offers as desired
    values for the offer-change batcher (S1-S5, P1-P2)."""
    return {
        "product.upserted": Route(ProductUpserted, catalog.upsert_product),
        "price_list.upserted": Route(PriceListUpserted, catalog.upsert_price_list),
        "stock.changed": Route(
            StockChanged, stock.propagate_one, handle_many=stock.propagate_stock
        ),
        "price.changed": Route(
            PriceChanged, prices.propagate_one, handle_many=prices.propagate_price
        ),
    }


def build_routes(allegro: AllegroRestClient, pool: asyncpg.Pool) -> dict[str, Mapping[str, Route]]:
    """Routes per consumer queue, with their dependencies bound."""
    journal: dict[str, Route] = {**order_routes(allegro, pool), **offer_routes(allegro, pool)}
    # ERP -> Allegro order updates: their network effects run in ``prepare``.
    erp: dict[str, Route] = {
        **erp_routes(),
        **fulfillment_routes(allegro, pool),
        **invoice_routes(allegro, pool),
    }
    return {ERP_QUEUE: erp, JOURNAL_QUEUE: journal}
