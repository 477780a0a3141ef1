"""Parcels sent with Allegro ("Wysyłam z Allegro", issue 16 item 2): ``shipment.requested`` and
``shipment.cancel`` from the ERP, and the steps that take a parcel through Allegro's
shipment management (``/shipment-management/...``, allegro-2026.md 3).

The consumer's transaction only decides and persists: the order must be known, its account
switched on and with a sender (``shipping_sender``), a package named or set as the account's
``default_package``, the delivery address complete; the create command's input (sender, the
order's delivery address as the receiver, packages, insurance, cash on delivery, reference,
label format) and a fresh command id are stored in ``parcels`` with the inbox claim, before any
request. A redelivery is a duplicate in the inbox: one parcel. ``advance`` then does one step of
a row, outside any transaction, for ``daemon/parcel_service.py``:

- ``requested``: ``POST shipments/create-commands`` with the stored command id, ``sent_at`` set
  just before it; an attempt that finds ``sent_at`` set (a crash or a lost answer after the
  POST) reads ``GET shipments/create-commands/{id}`` first and posts only on its 404, and
  Allegro's 409 (the id used already) counts as sent; Allegro's 400/422 (an unknown delivery
  method, a field it refuses) ends the parcel as ``failed``;
- ``creating``: ``GET shipments/create-commands/{id}`` until it is not ``IN_PROGRESS`` (at its
  ``Retry-After``); ``ERROR``: ``failed`` with Allegro's errors; ``SUCCESS``: the parcel's
  waybills and carriers (``GET shipments/{id}``, every package's) and its label (``POST
  label``) are read, then the label is stored, the waybills join the order's tracking numbers
  (``shipments``, their status step left to the sent marker) and ``shipment.created`` goes to
  the outbox, in one transaction; a 404 (the command never arrived) sends it again;
- ``cancelling``: ``POST shipments/cancel-commands`` under a command id stored by
  ``shipment.cancel``, then followed the same way: ``shipment.cancelled`` (the parcel's
  tracking numbers are no longer tracked), or ``shipment.failed`` with ``operation`` ``cancel``
  (the parcel stays ``created``).

Every write of a step names the claim that started it (``attempts`` after the claim) and the
status it read: a step that outlived its lease, after another replica claimed the row again,
writes nothing and publishes nothing. What no retry cures (the account switched off, its
authorisation gone, a 401 after a refresh, Allegro refusing the parcel read or its label, a
``SUCCESS`` naming no ``shipmentId``) ends the parcel (or its cancel) with the reason.

A failed parcel publishes ``shipment.failed`` with Allegro's words, its error list and trace id.

Retries are bounded (``RetryBounds``): a step whose requests keep failing in a way a retry
might cure (Allegro unreachable, 5xx, 429, a conflict) backs off from 2 s to 5 minutes and is
given up after ``max_failures`` such failures in a row, or once it has run ``give_up_after``
seconds (a command Allegro keeps ``IN_PROGRESS`` too): a create becomes ``failed`` with
``shipment.failed`` (error code ``GIVEN_UP``; the reason names the command id, since Allegro
may still carry out a command it received), a cancel is refused (the parcel stays
``created``). Either is an event-log entry ``parcel_given_up``.
The day's handover protocol and a courier pickup (item 3) are asked for by the admin API and the
CLI (``protocol``, ``pickup``: ``handlers/parcel_handover.py``).
"""

from __future__ import annotations

import base64
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import (
    AllegroAuthError,
    AllegroConflict,
    AllegroError,
    AllegroForbidden,
    AllegroNotFound,
    AllegroRejected,
    AllegroUnavailable,
)
from allegro_sync.adapters.broker.publisher import OutgoingMessage
from allegro_sync.adapters.broker.topology import EVENTS_EXCHANGE
from allegro_sync.adapters.postgres import (
    event_log,
    outbox,
    parcels,
    shipments,
)
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
    ShipmentWaybill,
)
from allegro_sync.errors import BadInput, CredentialsDead, TransientError

log = structlog.get_logger(__name__)

