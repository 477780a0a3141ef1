"""The handover of parcels sent with Allegro (issue 16 item 3), asked for by the admin API and
the CLI: the day's handover protocol of a set of parcels (a PDF), and a courier pickup. A
pickup's command is stored (``parcel_pickups``) before it is sent, and one still in progress
when the caller stops waiting (or whose POST timed out) is read again by its command id, never
ordering a second courier."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import asyncpg

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import (
    AllegroNotFound,
    AllegroRejected,
    AllegroUnavailable,
)
from allegro_sync.adapters.postgres import accounts, parcels, pickups
from allegro_sync.handlers.parcels import (
    BASE,
    FILE,
    FOLLOW_SECONDS,
    ParcelError,
    address_json,
    refusal_of,
    retry_after,
)

# A pickup command is followed this long by the caller (the admin API, the CLI).
PICKUP_WAIT_SECONDS = 60.0


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


class PickupPending(ParcelError):
    """The pickup command is still in progress on Allegro: ask again with its command id."""

    def __init__(self, command_id: uuid.UUID) -> None:
        super().__init__(
            f"the pickup command {command_id} is still in progress on Allegro;"
            f" ask again with command_id {command_id}"
        )
        self.command_id = command_id


async def pickup(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    account_id: int,
    shipment_ids: Sequence[str],
    on: date | None = None,
    wait_seconds: float = PICKUP_WAIT_SECONDS,
) -> dict[str, Any]:
    """A courier pickup of the parcels: Allegro's proposals for them (the first slot, or the
    first on ``on``), then a pickup command, stored before it is sent and followed for
    ``wait_seconds``. The pickup's ids and slot; ``PickupPending`` (with the command id, for
    ``resume_pickup``) when it has not ended by then."""
    wanted = await _known(pool, account_id, shipment_ids)
    sender = await accounts.shipping_sender(pool, account_id)
    if not sender:
        raise ParcelError(f"account {account_id} has no shipping_sender (the pickup address)")
    address = address_json(sender)
    ask: dict[str, Any] = {"shipmentIds": wanted, "address": address}
    if on is not None:
        ask["readyDate"] = on.isoformat()
    command_id = uuid.uuid4()
    try:
        proposals = await allegro.request(
            account_id,
            "POST",
            f"{BASE}/pickup-proposals",
            action="read pickup proposals",
            json=ask,
        )
        slot, proposal_id = _slot(proposals.body, on)
        body = {
            "commandId": str(command_id),
            "input": {
                "shipmentIds": wanted,
                "pickupDateProposalId": proposal_id,
                "pickupTime": slot,
                "address": address,
            },
        }
        await pickups.insert(pool, command_id, account_id, wanted, slot)
        try:
            sent = await allegro.request(
                account_id,
                "POST",
                f"{BASE}/pickups/create-commands",
                action="order pickup",
                json=body,
            )
        except AllegroUnavailable:
            # it may have reached Allegro: reading it by its command id tells
            raise PickupPending(command_id) from None
    except (AllegroRejected, AllegroNotFound) as exc:
        raise ParcelError(f"Allegro refused the pickup: {exc}") from exc
    return await _pickup_done(
        allegro, pool, account_id, command_id, wanted, slot, retry_after(sent.headers), wait_seconds
    )


async def resume_pickup(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    account_id: int,
    command_id: uuid.UUID,
    wait_seconds: float = PICKUP_WAIT_SECONDS,
) -> dict[str, Any]:
    """The pickup of the account's pickup command ``command_id`` (one ``pickup`` sent): read
    again until it ends, or as stored when it ended already; never a second courier."""
    row = await pickups.get(pool, command_id, account_id)
    if row is None:
        raise ParcelError(f"account {account_id} has no pickup command {command_id}")
    wanted, slot = list(row["shipment_ids"]), dict(row["slot"])
    if row["done_at"] is not None:
        return _pickup_json(command_id, wanted, slot, row["pickup_id"], row["carrier_pickup_id"])
    return await _pickup_done(allegro, pool, account_id, command_id, wanted, slot, 0, wait_seconds)


async def _pickup_done(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    account_id: int,
    command_id: uuid.UUID,
    wanted: list[str],
    slot: dict[str, Any],
    first_wait: float,
    wait_seconds: float,
) -> dict[str, Any]:
    result = await _follow_pickup(allegro, account_id, command_id, first_wait, wait_seconds)
    pickup_id, carrier_pickup_id = str(result["pickupId"]), result.get("carrierPickupId")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(parcels.SET_PICKUP, wanted, pickup_id)
        await pickups.done(conn, command_id, pickup_id, carrier_pickup_id)
    return _pickup_json(command_id, wanted, slot, pickup_id, carrier_pickup_id)


def _pickup_json(
    command_id: uuid.UUID,
    wanted: list[str],
    slot: Mapping[str, Any],
    pickup_id: str,
    carrier_pickup_id: str | None,
) -> dict[str, Any]:
    return {
        "pickup_id": pickup_id,
        "carrier_pickup_id": carrier_pickup_id,
        "command_id": str(command_id),
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
    allegro: AllegroRestClient,
    account_id: int,
    command_id: uuid.UUID,
    first_wait: float,
    wait_seconds: float,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    wait = first_wait
    path = f"{BASE}/pickups/create-commands/{command_id}"
    while True:
        await asyncio.sleep(wait)
        try:
            response = await allegro.request(account_id, "GET", path, action="follow pickup")
        except AllegroNotFound:
            raise ParcelError(
                f"Allegro does not know the pickup command {command_id} (it never arrived):"
                " ask for the pickup again"
            ) from None
        except AllegroUnavailable:
            if loop.time() > deadline:
                raise PickupPending(command_id) from None
            wait = FOLLOW_SECONDS
            continue
        body = response.body or {}
        if body.get("status") == "SUCCESS":
            return dict(body)
        if body.get("status") == "ERROR":
            raise ParcelError(f"Allegro refused the pickup: {refusal_of(body.get('errors') or [])}")
        if loop.time() > deadline:
            raise PickupPending(command_id)
        wait = retry_after(response.headers)
