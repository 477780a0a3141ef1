"""Parcels sent with Allegro ("Wysyłam z Allegro", issue 16 item 2): ``shipment.requested`` and
``shipment.cancel`` from the ERP, and the steps that take a parcel through Allegro's
shipment management (``/shipment-management/...``, allegro-2026.md 3).

The consumer's transaction only decides and persists: the order must be known, the account
must have a sender (``shipping_sender``), a package must be named or set as the account's
``default_package``; the create command's input (sender, the order's delivery address as the
receiver, packages, insurance, cash on delivery, reference, label format) and a fresh command
id are stored in ``parcels`` with the inbox claim, before any request. A redelivery is a
duplicate in the inbox: one parcel. ``advance`` then does one step of a row, outside any
transaction, for ``daemon/parcel_service.py``:

- ``requested``: ``POST shipments/create-commands`` with the stored command id (a retry after a
  crash or a lost answer sends the same id, which Allegro takes as the same command); Allegro's
  400/422 (an unknown delivery method, a field it refuses) ends the parcel as ``failed``;
- ``creating``: ``GET shipments/create-commands/{id}`` until it is not ``IN_PROGRESS`` (at its
  ``Retry-After``); ``ERROR``: ``failed`` with Allegro's errors; ``SUCCESS``: the parcel's
  waybill and carrier (``GET shipments/{id}``) and its label (``POST label``) are read, then the
  label is stored, the waybill joins the order's tracking numbers (``shipments``) and
  ``shipment.created`` goes to the outbox, in one transaction; a 404 (the command never
  arrived) sends it again;
- ``cancelling``: ``POST shipments/cancel-commands`` under a command id stored by
  ``shipment.cancel``, then followed the same way: ``shipment.cancelled``, or ``shipment.failed``
  with ``operation`` ``cancel`` (the parcel stays ``created``).

A failed parcel publishes ``shipment.failed`` with Allegro's words, its error list and trace id.

Retries are bounded (``RetryBounds``): a step whose requests keep failing in a way a retry
might cure (Allegro unreachable, 5xx, 429, a conflict) backs off from 2 s to 5 minutes and is
given up after ``max_failures`` such failures in a row, or once it has run ``give_up_after``
seconds (a command Allegro keeps ``IN_PROGRESS`` too): a create becomes ``failed`` with
``shipment.failed`` (error code ``GIVEN_UP``; the reason names the command id, since Allegro
may still carry out a command it received), a cancel is refused (the parcel stays
``created``). Either is an event-log entry ``parcel_given_up``.
The day's handover protocol and a courier pickup (item 3) are asked for by the admin API and the
CLI (``protocol``, ``pickup``).
"""

from __future__ import annotations

import asyncio
import base64
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg
import structlog

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import (
    AllegroConflict,
    AllegroError,
    AllegroForbidden,
    AllegroNotFound,
    AllegroRejected,
    AllegroUnavailable,
)
from allegro_sync.adapters.broker.publisher import OutgoingMessage
from allegro_sync.adapters.broker.topology import EVENTS_EXCHANGE
from allegro_sync.adapters.postgres import event_log, outbox, parcels, shipments
from allegro_sync.adapters.postgres.notifications import notify
from allegro_sync.contract import (
    SHIPMENT_CANCELLED,
    SHIPMENT_CREATED,
    SHIPMENT_FAILED,
    Package,
    ShipmentCancel,
    ShipmentCancelled,
    ShipmentCreated,
    ShipmentFailed,
    ShipmentRequested,
)
from allegro_sync.errors import BadInput, TransientError

log = structlog.get_logger(__name__)

BASE = "/shipment-management"
FILE = "application/octet-stream"
# How long a claimed row is left to one attempt before another replica may take it.
LEASE_SECONDS = 60.0
# Between status reads when Allegro's answer names no Retry-After, and the most we wait.
FOLLOW_SECONDS = 1.0
MAX_FOLLOW_SECONDS = 30.0
# A pickup command is followed this long by the caller (the admin API, the CLI).
PICKUP_WAIT_SECONDS = 60.0


