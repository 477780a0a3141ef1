"""Retention end to end (issue 14, finding 7): the running daemon prunes the inbox, and a message
handled within the retention and delivered again is still recognised and handled once."""

from __future__ import annotations

import json

import asyncpg

from allegro_sync.adapters.broker.topology import ERP_EXCHANGE, ERP_QUEUE
from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.retention import DAY, RetentionService
from tests.e2e.conftest import Admin, Emulator
from tests.e2e.flows import bound_offers, commands, emulator_offer, erp, settled, stock_changed
from tests.helpers import eventually, publish_json


def outcomes(daemon: Daemon, outcome: str) -> float:
    value = daemon.metrics.registry.get_sample_value(
        "allegro_sync_messages_total", {"queue": ERP_QUEUE, "outcome": outcome}
    )
    return value or 0.0


async def test_a_message_redelivered_after_a_prune_is_handled_once(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, _, ids = await bound_offers(
        daemon, admin, emulator, db, "sklep-retencja", {"a": "P1"}, stock_control=True
    )
    await erp(daemon, db, stock_changed("P1", 4, 1))  # id stock.changed:P1:1:0
    await settled(daemon, db)
    # a message handled eight days ago, past the inbox's seven
    await publish_json(
        daemon.settings.amqp_url,
        ERP_EXCHANGE,
        [("product.upserted", "product:P9", b'{"product_id": "P9", "ean": null, "name": "Old"}')],
    )

    async def stored() -> bool:
        return bool(await db.fetchval("SELECT true FROM inbox WHERE message_id = 'product:P9'"))

    await eventually(stored)
    await db.execute(
        "UPDATE inbox SET processed_at = now() - make_interval(secs => $1)"
        " WHERE message_id = 'product:P9'",
        8 * DAY,
    )
    [retention] = [s for s in daemon.services if isinstance(s, RetentionService)]
    result = await retention.run_once()
    assert result is not None and result["inbox"] == 1
    kept = {r["message_id"] for r in await db.fetch("SELECT message_id FROM inbox")}
    assert "stock.changed:P1:1:0" in kept and "product:P9" not in kept

    sent_before = len(await commands(emulator, seller))
    duplicates, acked = outcomes(daemon, "duplicate"), outcomes(daemon, "ack")
    # the recent message comes again (an ERP re-sending it, a lost acknowledgement)
    body = json.dumps(stock_changed("P1", 4, 1)[1]).encode()
    await publish_json(
        daemon.settings.amqp_url, ERP_EXCHANGE, [("stock.changed", "stock.changed:P1:1:0", body)]
    )

    async def recognised() -> bool:
        return outcomes(daemon, "duplicate") == duplicates + 1

    await eventually(recognised)
    assert outcomes(daemon, "ack") == acked  # not handled a second time
    await settled(daemon, db)
    assert len(await commands(emulator, seller)) == sent_before
    assert (await emulator_offer(emulator, ids["a"]))["stock"] == 4
