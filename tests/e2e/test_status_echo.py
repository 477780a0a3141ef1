"""The order journal's echo of a status the daemon wrote itself (issue 16, speed): a tracking
number marks the order SENT, the journal then shows that change, and the daemon stores it
without reading the checkout form again; a status set by someone else (the seller in Moje
Allegro), right after ours or later, is still read and stored."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg

from allegro_sync.emulator.context import EMULATOR_KEY
from allegro_sync.emulator.sales import set_fulfillment
from tests.e2e.conftest import Admin, Emulator
from tests.e2e.flows import _buy, _handled, _send, _shop
from tests.helpers import eventually

FORM_READS = ("GET /order/checkout-forms/{id}", "GET /order/checkout-forms")


async def _order(admin: Admin, emulator: Emulator, db: asyncpg.Pool, login: str) -> str:
    _, _, offers = await _shop(admin, emulator, db, login, auto_create_orders=True)
    form_id = await _buy(emulator, offers[0])
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    return form_id


async def _stored(db: asyncpg.Pool, form_id: str) -> tuple[str | None, str | None]:
    row = await db.fetchrow(
        "SELECT form -> 'fulfillment' ->> 'status' AS status, revision FROM orders"
        " WHERE checkout_form_id = $1",
        uuid.UUID(form_id),
    )
    assert row is not None
    return row["status"], row["revision"]


async def _on_allegro(emulator: Emulator, form_id: str) -> dict[str, Any]:
    form: dict[str, Any] = await emulator.control("GET", f"/checkout-forms/{form_id}")
    return form


async def _in_step(db: asyncpg.Pool, emulator: Emulator, form_id: str, status: str) -> bool:
    """The stored form has ``status`` and Allegro's current revision."""
    allegro = await _on_allegro(emulator, form_id)
    stored = await _stored(db, form_id)
    return allegro["fulfillment"]["status"] == status and stored == (
        status,
        allegro["revision"],
    )


async def _form_reads(emulator: Emulator) -> int:
    by_path = (await emulator.control("GET", "/requests"))["by_path"]
    return sum(int(by_path.get(k, 0)) for k in FORM_READS)


def _set_elsewhere(emulator: Emulator, form_id: str, status: str) -> None:
    """The seller changes the status outside the daemon (Moje Allegro, another tool)."""
    market = emulator.server.app[EMULATOR_KEY].market
    set_fulfillment(market, market.forms[form_id], status)


async def test_the_echo_of_our_sent_is_stored_without_reading_the_form_again(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    form_id = await _order(admin, emulator, db, "echo-shop")
    before = await _form_reads(emulator)
    body = {"checkout_form_id": form_id, "carrier_id": "DPD", "waybill": "DPD-ECHO-1"}
    await _send(amqp_url, "shipment.added", body, "echo-1")
    await eventually(lambda: _in_step(db, emulator, form_id, "SENT"), timeout=30)
    await asyncio.sleep(1.0)  # the journal is read a few more times
    assert await _form_reads(emulator) == before  # the echo cost no read of the form
    note = await db.fetchval(
        "SELECT own_status FROM orders WHERE checkout_form_id = $1", uuid.UUID(form_id)
    )
    assert note is None  # taken by the echo

    # later, the seller sets another status elsewhere: read and stored
    _set_elsewhere(emulator, form_id, "PICKED_UP")
    await eventually(lambda: _in_step(db, emulator, form_id, "PICKED_UP"), timeout=30)
    assert await _form_reads(emulator) > before


async def test_a_status_set_elsewhere_right_after_ours_is_not_missed(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    form_ids = [await _order(admin, emulator, db, f"race-shop-{n}") for n in range(3)]
    for n, form_id in enumerate(form_ids):
        body = {"checkout_form_id": form_id, "carrier_id": "DPD", "waybill": f"DPD-RACE-{n}"}
        await _send(amqp_url, "shipment.added", body, f"race-{n}")

    async def sent(form_id: str) -> bool:
        return (await _on_allegro(emulator, form_id))["fulfillment"]["status"] == "SENT"

    for form_id in form_ids:
        # as soon as our SENT is on Allegro: before, with or after its echo is read
        await eventually(lambda form_id=form_id: sent(form_id), timeout=30, interval=0.01)
        _set_elsewhere(emulator, form_id, "PICKED_UP")
    for form_id in form_ids:
        await eventually(lambda form_id=form_id: _in_step(db, emulator, form_id, "PICKED_UP"))
