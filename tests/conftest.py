"""Shared fixtures: real PostgreSQL and RabbitMQ, isolated per test.

PostgreSQL: a template database is migrated once per session; every test gets a fresh database
cloned from it. RabbitMQ: a virtual host per session; every test starts with the topology
deleted, so no message of an earlier test is left behind.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

import aio_pika
import asyncpg
import pytest

from allegro_sync.adapters.broker.topology import (
    CONSUMER_QUEUES,
    DEAD_LETTER_QUEUE,
    OUTBOUND_QUEUES,
    RETRY_DELAYS_MS,
    declare_topology,
    retry_queue_name,
)
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.adapters.postgres.migrations import migrate

PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_BASE = os.environ.get("TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672/")
TEMPLATE_DB = f"allegro_sync_test_template_{os.getpid()}"


def _db_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    """A migrated database that every test's database is cloned from."""

    async def setup() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        await conn.close()
        await migrate(_db_url(TEMPLATE_DB))

    asyncio.run(setup())
    yield TEMPLATE_DB

    async def teardown() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')
        await conn.close()

    asyncio.run(teardown())


@pytest.fixture
async def database_url(template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database for one test."""
    name = f"allegro_sync_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    await conn.close()
    yield _db_url(name)
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's database."""
    pool = await pg.create_pool(database_url, min_size=1, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def vhost() -> Iterator[str]:
    """A RabbitMQ virtual host for this test session."""
    name = f"allegro-sync-test-{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    yield name
    _rabbitmqctl("delete_vhost", name)


@pytest.fixture
async def amqp_url(vhost: str) -> str:
    """The session's virtual host, with the topology removed so the test starts empty."""
    url = AMQP_BASE.rstrip("/") + "/" + quote(vhost, safe="")
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    names = [DEAD_LETTER_QUEUE]
    for spec in CONSUMER_QUEUES + OUTBOUND_QUEUES:
        names.append(spec.name)
    for spec in CONSUMER_QUEUES:
        names.extend(retry_queue_name(spec.name, d) for d in RETRY_DELAYS_MS)
    for name in names:
        await channel.queue_delete(name)
    await connection.close()
    return url


@pytest.fixture
async def amqp(amqp_url: str) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    """A connection to the test's virtual host with the topology declared."""
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    await declare_topology(channel)
    await channel.close()
    yield connection
    await connection.close()
