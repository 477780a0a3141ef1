"""Migrations: create the database when missing, idempotent, safe from two processes at once."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import asyncpg

from allegro_sync.adapters.postgres.migrations import load_migrations
from tests.conftest import PG_ADMIN, _db_url


async def _migrate_cli(database_url: str, cwd: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLEGRO_SYNC_")}
    env["ALLEGRO_SYNC_DATABASE_URL"] = database_url
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "allegro_sync.daemon.cli",
        "migrate",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_migrate_creates_database_and_is_safe_twice_and_concurrently(tmp_path: Path) -> None:
    name = f"allegro_sync_migrate_{uuid.uuid4().hex[:10]}"
    url = _db_url(name)
    try:
        results = await asyncio.gather(_migrate_cli(url, tmp_path), _migrate_cli(url, tmp_path))
        assert [code for code, _ in results] == [0, 0], results
        again_code, again_out = await _migrate_cli(url, tmp_path)
        assert again_code == 0
        assert "migrations applied: 0" in again_out

        conn = await asyncpg.connect(url)
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        await conn.close()
        assert [r["version"] for r in rows] == [m.version for m in load_migrations()]
        for table in (
            "accounts",
            "account_tokens",
            "journal_cursors",
            "offers",
            "products",
            "product_prices",
            "price_lists",
            "orders",
            "order_lines",
            "customers",
            "event_log",
            "inbox",
            "outbox",
        ):
            assert table in tables
    finally:
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def test_migrate_reports_an_unreachable_database_in_one_line(tmp_path: Path) -> None:
    code, out = await _migrate_cli("postgresql://postgres@127.0.0.1:1/nowhere", tmp_path)
    assert code != 0
    assert "Traceback" not in out
    assert len(out.strip().splitlines()) == 1


async def test_the_inbox_claims_by_type_and_id_and_honours_rows_from_before_types(
    db: asyncpg.Pool,
) -> None:
    from allegro_sync.adapters.postgres import inbox

    # a row claimed before migration 0012 knew types
    await db.execute("INSERT INTO inbox (consumer, message_id) VALUES ('q', 'old')")
    async with db.acquire() as conn:
        first = await inbox.claim(
            conn, "q", [("stock.changed", "1"), ("price.changed", "1"), ("stock.changed", "old")]
        )
        again = await inbox.claim(conn, "q", [("stock.changed", "1"), ("stock.changed", "1")])
    assert first == {("stock.changed", "1"), ("price.changed", "1")}
    assert again == set()
