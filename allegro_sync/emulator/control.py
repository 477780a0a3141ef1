"""The control API under ``/__control__``: how tests and the demo drive the marketplace.

No authentication; plain ``application/json``. See README.md for the endpoint list.
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from . import context
from .bulk import long_lived_allocation
from .catalog import category_dto
from .clock import iso
from .commands import execute
from .errors import dumps
from .latency import PROFILES, parse_groups
from .models import CheckoutForm, Offer, Seller
from .offer_ops import OfferRuleError, create_offer, create_seller, end_offer
from .orders import ORDER_EVENT_TYPES
from .sales import SaleError, cancel, fill_in, merge_and_pay, pay, purchase
from .views import checkout_form, offer_images

P = "/__control__"


def ok(data: Any, status: int = 200) -> web.Response:
    """A control API answer."""
    return web.Response(text=dumps(data), status=status, content_type="application/json")


def bad(message: str, status: int = 400) -> web.Response:
    """A control API error."""
    return ok({"error": message}, status)


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    data = json.loads(await request.text())
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def _seller_json(seller: Seller) -> dict[str, Any]:
    return {
        "id": seller.id,
        "login": seller.login,
        "sandbox": seller.sandbox,
        "blocked": seller.blocked,
        "extra_emails": seller.extra_emails,
        "email": seller.email,
    }


def _offer_json(offer: Offer) -> dict[str, Any]:
    return {
        "id": offer.id,
        "seller_id": offer.seller_id,
        "name": offer.name,
        "format": offer.format,
        "status": offer.status,
        "stock": offer.stock,
        "price": str(offer.price),
        "currency": offer.currency,
        "image_url": offer.image_url,
        "external_id": offer.external_id,
        "ean": offer.ean,
        "images": offer_images(offer),
        "description": offer.details.get("description"),
        "product_parameters": offer.details.get("product_parameters") or [],
        "parameters": offer.details.get("parameters") or [],
        "ended_at": iso(offer.ended_at),
        "ended_by": offer.ended_by,
        "archived": offer.archived,
        "category_id": offer.category_id,
        # what POST /sale/product-offers set (after-sales ids, shipping rates, location, ...)
        "details": offer.details,
    }


async def post_products(request: web.Request) -> web.Response:
    """``POST /products {"products": [{gtin, name, category_id, brand?}]}``: catalogue
    products (LISTED) beside the seeded ones."""
    body = await _body(request)
    items = body.get("products")
    if not isinstance(items, list) or not items:
        return bad("products must be a non-empty list")
    catalogue = context.get(request).catalogue
    added = []
    for item in items:
        if not isinstance(item, dict) or not str(item.get("gtin", "")).isdigit():
            return bad("each product needs a numeric gtin")
        if category_dto(str(item.get("category_id"))) is None:
            return bad(f"no category {item.get('category_id')!r}")
        product = catalogue.add(
            str(item["gtin"]),
            str(item.get("name") or f"Produkt {item['gtin']}"),
            str(item["category_id"]),
            brand=item.get("brand"),
        )
        added.append(product.id)
    return ok({"ids": added}, 201)


async def post_seller(request: web.Request) -> web.Response:
    """``POST /sellers {login, sandbox?, extra_emails?, company_name?, tax_id?}``."""
    body = await _body(request)
    try:
        seller = create_seller(
            context.get(request).market,
            str(body["login"]),
            sandbox=body.get("sandbox"),
            extra_emails=body.get("extra_emails"),
            company_name=body.get("company_name"),
            tax_id=body.get("tax_id"),
        )
    except (KeyError, ValueError) as err:
        return bad(str(err))
    return ok(_seller_json(seller), 201)


def _seller(request: web.Request) -> Seller:
    seller = context.get(request).market.sellers.get(request.match_info["seller_id"])
    if seller is None:
        raise web.HTTPNotFound(text="unknown seller")
    return seller


async def post_offers(request: web.Request) -> web.Response:
    """``POST /sellers/{id}/offers`` one offer, or ``count`` offers from the same template
    (names, external ids and EANs get a ``{n}`` placeholder filled with 1..count)."""
    market = context.get(request).market
    seller = _seller(request)
    body = await _body(request)
    count = int(body.get("count", 0))
    try:
        price = Decimal(str(body.get("price", "10.00")))
    except InvalidOperation:
        return bad("bad price")

    def make(n: int | None) -> Offer:
        def fill(value: Any) -> Any:
            return value.replace("{n}", str(n)) if isinstance(value, str) and n else value

        # ean_base gives numbered offers distinct numeric EANs (base + n).
        ean = (
            str(int(body["ean_base"]) + n) if n and body.get("ean_base") else fill(body.get("ean"))
        )
        return create_offer(
            market,
            seller,
            name=fill(body.get("name", "Offer {n}" if n else "Offer")),
            format=body.get("format", "BUY_NOW"),
            stock=int(body.get("stock", 1)),
            price=price,
            currency=body.get("currency", "PLN"),
            image_url=fill(body.get("image_url")),
            external_id=fill(body.get("external_id")),
            ean=ean,
            status=body.get("status", "ACTIVE"),
            category_id=body.get("category_id", "165"),
            ended_days_ago=body.get("ended_days_ago"),
        )

    try:
        if count:
            with long_lived_allocation():
                offers = [make(n) for n in range(1, count + 1)]
            return ok(
                {
                    "count": len(offers),
                    "first_id": offers[0].id,
                    "last_id": offers[-1].id,
                    "ids": [o.id for o in offers],
                },
                201,
            )
        return ok(_offer_json(make(None)), 201)
    except ValueError as err:
        return bad(str(err))


async def get_offer(request: web.Request) -> web.Response:
    """``GET /offers/{id}``: the offer as the emulator holds it."""
    offer = context.get(request).market.offers.get(request.match_info["offer_id"])
    if offer is None:
        return bad("unknown offer", 404)
    return ok(_offer_json(offer))


async def get_seller_offers(request: web.Request) -> web.Response:
    """``GET /sellers/{id}/offers``: every offer of the seller, in creation order (archived
    ones too), as the emulator holds them."""
    market = context.get(request).market
    ids = market.offers_by_seller.get(request.match_info["seller_id"], [])
    return ok({"offers": [_offer_json(market.offers[i]) for i in ids]})


async def post_end_offer(request: web.Request) -> web.Response:
    """``POST /offers/{id}/end`` (as the seller ending it in the browser)."""
    market = context.get(request).market
    offer = market.offers.get(request.match_info["offer_id"])
    if offer is None:
        return bad("unknown offer", 404)
    body = await _body(request)
    try:
        end_offer(market, offer, str(body.get("ended_by", "USER")))
    except OfferRuleError as err:
        return bad(err.message, 409)
    return ok(_offer_json(offer))


SALE_TERMS = ("tax", "discount", "voucher", "smart", "surcharge")


async def post_purchase(request: web.Request) -> web.Response:
    """``POST /purchases {offer_id, quantity, buyer, payment_type, message_to_seller?, tax?,
    discount?, voucher?, smart?, surcharge?, then?, count?}``; ``then`` may be ``fill-in``,
    ``pay`` or ``cancel`` to continue at once; ``count`` makes that many purchases (each with a
    new buyer unless ``buyer.login`` is given); the terms are ``sales.purchase``'s."""
    market = context.get(request).market
    body = await _body(request)
    offer = market.offers.get(str(body.get("offer_id")))
    if offer is None or offer.archived:
        return bad("unknown offer", 404)
    if body.get("seller_id") and body["seller_id"] != offer.seller_id:
        return bad("offer belongs to another seller")
    count = int(body.get("count", 1))  # many purchases in one call, for benchmarks
    if not 1 <= count <= 100_000:
        return bad("count must be between 1 and 100000")
    ids = []
    try:
        for _ in range(count):
            form = purchase(
                market,
                offer,
                int(body.get("quantity", 1)),
                body.get("buyer") or {},
                str(body.get("payment_type", "ONLINE")),
                body.get("message_to_seller"),
                {k: body[k] for k in SALE_TERMS if k in body},
            )
            then = body.get("then")
            if then == "fill-in":
                fill_in(market, form)
            elif then == "pay":
                pay(market, form)
            elif then == "cancel":
                cancel(market, form)
            ids.append(form.id)
    except SaleError as err:
        return bad(str(err), 409)
    if count > 1:
        return ok({"checkout_form_ids": ids, "count": len(ids)}, 201)
    return ok({"checkout_form_id": form.id, "id": form.id, "status": form.status}, 201)


