"""The order handler on a whole consumer batch at once (real PostgreSQL): the same outcomes as
one message at a time, including merged checkout forms whose parts arrive in the same batch."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from allegro_sync.handlers.orders import PreparedOrder, handle_orders

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _form(form_id: uuid.UUID, lines: list[str], *, paid: bool = True) -> dict[str, Any]:
    return {
        "id": str(form_id),
        "status": "READY_FOR_PROCESSING" if paid else "BOUGHT",
        "revision": "r1",
        "buyer": {"id": "b1", "login": "buyer", "email": "x@allegromail.pl"},
        "payment": {
            "type": "ONLINE",
            "finishedAt": "2026-11-20T10:05:00.000Z" if paid else None,
            "paidAmount": {"amount": "19.99", "currency": "PLN"} if paid else None,
        },
        "lineItems": [
            {
                "id": line,
                "boughtAt": "2026-11-20T10:00:00.000Z",
                "quantity": 1,
                "offer": {"id": f"offer-{line}", "name": "Kubek"},
                "price": {"amount": "19.99", "currency": "PLN"},
            }
            for line in lines
        ],
        "summary": {"totalToPay": {"amount": "19.99", "currency": "PLN"}},
    }


def _prepared(account_id: int, form: dict[str, Any], read_at: datetime = NOW) -> PreparedOrder:
    return PreparedOrder(
        account_id=account_id,
        checkout_form_id=uuid.UUID(form["id"]),
        form=form,
        read_at=read_at,
        event_id=f"event-{form['id']}",
        occurred_at=read_at,
    )


async def _account(db: asyncpg.Pool) -> int:
    account_id: int = await db.fetchval(
        "INSERT INTO accounts (allegro_user_id, sandbox, login, name, auto_create_orders)"
        " VALUES ('42', false, 'shop', 'Sklep', true) RETURNING id"
    )
    return account_id


async def _announced(db: asyncpg.Pool) -> list[str]:
    rows = await db.fetch(
        "SELECT message_id FROM outbox WHERE routing_key = 'order.created' ORDER BY message_id"
    )
    return [r["message_id"] for r in rows]


async def test_a_batch_of_forms_is_stored_and_announced_once_each(db: asyncpg.Pool) -> None:
    account_id = await _account(db)
    forms = [_form(uuid.uuid4(), [f"line-{n}"]) for n in range(5)]
    stale = _prepared(account_id, {**forms[0], "status": "BOUGHT"}, NOW - timedelta(seconds=5))
    batch = [stale] + [_prepared(account_id, f) for f in forms]
    async with db.acquire() as conn, conn.transaction():
        await handle_orders(batch, conn)
    assert await _announced(db) == sorted(f"order.created:{f['id']}" for f in forms)
    statuses = await db.fetch("SELECT DISTINCT status FROM orders")
    assert [r["status"] for r in statuses] == ["READY_FOR_PROCESSING"]  # the newest read won
    assert await db.fetchval("SELECT count(*) FROM order_lines") == 5
    assert await db.fetchval("SELECT count(*) FROM event_log WHERE code = 'order_created'") == 5
    # the same batch again (a redelivery that slipped past the inbox): nothing new
    async with db.acquire() as conn, conn.transaction():
        await handle_orders(batch, conn)
    assert len(await _announced(db)) == 5
    assert await db.fetchval("SELECT count(*) FROM event_log WHERE code = 'order_created'") == 5


async def test_merged_forms_in_one_batch_make_one_order(db: asyncpg.Pool) -> None:
    account_id = await _account(db)
    one, two, merged = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    batch = [
        _prepared(account_id, _form(one, ["l1"], paid=False)),
        _prepared(account_id, _form(two, ["l2"], paid=False)),
        _prepared(account_id, _form(merged, ["l1", "l2"])),
    ]
    async with db.acquire() as conn, conn.transaction():
        await handle_orders(batch, conn)
    assert await _announced(db) == [f"order.created:{merged}"]
    rows = await db.fetch("SELECT checkout_form_id, superseded_by FROM orders")
    superseded = {r["checkout_form_id"]: r["superseded_by"] for r in rows}
    assert superseded == {one: merged, two: merged, merged: None}
    lines = await db.fetch("SELECT id, checkout_form_id FROM order_lines ORDER BY id")
    assert [(r["id"], r["checkout_form_id"]) for r in lines] == [("l1", merged), ("l2", merged)]


async def test_an_inactive_account_stores_nothing(db: asyncpg.Pool) -> None:
    account_id = await _account(db)
    await db.execute("UPDATE accounts SET active = false WHERE id = $1", account_id)
    async with db.acquire() as conn, conn.transaction():
        await handle_orders([_prepared(account_id, _form(uuid.uuid4(), ["l1"]))], conn)
    assert await db.fetchval("SELECT count(*) FROM orders") == 0
