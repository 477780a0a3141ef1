"""The periodic reconciliation against real PostgreSQL (issue 19): disagreements planted in the
stored state are queued once and counted; a purchase the ERP has not booked is left alone; one
replica runs it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import asyncpg

from allegro_sync.adapters.postgres.offers import MirrorEntry
from allegro_sync.daemon.reconciler import Reconciler
from allegro_sync.handlers.offers import PreparedOffer, refresh_offers
from allegro_sync.metrics import Metrics


async def plant(db: asyncpg.Pool) -> None:
    """One production account with stock control, raise-on-sync and price sync; per offer:
    the ERP's stored value, the mirror and the value our last command applied."""
    account = await db.fetchval(
        """
        INSERT INTO accounts (allegro_user_id, sandbox, login, name, stock_control,
                              raise_quantity_on_erp_sync, sync_prices, sync_prices_since)
        VALUES ('r', false, 'r', 'r', true, true, true, now()) RETURNING id
        """
    )
    offers = [
        # id, product, ERP stock, mirror, applied
        ("lost-raise", "P1", 6, 5, 5),  # the race: ERP 6, our command's 5 stayed
        ("purchase", "P2", 6, 5, 6),  # Allegro sold one the ERP has not booked yet
        ("lost-drop", "P3", 2, 5, None),  # a decrease always goes out
        ("agrees", "P4", 7, 7, 7),
    ]
    for offer_id, product, erp, mirror, applied in offers:
        await db.execute("INSERT INTO products (id, name) VALUES ($1, $1)", product)
        await db.execute(
            "INSERT INTO product_stock (product_id, quantity, version) VALUES ($1, $2, 3)",
            product,
            erp,
        )
        await db.execute(
            """
            INSERT INTO offers (id, account_id, name, format, status, stock, price, currency,
                                product_id, bound_at, applied_stock, sync_price)
            VALUES ($1, $2, $1, 'BUY_NOW', 'ACTIVE', $3, 10.00, 'PLN', $4, now(), $5, false)
            """,
            offer_id,
            account,
            mirror,
            product,
            applied,
        )
    # a price our command set, then the ERP's 12.00 decided on a stale mirror showing 12.00
    await db.execute(
        "UPDATE offers SET sync_price = true, applied_price = 10.00 WHERE id = 'agrees'"
    )
    await db.execute(
        "INSERT INTO product_prices (product_id, price_list, price, currency, version)"
        " VALUES ('P4', 'default', 12.00, 'PLN', 2)"
    )


async def changes(db: asyncpg.Pool) -> dict[tuple[str, str], str]:
    rows = await db.fetch("SELECT offer_id, kind, value FROM offer_changes")
    return {(r["offer_id"], r["kind"]): r["value"] for r in rows}


def counted(metrics: Metrics, kind: str) -> float:
    value = metrics.registry.get_sample_value(
        "allegro_sync_reconciliation_mismatches_total", {"kind": kind}
    )
    return value or 0.0


async def test_planted_disagreements_are_requeued_once_and_counted(
    db: asyncpg.Pool, database_url: str
) -> None:
    await plant(db)
    metrics = Metrics()
    reconciler = Reconciler(dsn=database_url, metrics=metrics)
    other = Reconciler(dsn=database_url, metrics=Metrics())
    try:
        assert await reconciler.run_once() == 3
        assert await changes(db) == {
            ("lost-raise", "quantity"): "6",
            ("lost-drop", "quantity"): "2",
            ("agrees", "price"): "12.00",
        }
        assert counted(metrics, "quantity") == 2
        assert counted(metrics, "price") == 1
        assert metrics.registry.get_sample_value("allegro_sync_reconciliation_last_mismatches") == 3
        # another replica does not run it while this one holds the lock
        assert await other.run_once() is None
        # what is pending now agrees: nothing more is found
        assert await reconciler.run_once() == 0
        assert counted(metrics, "quantity") == 2
        assert (await db.fetchval("SELECT price FROM offers WHERE id = 'agrees'")) == Decimal(
            "10.00"
        )
    finally:
        await reconciler.stop(1.0)
    # the lock went with the first replica: the other one takes over
    try:
        assert await other.run_once() == 0
    finally:
        await other.stop(1.0)


async def test_a_mirror_refresh_that_disagrees_with_the_erp_queues_the_change(
    db: asyncpg.Pool,
) -> None:
    """The journal's echo shows the offer at our command's 5 while the ERP's newest is 6 (its
    decision was made on a stale mirror showing 6): the refresh queues 6. The same echo after a
    purchase (our command set 6) queues nothing."""
    await plant(db)
    await db.execute("UPDATE offers SET stock = 6 WHERE id IN ('lost-raise', 'purchase')")
    now = datetime.now(UTC)

    def echo(offer_id: str, stock: int) -> PreparedOffer:
        entry = MirrorEntry(
            offer_id,
            offer_id,
            "BUY_NOW",
            "ACTIVE",
            None,
            stock,
            Decimal("10.00"),
            "PLN",
            None,
            None,
        )
        return PreparedOffer(account_id, offer_id, now, now, entry, ean_read=False, ean=None)

    account_id = await db.fetchval("SELECT id FROM accounts")
    async with db.acquire() as conn, conn.transaction():
        await refresh_offers([echo("lost-raise", 5), echo("purchase", 5)], conn)
    assert await changes(db) == {("lost-raise", "quantity"): "6"}