BASE = "/shipment-management"
FILE = "application/octet-stream"
# How long a claimed row is left to one attempt before another replica may take it: a step's
# requests (reading the command, the parcel and its label), each a limiter wait (a 429 pause of
# up to 60 s) plus its 30 s timeout. A step that outlives it anyway writes nothing (the claim
# token of ``adapters/postgres/parcels.py``).
LEASE_SECONDS = 3 * (60.0 + 30.0)
# Between status reads when Allegro's answer names no Retry-After, and the most we wait.
FOLLOW_SECONDS = 1.0
MAX_FOLLOW_SECONDS = 30.0


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
    empty = [k for k in ("postalCode", "email", "phone") if not str(out[k]).strip()]
    if empty:
        raise BadInput(f"the order's receiver has no {', '.join(empty)}: the carrier needs it")
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
    if not order["active"]:
        raise BadInput(
            f"account {order['account_id']} of checkout form {message.checkout_form_id} is"
            " switched off: no parcel is sent for it"
        )
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


def _step(row: asyncpg.Record) -> tuple[int, int, str]:
    """The row's id, its claim (``attempts`` after the claim) and the status the claim read:
    what every write of the step names, so a step that outlived its lease writes nothing."""
    return row["id"], row["attempts"], row["status"]


def _errors_of(exc: AllegroError) -> list[dict[str, Any]]:
    return list(getattr(exc, "errors", None) or [{"code": exc.code, "message": str(exc)}])


async def advance(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    row: asyncpg.Record,
    bounds: RetryBounds = DEFAULT_BOUNDS,
) -> None:
    """One step of a claimed row (see the module docstring); a failure a retry may cure
    schedules the row again, within ``bounds``; one no retry can cure (the account switched
    off, its authorisation gone, Allegro's refusal of a read, an answer without what it must
    name) ends the parcel (or its cancel) with the reason."""
    try:
        if not row["active"]:
            reason = f"account {row['account_id']} is switched off"
            error = {"code": "allegro_sync.account_inactive", "message": reason}
            await _give_up(pool, row, reason, [error], None)
        elif row["status"] == "requested":
            await _send_create(allegro, pool, row)
        elif row["status"] == "creating":
            await _follow_create(allegro, pool, row, bounds)
        elif row["status"] == "cancelling":
            await _cancel(allegro, pool, row, bounds)
    except (AllegroUnavailable, TransientError, AllegroConflict, OSError) as exc:
        failures = row["failures"] + 1
        problem = f"{type(exc).__name__}: {exc}"
        if exhausted(row, failures, bounds):
            await _given_up(pool, row, give_up_reason(row, failures, problem))
            return
        delay = backoff(failures)
        await pool.execute(parcels.FAILED_ATTEMPT, row["id"], delay, row["attempts"], row["status"])
        log.warning(
            "parcel_step_postponed",
            parcel=row["id"],
            error=problem,
            failures=failures,
            delay_seconds=round(delay, 1),
        )
    except CredentialsDead as exc:  # the account was switched off and its log says why
        reason = f"the account's Allegro authorisation is gone: {exc.reason}"
        error = {"code": "allegro_sync.credentials_dead", "message": reason}
        await _give_up(pool, row, reason, [error], None)
    except (AllegroAuthError, AllegroRejected, AllegroForbidden, AllegroNotFound) as exc:
        errors = _errors_of(exc)
        await _give_up(pool, row, refusal_of(errors), errors, exc.trace_id)
    except _Malformed as exc:
        error = {"code": "allegro_sync.unexpected_answer", "message": str(exc)}
        await _give_up(pool, row, str(exc), [error], None)


class _Malformed(Exception):
    """Allegro's answer lacks what it must name (a command's SUCCESS without its result)."""


async def _give_up(
    pool: asyncpg.Pool,
    row: asyncpg.Record,
    reason: str,
    errors: list[dict[str, Any]],
    trace_id: str | None,
    shipment_id: str | None = None,
    code: str | None = None,
) -> None:
    if row["status"] == "cancelling":
        await _cancel_refused(pool, row, reason, errors, trace_id, code=code)
    else:
        await _fail(pool, row, reason, errors, trace_id, shipment_id, code=code or "parcel_refused")


async def _in_progress(
    pool: asyncpg.Pool, row: asyncpg.Record, wait: float, bounds: RetryBounds
) -> None:
    """Allegro has not ended the command: read it again after ``wait``, unless the step has
    run out of time."""
    if row["step_seconds"] >= bounds.give_up_after:
        await _given_up(pool, row, give_up_reason(row, row["failures"], None))
    else:
        await pool.execute(parcels.LATER, row["id"], wait, row["attempts"], row["status"])