def _form(request: web.Request) -> CheckoutForm:
    form = context.get(request).market.forms.get(request.match_info["form_id"])
    if form is None:
        raise web.HTTPNotFound(text="unknown checkout form")
    return form


async def post_form_action(request: web.Request) -> web.Response:
    """``POST /checkout-forms/{id}/pay|cancel|fill-in`` (``cancel {auto: true}`` for
    AUTO_CANCELLED)."""
    market = context.get(request).market
    form = _form(request)
    action = request.match_info["action"]
    body = await _body(request)
    try:
        if action == "pay":
            pay(market, form)
        elif action == "fill-in":
            fill_in(market, form)
        else:
            cancel(market, form, auto=bool(body.get("auto", False)))
    except SaleError as err:
        return bad(str(err), 409)
    return ok(checkout_form(form))


async def get_form(request: web.Request) -> web.Response:
    """``GET /checkout-forms/{id}``: as Allegro renders it."""
    return ok(checkout_form(_form(request)))


async def post_merge(request: web.Request) -> web.Response:
    """``POST /checkout-forms/merge {ids}``: the buyer pays several forms at once."""
    market = context.get(request).market
    body = await _body(request)
    forms = [market.forms.get(str(i)) for i in body.get("ids", [])]
    if any(f is None for f in forms):
        return bad("unknown checkout form", 404)
    try:
        merged = merge_and_pay(market, [f for f in forms if f is not None])
    except SaleError as err:
        return bad(str(err), 409)
    return ok({"checkout_form_id": merged.id, "status": merged.status}, 201)


