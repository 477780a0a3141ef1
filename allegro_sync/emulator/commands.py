"""Batch offer commands (price, quantity, publication): client UUIDs, asynchronous tasks."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from . import context
from .auth import scope, seller_caller
from .clock import iso, parse_iso
from .context import Emulator
from .errors import ApiError, error_entry, json_response, not_found, rate_limited, validation
from .models import Command, Offer, Task
from .offer_ops import (
    OfferRuleError,
    activate_offer,
    end_offer,
    schedule_activation,
    set_price,
    set_stock,
)
from .orders import read_json
from .params import int_param

KINDS = {
    "offer-price-change-commands": ("price", "price"),
    "offer-quantity-change-commands": ("quantity", "quantity"),
    "offer-publication-commands": ("publication", "publication"),
}
MAX_OFFERS = 1000
PRICE_TYPES = (
    "FIXED_PRICE",
    "INCREASE_PRICE",
    "DECREASE_PRICE",
    "INCREASE_PERCENTAGE",
    "DECREASE_PERCENTAGE",
)


def _offer_ids(body: dict[str, Any]) -> list[str]:
    criteria = body.get("offerCriteria")
    if not isinstance(criteria, list) or not criteria:
        raise validation("offerCriteria is required", "offerCriteria")
    ids: list[str] = []
    for criterion in criteria:
        if not isinstance(criterion, dict) or criterion.get("type") != "CONTAINS_OFFERS":
            raise validation("Only CONTAINS_OFFERS criteria are supported", "offerCriteria")
        for entry in criterion.get("offers") or []:
            if not isinstance(entry, dict) or not entry.get("id"):
                raise validation("Offer id is required", "offerCriteria.offers.id")
            ids.append(str(entry["id"]))
    return ids


def _validate(kind: str, body: dict[str, Any], emulator: Emulator) -> None:
    if kind == "price":
        mod = body.get("modification") or {}
        if mod.get("type") not in PRICE_TYPES:
            raise validation("Unknown modification.type", "modification.type")
    elif kind == "quantity":
        mod = body.get("modification") or {}
        if mod.get("changeType") not in ("FIXED", "GAIN") or not isinstance(mod.get("value"), int):
            raise validation(
                "modification needs changeType FIXED|GAIN and an integer value", "modification"
            )
        if (
            mod["changeType"] == "FIXED"
            and mod["value"] < 1
            and emulator.config.switches.quantity_below_one == "reject"
        ):
            raise ApiError(
                422,
                "INCORRECT_QUANTITY_VALUE",
                "Incorrect quantity value",
                path="modification.value",
            )
    else:
        pub = body.get("publication") or {}
        if pub.get("action") not in ("ACTIVATE", "END"):
            raise validation("publication.action must be ACTIVATE or END", "publication.action")
        scheduled = pub.get("scheduledFor")
        if scheduled is not None:
            if pub["action"] != "ACTIVATE":
                raise validation(
                    "scheduledFor is allowed only for ACTIVATE", "publication.scheduledFor"
                )
            try:
                when = parse_iso(str(scheduled))
            except ValueError:
                raise validation("Invalid scheduledFor", "publication.scheduledFor") from None
            if when < emulator.clock.now():
                raise validation(
                    "You cannot schedule activating an offer in the past",
                    "publication.scheduledFor",
                )


def _report(command: Command) -> dict[str, Any]:
    done = command.completed_at is not None
    success = sum(1 for t in command.tasks if t.status == "SUCCESS")
    failed = sum(1 for t in command.tasks if t.status == "FAIL")
    return {
        "id": command.id,
        "createdAt": iso(command.created_at),
        "completedAt": iso(command.completed_at),
        "taskCount": {
            "total": len(command.tasks) if done else 0,
            "success": success,
            "failed": failed,
        },
    }


async def put_command(request: web.Request) -> web.Response:
    """``PUT /sale/<kind>-commands/{commandId}`` -> 201 with zero counters."""
    found, seller = seller_caller(request, scope("sale:offers:write"))
    emulator = context.get(request)
    kind, field = KINDS[request.match_info["kind"]]
    command_id = request.match_info["command_id"]
    try:
        uuid.UUID(command_id)
    except ValueError:
        raise validation("commandId must be a UUID", "commandId") from None
    key = (kind, command_id)
    if key in emulator.market.commands:
        raise ApiError(409, "CONFLICT", "Command id was already used")
    body = await read_json(request)
    if not isinstance(body, dict):
        raise validation("Body must be an object")
    offer_ids = _offer_ids(body)
    if len(offer_ids) > MAX_OFFERS:
        raise validation(f"A command may contain at most {MAX_OFFERS} offers", "offerCriteria")
    _validate(kind, body, emulator)
    if not emulator.budget.try_spend(seller.id, kind, len(offer_ids)):
        raise rate_limited(None)
    now = emulator.clock.now()
    command = Command(
        kind=kind,
        id=command_id,
        seller_id=seller.id,
        client_id=found.client_id,
        body=body,
        created_at=now,
        tasks=[Task(offer_id=i, field_name=field, scheduled_at=now) for i in offer_ids],
    )
    emulator.market.commands[key] = command
    emulator.market.recordings.commands.append(
        {
            "kind": kind,
            "id": command_id,
            "seller_id": seller.id,
            "body": body,
            "offers": offer_ids,
            "created_at": iso(now),
        }
    )
    emulator.spawn(_complete_later(emulator, command))
    report = _report(command)
    report["taskCount"] = {"total": 0, "success": 0, "failed": 0}
    return json_response(report, status=201)


async def _complete_later(emulator: Emulator, command: Command) -> None:
    await asyncio.sleep(emulator.config.task_completion_delay)
    execute(emulator, command)


def execute(emulator: Emulator, command: Command) -> None:
    """Apply a command's tasks, recording per-offer success or failure."""
    market = emulator.market
    for task in command.tasks:
        offer = market.visible_offer(task.offer_id)
        try:
            if offer is None:
                raise OfferRuleError("OfferNotFoundException", f"Offer {task.offer_id} not found.")
            if offer.seller_id != command.seller_id:
                raise OfferRuleError("AccessDenied", "The offer belongs to another seller.")
            _apply(emulator, command, offer)
        except OfferRuleError as err:
            task.status = "FAIL"
            task.message = err.message
            task.errors = [error_entry(err.code, err.message)]
        else:
            task.status = "SUCCESS"
            task.message = None
        task.finished_at = market.now()
    command.completed_at = market.now()


