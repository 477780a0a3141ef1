"""``shipment.added``: an attempt whose lease on its (order, waybill) row ran out before its POST
(a long wait for the request limiter) does not post: another attempt holds the row now."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from allegro_sync.adapters.postgres import shipments
from allegro_sync.daemon.app import Daemon
from allegro_sync.errors import TransientError
from allegro_sync.handlers.shipments import LEASE_SECONDS, _send, allegro_body
from tests.e2e.conftest import Admin, Emulator
from tests.e2e.test_shipments import _on_allegro, _order

POST = "POST /order/checkout-forms/{id}/shipments"
WAYBILL = "620012345678901"


async def test_an_attempt_that_lost_its_lease_does_not_post_the_waybill_again(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, daemon: Daemon
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    assert daemon.allegro is not None
    form = uuid.UUID(form_id)
    claim = (form, account_id, WAYBILL, "INPOST", None, None, LEASE_SECONDS)
    first = await db.fetchrow(shipments.CLAIM, *claim)
    assert first is not None
    # the first attempt waited past its lease; a second message with the waybill claimed it
    await db.execute(
        "UPDATE shipments SET claimed_until = now() - interval '1 second' WHERE id = $1",
        first["id"],
    )
    second = await db.fetchrow(shipments.CLAIM, *claim)
    assert second is not None
    body = allegro_body("INPOST", WAYBILL, None, None)

    with pytest.raises(TransientError):
        await _send(daemon.allegro, db, first, account_id, form, body)
    requests = (await emulator.control("GET", "/requests"))["by_path"]
    assert requests.get(POST) is None, requests
    # nor did it give back the lease the second attempt holds
    held = await db.fetchval("SELECT claimed_until FROM shipments WHERE id = $1", first["id"])
    assert held == second["claimed_until"]

    await _send(daemon.allegro, db, second, account_id, form, body)
    [on_allegro] = await _on_allegro(emulator, form_id)
    assert on_allegro["waybill"] == WAYBILL
    requests = (await emulator.control("GET", "/requests"))["by_path"]
    assert requests.get(POST) == 1, requests
