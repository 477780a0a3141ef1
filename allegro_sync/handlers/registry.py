"""Routing keys to handlers: the literal map the bus (``daemon/consumer.py``) dispatches by.

A ``Route`` names a message's schema (from ``contract.py``) and the plain functions that handle
it; ``build_routes`` binds their dependencies (the composition root passes them in). Handlers
import neither the bus nor this module: the bus imports the routes, never the reverse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import asyncpg
from pydantic import BaseModel

from allegro_sync.adapters.allegro.carriers import CarrierCatalog
from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.broker.topology import (
    BIG_ERP_MESSAGES,
    ERP_INVOICE_QUEUE,
    ERP_QUEUE,
    JOURNAL_QUEUE,
)
from allegro_sync.contract import (
    INVOICE_ADDED,
    OFFER_EVENT,
    OFFER_EVENTS,
    OFFER_LIST,
    OFFER_TOUCHED,
    ORDER_BACKFILL,
    ORDER_EVENT,
    ORDER_EVENTS,
    ORDER_MESSAGE,
    ORDER_STATUS_CHANGED,
    PRICE_CHANGED,
    PRICE_LIST_UPSERTED,
    PRODUCT_UPSERTED,
    RUN_EXTRAS,
    SHIPMENT_ADDED,
    SHIPMENT_CANCEL,
    SHIPMENT_REQUESTED,
    STOCK_CHANGED,
    InvoiceAdded,
    OfferEventMessage,
    OfferEventsMessage,
    OfferList,
    OfferTouched,
    OrderBackfillMessage,
    OrderEventMessage,
    OrderEventsMessage,
    OrderMessage,
    OrderStatusChanged,
    PriceChanged,
    PriceListUpserted,
    ProductUpserted,
    ShipmentAdded,
    ShipmentCancel,
    ShipmentRequested,
    StockChanged,
    run_splitter,
)
from allegro_sync.handlers import catalog, offer_updates, prices, stock
from allegro_sync.handlers.fulfillment import record_fulfillment, set_fulfillment
from allegro_sync.handlers.invoices import record_invoice, upload_invoice
from allegro_sync.handlers.listing import handle_offer_list
from allegro_sync.handlers.offers import prepare_offers, refresh_offers
from allegro_sync.handlers.order_messages import prepare_order_message, record_order_message
from allegro_sync.handlers.orders import handle_orders, prepare_backfill, prepare_orders
from allegro_sync.handlers.parcels import cancel_shipment, request_shipment
from allegro_sync.handlers.shipments import add_shipments, record_shipments

Handler = Callable[[Any, asyncpg.Connection], Awaitable[None]]
Prepare = Callable[[Any], Awaitable[Any]]
# Prepares a whole batch's events of one route at once; an element may be an exception
# instance, which decides that event's (and so its message's) fate like a raised one.
PrepareMany = Callable[[list[Any]], Awaitable[list[Any]]]
HandleMany = Callable[[list[Any], asyncpg.Connection], Awaitable[None]]
# The events a message carries (a run of a journal page), as single-event messages.
Events = Callable[[Any], list[Any]]
# The parts of a message that carries many events (its decoded JSON body): (routing key,
# message id, payload) of one message per event.
Split = Callable[[Any], list[tuple[str, str, Any]]]


@dataclass(frozen=True)
class Route:
    """A message type: its payload schema and its handler (dependencies already bound).

    ``handler`` takes one message at a time; ``handle_many`` instead takes all of the batch's
    new (not redelivered) payloads of the route at once, in the batch's transaction, so that
    set-based SQL does one statement per batch instead of one per message.
    ``prepare``, when given, runs before the batch's transaction, concurrently for the batch
    (network reads such as fetching a checkout form belong there, not inside a transaction);
    the handler then receives what ``prepare`` returned instead of the payload.
    ``prepare_many`` does the same for all of a batch's messages of the route in one call, for
    reads that are cheaper in bulk (one listing instead of a read per message).
    ``events``, for a message carrying many events (a run of a journal page): the bus flattens
    the batch's runs into their events for ``prepare_many`` and ``handle_many`` and regroups
    the results per run (a run takes the fate of its first failed event), so a handler is
    written once, for a list of events, whether they came alone or in runs.
    ``split``, for such a message: when it fails, it is replaced by one message per event,
    which go where it would have gone (the delay queue for a retry; back to this queue for a
    dead letter, where each meets its own fate), so an event that fails holds up none of the
    others.
    """

    model: type[BaseModel]
    handler: Handler | None = None
    prepare: Prepare | None = None
    prepare_many: PrepareMany | None = None
    handle_many: HandleMany | None = None
    events: Events | None = None
    split: Split | None = None

    def __post_init__(self) -> None:
        if (self.handler is None) == (self.handle_many is None):
            raise ValueError("a route has either a handler or handle_many")
        if self.events is not None and (self.handle_many is None or self.prepare is not None):
            raise ValueError("a route whose messages carry events handles them many at a time")


def erp_routes() -> dict[str, Route]:
    """What the ERP sends (``erp.events``) and needs no Allegro call. Stock and price changes
    are handled per consumer batch: recorded version-guarded and propagated to bound offers as
    desired values for the offer-change batcher (S1-S5, P1-P2)."""
    return {
        PRODUCT_UPSERTED: Route(ProductUpserted, offer_updates.upsert_product),
        PRICE_LIST_UPSERTED: Route(PriceListUpserted, catalog.upsert_price_list),
        STOCK_CHANGED: Route(StockChanged, handle_many=stock.propagate_stock),
        PRICE_CHANGED: Route(PriceChanged, handle_many=prices.propagate_price),
        # the intent only: the listing service asks Allegro (handlers/listing.py)
        OFFER_LIST: Route(OfferList, handle_offer_list),
        # parcels: stored with their command id here, sent by daemon/parcel_service.py
        SHIPMENT_REQUESTED: Route(ShipmentRequested, request_shipment),
        SHIPMENT_CANCEL: Route(ShipmentCancel, cancel_shipment),
    }


def build_routes(
    allegro: AllegroRestClient, pool: asyncpg.Pool, carriers: CarrierCatalog | None = None
) -> dict[str, Mapping[str, Route]]:
    """Routes per consumer queue, with their dependencies bound (``carriers``: Allegro's
    carrier list, cached per daemon; a fresh cache when not given)."""
    carriers = carriers if carriers is not None else CarrierCatalog(allegro)
    orders = partial(prepare_orders, allegro, pool)
    offers = partial(prepare_offers, allegro, pool)
    journal = {
        ORDER_EVENT: Route(OrderEventMessage, prepare_many=orders, handle_many=handle_orders),
        ORDER_EVENTS: Route(
            OrderEventsMessage,
            prepare_many=orders,
            handle_many=handle_orders,
            events=OrderEventsMessage.singles,
            split=run_splitter("order", ORDER_EVENT, RUN_EXTRAS),
        ),
        ORDER_BACKFILL: Route(
            OrderBackfillMessage,
            prepare=partial(prepare_backfill, allegro, pool),
            handle_many=handle_orders,
        ),
        OFFER_EVENT: Route(OfferEventMessage, prepare_many=offers, handle_many=refresh_offers),
        OFFER_EVENTS: Route(
            OfferEventsMessage,
            prepare_many=offers,
            handle_many=refresh_offers,
            events=OfferEventsMessage.singles,
            split=run_splitter("offer", OFFER_EVENT),
        ),
        OFFER_TOUCHED: Route(OfferTouched, prepare_many=offers, handle_many=refresh_offers),
    }
    # ERP -> Allegro order updates: their network effects run in ``prepare``.
    erp = {
        **erp_routes(),
        ORDER_STATUS_CHANGED: Route(
            OrderStatusChanged, record_fulfillment, partial(set_fulfillment, allegro, pool)
        ),
        INVOICE_ADDED: Route(InvoiceAdded, record_invoice, partial(upload_invoice, allegro, pool)),
        ORDER_MESSAGE: Route(
            OrderMessage, record_order_message, partial(prepare_order_message, allegro, pool)
        ),
        SHIPMENT_ADDED: Route(
            ShipmentAdded,
            prepare_many=partial(add_shipments, allegro, pool, carriers),
            handle_many=record_shipments,
        ),
    }
    # invoices come through a queue of their own (topology.py); the ERP queue still knows the
    # route for those it held from before the split or that are replayed to it
    invoices = {key: erp[key] for key in BIG_ERP_MESSAGES}
    return {ERP_QUEUE: erp, ERP_INVOICE_QUEUE: invoices, JOURNAL_QUEUE: journal}