async def _given_up(pool: asyncpg.Pool, row: asyncpg.Record, reason: str) -> None:
    """The step ran out of retries (``RetryBounds``): given up with ``GIVEN_UP``."""
    errors = [{"code": GIVEN_UP, "message": reason}]
    await _give_up(pool, row, reason, errors, None, code="parcel_given_up")
    log.warning("parcel_given_up", parcel=row["id"], status=row["status"], reason=reason)


async def _send_create(allegro: AllegroRestClient, pool: asyncpg.Pool, row: asyncpg.Record) -> None:
    row_id, claim, _ = _step(row)
    if row["sent_at"] is not None:
        # an earlier attempt posted (its answer lost, or a crash after it): Allegro may have it
        path = f"{BASE}/shipments/create-commands/{row['command_id']}"
        try:
            response = await allegro.request(row["account_id"], "GET", path, action="follow parcel")
        except AllegroNotFound:
            pass  # it never arrived: post it
        else:
            await pool.execute(parcels.MARK_SENT, row_id, retry_after(response.headers), claim)
            return
    if await pool.fetchval(parcels.MARK_POSTING, row_id, claim) is None:
        return  # another attempt took the row meanwhile
    body = {"commandId": str(row["command_id"]), "input": row["request"]}
    try:
        response = await allegro.request(
            row["account_id"],
            "POST",
            f"{BASE}/shipments/create-commands",
            action="create parcel",
            json=body,
        )
    except AllegroConflict:
        # the command id was used already: ours, sent before (a lost answer); follow it
        await pool.execute(parcels.MARK_SENT, row_id, FOLLOW_SECONDS, claim)
        return
    except (AllegroRejected, AllegroForbidden, AllegroNotFound) as exc:
        errors = _errors_of(exc)
        await _fail(pool, row, refusal_of(errors), errors, exc.trace_id)
        return
    await pool.execute(parcels.MARK_SENT, row_id, retry_after(response.headers), claim)


async def _follow_create(
    allegro: AllegroRestClient, pool: asyncpg.Pool, row: asyncpg.Record, bounds: RetryBounds
) -> None:
    row_id, claim, _ = _step(row)
    path = f"{BASE}/shipments/create-commands/{row['command_id']}"
    try:
        response = await allegro.request(row["account_id"], "GET", path, action="follow parcel")
    except AllegroNotFound:
        await pool.execute(parcels.MARK_UNSENT, row_id, claim)  # it never arrived: send it again
        return
    status = (response.body or {}).get("status")
    if status == "SUCCESS":
        shipment_id = (response.body or {}).get("shipmentId")
        if not shipment_id:
            raise _Malformed("Allegro's answer to the create command names no shipmentId")
        await _created(allegro, pool, row, str(shipment_id))
    elif status == "ERROR":
        errors = list(response.body.get("errors") or [])
        await _fail(pool, row, refusal_of(errors), errors, response.headers.get("trace-id"))
    else:
        await _in_progress(pool, row, retry_after(response.headers), bounds)


