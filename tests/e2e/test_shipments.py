"""Tracking numbers to Allegro end to end (issue 16 item 1): ``shipment.added`` from the ERP
becomes one shipment on the order (``POST /order/checkout-forms/{id}/shipments``), marks the
order SENT when the account wants it, and shows in the admin list."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from allegro_sync.adapters.broker.topology import DEAD_LETTER_QUEUE, ERP_EXCHANGE
from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import Admin, Emulator
from tests.e2e.flows import _buy, _dead_letters, _handled, _log_codes, _send, _shop
from tests.helpers import drain_queue, eventually, publish_json


async def _order(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, **settings: Any
) -> tuple[int, str]:
    """A connected account with one paid order stored: (account id, checkout form id)."""
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True, **settings)
    form_id = await _buy(emulator, offers[0])
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    return int(account["id"]), form_id


def _shipment(form_id: str, waybill: str = "620012345678901", **fields: Any) -> dict[str, Any]:
    return {"checkout_form_id": form_id, "carrier_id": "INPOST", "waybill": waybill, **fields}


async def _on_allegro(emulator: Emulator, form_id: str) -> list[dict[str, Any]]:
    found = await emulator.control("GET", "/shipments")
    return [s for s in found["shipments"] if s["checkout_form_id"] == form_id]


async def _status(emulator: Emulator, form_id: str) -> str:
    form = await emulator.control("GET", f"/checkout-forms/{form_id}")
    return str(form["fulfillment"]["status"])


async def _done(db: asyncpg.Pool, form_id: str, waybill: str) -> bool:
    """The shipment is on Allegro and its status step is over."""
    return bool(
        await db.fetchval(
            "SELECT true FROM shipments WHERE checkout_form_id = $1 AND waybill = $2"
            " AND status = 'sent' AND fulfillment_at IS NOT NULL",
            uuid.UUID(form_id),
            waybill,
        )
    )


async def test_a_tracking_number_reaches_the_order_once_and_marks_it_sent(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    body = _shipment(form_id, carrier_id="inpost")  # Allegro's ids, in any case
    await _send(amqp_url, "shipment.added", body, "ship-1")
    await _send(amqp_url, "shipment.added", body, "ship-1")  # redelivered
    await eventually(lambda: _done(db, form_id, body["waybill"]), timeout=20)
    await _send(amqp_url, "shipment.added", body, "ship-1-again")  # the same waybill again

    async def all_handled() -> bool:
        seen = await db.fetchval("SELECT count(*) FROM inbox WHERE message_id LIKE 'ship-1%'")
        return bool(seen == 2)

    await eventually(all_handled, timeout=20)
    [shipment] = await _on_allegro(emulator, form_id)
    assert shipment["carrierId"] == "INPOST" and shipment["waybill"] == body["waybill"]
    assert await _status(emulator, form_id) == "SENT"
    assert (await _log_codes(db, account_id)).count("shipment_added") == 1
    assert await drain_queue(amqp_url, DEAD_LETTER_QUEUE, wait=0.2) == []
    requests = (await emulator.control("GET", "/requests"))["by_path"]
    assert requests.get("GET /order/carriers") == 1, requests  # the list is cached
    assert requests.get("POST /order/checkout-forms/{id}/shipments") == 1, requests

    status, page = await admin.call("GET", f"/shipments?checkout_form_id={form_id}")
    assert status == 200, page
    [listed] = page["items"]
    assert listed["waybill"] == body["waybill"] and listed["status"] == "sent"
    assert listed["account_id"] == account_id and listed["carrier_id"] == "INPOST"
    assert listed["allegro_shipment_id"] == shipment["id"] and page["next"] is None
    status, page = await admin.call("GET", f"/shipments?account_id={account_id}&status=refused")
    assert status == 200 and page["items"] == []
    status, error = await admin.call("GET", "/shipments?status=lost")
    assert status == 422 and "status" in str(error)
    status, error = await admin.call("GET", "/shipments?checkout_form_id=nope")
    assert status == 422


async def test_what_can_never_be_added_is_dead_lettered_with_the_reason(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    _, form_id = await _order(admin, emulator, db)
    line = str(uuid.uuid4())
    bad = {
        "pigeon": _shipment(form_id, carrier_id="PIGEON"),
        "nameless": _shipment(form_id, carrier_id="OTHER"),
        "foreign-line": _shipment(form_id, line_items=[{"line_item_id": line, "quantity": 1}]),
        "no-order": _shipment(str(uuid.uuid4())),
        "long": _shipment(form_id, waybill="x" * 65),
    }
    for message_id, body in bad.items():
        await _send(amqp_url, "shipment.added", body, message_id)
    errors = await _dead_letters(amqp_url, len(bad))
    assert any("unknown carrier 'PIGEON'" in e and "OTHER" in e for e in errors), errors
    assert any("carrier OTHER needs carrier_name" in e for e in errors), errors
    assert any(f"line item {line} is not on the order" in e for e in errors), errors
    assert any("unknown checkout form" in e for e in errors), errors
    assert any("waybill" in e for e in errors), errors
    assert await _on_allegro(emulator, form_id) == []
    assert await _status(emulator, form_id) == "NEW"


async def test_another_carrier_by_name_for_part_of_the_order(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    _, form_id = await _order(admin, emulator, db)
    form = await emulator.control("GET", f"/checkout-forms/{form_id}")
    line_id = form["lineItems"][0]["id"]
    assert form["lineItems"][0]["quantity"] == 2
    body = _shipment(
        form_id,
        carrier_id="OTHER",
        carrier_name="Kurier Zenek",
        waybill="ZEN-0001",
        line_items=[{"line_item_id": line_id, "quantity": 1}],  # one of the two pieces
    )
    await _send(amqp_url, "shipment.added", body, "ship-other")
    await eventually(lambda: _done(db, form_id, "ZEN-0001"), timeout=20)
    [shipment] = await _on_allegro(emulator, form_id)
    assert shipment["carrierId"] == "OTHER" and shipment["carrierName"] == "Kurier Zenek"
    assert shipment["lineItems"] == [{"id": line_id}]
    _, page = await admin.call("GET", f"/shipments?checkout_form_id={form_id}")
    assert page["items"][0]["line_items"] == [{"line_item_id": line_id, "quantity": 1}]
    too_many = {**body, "waybill": "ZEN-0002"}
    too_many["line_items"] = [{"line_item_id": line_id, "quantity": 3}]
    await _send(amqp_url, "shipment.added", too_many, "ship-too-many")
    [error] = await _dead_letters(amqp_url, 1)
    assert "quantity 3 is more than the 2 bought" in error


async def test_mark_sent_on_tracking_off_leaves_the_status_alone(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    account_id, form_id = await _order(admin, emulator, db, mark_sent_on_tracking=False)
    _, account = await admin.call("GET", f"/accounts/{account_id}")
    assert account["mark_sent_on_tracking"] is False
    await _send(amqp_url, "shipment.added", _shipment(form_id, carrier_id="DPD"), "ship-off")
    await eventually(lambda: _done(db, form_id, "620012345678901"), timeout=20)
    assert len(await _on_allegro(emulator, form_id)) == 1
    assert await _status(emulator, form_id) == "NEW"
    recorded = await emulator.control("GET", "/fulfillments")
    assert [f for f in recorded["fulfillments"] if f["checkout_form_id"] == form_id] == []


async def test_an_order_already_picked_up_is_not_moved_back_to_sent(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str, daemon: Daemon
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    assert daemon.allegro is not None
    # The seller set PICKED_UP elsewhere; the stored form (and its revision) is older.
    await daemon.allegro.request(
        account_id,
        "PUT",
        f"/order/checkout-forms/{form_id}/fulfillment",
        action="set fulfillment status",
        json={"status": "PICKED_UP"},
    )
    await _send(amqp_url, "shipment.added", _shipment(form_id), "ship-late")
    await eventually(lambda: _done(db, form_id, "620012345678901"), timeout=20)
    assert len(await _on_allegro(emulator, form_id)) == 1
    assert await _status(emulator, form_id) == "PICKED_UP"


async def test_a_redelivery_after_a_crash_between_persisting_and_posting_adds_one_shipment(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str, daemon: Daemon
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    assert daemon.allegro is not None
    # The daemon stored the row and posted, then died before it stored Allegro's answer.
    await db.execute(
        "INSERT INTO shipments (checkout_form_id, account_id, waybill, carrier_id, requested_at)"
        " VALUES ($1, $2, $3, 'INPOST', now())",
        uuid.UUID(form_id),
        account_id,
        "620012345678901",
    )
    await daemon.allegro.request(
        account_id,
        "POST",
        f"/order/checkout-forms/{form_id}/shipments",
        action="add tracking number",
        json={"carrierId": "INPOST", "waybill": "620012345678901"},
    )
    await _send(amqp_url, "shipment.added", _shipment(form_id), "ship-after-crash")
    await eventually(lambda: _done(db, form_id, "620012345678901"), timeout=20)
    [shipment] = await _on_allegro(emulator, form_id)
    stored = await db.fetchval(
        "SELECT allegro_shipment_id FROM shipments WHERE checkout_form_id = $1",
        uuid.UUID(form_id),
    )
    assert stored == shipment["id"]
    assert await _status(emulator, form_id) == "SENT"


async def test_the_same_waybill_in_many_messages_at_once_is_one_shipment(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    body = _shipment(form_id, carrier_id="GLS")
    # the ERP sent it five times, under five ids, in one burst (one batch, handled at once)
    raw = json.dumps(body).encode()
    rows = [("shipment.added", f"burst-{n}", raw) for n in range(5)]
    await publish_json(amqp_url, ERP_EXCHANGE, rows)

    async def all_handled() -> bool:
        seen = await db.fetchval("SELECT count(*) FROM inbox WHERE message_id LIKE 'burst-%'")
        return bool(seen == 5)

    await eventually(all_handled, timeout=30)  # those that met the lease came back once
    assert len(await _on_allegro(emulator, form_id)) == 1
    assert await _status(emulator, form_id) == "SENT"
    assert (await _log_codes(db, account_id)).count("shipment_added") == 1
    assert await drain_queue(amqp_url, DEAD_LETTER_QUEUE, wait=0.2) == []


async def test_a_refusal_by_allegro_is_dead_lettered_with_its_words_and_listed(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    # No status change (mark_sent_on_tracking off): its journal echo would have the daemon read
    # the form again and store it over the change below.
    account_id, form_id = await _order(admin, emulator, db, mark_sent_on_tracking=False)
    await _send(amqp_url, "shipment.added", _shipment(form_id, waybill="GOOD-1"), "ship-good")
    await eventually(lambda: _done(db, form_id, "GOOD-1"), timeout=20)
    # The stored form names a line Allegro's order does not have (changed since it was read):
    # our check passes, Allegro's refuses.
    ghost = str(uuid.uuid4())
    await db.execute(
        "UPDATE orders SET form = jsonb_set(form, '{lineItems}', form -> 'lineItems'"
        " || jsonb_build_array(jsonb_build_object('id', $2::text, 'quantity', 1)))"
        " WHERE checkout_form_id = $1",
        uuid.UUID(form_id),
        ghost,
    )
    lines = [{"line_item_id": ghost, "quantity": 1}]
    await _send(
        amqp_url, "shipment.added", _shipment(form_id, waybill="BAD-1", line_items=lines), "bad"
    )
    [error] = await _dead_letters(amqp_url, 1)
    assert "Allegro refused tracking number BAD-1" in error and "does not belong" in error
    assert "shipment_refused" in await _log_codes(db, account_id)
    assert [s["waybill"] for s in await _on_allegro(emulator, form_id)] == ["GOOD-1"]

    status, page = await admin.call("GET", f"/shipments?account_id={account_id}&status=refused")
    assert status == 200
    [refused] = page["items"]
    assert refused["waybill"] == "BAD-1" and "does not belong" in refused["error"]
    status, first = await admin.call("GET", f"/shipments?checkout_form_id={form_id}&limit=1")
    assert status == 200 and [i["waybill"] for i in first["items"]] == ["BAD-1"]  # newest first
    status, second = await admin.call(
        "GET",
        "/shipments",
        params={"checkout_form_id": form_id, "limit": "1", "cursor": first["next"]},
    )
    assert status == 200 and [i["waybill"] for i in second["items"]] == ["GOOD-1"]
    assert second["next"] is None