class ParcelError(Exception):
    """Allegro refused a protocol or a pickup (its words), or they asked for unknown parcels."""


@dataclass(frozen=True)
class RetryBounds:
    """When a parcel's step (create, cancel) is given up: after ``max_failures`` failures in a
    row that a retry might have cured, or ``give_up_after`` seconds since the step began."""

    max_failures: int = 12
    give_up_after: float = 6 * 3600.0


DEFAULT_BOUNDS = RetryBounds()
# The error code of a step given up (``shipment.failed.errors[].code``).
GIVEN_UP = "GIVEN_UP"


# --- deciding (pure) -------------------------------------------------------------------------


def address_json(sender: Mapping[str, Any]) -> dict[str, Any]:
    """An account's ``shipping_sender`` as Allegro's ``AddressDto``."""
    out: dict[str, Any] = {
        "street": sender["street"],
        "postalCode": sender["postal_code"],
        "city": sender["city"],
        "countryCode": sender.get("country_code") or "PL",
        "email": sender["email"],
        "phone": sender["phone"],
    }
    if sender.get("name"):
        out["name"] = sender["name"]
    if sender.get("company"):
        out["company"] = sender["company"]
    return out


def receiver_of(form: Mapping[str, Any]) -> dict[str, Any]:
    """The order's delivery address as the receiver (``ReceiverAddressDto``); BadInput when the
    order has none (not filled in yet)."""
    delivery = form.get("delivery") or {}
    address = delivery.get("address") or {}
    buyer = form.get("buyer") or {}
    if not address.get("street") or not address.get("city"):
        raise BadInput("the order has no delivery address yet")
    name = " ".join(p for p in (address.get("firstName"), address.get("lastName")) if p)
    out: dict[str, Any] = {
        "street": address["street"],
        "postalCode": address.get("zipCode") or "",
        "city": address["city"],
        "countryCode": address.get("countryCode") or "PL",
        "email": buyer.get("email") or "",
        "phone": address.get("phoneNumber") or buyer.get("phoneNumber") or "",
    }
    if name:
        out["name"] = name
    if address.get("companyName"):
        out["company"] = address["companyName"]
    point = (delivery.get("pickupPoint") or {}).get("id")
    if point:
        out["point"] = point
    return out


def package_json(package: Package | Mapping[str, Any]) -> dict[str, Any]:
    """A package as Allegro's ``PackageRequestDto`` (centimetres, kilograms)."""
    p = package.model_dump() if isinstance(package, Package) else package

    def cm(value: Any) -> dict[str, Any]:
        return {"value": value, "unit": "CENTIMETER"}

    return {
        "type": p["type"],
        "length": cm(p["length"]),
        "width": cm(p["width"]),
        "height": cm(p["height"]),
        "weight": {"value": p["weight"], "unit": "KILOGRAMS"},
    }


