"""Order journal, checkout forms and the seller's fulfillment status."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from . import context
from .auth import scope, seller_caller
from .clock import iso, parse_iso
from .errors import ApiError, json_response, not_found, validation
from .journals import JournalEvent
from .models import CheckoutForm, Seller
from .params import int_param, many
from .sales import FULFILLMENT_STATUSES, SELLER_FULFILLMENT_STATUSES, set_fulfillment
from .spec_check import refuse_off_spec
from .state import ORDER_RETENTION
from .views import checkout_form, line_items_sent

ORDER_EVENT_TYPES = (
    "BOUGHT",
    "FILLED_IN",
    "READY_FOR_PROCESSING",
    "BUYER_CANCELLED",
    "FULFILLMENT_STATUS_CHANGED",
    "BUYER_MODIFIED",
    "AUTO_CANCELLED",
)
HISTORY = timedelta(days=365)
FORM_STATUSES = ("BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING", "CANCELLED")


def _event_json(event: JournalEvent) -> dict[str, Any]:
    return {
        "id": str(event.seq),
        "occurredAt": iso(event.occurred_at),
        "type": event.type,
        **event.payload,
    }


async def events(request: web.Request) -> web.Response:
    """``GET /order/events``: oldest first, ``from`` exclusive, 60 days kept."""
    _, seller = seller_caller(request, scope("orders:read"))
    emulator = context.get(request)
    limit = int_param(request, "limit", 100, 1, 1000)
    types = many(request, "type")
    for t in types:
        if t not in ORDER_EVENT_TYPES:
            raise validation(f"Unknown event type: {t}", "type")
    journal = emulator.market.order_journals.get(seller.id)
    if journal is None:
        return json_response({"events": []})
    start = journal.first_retained_index(emulator.clock.now(), ORDER_RETENTION)
    cursor = request.query.get("from")
    if cursor is not None:
        if not cursor.isdigit():
            raise validation("Invalid event id", "from")
        start = max(start, journal.index_after(int(cursor)))
    page = journal.read(start, limit, set(types) if types else None)
    return json_response({"events": [_event_json(e) for e in page]})


async def event_stats(request: web.Request) -> web.Response:
    """``GET /order/event-stats``: the latest event, the starting point of a reader."""
    _, seller = seller_caller(request, scope("orders:read"))
    journal = context.get(request).market.order_journals.get(seller.id)
    last = journal.last() if journal else None
    latest = {"id": str(last.seq), "occurredAt": iso(last.occurred_at)} if last else None
    return json_response({"latestEvent": latest})


def form_for(request: web.Request, seller: Seller) -> CheckoutForm:
    form_id = request.match_info["id"]
    try:
        uuid.UUID(form_id)
    except ValueError:
        raise validation("Checkout form id must be a UUID", "id") from None
    form = context.get(request).market.forms.get(form_id)
    if form is None or form.seller_id != seller.id:
        raise not_found("Checkout form not found")
    return form


def _date_filter(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return parse_iso(raw).timestamp()
    except ValueError:
        # the spec: 400 for "request parameters [that] contain illegal values" (422 is kept
        # for limit and offset out of range)
        raise validation(f"{name} must be an ISO-8601 date", name, status=400) from None


def _shown(moment: datetime) -> float:
    """A time as ``iso`` shows it (whole milliseconds), as a timestamp."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000).timestamp()