def waybills_of(details: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """Every package's waybill of Allegro's ``ShipmentDto`` with its carrier (the package's
    ``transportingInfo[].carrierId`` for that waybill, else the parcel's ``carrier``)."""
    out: list[tuple[str, str | None]] = []
    for package in details.get("packages") or []:
        waybill = package.get("waybill")
        if not waybill:
            continue
        carrier = details.get("carrier")
        for info in package.get("transportingInfo") or []:
            if info.get("carrierId") and info.get("carrierWaybill") in (None, waybill):
                carrier = info["carrierId"]
                break
        if waybill not in [w for w, _ in out]:
            out.append((str(waybill), str(carrier) if carrier else None))
    return out


async def _created(
    allegro: AllegroRestClient, pool: asyncpg.Pool, row: asyncpg.Record, shipment_id: str
) -> None:
    account_id = row["account_id"]
    row_id, claim, _ = _step(row)
    try:
        details = await allegro.get(
            account_id, f"{BASE}/shipments/{shipment_id}", action="read parcel"
        )
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
    except (AllegroRejected, AllegroForbidden, AllegroNotFound) as exc:
        errors = _errors_of(exc)
        await _fail(pool, row, refusal_of(errors), errors, exc.trace_id, shipment_id)
        return
    if response.status == 204 or not isinstance(response.body, bytes):
        raise TransientError(f"Allegro has no label for parcel {shipment_id} yet")
    label: bytes = response.body
    found = waybills_of(details)
    waybill = found[0][0] if found else None
    carrier = details.get("carrier") or (found[0][1] if found else None)
    form_id: uuid.UUID = row["checkout_form_id"]
    payload = ShipmentCreated(
        checkout_form_id=str(form_id),
        shipment_id=shipment_id,
        waybill=waybill,
        waybills=[ShipmentWaybill(waybill=w, carrier_id=c) for w, c in found],
        carrier_id=carrier,
        label_format=row["label_format"],
        label_base64=base64.b64encode(label).decode(),
    ).body()
    async with pool.acquire() as conn, conn.transaction():
        written = await conn.fetchval(
            parcels.MARK_CREATED,
            row_id,
            shipment_id,
            waybill,
            carrier,
            label,
            [w for w, _ in found],
            claim,
        )
        if written is None:
            log.info("parcel_step_superseded", parcel=row_id, step="created")
            return  # another attempt recorded it (or a cancel followed): publish nothing
        for each, each_carrier in found:
            if each_carrier:
                await conn.execute(
                    shipments.ADD_PARCEL, form_id, account_id, each, each_carrier, shipment_id
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
    log.info("parcel_created", parcel=row_id, shipment_id=shipment_id)


async def _fail(
    pool: asyncpg.Pool,
    row: asyncpg.Record,
    reason: str,
    errors: list[dict[str, Any]],
    trace_id: str | None,
    shipment_id: str | None = None,
    code: str = "parcel_refused",
) -> None:
    row_id, claim, status_read = _step(row)
    form_id: uuid.UUID = row["checkout_form_id"]
    payload = ShipmentFailed(
        checkout_form_id=str(form_id),
        shipment_id=shipment_id,
        operation="create",
        reason=reason,
        errors=errors,
        trace_id=trace_id,
    ).body()
    async with pool.acquire() as conn, conn.transaction():
        written = await conn.fetchval(
            parcels.MARK_FAILED, row_id, reason, errors, trace_id, claim, status_read, shipment_id
        )
        if written is None:
            log.info("parcel_step_superseded", parcel=row_id, step="failed")
            return
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
    log.info(code, parcel=row_id, trace_id=trace_id)


async def _cancel(
    allegro: AllegroRestClient, pool: asyncpg.Pool, row: asyncpg.Record, bounds: RetryBounds
) -> None:
    account_id, command_id = row["account_id"], row["cancel_command_id"]
    row_id, claim, _ = _step(row)
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
        except AllegroConflict:  # the command id was used already: ours, sent before
            await pool.execute(parcels.MARK_CANCEL_SENT, row_id, FOLLOW_SECONDS, claim)
            return
        except (AllegroRejected, AllegroForbidden, AllegroNotFound) as exc:
            errors = _errors_of(exc)
            await _cancel_refused(pool, row, refusal_of(errors), errors, exc.trace_id)
            return
        await pool.execute(parcels.MARK_CANCEL_SENT, row_id, retry_after(response.headers), claim)
        return
    path = f"{BASE}/shipments/cancel-commands/{command_id}"
    try:
        response = await allegro.request(account_id, "GET", path, action="follow parcel cancel")
    except AllegroNotFound:
        await pool.execute(parcels.MARK_CANCEL_UNSENT, row_id, claim)
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
    row_id, claim, _ = _step(row)
    form_id, shipment_id = str(row["checkout_form_id"]), str(row["allegro_shipment_id"])
    payload = ShipmentCancelled(checkout_form_id=form_id, shipment_id=shipment_id).body()
    async with pool.acquire() as conn, conn.transaction():
        if await conn.fetchval(parcels.MARK_CANCELLED, row_id, claim) is None:
            log.info("parcel_step_superseded", parcel=row_id, step="cancelled")
            return
        # its tracking numbers go nowhere now: no more carrier reads
        await conn.execute(shipments.END_PARCEL_TRACKING, row["checkout_form_id"], shipment_id)
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
    row_id, claim, _ = _step(row)
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
        written = await conn.fetchval(
            parcels.MARK_CANCEL_REFUSED, row_id, reason, errors, trace_id, claim
        )
        if written is None:
            log.info("parcel_step_superseded", parcel=row_id, step="cancel_refused")
            return
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