async def post_clock(request: web.Request) -> web.Response:
    """``POST /clock {advance_seconds}``."""
    emulator = context.get(request)
    body = await _body(request)
    try:
        now = emulator.clock.advance(float(body.get("advance_seconds", 0)))
    except ValueError as err:
        return bad(str(err))
    emulator.market.sweep()
    return ok({"now": iso(now)})


async def get_clock(request: web.Request) -> web.Response:
    """``GET /clock``."""
    return ok({"now": iso(context.get(request).clock.now())})


async def post_block(request: web.Request) -> web.Response:
    """``POST /sellers/{id}/block``: tokens die (switchable), logins are refused."""
    emulator = context.get(request)
    seller = _seller(request)
    seller.blocked = True
    revoked = 0
    if emulator.config.switches.blocked_seller == "revoke":
        revoked = emulator.tokens.revoke_seller(seller.id)
    return ok({**_seller_json(seller), "revoked_tokens": revoked})


async def post_unblock(request: web.Request) -> web.Response:
    """``POST /sellers/{id}/unblock``."""
    seller = _seller(request)
    seller.blocked = False
    return ok(_seller_json(seller))


async def post_revoke(request: web.Request) -> web.Response:
    """``POST /sellers/{id}/revoke-tokens`` (password change, "log out everywhere")."""
    emulator = context.get(request)
    seller = _seller(request)
    return ok({"revoked_tokens": emulator.tokens.revoke_seller(seller.id)})


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _endpoints(app: web.Application) -> set[str]:
    """Every ``METHOD /route`` of the emulated API (the keys of ``GET /requests``)."""
    found = set()
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        if route.method in METHODS and not canonical.startswith(P):
            found.add(f"{route.method} {canonical}")
    return found


def _number(body: dict[str, Any], key: str, *, most: float) -> float:
    value = body.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= most:
        raise ValueError(f"{key} must be a number from 0 to {most:g}")
    return float(value)


def _faults_of(body: dict[str, Any], endpoints: set[str]) -> dict[str, Any]:
    """The checked fields of ``POST /faults``; ValueError names the first bad one."""
    unknown = set(body) - {
        "status_429_seconds",
        "error_5xx_rate",
        "latency_ms",
        "drop_connections_rate",
        "paths",
        "endpoint_latency_ms",
        "not_json_count",
        "not_json_kind",
    }
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    paths = body.get("paths") or []
    if not isinstance(paths, list) or not all(
        isinstance(p, str) and p.startswith("/") for p in paths
    ):
        raise ValueError("paths must be a list of path prefixes starting with /")
    per_endpoint = body.get("endpoint_latency_ms") or {}
    if not isinstance(per_endpoint, dict):
        raise ValueError('endpoint_latency_ms must be an object {"METHOD /route": ms}')
    for endpoint, delay in per_endpoint.items():
        if endpoint not in endpoints:
            raise ValueError(
                f"endpoint_latency_ms: no endpoint {endpoint!r} (use the route templates of"
                " GET /__control__/requests, e.g. 'GET /sale/offers')"
            )
        if isinstance(delay, bool) or not isinstance(delay, int) or not 0 <= delay <= 60_000:
            raise ValueError(f"endpoint_latency_ms[{endpoint!r}] must be 0-60000 ms")
    return {
        "status_429_seconds": _number(body, "status_429_seconds", most=86_400),
        "error_5xx_rate": _number(body, "error_5xx_rate", most=1),
        "latency_ms": int(_number(body, "latency_ms", most=60_000)),
        "drop_connections_rate": _number(body, "drop_connections_rate", most=1),
        "paths": list(paths),
        "endpoint_latency_ms": {k: int(v) for k, v in per_endpoint.items()},
        "not_json_count": int(_number(body, "not_json_count", most=1_000_000)),
        "not_json_kind": _not_json_kind(body),
    }


