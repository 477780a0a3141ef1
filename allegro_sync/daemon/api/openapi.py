"""The admin API as OpenAPI 3.1: served at ``GET /openapi.json``, committed as
``docs/admin-openapi.json`` (``scripts/admin_openapi.py`` writes it; tests keep both equal to
the routes and fuzz the API against it).

Request bodies are the pydantic models the handlers validate with, and the account is the model
the API answers with (``AccountView``), so the document cannot drift from what is accepted or
returned. Every error is ``{"error", "detail", ...}`` (``errors.py``). The panel
(``/panel/``) is HTML for people and not described here.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from allegro_sync.adapters.postgres.event_log import CATEGORIES
from allegro_sync.adapters.postgres.parcels import STATUSES as PARCEL_STATUSES
from allegro_sync.contract import CUSTOMER_TYPES, DELIVERY_STATUSES, OfferList
from allegro_sync.daemon.api.listing_jobs import ListingJobRequest
from allegro_sync.daemon.api.params import BIGINT_MAX
from allegro_sync.export.filters import MAX_Q
from allegro_sync.export.formats import EXPORT_FORMATS
from allegro_sync.handlers.accounts import AccountPatch, AccountView
from allegro_sync.handlers.offer_settings import OfferPatch

PATH = "/openapi.json"
REF = "#/components/schemas/"

_STR = {"type": "string"}
_OPT_STR = {"type": ["string", "null"]}
_OPT_TIME = {"type": ["string", "null"], "format": "date-time"}
_TIME = {"type": "string", "format": "date-time"}
_BOOL = {"type": "boolean"}
_INT = {"type": "integer"}
_OPT_INT = {"type": ["integer", "null"]}
_ID = {"type": "integer", "minimum": 1, "maximum": BIGINT_MAX}

_DESCRIPTIONS = {
    200: "OK",
    202: "Accepted",
    204: "No content",
    400: "The body is not JSON this API reads, or a value the database cannot store",
    401: "No or a wrong `Authorization: Bearer <ADMIN_TOKEN>`",
    404: "No such resource (an id that is not a positive whole number within bigint included)",
    409: "Not possible now (switched off, dead credentials, Allegro refused)",
    413: "The body is larger than the server takes",
    422: "A parameter or field is invalid; `field` names it",
    429: "Too many exports at once; try again after `Retry-After` seconds",
    503: "Allegro or a dependency is unavailable",
}


def _obj(required: dict[str, Any], **optional: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **optional},
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def _page(item: str) -> dict[str, Any]:
    return _obj({"items": {"type": "array", "items": _ref(item)}, "next": _OPT_STR})


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _responses(ok: dict[int, dict[str, Any]], *errors: int, public: bool = False) -> dict[str, Any]:
    """``ok``: status to content; ``errors``: statuses answered with the JSON error."""
    result: dict[str, Any] = {}
    for status, content in ok.items():
        result[str(status)] = {"description": _DESCRIPTIONS[status]}
        if content:
            result[str(status)]["content"] = content
    codes = sorted(set(errors) | (set() if public else {401}))
    for status in codes:
        result[str(status)] = {
            "description": _DESCRIPTIONS[status],
            "content": _json(_ref("Error")),
        }
        if status == 429:
            result[str(status)]["headers"] = {
                "Retry-After": {"schema": {"type": "integer"}, "required": True}
            }
    return result


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        param["description"] = description
    return param


_LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size")
_ACCOUNT_ID = {"name": "id", "in": "path", "required": True, "schema": _ID}
_BODY_ERRORS = (400, 413, 422)


def _body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": _json(schema)}


def _customer_filters() -> list[dict[str, Any]]:
    return [
        _query("account_id", _ID),
        _query("type", {"type": "string", "enum": list(CUSTOMER_TYPES)}),
        _query("has_nip", _BOOL),
        _query("q", {"type": "string", "maxLength": MAX_Q}, "part of a name, company, e-mail, NIP"),
        _query("created_from", {"type": "string", "format": "date"}, "inclusive"),
        _query("created_to", {"type": "string", "format": "date"}, "inclusive"),
        _query("ids", {"type": "string", "pattern": "^[0-9]{1,18}(,[0-9]{1,18})*$"}),
    ]


def _schemas() -> dict[str, Any]:
    models: dict[str, Any] = {}
    for model in (AccountPatch, OfferPatch, OfferList, ListingJobRequest):
        schema = model.model_json_schema(ref_template=REF + "{model}")
        models.update(schema.pop("$defs", {}))
        models[model.__name__] = schema
    # The account view's own model: the response and its schema cannot drift apart.
    account = AccountView.model_json_schema(mode="serialization", ref_template=REF + "{model}")
    order = _obj(
        {
            "checkout_form_id": {"type": "string", "format": "uuid"},
            "account_id": _INT,
            "status": _STR,
            "bought_at": _OPT_TIME,
            "buyer_login": _OPT_STR,
            "payment_type": _OPT_STR,
            "paid_at": _OPT_TIME,
            "total": _OPT_STR,
            "currency": _OPT_STR,
            "invoice_required": _BOOL,
            "customer_id": _OPT_INT,
            "superseded_by": _OPT_STR,
            "sent_to_erp_at": _OPT_TIME,
            "cancelled_at": _OPT_TIME,
            "lines": {"type": "array", "items": {"type": "object"}},
        }
    )
    offer = _obj(
        {
            "id": _STR,
            "account_id": _INT,
            "name": _OPT_STR,
            "format": _OPT_STR,
            "status": _OPT_STR,
            "ended_at": _OPT_TIME,
            "stock": _OPT_INT,
            "price": _OPT_STR,
            "currency": _OPT_STR,
            "image_url": _OPT_STR,
            "external_id": _OPT_STR,
            "ean": _OPT_STR,
            "product_id": _OPT_STR,
            "bound_at": _OPT_TIME,
            "do_not_renew": _BOOL,
            "sync_price": _BOOL,
        }
    )
    customer = _obj(
        {
            "id": _INT,
            "account_id": _INT,
            "allegro_buyer_id": _STR,
            "email": _OPT_STR,
            "first_name": _OPT_STR,
            "last_name": _OPT_STR,
            "company": _OPT_STR,
            "nip": _OPT_STR,
            "country_code": _OPT_STR,
            "type": _STR,
            "address": {"type": ["object", "null"]},
            "active": _BOOL,
            "created_at": _TIME,
            "updated_at": _TIME,
        }
    )
    event = _obj(
        {
            "id": _INT,
            "category": {"type": "string", "enum": list(CATEGORIES)},
            "level": _STR,
            "code": _STR,
            "message": _STR,
            "details": {},
            "created_at": _TIME,
        }
    )
    shipment = _obj(
        {
            "id": {
                "type": ["integer", "null"],
                "description": "null: a parcel sent with Allegro that has no tracking number yet",
            },
            "checkout_form_id": {"type": "string", "format": "uuid"},
            "account_id": _INT,
            "waybill": _OPT_STR,
            "carrier_id": _OPT_STR,
            "carrier_name": _OPT_STR,
            "line_items": {"type": ["array", "null"], "items": {"type": "object"}},
            "status": {"type": "string", "enum": ["pending", "sent", "refused"]},
            "allegro_shipment_id": _OPT_STR,
            "error": _OPT_STR,
            "created_at": _TIME,
            "sent_at": _OPT_TIME,
            "fulfillment_at": _OPT_TIME,
            "delivery_status": {
                "type": ["string", "null"],
                "enum": [*DELIVERY_STATUSES, None],
                "description": "the carrier's last status (`shipment.status_changed`)",
            },
            "delivery_status_at": _OPT_TIME,
            "tracking_done": {
                "type": ["string", "null"],
                "enum": [
                    "delivered",
                    "returned",
                    "ended",
                    "given_up",
                    "untracked",
                    "cancelled",
                    None,
                ],
                "description": "why the tracking is no longer read (null: still read)",
            },
        },
        parcel={
            "type": ["object", "null"],
            "description": "the parcel sent with Allegro that carries this tracking number, or"
            " is still to carry one (requested, being made, failed)",
            "properties": {
                "id": _INT,
                "status": {"type": "string", "enum": list(PARCEL_STATUSES)},
                "label_format": {"type": "string", "enum": ["PDF", "ZPL"]},
                "command_id": {"type": "string", "format": "uuid"},
                "pickup_id": _OPT_STR,
                "created_at": _TIME,
                "reason": {
                    "type": ["string", "null"],
                    "description": "why Allegro refused it (or why it was given up)",
                },
                "errors": {"type": ["array", "null"], "items": {"type": "object"}},
                "trace_id": _OPT_STR,
            },
        },
    )
    parcel_request = _obj(
        {
            "account_id": {"type": "integer", "minimum": 1},
            "shipment_ids": {
                "type": "array",
                "minItems": 1,
                "maxItems": 100,
                "items": {"type": "string", "minLength": 1, "maxLength": 100},
            },
        }
    )
    pickup_request = {
        **parcel_request,
        "properties": {
            **parcel_request["properties"],
            "date": {"type": ["string", "null"], "format": "date"},
        },
    }
    pickup_resume = _obj(
        {
            "account_id": {"type": "integer", "minimum": 1},
            "command_id": {
                "type": "string",
                "format": "uuid",
                "description": "a pickup asked for before (its answer was 202): read it again",
            },
        }
    )
    pickup_pending = _obj(
        {
            "status": {"type": "string", "enum": ["in_progress"]},
            "command_id": {"type": "string", "format": "uuid"},
            "detail": _STR,
        }
    )
    pickup = _obj(
        {
            "pickup_id": _STR,
            "carrier_pickup_id": _OPT_STR,
            "command_id": _STR,
            "date": _STR,
            "min_time": _OPT_STR,
            "max_time": _OPT_STR,
            "shipment_ids": {"type": "array", "items": _STR},
        }
    )
    listing = _obj(
        {
            "id": _INT,
            "account_id": _INT,
            "product_id": _STR,
            "state": {
                "type": "string",
                "enum": ["pending", "posting", "following", "listed", "failed"],
            },
            "offer_id": _OPT_STR,
            "offer_status": _OPT_STR,
            "price": _STR,
            "currency": _STR,
            "quantity": _INT,
            "category_id": _OPT_STR,
            "publish": _BOOL,
            "errors": {
                "type": ["array", "null"],
                "items": {"type": "object"},
                "description": "Allegro's error objects of a refusal",
            },
            "trace_id": _OPT_STR,
            "attempts": _INT,
            "updated_at": _TIME,
        }
    )
    listing_job = _obj(
        {
            "id": _INT,
            "account_id": _INT,
            "publish": _BOOL,
            "state": {"type": "string", "enum": ["running", "done"]},
            "total": _INT,
            "done": _INT,
            "pending": _INT,
            "listed": _INT,
            "failed": _INT,
            "skipped": _INT,
            "created_at": _TIME,
            "finished_at": _OPT_TIME,
        },
        failures={
            "type": "array",
            "items": _obj(
                {
                    "product_id": _STR,
                    "skipped": _OPT_STR,
                    "errors": {"type": ["array", "null"], "items": {"type": "object"}},
                }
            ),
        },
    )
    listing_dry_run = _obj(
        {
            "account_id": _INT,
            "dry_run": _BOOL,
            "total": _INT,
            "would_list": _INT,
            "would_skip": _INT,
            "product_ids": {"type": "array", "items": _STR},
        }
    )
    error = _obj(
        {"error": _STR, "detail": _STR},
        field={"type": "string", "description": "the parameter or field at fault"},
    )
    return {
        "Error": error,
        "Account": account,
        "Order": order,
        "Offer": offer,
        "Customer": customer,
        "EventLogEntry": event,
        "Shipment": shipment,
        "Listing": listing,
        "ListingJob": listing_job,
        "ListingJobDryRun": listing_dry_run,
        "ParcelsRequest": parcel_request,
        "PickupRequest": pickup_request,
        "PickupResume": pickup_resume,
        "PickupPending": pickup_pending,
        "Pickup": pickup,
        **dict(sorted(models.items())),
        "AccountPage": _page("Account"),
        "OrderPage": _page("Order"),
        "OfferPage": _page("Offer"),
        "CustomerPage": _page("Customer"),
        "EventLogPage": _page("EventLogEntry"),
        "ShipmentPage": _page("Shipment"),
    }


def _paths() -> dict[str, Any]:
    public: dict[str, Any] = {"security": []}
    text = {"text/plain": {"schema": _STR}}
    html = {"text/html": {"schema": _STR}}
    callback_page = {**html, **_json({"type": "object"})}
    exports = {
        fmt.content_type.split(";")[0]: {"schema": {"type": "string"}}
        for fmt in EXPORT_FORMATS.values()
    }
    return {
        "/healthz": {
            "get": {
                "summary": "The process answers",
                **public,
                "responses": _responses({200: _json(_obj({"status": _STR}))}, public=True),
            }
        },
        "/readyz": {
            "get": {
                "summary": "Every dependency (PostgreSQL, RabbitMQ) answers",
                **public,
                "responses": {
                    str(status): {
                        "description": "ready" if status == 200 else "not ready",
                        "content": _json(_obj({"status": _STR, "checks": {"type": "object"}})),
                    }
                    for status in (200, 503)
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                **public,
                "responses": _responses({200: text}, public=True),
            }
        },
        PATH: {
            "get": {
                "summary": "This document",
                "responses": _responses({200: _json({"type": "object"})}),
            }
        },
        "/oauth/callback": {
            "get": {
                "summary": "Where Allegro sends the seller back after granting access",
                "description": "A short HTML page, or JSON with `Accept: application/json`.",
                **public,
                "parameters": [
                    _query("state", _STR),
                    _query("code", _STR),
                    _query("error", _STR),
                ],
                "responses": {
                    "200": {"description": "connected", "content": callback_page},
                    "400": {"description": "unknown or expired link", "content": callback_page},
                    **{
                        str(s): {"description": _DESCRIPTIONS[s], "content": _json(_ref("Error"))}
                        for s in (409, 503)
                    },
                },
            }
        },
        "/accounts/connect": {
            "post": {
                "summary": "Start connecting an Allegro account: the URL to send the seller to",
                "requestBody": _body(
                    {"type": "object", "properties": {"sandbox": _BOOL}}, required=False
                ),
                "responses": _responses(
                    {200: _json(_obj({"authorize_url": _STR, "expires_at": _TIME}))},
                    *_BODY_ERRORS,
                    409,
                ),
            }
        },
        "/accounts": {
            "get": {
                "summary": "The accounts, by id",
                "parameters": [
                    _LIMIT,
                    _query("cursor", _STR, "`next` of the previous page"),
                    _query("active", _BOOL),
                    _query("sandbox", _BOOL),
                ],
                "responses": _responses({200: _json(_ref("AccountPage"))}, 422),
            }
        },
        "/accounts/{id}": {
            "parameters": [_ACCOUNT_ID],
            "get": {
                "summary": "One account",
                "responses": _responses({200: _json(_ref("Account"))}, 404),
            },
            "patch": {
                "summary": "Change an account's settings",
                "requestBody": _body(_ref("AccountPatch")),
                "responses": _responses(
                    {200: _json(_ref("Account"))}, *_BODY_ERRORS, 404, 409, 503
                ),
            },
            "delete": {
                "summary": "Delete an account (switched off first)",
                "responses": _responses({204: {}}, 404, 409),
            },
        },
        "/accounts/{id}/token": {
            "parameters": [_ACCOUNT_ID],
            "post": {
                "summary": "Refresh the account's Allegro token now",
                "responses": _responses(
                    {
                        200: _json(
                            _obj({"account_id": _INT, "refreshed": _BOOL, "expires_at": _TIME})
                        )
                    },
                    404,
                    409,
                    503,
                ),
            },
        },
        "/accounts/{id}/event-log": {
            "parameters": [_ACCOUNT_ID],
            "get": {
                "summary": "The account's event log, newest first",
                "parameters": [
                    _LIMIT,
                    _query("category", {"type": "string", "enum": list(CATEGORIES)}),
                    _query("since", _TIME),
                    _query("cursor", _STR, "`next` of the previous page"),
                ],
                "responses": _responses({200: _json(_ref("EventLogPage"))}, 404, 422),
            },
        },
        "/accounts/{id}/options": {
            "parameters": [_ACCOUNT_ID],
            "get": {
                "summary": "What the seller chooses from on Allegro (after-sales, rates, ...)",
                "responses": _responses({200: _json({"type": "object"})}, 404, 409, 503),
            },
        },
        "/accounts/{id}/orders/fetch": {
            "parameters": [_ACCOUNT_ID],
            "post": {
                "summary": "Read the account's order journal now",
                "responses": _responses(
                    {202: _json(_obj({"account_id": _INT, "status": _STR}))}, 404, 409
                ),
            },
        },
        "/orders": {
            "get": {
                "summary": "Orders, newest first",
                "parameters": [
                    _LIMIT,
                    _query("cursor", _STR, "`next` of the previous page"),
                    _query("account_id", _ID),
                    _query(
                        "status",
                        {
                            "type": "string",
                            "enum": ["BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING", "CANCELLED"],
                        },
                    ),
                    _query("sent_to_erp", _BOOL),
                    _query("bought_from", _TIME),
                    _query("bought_to", _TIME),
                    _query(
                        "q",
                        {"type": "string", "maxLength": 200},
                        "form id, offer id or EAN exactly; part of a login or line name",
                    ),
                ],
                "responses": _responses({200: _json(_ref("OrderPage"))}, 422),
            }
        },
        "/shipments": {
            "get": {
                "summary": "Tracking numbers sent to Allegro (`shipment.added`) and parcels sent"
                " with Allegro that have none yet (requested, being made, failed), newest first",
                "parameters": [
                    _LIMIT,
                    _query("cursor", _STR, "`next` of the previous page"),
                    _query("account_id", _ID),
                    _query("checkout_form_id", {"type": "string", "format": "uuid"}),
                    _query(
                        "status",
                        {
                            "type": "string",
                            "enum": ["pending", "sent", "refused", *DELIVERY_STATUSES],
                        },
                        "the row's state (lower case) or the carrier's delivery status (upper"
                        " case, e.g. `IN_TRANSIT`, `DELIVERED`)",
                    ),
                ],
                "responses": _responses({200: _json(_ref("ShipmentPage"))}, 422),
            }
        },
        "/shipments/{id}/label": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": _STR}],
            "get": {
                "summary": "The label of a parcel sent with Allegro (its Allegro shipment id)",
                "responses": _responses(
                    {
                        200: {
                            "application/pdf": {"schema": _STR},
                            "application/x-zpl": {"schema": _STR},
                        }
                    },
                    404,
                    409,
                ),
            },
        },
        "/shipments/protocol": {
            "post": {
                "summary": "The handover protocol (a PDF) of an account's parcels",
                "requestBody": _body(_ref("ParcelsRequest")),
                "responses": _responses(
                    {200: {"application/pdf": {"schema": _STR}}}, *_BODY_ERRORS, 409, 503
                ),
            }
        },
        "/shipments/pickup": {
            "post": {
                "summary": "Order a courier pickup of an account's parcels (202 with its "
                "command id while Allegro is still ordering it; send the command id to read it "
                "again, never ordering a second courier)",
                "requestBody": _body({"oneOf": [_ref("PickupRequest"), _ref("PickupResume")]}),
                "responses": _responses(
                    {200: _json(_ref("Pickup")), 202: _json(_ref("PickupPending"))},
                    *_BODY_ERRORS,
                    409,
                    503,
                ),
            }
        },
        "/offers": {
            "get": {
                "summary": "Offers of the mirror, by id",
                "parameters": [
                    _LIMIT,
                    _query("cursor", {"type": "string", "maxLength": 100}),
                    _query("account_id", _ID),
                    _query(
                        "status",
                        {"type": "string", "enum": ["INACTIVE", "ACTIVATING", "ACTIVE", "ENDED"]},
                    ),
                    _query(
                        "format",
                        {"type": "string", "enum": ["BUY_NOW", "AUCTION", "ADVERTISEMENT"]},
                    ),
                    _query("bound", _BOOL),
                    _query("text", {"type": "string", "maxLength": 200}),
                ],
                "responses": _responses({200: _json(_ref("OfferPage"))}, 422),
            },
            "post": {
                "summary": "List a product on an account (the body of `offer.list`); the "
                "listing's state: 202 while it is being listed, 200 once listed",
                "requestBody": _body(_ref("OfferList")),
                "responses": _responses(
                    {200: _json(_ref("Listing")), 202: _json(_ref("Listing"))}, *_BODY_ERRORS
                ),
            },
        },
        "/offers/listings/{id}": {
            "parameters": [_ACCOUNT_ID],
            "get": {
                "summary": "One listing's state, by the `id` `POST /offers` answered",
                "responses": _responses({200: _json(_ref("Listing"))}, 404),
            },
        },
        "/offers/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": _STR}],
            "patch": {
                "summary": "Bind an offer to a product by hand, or change its flags",
                "requestBody": _body(_ref("OfferPatch")),
                "responses": _responses({200: _json(_ref("Offer"))}, *_BODY_ERRORS, 404),
            },
        },
        "/offers/listing-jobs": {
            "post": {
                "summary": "List every product with an EAN and no offer on the account",
                "description": "202 with the job (its listings are carried out by the daemon"
                " within the seller's write budget); with `dry_run`, 200 with what it would do.",
                "requestBody": _body(_ref("ListingJobRequest")),
                "responses": _responses(
                    {202: _json(_ref("ListingJob")), 200: _json(_ref("ListingJobDryRun"))},
                    *_BODY_ERRORS,
                    404,
                    409,
                ),
            },
            "get": {
                "summary": "Listing jobs, newest first",
                "parameters": [
                    _query("account_id", _ID),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                ],
                "responses": _responses(
                    {200: _json(_obj({"items": {"type": "array", "items": _ref("ListingJob")}}))},
                    422,
                ),
            },
        },
        "/offers/listing-jobs/{id}": {
            "parameters": [_ACCOUNT_ID],
            "get": {
                "summary": "A listing job's progress and its latest refusals and skips",
                "responses": _responses({200: _json(_ref("ListingJob"))}, 404),
            },
        },
        "/offers/listing-jobs/{id}/cancel": {
            "parameters": [_ACCOUNT_ID],
            "post": {
                "summary": "Cancel a listing job: its listings not yet sent to Allegro fail"
                " (`allegro_sync.cancelled`); those sent end as Allegro decides. The job",
                "responses": _responses({200: _json(_ref("ListingJob"))}, 404),
            },
        },
        "/customers": {
            "get": {
                "summary": "Customers, by id",
                "parameters": [
                    *_customer_filters(),
                    _LIMIT,
                    _query("cursor", _STR, "`next` of the previous page"),
                ],
                "responses": _responses({200: _json(_ref("CustomerPage"))}, 422),
            }
        },
        "/customers/export": {
            "get": {
                "summary": "The selected customers as a file, streamed",
                "parameters": [
                    *_customer_filters(),
                    _query("format", {"type": "string", "enum": list(EXPORT_FORMATS)}),
                ],
                "responses": _responses({200: exports}, 422, 429),
            }
        },
    }


def admin_openapi() -> dict[str, Any]:
    """The admin API's OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "allegro-sync admin API",
            "version": "1",
            "description": (
                "Accounts, orders, offers and customers of a running allegro-sync daemon. "
                "Every route but the health probes, the metrics and the OAuth callback needs "
                "`Authorization: Bearer <ADMIN_TOKEN>`, this document included. Every error "
                'is JSON: `{"error": code, "detail": text}`, with `field` when a '
                "parameter or field is at fault; never a 500 for bad input."
            ),
        },
        "security": [{"adminToken": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
    }


def add_openapi_route(app: web.Application) -> None:
    """``GET /openapi.json``: the document, built once."""
    body = admin_openapi()

    async def serve(_request: web.Request) -> web.Response:
        return web.json_response(body)

    app.router.add_get(PATH, serve)