def create_input(
    message: ShipmentRequested,
    form: Mapping[str, Any],
    sender: Mapping[str, Any] | None,
    default_package: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The create command's input (``ShipmentCreateRequestDto``); BadInput for what can never
    be sent: no sender, no package, no delivery method, no delivery address."""
    if not sender:
        raise BadInput(
            "the account has no shipping_sender (name, street, postal code, city, phone,"
            " e-mail): set it with PATCH /accounts/{id}"
        )
    packages = [package_json(p) for p in message.packages or []]
    if not packages:
        if not default_package:
            raise BadInput("no packages given and the account has no default_package")
        packages = [package_json(default_package)]
    method = message.delivery_method_id or ((form.get("delivery") or {}).get("method") or {}).get(
        "id"
    )
    if not method:
        raise BadInput("no delivery_method_id given and the order names none")
    body: dict[str, Any] = {
        "deliveryMethodId": method,
        "sender": address_json(sender),
        "receiver": receiver_of(form),
        "packages": packages,
        "labelFormat": message.label_format,
    }
    if message.reference:
        body["referenceNumber"] = message.reference
    if message.insurance:
        body["insurance"] = {
            "amount": f"{message.insurance.amount:.2f}",
            "currency": message.insurance.currency,
        }
    if message.cash_on_delivery:
        cod = message.cash_on_delivery
        body["cashOnDelivery"] = {"amount": f"{cod.amount:.2f}", "currency": cod.currency}
        if cod.owner_name:
            body["cashOnDelivery"]["ownerName"] = cod.owner_name
        if cod.iban:
            body["cashOnDelivery"]["iban"] = cod.iban
    return body


def retry_after(headers: Mapping[str, str]) -> float:
    """Allegro's ``Retry-After`` (seconds), bounded; ``FOLLOW_SECONDS`` without one."""
    try:
        seconds = float(headers.get("Retry-After") or FOLLOW_SECONDS)
    except ValueError:
        seconds = FOLLOW_SECONDS
    return min(max(seconds, 0.2), MAX_FOLLOW_SECONDS)


def backoff(attempts: int) -> float:
    """After a failure a retry may cure: exponential, capped at five minutes, with jitter."""
    delay: float = min(300.0, 2.0 * 2 ** min(max(attempts - 1, 0), 10))
    return delay * random.uniform(0.5, 1.0)


def give_up_reason(row: Mapping[str, Any], failures: int, last: str | None) -> str:
    """Why a step was given up (pure): the attempts, the time, the last failure, and for a create
    the command id Allegro may still carry out."""
    minutes = row["step_seconds"] / 60
    if last is None:
        why = f"Allegro had not ended the command after {minutes:.0f} min"
    else:
        why = f"gave up after {failures} failed attempts over {minutes:.0f} min (last: {last})"
    if row["status"] == "cancelling":
        return f"{why}; the cancel was not carried out (command {row['cancel_command_id']})"
    return (
        f"{why}; Allegro may still carry out create command {row['command_id']}: look in"
        " Allegro's panel before requesting the parcel again"
    )


def exhausted(row: Mapping[str, Any], failures: int, bounds: RetryBounds) -> bool:
    """Whether a step with ``failures`` failures in a row is given up (pure)."""
    return failures >= bounds.max_failures or row["step_seconds"] >= bounds.give_up_after


def refusal_of(errors: Sequence[Mapping[str, Any]]) -> str:
    """The words to show for Allegro's error list."""
    words = [str(e.get("userMessage") or e.get("message") or e.get("code") or "") for e in errors]
    return "; ".join(w for w in words if w) or "Allegro refused the parcel"


# --- the consumer's handlers ---------------------------------------------------------------


async def request_shipment(message: ShipmentRequested, conn: asyncpg.Connection) -> None:
    """``shipment.requested``: store the parcel with its command id (sent by the service)."""
    order = await conn.fetchrow(parcels.ORDER, message.checkout_form_id)
    if order is None:
        raise BadInput(f"unknown checkout form {message.checkout_form_id}: no such order")
    body = create_input(
        message, order["form"] or {}, order["shipping_sender"], order["default_package"]
    )
    command_id = uuid.uuid4()
    await conn.execute(
        parcels.INSERT,
        order["account_id"],
        message.checkout_form_id,
        command_id,
        body,
        message.label_format,
    )
    await event_log.write(
        conn,
        order["account_id"],
        "orders",
        "info",
        "parcel_requested",
        f"Parcel for order {message.checkout_form_id} requested from Allegro",
        details={"checkout_form_id": str(message.checkout_form_id), "command_id": str(command_id)},
    )
    await notify(conn, parcels.CHANNEL, "")


async def cancel_shipment(message: ShipmentCancel, conn: asyncpg.Connection) -> None:
    """``shipment.cancel``: store a cancel command for the parcel (sent by the service)."""
    row = await conn.fetchrow(parcels.BY_SHIPMENT_FOR_UPDATE, message.shipment_id)
    if row is None:
        raise BadInput(f"unknown shipment {message.shipment_id}: no parcel made here has it")
    if row["status"] in ("cancelled", "cancelling"):
        return  # cancelled already, or on its way
    if row["status"] != "created":
        raise BadInput(f"shipment {message.shipment_id} is {row['status']}: it cannot be cancelled")
    await conn.execute(parcels.START_CANCEL, row["id"], uuid.uuid4())
    await notify(conn, parcels.CHANNEL, "")


# --- the service's steps -------------------------------------------------------------------


async def advance(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    row: asyncpg.Record,
    bounds: RetryBounds = DEFAULT_BOUNDS,
) -> None:
    """One step of a claimed row (see the module docstring); a failure a retry may cure
    schedules the row again, within ``bounds``."""
    try:
        if row["status"] == "requested":
            await _send_create(allegro, pool, row)
        elif row["status"] == "creating":
            await _follow_create(allegro, pool, row, bounds)
        elif row["status"] == "cancelling":
            await _cancel(allegro, pool, row, bounds)
    except (AllegroUnavailable, TransientError, AllegroConflict, OSError) as exc:
        failures = row["failures"] + 1
        error = f"{type(exc).__name__}: {exc}"
        if exhausted(row, failures, bounds):
            await _give_up(pool, row, give_up_reason(row, failures, error))
            return
        delay = backoff(failures)
        await pool.execute(parcels.FAILED_ATTEMPT, row["id"], delay)
        log.warning(
            "parcel_step_postponed",
            parcel=row["id"],
            error=error,
            failures=failures,
            delay_seconds=round(delay, 1),
        )


async def _in_progress(
    pool: asyncpg.Pool, row: asyncpg.Record, wait: float, bounds: RetryBounds
) -> None:
    """Allegro has not ended the command: read it again after ``wait``, unless the step has
    run out of time."""
    if row["step_seconds"] >= bounds.give_up_after:
        await _give_up(pool, row, give_up_reason(row, row["failures"], None))
    else:
        await pool.execute(parcels.LATER, row["id"], wait)


async def _give_up(pool: asyncpg.Pool, row: asyncpg.Record, reason: str) -> None:
    errors = [{"code": GIVEN_UP, "message": reason}]
    if row["status"] == "cancelling":
        await _cancel_refused(pool, row, reason, errors, None, code="parcel_given_up")
    else:
        await _fail(pool, row, reason, errors, None, code="parcel_given_up")
    log.warning("parcel_given_up", parcel=row["id"], status=row["status"], reason=reason)


async def _send_create(allegro: AllegroRestClient, pool: asyncpg.Pool, row: asyncpg.Record) -> None:
    body = {"commandId": str(row["command_id"]), "input": row["request"]}
    try:
        response = await allegro.request(
            row["account_id"],
            "POST",
            f"{BASE}/shipments/create-commands",
            action="create parcel",
            json=body,
        )
    except (AllegroRejected, AllegroForbidden, AllegroNotFound) as exc:
        errors = getattr(exc, "errors", None) or [{"code": exc.code, "message": str(exc)}]
        await _fail(pool, row, refusal_of(errors), errors, exc.trace_id)
        return
    await pool.execute(parcels.MARK_SENT, row["id"], retry_after(response.headers))


async def _follow_create(
    allegro: AllegroRestClient, pool: asyncpg.Pool, row: asyncpg.Record, bounds: RetryBounds
) -> None:
    path = f"{BASE}/shipments/create-commands/{row['command_id']}"
    try:
        response = await allegro.request(row["account_id"], "GET", path, action="follow parcel")
    except AllegroNotFound:
        await pool.execute(parcels.MARK_UNSENT, row["id"])  # it never arrived: send it again
        return
    status = (response.body or {}).get("status")
    if status == "SUCCESS":
        await _created(allegro, pool, row, str(response.body["shipmentId"]))
    elif status == "ERROR":
        errors = list(response.body.get("errors") or [])
        await _fail(pool, row, refusal_of(errors), errors, response.headers.get("trace-id"))
    else:
        await _in_progress(pool, row, retry_after(response.headers), bounds)


async def _created(
    allegro: AllegroRestClient, pool: asyncpg.Pool, row: asyncpg.Record, shipment_id: str
) -> None:
    account_id = row["account_id"]
    details = await allegro.get(account_id, f"{BASE}/shipments/{shipment_id}", action="read parcel")
    packages = details.get("packages") or [{}]
    waybill = packages[0].get("waybill")
    carrier = details.get("carrier")
    label_body: dict[str, Any] = {"shipmentIds": [shipment_id]}
    if row["label_format"] == "PDF":
        label_body["pageSize"] = "A6"
    response = await allegro.request(
        account_id,
        "POST",
        f"{BASE}/label",
        action="read parcel label",
        json=label_body,
        accept=FILE,
    )
    if response.status == 204 or not isinstance(response.body, bytes):
        raise TransientError(f"Allegro has no label for parcel {shipment_id} yet")
    label: bytes = response.body
    form_id: uuid.UUID = row["checkout_form_id"]
    payload = ShipmentCreated(
        checkout_form_id=str(form_id),
        shipment_id=shipment_id,
        waybill=waybill,
        carrier_id=carrier,
        label_format=row["label_format"],
        label_base64=base64.b64encode(label).decode(),
    ).body()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(parcels.MARK_CREATED, row["id"], shipment_id, waybill, carrier, label)
        if waybill and carrier:
            await conn.execute(
                shipments.ADD_PARCEL, form_id, account_id, waybill, carrier, shipment_id
            )
        await outbox.enqueue(
            conn,
            OutgoingMessage(
                EVENTS_EXCHANGE, SHIPMENT_CREATED, f"shipment.created:{shipment_id}", payload
            ),
        )
        await event_log.write(
            conn,
            account_id,
            "orders",
            "info",
            "parcel_created",
            f"Parcel {waybill or shipment_id} for order {form_id} created on Allegro",
            details={"checkout_form_id": str(form_id), "shipment_id": shipment_id},
        )
    log.info("parcel_created", parcel=row["id"], shipment_id=shipment_id)


async def _fail(
    pool: asyncpg.Pool,
    row: asyncpg.Record,
    reason: str,
    errors: list[dict[str, Any]],
    trace_id: str | None,
    code: str = "parcel_refused",
) -> None:
    form_id: uuid.UUID = row["checkout_form_id"]
    payload = ShipmentFailed(
        checkout_form_id=str(form_id),
        shipment_id=None,
        operation="create",
        reason=reason,
        errors=errors,
        trace_id=trace_id,
    ).body()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(parcels.MARK_FAILED, row["id"], reason, errors, trace_id)
        await outbox.enqueue(
            conn,
            OutgoingMessage(
                EVENTS_EXCHANGE, SHIPMENT_FAILED, f"shipment.failed:{row['command_id']}", payload
            ),
        )
        await event_log.write(
            conn,
            row["account_id"],
            "orders",
            "error",
            code,
            f"Allegro refused the parcel for order {form_id}: {reason}"
            if code == "parcel_refused"
            else f"The parcel for order {form_id} was given up: {reason}",
            details={
                "checkout_form_id": str(form_id),
                "command_id": str(row["command_id"]),
                "trace_id": trace_id,
            },
        )
    log.info(code, parcel=row["id"], trace_id=trace_id)


async def _cancel(
    allegro: AllegroRestClient, pool: asyncpg.Pool, row: asyncpg.Record, bounds: RetryBounds
) -> None:
    account_id, command_id = row["account_id"], row["cancel_command_id"]
    shipment_id = str(row["allegro_shipment_id"])
    if row["cancel_sent_at"] is None:
        body = {"commandId": str(command_id), "input": {"shipmentId": shipment_id}}
        try:
            response = await allegro.request(
                account_id,
                "POST",
                f"{BASE}/shipments/cancel-commands",
                action="cancel parcel",
                json=body,
            )
        except (AllegroRejected, AllegroForbidden, AllegroNotFound) as exc:
            errors = getattr(exc, "errors", None) or [{"code": exc.code, "message": str(exc)}]
            await _cancel_refused(pool, row, refusal_of(errors), errors, exc.trace_id)
            return
        await pool.execute(parcels.MARK_CANCEL_SENT, row["id"], retry_after(response.headers))
        return
    path = f"{BASE}/shipments/cancel-commands/{command_id}"
    try:
        response = await allegro.request(account_id, "GET", path, action="follow parcel cancel")
    except AllegroNotFound:
        await pool.execute(parcels.MARK_CANCEL_UNSENT, row["id"])
        return
    status = (response.body or {}).get("status")
    if status == "SUCCESS":
        await _cancelled(pool, row)
    elif status == "ERROR":
        errors = list(response.body.get("errors") or [])
        await _cancel_refused(
            pool, row, refusal_of(errors), errors, response.headers.get("trace-id")
        )
    else:
        await _in_progress(pool, row, retry_after(response.headers), bounds)


async def _cancelled(pool: asyncpg.Pool, row: asyncpg.Record) -> None:
    form_id, shipment_id = str(row["checkout_form_id"]), str(row["allegro_shipment_id"])
    payload = ShipmentCancelled(checkout_form_id=form_id, shipment_id=shipment_id).body()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(parcels.MARK_CANCELLED, row["id"])
        await outbox.enqueue(
            conn,
            OutgoingMessage(
                EVENTS_EXCHANGE, SHIPMENT_CANCELLED, f"shipment.cancelled:{shipment_id}", payload
            ),
        )
        await event_log.write(
            conn,
            row["account_id"],
            "orders",
            "info",
            "parcel_cancelled",
            f"Parcel {shipment_id} of order {form_id} cancelled on Allegro",
            details={"checkout_form_id": form_id, "shipment_id": shipment_id},
        )


async def _cancel_refused(
    pool: asyncpg.Pool,
    row: asyncpg.Record,
    reason: str,
    errors: list[dict[str, Any]],
    trace_id: str | None,
    code: str | None = None,
) -> None:
    form_id, shipment_id = str(row["checkout_form_id"]), str(row["allegro_shipment_id"])
    payload = ShipmentFailed(
        checkout_form_id=form_id,
        shipment_id=shipment_id,
        operation="cancel",
        reason=reason,
        errors=errors,
        trace_id=trace_id,
    ).body()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(parcels.MARK_CANCEL_REFUSED, row["id"], reason, errors, trace_id)
        await outbox.enqueue(
            conn,
            OutgoingMessage(
                EVENTS_EXCHANGE,
                SHIPMENT_FAILED,
                f"shipment.failed:{row['cancel_command_id']}",
                payload,
            ),
        )
        if code is not None:
            await event_log.write(
                conn,
                row["account_id"],
                "orders",
                "error",
                code,
                f"The cancel of parcel {shipment_id} of order {form_id} was given up: {reason}",
                details={"checkout_form_id": form_id, "shipment_id": shipment_id},
            )


# --- protocol and pickup (the admin API and the CLI) ----------------------------------------


async def _known(pool: asyncpg.Pool, account_id: int, shipment_ids: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(shipment_ids))
    if not wanted:
        raise ParcelError("name at least one shipment")
    known = await parcels.of_account(pool, account_id, wanted)
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise ParcelError(
            f"not parcels of account {account_id} (or cancelled): {', '.join(unknown)}"
        )
    return wanted


async def protocol(
    allegro: AllegroRestClient, pool: asyncpg.Pool, account_id: int, shipment_ids: Sequence[str]
) -> bytes:
    """The handover protocol (a PDF) of the account's parcels ``shipment_ids``."""
    wanted = await _known(pool, account_id, shipment_ids)
    try:
        response = await allegro.request(
            account_id,
            "POST",
            f"{BASE}/protocol",
            action="read handover protocol",
            json={"shipmentIds": wanted},
            accept=FILE,
        )
    except (AllegroRejected, AllegroNotFound) as exc:
        raise ParcelError(f"Allegro refused the protocol: {exc}") from exc
    if response.status == 204 or not isinstance(response.body, bytes):
        raise ParcelError("Allegro has no protocol for these parcels")
    return response.body


async def pickup(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    account_id: int,
    shipment_ids: Sequence[str],
    on: date | None = None,
) -> dict[str, Any]:
    """A courier pickup of the parcels: Allegro's proposals for them (the first slot, or the
    first on ``on``), then a pickup command followed until it ends. The pickup's ids and slot."""
    wanted = await _known(pool, account_id, shipment_ids)
    sender = await pool.fetchval(parcels.SENDER, account_id)
    if not sender:
        raise ParcelError(f"account {account_id} has no shipping_sender (the pickup address)")
    address = address_json(sender)
    ask: dict[str, Any] = {"shipmentIds": wanted, "address": address}
    if on is not None:
        ask["readyDate"] = on.isoformat()
    try:
        proposals = await allegro.request(
            account_id,
            "POST",
            f"{BASE}/pickup-proposals",
            action="read pickup proposals",
            json=ask,
        )
        slot, proposal_id = _slot(proposals.body, on)
        command_id = str(uuid.uuid4())
        body = {
            "commandId": command_id,
            "input": {
                "shipmentIds": wanted,
                "pickupDateProposalId": proposal_id,
                "pickupTime": slot,
                "address": address,
            },
        }
        sent = await allegro.request(
            account_id,
            "POST",
            f"{BASE}/pickups/create-commands",
            action="order pickup",
            json=body,
        )
    except (AllegroRejected, AllegroNotFound) as exc:
        raise ParcelError(f"Allegro refused the pickup: {exc}") from exc
    result = await _follow_pickup(allegro, account_id, command_id, retry_after(sent.headers))
    await pool.execute(parcels.SET_PICKUP, wanted, result["pickupId"])
    return {
        "pickup_id": result["pickupId"],
        "carrier_pickup_id": result.get("carrierPickupId"),
        "command_id": command_id,
        "date": slot["date"],
        "min_time": slot.get("minTime"),
        "max_time": slot.get("maxTime"),
        "shipment_ids": wanted,
    }


def _slot(answer: Any, on: date | None) -> tuple[dict[str, Any], str]:
    """The pickup slot to take from Allegro's proposals, and its proposal id."""
    for entry in answer if isinstance(answer, list) else []:
        for proposal in entry.get("proposals") or []:
            items = proposal.get("proposalItems") or []
            for index, time in enumerate(proposal.get("pickupTimes") or []):
                if on is None or time.get("date") == on.isoformat():
                    proposal_id = items[index]["id"] if index < len(items) else time["date"]
                    return dict(time), str(proposal_id)
    when = f" on {on.isoformat()}" if on else ""
    raise ParcelError(f"Allegro proposes no pickup for these parcels{when}")


async def _follow_pickup(
    allegro: AllegroRestClient, account_id: int, command_id: str, first_wait: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PICKUP_WAIT_SECONDS
    wait = first_wait
    path = f"{BASE}/pickups/create-commands/{command_id}"
    while True:
        await asyncio.sleep(wait)
        try:
            response = await allegro.request(account_id, "GET", path, action="follow pickup")
        except AllegroError as exc:
            if not isinstance(exc, AllegroUnavailable) or loop.time() > deadline:
                raise
            wait = FOLLOW_SECONDS
            continue
        body = response.body or {}
        if body.get("status") == "SUCCESS":
            return dict(body)
        if body.get("status") == "ERROR":
            raise ParcelError(f"Allegro refused the pickup: {refusal_of(body.get('errors') or [])}")
        if loop.time() > deadline:
            raise ParcelError(
                f"the pickup command {command_id} is still in progress on Allegro; ask again later"
            )
        wait = retry_after(response.headers)