async def list_forms(request: web.Request) -> web.Response:
    """``GET /order/checkout-forms``: filters, sort, limit <= 100, offset + limit <= 10 000."""
    _, seller = seller_caller(request, scope("orders:read"))
    market = context.get(request).market
    limit = int_param(request, "limit", 100, 1, 100)
    offset = int_param(request, "offset", 0, 0, 10_000)
    if offset + limit > 10_000:
        raise ApiError(
            422,
            "VALIDATION_ERROR",
            "Offset and limit parameters exceed maximal result size of 10000 items",
            path="/order/checkout-forms",
            user_message=None,
        )
    statuses = set(many(request, "status"))
    for s in statuses:
        if s not in FORM_STATUSES:
            raise validation(f"Unknown status: {s}", "status")
    fulfillment = set(many(request, "fulfillment.status"))
    sent = set(many(request, "fulfillment.shipmentSummary.lineItemsSent"))
    if sent - {"NONE", "SOME", "ALL"}:
        raise validation("Unknown lineItemsSent", "fulfillment.shipmentSummary.lineItemsSent")
    delivery_method = request.query.get("delivery.method.id")
    marketplace = request.query.get("marketplace.id")
    surcharge = request.query.get("surcharges.id")
    # Only the last 12 months are kept (staff #12597: "365 days").
    oldest = (market.now() - HISTORY).timestamp()
    login = request.query.get("buyer.login")
    payment_id = request.query.get("payment.id")
    bought_gte = _date_filter(request, "lineItems.boughtAt.gte")
    bought_lte = _date_filter(request, "lineItems.boughtAt.lte")
    updated_gte = _date_filter(request, "updatedAt.gte")
    updated_lte = _date_filter(request, "updatedAt.lte")
    sort = request.query.get("sort", "-lineItems.boughtAt")
    if sort.lstrip("-") not in ("lineItems.boughtAt", "updatedAt"):
        raise validation(f"Unknown sort: {sort}", "sort")

    def keep(form: CheckoutForm) -> bool:
        # at the precision the forms show (milliseconds): a form shown with updatedAt X is
        # found by updatedAt.lte=X
        bought = _shown(form.created_at)
        updated = _shown(form.updated_at)
        return (
            bought >= oldest
            and surcharge is None  # the emulator's forms carry no surcharges
            and (marketplace is None or marketplace == "allegro-pl")
            and (delivery_method is None or form.delivery_method[0] == delivery_method)
            and (not sent or line_items_sent(form) in sent)
            and (not statuses or form.status in statuses)
            and (not fulfillment or form.fulfillment_status in fulfillment)
            and (login is None or form.buyer.login == login)
            and (payment_id is None or form.payment_id == payment_id)
            and (bought_gte is None or bought >= bought_gte)
            and (bought_lte is None or bought <= bought_lte)
            and (updated_gte is None or updated >= updated_gte)
            and (updated_lte is None or updated <= updated_lte)
        )

    forms = [f for fid in market.forms_by_seller[seller.id] if keep(f := market.forms[fid])]
    if sort.lstrip("-") == "updatedAt":
        forms.sort(key=lambda f: f.updated_at, reverse=sort.startswith("-"))
    elif sort.startswith("-"):
        forms.reverse()  # stored in purchase order already
    page = forms[offset : offset + limit]
    return json_response(
        {
            "checkoutForms": [checkout_form(f) for f in page],
            "count": len(page),
            "totalCount": len(forms),
        }
    )


async def get_form(request: web.Request) -> web.Response:
    """``GET /order/checkout-forms/{id}``."""
    _, seller = seller_caller(request, scope("orders:read"))
    return json_response(checkout_form(form_for(request, seller)))


async def put_fulfillment(request: web.Request) -> web.Response:
    """``PUT .../fulfillment``: 204; 409 on a stale ``checkoutForm.revision``; 422 bad status."""
    _, seller = seller_caller(request, scope("orders:write"))
    emulator = context.get(request)
    form = form_for(request, seller)
    body = await read_json(request)
    status = body.get("status") if isinstance(body, dict) else None
    if status not in FULFILLMENT_STATUSES:
        raise validation(f"Unknown fulfillment status: {status}", "status")
    if status not in SELLER_FULFILLMENT_STATUSES:
        raise validation("The RETURNED status is set only by Allegro", "status")
    revision = request.query.get("checkoutForm.revision")
    if revision is not None and revision != form.revision:
        raise ApiError(
            409, "CONFLICT", "Checkout form revision is outdated", path="checkoutForm.revision"
        )
    set_fulfillment(emulator.market, form, str(status))
    emulator.market.recordings.fulfillments.append(
        {
            "checkout_form_id": form.id,
            "seller_id": seller.id,
            "status": status,
            "revision": revision,
            "at": iso(emulator.clock.now()),
        }
    )
    return web.Response(status=204)


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; 400 on malformed JSON, 422 when Allegro's schema refuses it."""
    try:
        body = json.loads(await request.text())
    except ValueError:
        raise ApiError(400, "INVALID_JSON", "Malformed JSON body") from None
    refuse_off_spec(request, body)
    return body


def routes() -> list[web.RouteDef]:
    """Order routes."""
    return [
        web.get("/order/events", events),
        web.get("/order/event-stats", event_stats),
        web.get("/order/checkout-forms", list_forms),
        web.get("/order/checkout-forms/{id}", get_form),
        web.put("/order/checkout-forms/{id}/fulfillment", put_fulfillment),
    ]