def _not_json_kind(body: dict[str, Any]) -> str:
    kind = body.get("not_json_kind", "html")
    if kind not in ("html", "empty", "truncated"):
        raise ValueError("not_json_kind must be html, empty or truncated")
    return str(kind)


async def post_faults(request: web.Request) -> web.Response:
    """``POST /faults {status_429_seconds?, error_5xx_rate?, latency_ms?,
    drop_connections_rate?, paths?, endpoint_latency_ms?, not_json_count?, not_json_kind?}``
    replaces the active faults (400 for a bad field, the faults unchanged)."""
    emulator = context.get(request)
    body = await _body(request)
    try:
        checked = _faults_of(body, _endpoints(request.app))
    except ValueError as err:
        return bad(str(err))
    emulator.faults.clear()
    faults = emulator.faults.faults
    faults.status_429_until = emulator.clock.timestamp() + checked["status_429_seconds"]
    faults.error_5xx_rate = checked["error_5xx_rate"]
    faults.latency_ms = checked["latency_ms"]
    faults.drop_connections_rate = checked["drop_connections_rate"]
    faults.paths = checked["paths"]
    faults.endpoint_latency_ms = checked["endpoint_latency_ms"]
    faults.not_json_count = checked["not_json_count"]
    faults.not_json_kind = checked["not_json_kind"]
    return ok({"ok": True})


async def post_lose_order_events(request: web.Request) -> web.Response:
    """``POST /order-events/lose {type, count}``: the next ``count`` order events of ``type``
    are never written to the journal (Allegro lost READY_FOR_PROCESSING events, AA#8623); the
    checkout forms change as ever. ``count`` 0 takes it back. Answers what is still to lose."""
    emulator = context.get(request)
    body = await _body(request)
    event_type, count = body.get("type"), body.get("count", 1)
    if event_type not in ORDER_EVENT_TYPES:
        return bad(f"type must be one of {', '.join(ORDER_EVENT_TYPES)}")
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 10_000:
        return bad("count must be an integer from 0 to 10000")
    lost = emulator.market.lost_order_events
    lost[event_type] = count
    return ok({"pending": {k: v for k, v in lost.items() if v}})


async def delete_faults(request: web.Request) -> web.Response:
    """``DELETE /faults``."""
    context.get(request).faults.clear()
    return ok({"ok": True})


async def get_latency(request: web.Request) -> web.Response:
    """``GET /latency``: the active profile, its groups and the delays drawn lately."""
    return ok(context.get(request).latency.describe())


async def post_latency(request: web.Request) -> web.Response:
    """``POST /latency {profile?, groups?, seed?}``: switch to a named profile (``none``,
    ``realistic``) or, with ``groups``, a custom one (``{group: {median_ms, p99_ms?}}``); the
    generators start again from ``seed`` (default: the emulator's). 400 for a bad field, the
    profile unchanged."""
    latency = context.get(request).latency
    body = await _body(request)
    unknown = set(body) - {"profile", "groups", "seed"}
    if unknown:
        return bad(f"unknown fields: {', '.join(sorted(unknown))}")
    seed = body.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        return bad("seed must be an integer")
    try:
        if "groups" in body:
            latency.set(str(body.get("profile", "custom")), parse_groups(body["groups"]), seed)
        elif body.get("profile") in PROFILES:
            latency.set(str(body["profile"]), seed=seed)
        else:
            return bad(f"profile must be one of {', '.join(PROFILES)} (or give groups)")
    except ValueError as err:
        return bad(str(err))
    return ok(latency.describe())


async def get_recorded(request: web.Request) -> web.Response:
    """``GET /commands|invoices|fulfillments|messages|shipments|edits``: what the emulator
    received (``edits``: the bodies of accepted ``PATCH /sale/product-offers/{id}``)."""
    recordings = context.get(request).market.recordings
    what = request.match_info["what"]
    items: list[dict[str, Any]] = getattr(recordings, what)
    return ok({what: items, "count": len(items)})


