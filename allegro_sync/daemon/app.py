"""The composition root: builds every adapter from Settings and runs the daemon's parts.

Nothing else in the code base constructs pools, connections or clients; everything receives what
it needs from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg
import structlog
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web

from allegro_sync.adapters.broker import connection as broker
from allegro_sync.adapters.broker.consumer import BatchConsumer
from allegro_sync.adapters.broker.publisher import ConfirmingPublisher
from allegro_sync.adapters.broker.topology import declare_topology
from allegro_sync.adapters.postgres import migrations
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.config.settings import Settings
from allegro_sync.daemon.api.auth import bearer_auth
from allegro_sync.daemon.api.errors import json_errors
from allegro_sync.daemon.api.health import add_health_routes
from allegro_sync.daemon.metrics import Metrics
from allegro_sync.daemon.outbox_relay import OutboxRelay
from allegro_sync.handlers.registry import build_routes

log = structlog.get_logger(__name__)


class Service(Protocol):
    """A long-running part of the daemon."""

    async def start(self) -> None: ...

    async def stop(self, timeout: float) -> None: ...


@dataclass
class Daemon:
    """The running daemon's parts, in start order."""

    settings: Settings
    metrics: Metrics = field(default_factory=Metrics)
    pool: asyncpg.Pool | None = None
    amqp: AbstractRobustConnection | None = None
    services: list[Service] = field(default_factory=list)
    http_runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Migrate, declare the topology, then start HTTP, the relay and the consumers."""
        settings = self.settings
        dsn = settings.database_url
        applied = await migrations.migrate(dsn)
        if applied:
            log.info("database_migrated", applied=applied)
        self.pool = await pg.create_pool(dsn)
        self.amqp = await broker.connect(settings.amqp_url)
        channel = await self.amqp.channel()
        await declare_topology(channel)
        await channel.close()

        relay_publisher = await ConfirmingPublisher.open(self.amqp)
        self.services.append(
            OutboxRelay(dsn=dsn, pool=self.pool, publisher=relay_publisher, metrics=self.metrics)
        )
        for queue_name, routes in build_routes().items():
            self.services.append(
                BatchConsumer(
                    connection=self.amqp,
                    pool=self.pool,
                    queue_name=queue_name,
                    routes=routes,
                    metrics=self.metrics,
                    prefetch=settings.consumer_prefetch,
                )
            )
        for service in self.services:
            await service.start()
        # HTTP last: once /healthz answers, every part of the daemon is running.
        await self._start_http()
        log.info("daemon_started", http=f"http://{settings.http_host}:{settings.http_port}")

    async def _start_http(self) -> None:
        settings = self.settings
        app = web.Application(
            middlewares=[json_errors, bearer_auth(settings.admin_token.get_secret_value())]
        )
        add_health_routes(
            app,
            probes={"postgres": self._postgres_ready, "rabbitmq": self._rabbitmq_ready},
            metrics=self.metrics,
        )
        self.http_runner = web.AppRunner(app, access_log=None)
        await self.http_runner.setup()
        site = web.TCPSite(self.http_runner, settings.http_host, settings.http_port)
        await site.start()

    async def _postgres_ready(self) -> bool:
        assert self.pool is not None
        return bool(await self.pool.fetchval("SELECT true"))

    async def _rabbitmq_ready(self) -> bool:
        assert self.amqp is not None
        if self.amqp.is_closed or not self.amqp.connected.is_set():
            return False
        channel = await self.amqp.channel()
        await channel.close()
        return True

    async def stop(self) -> None:
        """Stop intake first, drain in-flight work within the timeout, then close everything."""
        timeout = self.settings.shutdown_timeout
        for service in reversed(self.services):
            try:
                await service.stop(timeout)
            except Exception:
                log.exception("service_stop_failed", service=type(service).__name__)
        if self.http_runner is not None:
            await self.http_runner.cleanup()
        if self.amqp is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.amqp.close(), timeout)
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pool.close(), timeout)
        log.info("daemon_stopped")


async def run_daemon(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT, then shut down cleanly; the exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(settings)
    try:
        await daemon.start()
        await stop.wait()
        log.info("daemon_stopping")
    finally:
        await daemon.stop()
    return 0