def _apply(emulator: Emulator, command: Command, offer: Offer) -> None:
    market = emulator.market
    body = command.body
    if command.kind == "quantity":
        mod = body["modification"]
        new = mod["value"] if mod["changeType"] == "FIXED" else offer.stock + mod["value"]
        if new < 1:
            raise OfferRuleError(
                "INVALID_OFFER_QUANTITY", "The quantity can not be changed to less than 1."
            )
        set_stock(market, offer, new)
    elif command.kind == "price":
        if offer.format == "AUCTION":
            raise OfferRuleError(
                "OFFER_PRICE_CHANGE_ERROR", "The Buy Now price of an auction cannot be changed."
            )
        set_price(market, offer, _new_price(body["modification"], offer))
    else:
        action = body["publication"]["action"]
        scheduled = body["publication"].get("scheduledFor")
        if action == "ACTIVATE" and scheduled is not None:
            schedule_activation(market, offer, parse_iso(str(scheduled)))
        elif action == "ACTIVATE":
            activate_offer(market, offer)
        else:
            end_offer(market, offer)


def _new_price(mod: dict[str, Any], offer: Offer) -> Decimal:
    try:
        kind = mod["type"]
        if kind == "FIXED_PRICE":
            price = Decimal(str(mod["price"]["amount"]))
        elif kind in ("INCREASE_PRICE", "DECREASE_PRICE"):
            delta = Decimal(str(mod["value"]["amount"]))
            price = offer.price + delta if kind == "INCREASE_PRICE" else offer.price - delta
        else:
            pct = Decimal(str(mod["percentage"])) / 100
            factor = 1 + pct if kind == "INCREASE_PERCENTAGE" else 1 - pct
            price = offer.price * factor
    except (KeyError, TypeError, InvalidOperation):
        raise OfferRuleError("OFFER_PRICE_CHANGE_ERROR", "Invalid price modification.") from None
    price = price.quantize(Decimal("0.01"))
    if price <= 0:
        raise OfferRuleError("OFFER_PRICE_CHANGE_ERROR", "The price must be positive.")
    return price


def _own_command(request: web.Request) -> Command:
    found, seller = seller_caller(request, scope("sale:offers:write"))
    del found
    emulator = context.get(request)
    kind, _ = KINDS[request.match_info["kind"]]
    command = emulator.market.commands.get((kind, request.match_info["command_id"]))
    if command is None or command.seller_id != seller.id:
        raise not_found("Command not found")
    return command


async def get_command(request: web.Request) -> web.Response:
    """``GET …-commands/{id}``: the general report."""
    return json_response(_report(_own_command(request)))


async def get_tasks(request: web.Request) -> web.Response:
    """``GET …-commands/{id}/tasks``: per-offer results (limit 1-1000, offset 0-999)."""
    command = _own_command(request)
    limit = int_param(request, "limit", 100, 1, 1000)
    offset = int_param(request, "offset", 0, 0, 999)
    tasks = [
        {
            "offer": {"id": t.offer_id},
            "field": t.field_name,
            "status": t.status,
            "message": t.message,
            "errors": t.errors,
        }  # CommandTask has no times (scheduledAt / finishedAt are not in the 2026 spec)
        for t in command.tasks[offset : offset + limit]
    ]
    return json_response({"tasks": tasks})


def routes() -> list[web.RouteDef]:
    """Batch command routes."""
    kinds = (
        "{kind:offer-price-change-commands|offer-quantity-change-commands|"
        "offer-publication-commands}"
    )
    return [
        web.put(f"/sale/{kinds}/{{command_id}}", put_command),
        web.get(f"/sale/{kinds}/{{command_id}}", get_command),
        web.get(f"/sale/{kinds}/{{command_id}}/tasks", get_tasks),
    ]
