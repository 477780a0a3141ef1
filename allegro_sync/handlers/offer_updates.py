"""Offers that follow their product (issue 17 item 4, account setting
``update_offers_from_products``).

``upsert_product`` stores the ERP's product (``handlers/catalog.store_product``) and, when
its name, description, images or parameters changed, queues those field names for every offer
bound to it on the accounts that follow products (``adapters/postgres/offer_updates.py``), in
the consumer's transaction: nothing waits there for Allegro. ``daemon/offer_updater.py`` sends
them later, one ``PATCH /sale/product-offers/{offerId}`` per offer with only the queued fields
(``patch_body``), their values read from the product when the request leaves, so several
changes coalesce into one edit. Stock and price never go this way: the batcher carries them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg

from allegro_sync.adapters.allegro.errors import AllegroError
from allegro_sync.adapters.broker.publisher import OutgoingMessage
from allegro_sync.adapters.broker.topology import EVENTS_EXCHANGE
from allegro_sync.adapters.postgres import event_log, offer_updates, outbox
from allegro_sync.contract import (
    OFFER_UPDATE_FAILED,
    ListingError,
    OfferUpdateFailed,
    ProductUpserted,
)
from allegro_sync.handlers import catalog

# The product fields an offer follows, in the order a PATCH carries them.
FOLLOWED_FIELDS = ("name", "description", "images", "parameters")
MAX_NAME = 75  # Allegro's longest offer title (as the listing cuts it)


async def upsert_product(message: ProductUpserted, conn: asyncpg.Connection) -> None:
    """Store the product; queue what changed for the offers that follow it."""
    changed = await catalog.store_product(message, conn)
    followed = [f for f in FOLLOWED_FIELDS if f in changed]
    if followed:
        await offer_updates.queue_for_product(conn, message.product_id, followed)


def patch_body(product: Mapping[str, Any], fields: Collection[str]) -> dict[str, Any]:
    """The PATCH for ``fields`` from the product as stored (allegro-api.md 8.2: send only the
    fields to change). A field the ERP cleared (null) is not sent: Allegro keeps the offer's.

    - ``name``: the offer's title;
    - ``description``: Allegro's ``{"sections": [...]}`` (the product keeps that shape);
    - ``images``: the gallery, URLs (Allegro downloads external ones);
    - ``parameters``: the offer's ``parameters``, as the listing sends them (each ``{"id"}`` or
      ``{"name"}`` with ``values``; Allegro takes what describes a catalogue product from the
      catalogue).
    """
    body: dict[str, Any] = {}
    if "name" in fields and product.get("name"):
        body["name"] = str(product["name"])[:MAX_NAME]
    if "description" in fields and product.get("description"):
        body["description"] = product["description"]
    if "images" in fields:
        images = product.get("images")
        if images is None and product.get("image_url"):
            images = [product["image_url"]]
        if images:
            body["images"] = list(images)
    if "parameters" in fields and product.get("parameters"):
        parameters = allegro_parameters(product["parameters"])
        if parameters:
            body["parameters"] = parameters
    return body


def allegro_parameters(parameters: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The product's parameters in Allegro's request shape (``ParameterProductOfferRequest``)."""
    out = []
    for parameter in parameters:
        entry: dict[str, Any] = {}
        if parameter.get("id"):
            entry["id"] = str(parameter["id"])
        elif parameter.get("name"):
            entry["name"] = str(parameter["name"])
        else:
            continue
        entry["values"] = [str(v) for v in parameter.get("values") or []]
        out.append(entry)
    return out


def sent_fields(body: Mapping[str, Any]) -> list[str]:
    """The followed fields a PATCH body carries."""
    return sorted(body)


async def record_refusal(
    conn: asyncpg.Connection,
    *,
    account_id: int,
    offer_id: str,
    product_id: str,
    fields: list[str],
    error: AllegroError,
) -> None:
    """Allegro refused the edit: the event log says so and the ERP gets
    ``offer.update_failed`` with Allegro's errors, in one transaction; the row is done."""
    errors = [ListingError.model_validate(e) for e in error.errors] or [
        ListingError(code=error.code, message=str(error))
    ]
    text = "; ".join(e.userMessage or e.message or e.code or "" for e in errors)
    await event_log.write(
        conn,
        account_id,
        "offers",
        "error",
        "offer_update_refused",
        f"Allegro refused the product's changes ({', '.join(fields)}) on offer {offer_id}: {text}",
        details={
            "offer_id": offer_id,
            "product_id": product_id,
            "fields": fields,
            "status": error.status,
            "trace_id": error.trace_id,
        },
    )
    stamp = error.trace_id or datetime.now(UTC).isoformat()
    await outbox.enqueue(
        conn,
        OutgoingMessage(
            exchange=EVENTS_EXCHANGE,
            routing_key=OFFER_UPDATE_FAILED,
            message_id=f"offer.update_failed:{offer_id}:{stamp}",
            payload=OfferUpdateFailed(
                account_id=account_id,
                offer_id=offer_id,
                product_id=product_id,
                fields=fields,
                errors=errors,
                trace_id=error.trace_id,
            ).body(),
        ),
    )
    await offer_updates.finish(conn, offer_id)


async def record_updated(
    conn: asyncpg.Connection, *, account_id: int, offer_id: str, fields: list[str]
) -> None:
    """The edit is on Allegro: an entry in the account's event log; the row is done."""
    await event_log.write(
        conn,
        account_id,
        "offers",
        "info",
        "offer_updated_from_product",
        f"Offer {offer_id} updated from its product: {', '.join(fields)}",
        details={"offer_id": offer_id, "fields": fields},
    )
    await offer_updates.finish(conn, offer_id)
