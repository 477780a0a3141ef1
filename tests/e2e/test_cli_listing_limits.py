"""``allegro-sync offers list PRODUCT`` keeps to the limits the daemons share (issue 17 review
item 8): the seller's product-offer writes and the client's requests are leased from the same
``rate_buckets`` rows, so a pause every daemon keeps to (after a 429) holds the command too,
and a postponed step is taken again only when due."""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.listing_service import ListingService
from tests.e2e.conftest import Admin, Emulator
from tests.e2e.test_listing import GTIN, cli_env, listing, product, run, shop

PAUSE_SECONDS = 10.0


async def test_the_cli_listing_waits_out_a_pause_the_daemons_keep_to(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, account_id = await shop(admin, emulator, "sklep-cli-limits")
    await product(daemon, db, "P21", GTIN)
    env = cli_env(daemon)
    # The command alone takes the listing to its end (the daemon's listing service is off).
    for service in daemon.services:
        if isinstance(service, ListingService):
            await service.stop(5.0)
    # A 429 seen by another replica paused the seller's product-offer writes for everyone.
    await db.execute(
        "INSERT INTO rate_buckets (key, tokens, blocked_until)"
        " SELECT k, 10, clock_timestamp() + make_interval(secs => $2)"
        " FROM unnest($1::text[]) AS k",
        [f"changes:{account_id}:listing:hour", f"changes:{account_id}:listing:minute"],
        PAUSE_SECONDS,
    )
    args = [sys.executable, "-m", "allegro_sync.daemon.cli", "offers", "list", "P21"]
    command = asyncio.create_task(
        run([*args, "--account", str(account_id), "--price", "10.50", "--quantity", "2"], env)
    )
    # while the pause lasts (the database's clock), nothing is posted
    polls = 0
    while await db.fetchval(
        "SELECT clock_timestamp() < blocked_until FROM rate_buckets WHERE key = $1",
        f"changes:{account_id}:listing:minute",
    ):
        counts = await emulator.control("GET", "/requests")
        posted = counts["by_seller"].get(seller["id"], {}).get("POST /sale/product-offers", 0)
        assert posted == 0, "the command wrote while the daemons were paused"
        polls += 1
        await asyncio.sleep(0.2)
    assert polls > 10
    done = await command
    assert done.returncode == 0, done.stderr
    row = await listing(db, "P21", "listed")
    assert row["offer_id"] in done.stdout
    counts = await emulator.control("GET", "/requests")
    assert counts["by_seller"][seller["id"]].get("POST /sale/product-offers") == 1, counts
