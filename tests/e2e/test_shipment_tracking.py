"""Delivery status back to the ERP end to end (issue 16, item 4): the carrier tracking of a
tracking number on Allegro is read at an interval (here one second) while the emulator's clock
moves the parcel along; each change of status reaches the ERP once as
``shipment.status_changed``, a restart publishes nothing again, a delivered parcel is no
longer read, and ``GET /shipments?status=`` filters by the delivery status."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from allegro_sync.adapters.broker.topology import ERP_OUTBOUND_QUEUE
from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.e2e.flows import _buy, _handled, _send, _shop
from tests.helpers import drain_queue, eventually

HOUR = 3600
TRACKING = "GET /order/carriers/{carrierId}/tracking"
FAST_TRACKING = {"tracking_interval": 1.0, "tracking_tick": 0.2}


def _tracking_daemon(database_url: str, amqp_url: str, emulator: Emulator) -> Daemon:
    return Daemon(
        daemon_settings(database_url, amqp_url, emulator.url, **FAST_TRACKING),
        poller_timing=FAST_POLLING,
    )


@pytest.fixture
async def daemon(database_url: str, amqp_url: str, emulator: Emulator) -> AsyncIterator[Daemon]:
    """A daemon reading tracking every second (the default is every two hours)."""
    running = _tracking_daemon(database_url, amqp_url, emulator)
    await running.start()
    yield running
    await running.stop()


async def _shipped(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str, waybill: str, **kw: Any
) -> str:
    """A paid order with tracking number ``waybill`` on Allegro: its checkout form id."""
    _, _, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    form_id = await _buy(emulator, offers[0])
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    body = {"checkout_form_id": form_id, "carrier_id": "INPOST", "waybill": waybill, **kw}
    await _send(amqp_url, "shipment.added", body, f"ship-{waybill}")
    return form_id


async def _delivery(db: asyncpg.Pool, waybill: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await db.fetchrow(
        "SELECT delivery_status, tracking_done, tracking_reads FROM shipments WHERE waybill = $1",
        waybill,
    )
    return row


async def _status_is(db: asyncpg.Pool, waybill: str, status: str) -> bool:
    row = await _delivery(db, waybill)
    return row is not None and row["delivery_status"] == status


async def _erp_changes(amqp_url: str) -> list[tuple[str, dict[str, Any]]]:
    """The ``shipment.status_changed`` messages waiting for the ERP (taken): (id, body)."""
    taken = await drain_queue(amqp_url, ERP_OUTBOUND_QUEUE, wait=1.0)
    return [
        (str(m.message_id), json.loads(m.body))
        for m in taken
        if m.routing_key == "shipment.status_changed"
    ]


async def _rounds() -> None:
    """Ten rounds of the tracker (it looks every 0.2 s) and two intervals."""
    await asyncio.sleep(2.0)


async def _reads(emulator: Emulator) -> int:
    return int((await emulator.control("GET", "/requests"))["by_path"].get(TRACKING, 0))


async def test_each_status_change_reaches_the_erp_once_and_a_delivered_parcel_is_not_read(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    form_id = await _shipped(admin, emulator, db, amqp_url, "620000000001")
    await eventually(lambda: _status_is(db, "620000000001", "PENDING"), timeout=30)
    await emulator.control("POST", "/clock", {"advance_seconds": 7 * HOUR})
    await eventually(lambda: _status_is(db, "620000000001", "IN_TRANSIT"), timeout=30)
    # the hub's IN_TRANSIT again (20 h), out for delivery (22 h), delivered (26 h)
    await emulator.control("POST", "/clock", {"advance_seconds": 20 * HOUR})
    await eventually(lambda: _status_is(db, "620000000001", "DELIVERED"), timeout=30)
    row = await _delivery(db, "620000000001")
    assert row is not None and row["tracking_done"] == "delivered"

    changes = await _erp_changes(amqp_url)
    assert [body["status"] for _, body in changes] == [
        "PENDING",
        "IN_TRANSIT",
        "RELEASED_FOR_DELIVERY",
        "DELIVERED",
    ]
    for message_id, body in changes:
        assert body["checkout_form_id"] == form_id and body["waybill"] == "620000000001"
        assert body["carrier_id"] == "INPOST" and body["occurred_at"]
        assert message_id.startswith(f"shipment.status_changed:{form_id}:620000000001:")
    clock = await emulator.control("GET", "/clock")
    occurred = [body["occurred_at"] for _, body in changes]
    assert occurred == sorted(occurred) and occurred[-1] < clock["now"]

    # delivered: no longer read, however long one waits
    before = await _reads(emulator)
    await emulator.control("POST", "/clock", {"advance_seconds": 4 * HOUR})
    await _rounds()
    assert await _reads(emulator) == before
    assert await _erp_changes(amqp_url) == []

    status, page = await admin.call("GET", "/shipments?status=DELIVERED")
    assert status == 200, page
    [listed] = page["items"]
    assert listed["waybill"] == "620000000001" and listed["delivery_status"] == "DELIVERED"
    assert listed["tracking_done"] == "delivered" and listed["status"] == "sent"
    status, page = await admin.call("GET", "/shipments?status=IN_TRANSIT")
    assert status == 200 and page["items"] == []
    status, page = await admin.call("GET", "/shipments?status=sent")
    assert status == 200 and len(page["items"]) == 1
    status, error = await admin.call("GET", "/shipments?status=delivered_maybe")
    assert status == 422 and "IN_TRANSIT" in str(error)


async def test_a_restart_and_a_repeated_read_publish_nothing_again(
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    amqp_url: str,
    database_url: str,
    daemon: Daemon,
) -> None:
    await _shipped(admin, emulator, db, amqp_url, "RET620000000002")
    await eventually(lambda: _status_is(db, "RET620000000002", "PENDING"), timeout=30)
    await emulator.control("POST", "/clock", {"advance_seconds": 7 * HOUR})
    await eventually(lambda: _status_is(db, "RET620000000002", "IN_TRANSIT"), timeout=30)
    first = await _erp_changes(amqp_url)
    assert [b["status"] for _, b in first] == ["PENDING", "IN_TRANSIT"]

    await daemon.stop()
    row = await _delivery(db, "RET620000000002")
    assert row is not None
    reads = row["tracking_reads"]
    again = _tracking_daemon(database_url, amqp_url, emulator)
    await again.start()
    try:

        async def read_again() -> bool:
            now = await _delivery(db, "RET620000000002")
            return now is not None and now["tracking_reads"] >= reads + 2

        await eventually(read_again, timeout=30)  # the same history, read twice more
        assert await _erp_changes(amqp_url) == []
        # the return: a notice left (24 h), then returned to the sender (96 h)
        await emulator.control("POST", "/clock", {"advance_seconds": 90 * HOUR})
        await eventually(lambda: _status_is(db, "RET620000000002", "RETURNED"), timeout=30)
        rest = await _erp_changes(amqp_url)
        assert [b["status"] for _, b in rest] == ["NOTICE_LEFT", "RETURNED"]
        row = await _delivery(db, "RET620000000002")
        assert row is not None and row["tracking_done"] == "returned"
    finally:
        await again.stop()
    ids = [m for m, _ in first + rest]
    assert len(set(ids)) == len(ids) == 4


async def test_a_carrier_allegro_does_not_track_is_never_read(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    await _shipped(
        admin, emulator, db, amqp_url, "ZEN-1", carrier_id="OTHER", carrier_name="Kurier Zenek"
    )

    async def ended() -> bool:
        row = await _delivery(db, "ZEN-1")
        return row is not None and row["tracking_done"] == "untracked"

    await eventually(ended, timeout=30)
    await _rounds()
    assert await _reads(emulator) == 0
