"""Allegro's message centre, the part a seller uses to write to a buyer about an order:
``POST /messaging/messages`` (spec ``newMessagePOST``: ``NewMessage {recipient {login}, text
(at most 2000 characters), attachments, order {id}}``, the order id required since 2025-02-28,
answer 201 ``Message``). The body is validated as Allegro would (422 ``VALIDATION_ERROR``),
never echoed: the recipient must be the order's buyer and the order the seller's."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from . import context
from .auth import scope, seller_caller
from .clock import iso
from .errors import json_response, not_found, validation
from .orders import read_json

MAX_TEXT = 2000  # NewMessage.text maxLength in the spec


async def new_message(request: web.Request) -> web.Response:
    """``POST /messaging/messages`` -> 201 ``Message``."""
    _, seller = seller_caller(request, scope("messaging"))
    emulator = context.get(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise validation("Body must be an object")
    recipient = body.get("recipient")
    if not isinstance(recipient, dict) or not isinstance(recipient.get("login"), str):
        raise validation("recipient.login is required", "recipient.login")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise validation("text is required", "text")
    if len(text) > MAX_TEXT:
        raise validation(f"text must be at most {MAX_TEXT} characters long", "text")
    attachments = body.get("attachments")
    if attachments not in (None, []):
        raise validation("Unknown attachment", "attachments")
    order = body.get("order")
    if not isinstance(order, dict) or not isinstance(order.get("id"), str):
        raise validation("order.id is required", "order.id")
    try:
        uuid.UUID(order["id"])
    except ValueError:
        raise validation("order.id must be a checkout form id", "order.id") from None
    form = emulator.market.forms.get(order["id"])
    if form is None or form.seller_id != seller.id:
        raise not_found("Order not found")
    if recipient["login"] != form.buyer.login:
        raise validation("The recipient is not the buyer of this order", "recipient.login")
    now = emulator.clock.now()
    message: dict[str, Any] = {
        "id": emulator.market.ids.uuid(),
        "status": "DELIVERED",
        "type": "MESSAGE_CENTER",
        "createdAt": iso(now),
        "thread": {"id": emulator.market.ids.uuid()},
        "author": {"login": seller.login, "isInterlocutor": False},
        "text": text,
        "subject": None,
        "relatesTo": {"offer": None, "order": {"id": form.id}},
        "hasAdditionalAttachments": False,
        "attachments": [],
        "additionalInformation": None,
    }
    emulator.market.recordings.messages.append(
        {**message, "seller_id": seller.id, "recipient": recipient["login"]}
    )
    return json_response(message, status=201)


def routes() -> list[web.RouteDef]:
    """The message-centre routes."""
    return [web.post("/messaging/messages", new_message)]
