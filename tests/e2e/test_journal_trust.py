"""Forged journal messages (issue 14 finding 1), end to end: a message on
``allegro-sync.journal`` with a made-up checkout form, as whoever holds broker credentials could
publish it, becomes no order, no ``order.created`` and no e-mail; it goes to the dead letters at
once with the reason. The same message signed under the installation's key (as the daemon's own
order sweep signs it) does become an order, so the refusal is the signature's doing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg

from allegro_sync.adapters.broker.signing import UNSIGNED
from allegro_sync.adapters.broker.topology import JOURNAL_EXCHANGE
from allegro_sync.contract import ORDER_BACKFILL
from allegro_sync.daemon.app import Daemon
from allegro_sync.handlers.order_sweep import sweep_message
from tests.e2e.conftest import Admin, Emulator
from tests.e2e.flows import Erp, _buy, _dead_letters, _handled, _shop
from tests.helpers import eventually, publish_json

FORGER = "forger@attacker.example"


async def test_a_forged_journal_message_becomes_no_order(
    admin: Admin, emulator: Emulator, daemon: Daemon, db: asyncpg.Pool
) -> None:
    erp = Erp(daemon.settings.amqp_url)
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    real = await _buy(emulator, offers[0])
    await _handled(db, real, "READY_FOR_PROCESSING")
    await erp.wait_for("order.created")
    assert daemon.allegro is not None
    form = dict(
        await daemon.allegro.get(
            account["id"], f"/order/checkout-forms/{real}", action="read checkout form"
        )
    )
    # a made-up form: new ids, the forger's address
    forged_id = str(uuid.uuid4())
    form["id"] = forged_id
    form["lineItems"] = [{**item, "id": str(uuid.uuid4())} for item in form["lineItems"]]
    form["buyer"] = {**form["buyer"], "email": FORGER}
    message = sweep_message(account["id"], form, datetime.now(UTC))
    body = json.dumps(message.payload).encode()
    # unsigned, and then redelivered under the same id: dead letters both times
    await publish_json(
        daemon.settings.amqp_url,
        JOURNAL_EXCHANGE,
        [(ORDER_BACKFILL, message.message_id, body)] * 2,
        signed_with=None,
    )
    assert await _dead_letters(daemon.settings.amqp_url, 2) == [UNSIGNED, UNSIGNED]
    await erp.settle(2.0)
    assert [o["checkout_form_id"] for o in erp.of("order.created")] == [real]
    assert not await db.fetchval("SELECT true FROM orders WHERE checkout_form_id = $1", forged_id)
    assert not await db.fetchval(
        "SELECT count(*) FROM inbox WHERE message_id = $1", message.message_id
    )
    status, listing = await admin.call("GET", f"/orders?account_id={account['id']}")
    assert status == 200 and [o["checkout_form_id"] for o in listing["items"]] == [real]

    # the same bytes signed as the daemon signs them: taken (what the forgery would have done)
    await publish_json(
        daemon.settings.amqp_url, JOURNAL_EXCHANGE, [(ORDER_BACKFILL, message.message_id, body)]
    )

    async def taken() -> bool:
        await erp.take()
        return forged_id in [o["checkout_form_id"] for o in erp.of("order.created")]

    await eventually(taken, timeout=20)