async def get_requests(request: web.Request) -> web.Response:
    """``GET /requests``: API request counts per ``METHOD /route``, per client id, per
    User-Agent and per seller (calls with a user token)."""
    recordings = context.get(request).market.recordings
    return ok(
        {
            "total": sum(recordings.requests.values()),
            "by_path": dict(recordings.requests),
            "by_client": dict(recordings.requests_by_client),
            "by_user_agent": dict(recordings.requests_by_user_agent),
            "by_seller": _by_seller(recordings.requests_by_seller),
        }
    )


def _by_seller(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (seller_id, route), count in counts.items():
        out.setdefault(seller_id, {})[route] = count
    return out


async def delete_requests(request: web.Request) -> web.Response:
    """``DELETE /requests``: reset the counters."""
    recordings = context.get(request).market.recordings
    recordings.requests.clear()
    recordings.requests_by_client.clear()
    recordings.requests_by_user_agent.clear()
    recordings.requests_by_seller.clear()
    return ok({"ok": True})


async def post_device(request: web.Request) -> web.Response:
    """``POST /device/approve {user_code, seller_id}`` and ``/device/deny {user_code}``."""
    emulator = context.get(request)
    body = await _body(request)
    record = emulator.devices_by_user_code.get(str(body.get("user_code", "")).replace(" ", ""))
    if record is None:
        return bad("unknown user_code", 404)
    if request.match_info["action"] == "deny":
        record.denied = True
        return ok({"ok": True})
    seller = emulator.market.sellers.get(str(body.get("seller_id")))
    if seller is None:
        return bad("unknown seller", 404)
    if seller.blocked:
        record.denied = True
        return bad("seller is blocked", 409)
    record.seller_id = seller.id
    return ok({"ok": True})


async def post_authorize_as(request: web.Request) -> web.Response:
    """``POST /authorize-as {seller_id}``: the seller "logged in" on the consent page."""
    emulator = context.get(request)
    body = await _body(request)
    seller_id = body.get("seller_id")
    if seller_id is not None and seller_id not in emulator.market.sellers:
        return bad("unknown seller", 404)
    emulator.authorize_as = seller_id
    return ok({"seller_id": seller_id})


async def post_rate_limit_reset(request: web.Request) -> web.Response:
    """``POST /rate-limits/reset``: forget request counters and blocks."""
    context.get(request).limiter.reset()
    return ok({"ok": True})


async def post_run_commands(request: web.Request) -> web.Response:
    """``POST /commands/complete``: finish every pending batch command now."""
    emulator = context.get(request)
    done = 0
    for command in emulator.market.commands.values():
        if command.completed_at is None:
            execute(emulator, command)
            done += 1
    return ok({"completed": done})


def routes() -> list[web.RouteDef]:
    """Control routes."""
    return [
        web.post(f"{P}/sellers", post_seller),
        web.post(f"{P}/products", post_products),
        web.post(f"{P}/sellers/{{seller_id}}/offers", post_offers),
        web.get(f"{P}/sellers/{{seller_id}}/offers", get_seller_offers),
        web.post(f"{P}/sellers/{{seller_id}}/block", post_block),
        web.post(f"{P}/sellers/{{seller_id}}/unblock", post_unblock),
        web.post(f"{P}/sellers/{{seller_id}}/revoke-tokens", post_revoke),
        web.get(f"{P}/offers/{{offer_id}}", get_offer),
        web.post(f"{P}/offers/{{offer_id}}/end", post_end_offer),
        web.post(f"{P}/purchases", post_purchase),
        web.post(f"{P}/checkout-forms/merge", post_merge),
        web.get(f"{P}/checkout-forms/{{form_id}}", get_form),
        web.post(f"{P}/checkout-forms/{{form_id}}/{{action:pay|cancel|fill-in}}", post_form_action),
        web.get(f"{P}/clock", get_clock),
        web.post(f"{P}/clock", post_clock),
        web.post(f"{P}/faults", post_faults),
        web.delete(f"{P}/faults", delete_faults),
        web.get(f"{P}/latency", get_latency),
        web.post(f"{P}/latency", post_latency),
        web.post(f"{P}/order-events/lose", post_lose_order_events),
        web.post(f"{P}/commands/complete", post_run_commands),
        web.get(
            f"{P}/{{what:commands|invoices|fulfillments|messages|shipments|edits}}", get_recorded
        ),
        web.get(f"{P}/requests", get_requests),
        web.delete(f"{P}/requests", delete_requests),
        web.post(f"{P}/device/{{action:approve|deny}}", post_device),
        web.post(f"{P}/authorize-as", post_authorize_as),
        web.post(f"{P}/rate-limits/reset", post_rate_limit_reset),
    ]
