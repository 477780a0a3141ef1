"""Retention against real PostgreSQL (issue 14, finding 7): rows older than their table's
retention go, recent rows and unfinished work stay, each statement deletes a bounded batch found
through its index, the deletions are counted per table, and one replica prunes."""

from __future__ import annotations

import uuid

import asyncpg
import structlog.testing

from allegro_sync.adapters.postgres import inbox
from allegro_sync.daemon.retention import DAY, RETRY_WINDOW, RetentionService, retention_rules
from allegro_sync.metrics import Metrics

DAYS = {"inbox_days": 7.0, "event_log_days": 90.0, "mail_days": 30.0, "command_days": 7.0}


def service(
    database_url: str, db: asyncpg.Pool, metrics: Metrics, batch: int = 5000
) -> RetentionService:
    return RetentionService(
        dsn=database_url,
        pool=db,
        metrics=metrics,
        rules=retention_rules(**DAYS),
        batch=batch,
        pause=0.01,
    )


async def handled(db: asyncpg.Pool, ids: list[str], days_ago: float) -> None:
    """The consumer's claims of ``ids``, made ``days_ago`` days ago."""
    async with db.acquire() as conn:
        claims = [("stock.changed", id_) for id_ in ids]
        assert await inbox.claim(conn, "allegro-sync.erp", claims) == set(claims)
    await db.execute(
        "UPDATE inbox SET processed_at = now() - make_interval(secs => $2)"
        " WHERE message_id = ANY($1::text[])",
        ids,
        days_ago * DAY,
    )


async def plant(db: asyncpg.Pool) -> None:
    """Per table: rows just past and just within its retention, and unfinished old work."""
    await handled(db, ["old-1", "old-2"], 7.01)
    await handled(db, ["recent"], 6.99)
    account = await db.fetchval(
        "INSERT INTO accounts (allegro_user_id, sandbox, login, name)"
        " VALUES ('u', false, 'shop', 'Shop') RETURNING id"
    )
    for code, days in (("old", 90.01), ("recent", 89.99)):
        await db.execute(
            "INSERT INTO event_log (account_id, category, level, code, message, created_at)"
            " VALUES ($1, 'orders', 'info', $2, 'x', now() - $3::float8 * interval '1 day')",
            account,
            code,
            days,
        )
    # mails: (key, sent days ago, failed days ago), all created 40 days ago
    for key, sent, failed in (
        ("sent-old", 30.01, None),
        ("failed-old", None, 30.01),
        ("sent-recent", 29.99, None),
        ("pending-old", None, None),  # still to send (a long SMTP outage): never pruned
    ):
        await db.execute(
            """
            INSERT INTO mail_outbox (account_id, dedupe_key, recipients, subject, body,
                                     created_at, sent_at, failed_at)
            VALUES ($1, $2, ARRAY['b@example.pl'], 's', 'b', now() - interval '40 days',
                    now() - $3::float8 * interval '1 day', now() - $4::float8 * interval '1 day')
            """,
            account,
            key,
            sent,
            failed,
        )
    form = uuid.uuid4()
    await db.execute(
        "INSERT INTO orders (checkout_form_id, account_id, status, form)"
        " VALUES ($1, $2, 'READY_FOR_PROCESSING', '{}')",
        form,
        account,
    )
    # (key, claimed days ago, written days ago): a claim never written is one Allegro refused
    for key, claimed, sent in (
        ("message-old", 40, 30.01),
        ("message-recent", 40, 29.99),
        ("refused-old", 30.01, None),
        ("refused-recent", 29.99, None),
    ):
        await db.execute(
            "INSERT INTO order_messages (dedupe_key, account_id, checkout_form_id, created_at,"
            " sent_at) VALUES ($1, $2, $3, now() - $4::float8 * interval '1 day',"
            " now() - $5::float8 * interval '1 day')",
            key,
            account,
            form,
            claimed,
            sent,
        )
    for state, days in (("done", 7.01), ("done", 6.99), ("sent", 7.01)):
        await db.execute(
            """
            INSERT INTO offer_commands (id, account_id, kind, payload, offers, state,
                                        created_at, done_at)
            VALUES ($1, $2, 'quantity', '{}', ARRAY['o1'], $3,
                    now() - $4::float8 * interval '1 day',
                    CASE WHEN $3 = 'done' THEN now() - $4::float8 * interval '1 day' END)
            """,
            uuid.uuid4(),
            account,
            state,
            days,
        )


async def left(db: asyncpg.Pool) -> dict[str, list[str]]:
    return {
        "inbox": sorted(await column(db, "SELECT message_id FROM inbox")),
        "event_log": sorted(await column(db, "SELECT code FROM event_log")),
        "mail_outbox": sorted(await column(db, "SELECT dedupe_key FROM mail_outbox")),
        "order_messages": sorted(await column(db, "SELECT dedupe_key FROM order_messages")),
        "offer_commands": sorted(
            await column(
                db,
                "SELECT state || ':' || round(extract(epoch FROM now() - created_at) / 86400, 2)"
                " FROM offer_commands",
            )
        ),
    }


async def column(db: asyncpg.Pool, query: str) -> list[str]:
    return [str(r[0]) for r in await db.fetch(query)]


def pruned(metrics: Metrics, table: str) -> float:
    value = metrics.registry.get_sample_value(
        "allegro_sync_retention_pruned_total", {"table": table}
    )
    return value or 0.0


async def test_old_rows_go_and_recent_rows_and_unfinished_work_stay(
    database_url: str, db: asyncpg.Pool
) -> None:
    await plant(db)
    metrics = Metrics()
    retention = service(database_url, db, metrics)
    try:
        assert await retention.run_once() == {
            "inbox": 2,
            "event_log": 1,
            "mail_outbox": 2,
            "order_messages": 2,
            "offer_commands": 1,
        }
        assert await left(db) == {
            "inbox": ["recent"],
            "event_log": ["recent"],
            "mail_outbox": ["pending-old", "sent-recent"],
            "order_messages": ["message-recent", "refused-recent"],
            "offer_commands": ["done:6.99", "sent:7.01"],
        }
        assert pruned(metrics, "inbox") == 2
        assert pruned(metrics, "mail_outbox") == 2
        # a second round finds nothing more
        assert set((await retention.run_once() or {}).values()) == {0}
        assert pruned(metrics, "inbox") == 2
    finally:
        await retention.stop(1.0)


async def test_a_recent_claim_still_makes_a_redelivery_a_duplicate(
    database_url: str, db: asyncpg.Pool
) -> None:
    """Within the retention (and so within every redelivery window) the claim survives a prune:
    the same message id claimed again is recognised as handled; a pruned one is not."""
    assert RETRY_WINDOW == 756  # 1 + 5 + 30 + 120 + 600 s: far inside the 7 days
    await handled(db, ["stock.changed:P1:3"], RETRY_WINDOW / DAY)
    await handled(db, ["stock.changed:P1:1"], 8)
    retention = service(database_url, db, Metrics())
    try:
        await retention.run_once()
    finally:
        await retention.stop(1.0)
    async with db.acquire() as conn:
        again = await inbox.claim(
            conn, "allegro-sync.erp", [("stock.changed", "stock.changed:P1:3")]
        )
        assert again == set()  # a duplicate
        pruned = [("stock.changed", "stock.changed:P1:1")]
        assert await inbox.claim(conn, "allegro-sync.erp", pruned) == set(pruned)


async def test_each_statement_deletes_a_bounded_batch_through_the_index(
    database_url: str, db: asyncpg.Pool
) -> None:
    ids = [f"m{n}" for n in range(2_000)]
    await handled(db, ids, 8)
    await handled(db, [f"new{n}" for n in range(20_000)], 1)
    await db.execute("ANALYZE inbox")
    plan = "\n".join(
        await column(db, "EXPLAIN " + inbox.PRUNE.replace("$1", "604800").replace("$2", "500"))
    )
    assert "inbox_processed_at" in plan, plan  # the oldest rows found without a table scan
    async with db.acquire() as conn:
        assert await inbox.prune(conn, 7 * DAY, 500) == 500
    assert await db.fetchval("SELECT count(*) FROM inbox") == 21_500
    # the service goes on batch after batch until the old rows are gone
    metrics = Metrics()
    retention = service(database_url, db, metrics, batch=500)
    try:
        result = await retention.run_once()
    finally:
        await retention.stop(1.0)
    assert result is not None and result["inbox"] == 1_500
    assert await db.fetchval("SELECT count(*) FROM inbox") == 20_000
    assert await db.fetchval("SELECT count(*) FROM inbox WHERE message_id LIKE 'm%'") == 0


async def test_one_replica_prunes_and_another_takes_over_when_it_stops(
    database_url: str, db: asyncpg.Pool
) -> None:
    await handled(db, ["old"], 8)
    first_metrics, second_metrics = Metrics(), Metrics()
    first = service(database_url, db, first_metrics)
    second = service(database_url, db, second_metrics)
    try:
        assert await second.run_once() is not None  # leads
        assert await first.run_once() is None  # another replica leads: it deletes nothing
        assert pruned(second_metrics, "inbox") == 1
        await handled(db, ["old-2"], 8)
        assert await first.run_once() is None
        assert await db.fetchval("SELECT count(*) FROM inbox") == 1
        await second.stop(1.0)  # gives the lock back
        assert (await first.run_once() or {}).get("inbox") == 1
        assert pruned(first_metrics, "inbox") == 1
    finally:
        await first.stop(1.0)
        await second.stop(1.0)


async def test_an_inbox_retention_shorter_than_the_retries_is_warned_about(
    database_url: str, db: asyncpg.Pool
) -> None:
    days = DAYS | {"inbox_days": 600 / DAY}  # ten minutes: less than the 12.6 of the retries
    short = RetentionService(
        dsn=database_url, pool=db, metrics=Metrics(), rules=retention_rules(**days)
    )
    with structlog.testing.capture_logs() as logs:
        await short.start()
        await short.stop(1.0)
    [warning] = [e for e in logs if e["event"] == "inbox_retention_short"]
    assert warning["seconds"] == 600 and warning["retry_window"] == RETRY_WINDOW
    default = service(database_url, db, Metrics())
    with structlog.testing.capture_logs() as logs:
        await default.start()
        await default.stop(1.0)
    assert not [e for e in logs if e["event"] == "inbox_retention_short"]
