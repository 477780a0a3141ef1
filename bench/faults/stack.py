"""One scenario's stack: a database and a virtual host of their own, the emulator, the daemon
processes, and the ERP on the other side of the broker (a publisher with confirms and a consumer
of ``allegro-sync.events.erp`` that records every delivery)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg

from allegro_sync.adapters.broker.connection import connect as connect_broker
from allegro_sync.adapters.broker.topology import DEAD_LETTER_QUEUE, ERP_OUTBOUND_QUEUE
from allegro_sync.daemon.pollers import WAKE_CHANNEL
from bench._support import (
    ADMIN_TOKEN,
    connect_seller,
    daemon_env,
    free_port,
    start_emulator,
    stop,
    wait_http,
)

LOGS = Path(__file__).parent.parent / "results" / "faults"


def load_average() -> float:
    """The machine's one-minute load average."""
    return os.getloadavg()[0]


@dataclass
class Daemon:
    """One ``allegro-sync run`` process, restartable (as systemd's ``Restart=always``)."""

    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.env['ALLEGRO_SYNC_HTTP_PORT']}"

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "allegro_sync.daemon.cli", "--log-level", "INFO", "run"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)

    async def ready(self, timeout: float = 120) -> None:
        await wait_http(self.url + "/healthz", timeout)

    async def readiness(self) -> int:
        """The status ``/readyz`` answers (0: no answer within 5 s)."""
        try:
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
                session.get(self.url + "/readyz") as r,
            ):
                return r.status
        except (aiohttp.ClientError, TimeoutError):
            return 0


@dataclass
class ErpSide:
    """The ERP: publishes with confirms (re-publishing what the broker did not confirm, as a
    careful producer does) and consumes ``allegro-sync.events.erp`` with manual acks."""

    amqp_url: str
    deliveries: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    _connection: Any = None

    async def start(self) -> None:
        self._connection = await connect_broker(self.amqp_url, wait_seconds=120)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=500)
        queue = await channel.get_queue(ERP_OUTBOUND_QUEUE)

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            body = json.loads(message.body)
            self.deliveries.append((message.routing_key or "", message.message_id or "", body))
            with contextlib.suppress(Exception):  # a delivery of a lost channel comes again
                await message.ack()

        await queue.consume(on_message)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def announced(self, routing_key: str, field_name: str) -> list[tuple[str, str]]:
        return [(m, str(b.get(field_name))) for k, m, b in self.deliveries if k == routing_key]

    async def publish(
        self,
        messages: Sequence[tuple[str, str, bytes]],
        *,
        window: int = 500,
        give_up: float = 600,
    ) -> None:
        """Publish (routing key, message id, body) to ``erp.events`` until every one is
        confirmed; a window the broker did not confirm is sent again."""
        deadline = time.monotonic() + give_up
        for first in range(0, len(messages), window):
            chunk = messages[first : first + window]
            while True:
                try:
                    await self._publish_once(chunk)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(1.0)

    async def _publish_once(self, chunk: Sequence[tuple[str, str, bytes]]) -> None:
        channel = await self._connection.channel(publisher_confirms=True)
        try:
            exchange = await channel.get_exchange("erp.events")
            await asyncio.wait_for(
                asyncio.gather(
                    *(
                        exchange.publish(
                            aio_pika.Message(
                                body,
                                message_id=mid,
                                content_type="application/json",
                                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            ),
                            routing_key=key,
                        )
                        for key, mid, body in chunk
                    )
                ),
                60,
            )
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def dead_letters(self) -> list[str]:
        """Ids of the messages in the dead-letter queue (taken)."""
        channel = await self._connection.channel()
        queue = await channel.get_queue(DEAD_LETTER_QUEUE)
        ids = []
        while (message := await queue.get(fail=False, timeout=10)) is not None:
            ids.append(message.message_id or "")
            await message.ack()
        await channel.close()
        return ids


class Stack:
    """The emulator, a database, a broker address (one URL or several), daemons and the ERP."""

    def __init__(self, name: str, database_url: str, amqp_url: str, **daemon_extra: str) -> None:
        self.name = name
        self.database_url = database_url
        self.amqp_url = amqp_url
        self.emulator_url = f"http://127.0.0.1:{free_port()}"
        self.daemon_extra = daemon_extra
        self.daemons: list[Daemon] = []
        self.emulator: subprocess.Popen[bytes] | None = None
        self.erp = ErpSide(amqp_url)

    def daemon(self, *, amqp_url: str | None = None, database_url: str | None = None) -> Daemon:
        """A new daemon process (not started) against this stack, optionally through proxies."""
        env = daemon_env(
            database_url or self.database_url,
            amqp_url or self.amqp_url,
            self.emulator_url,
            free_port(),
        )
        env.update({f"ALLEGRO_SYNC_{k.upper()}": v for k, v in self.daemon_extra.items()})
        running = Daemon(env, LOGS / f"{self.name}-daemon-{len(self.daemons)}.log")
        self.daemons.append(running)
        return running

    async def __aenter__(self) -> Stack:
        port = int(self.emulator_url.rsplit(":", 1)[1])
        self.emulator = start_emulator(port)
        await wait_http(self.emulator_url + "/__control__/clock")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.erp.close()
        for running in self.daemons:
            running.kill()
        if self.emulator is not None:
            stop(self.emulator)

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, f"{self.emulator_url}/__control__{path}", json=body) as r,
        ):
            data = await r.json()
            if r.status >= 300:
                raise RuntimeError(f"{method} {path}: {r.status} {data}")
            return data

    @contextlib.asynccontextmanager
    async def db(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await asyncpg.connect(self.database_url)
        try:
            yield conn
        finally:
            await conn.close()

    async def connect_sellers(
        self, count: int, settings: dict[str, object], daemon: Daemon
    ) -> list[str]:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "application/json"}
        async with aiohttp.ClientSession(headers=headers) as session:
            return [
                await connect_seller(
                    session, self.emulator_url, daemon.url, f"{self.name}-{n}", settings
                )
                for n in range(count)
            ]

    async def journals_started(
        self, count: int, journal: str = "order", *, with_event: bool = False
    ) -> None:
        """Until ``count`` accounts have a cursor on ``journal`` (``with_event``: one that
        names an event, i.e. the journal has been read past its start)."""
        query = "SELECT count(*) FROM journal_cursors WHERE journal = $1" + (
            " AND coalesce(last_event_id, '') <> ''" if with_event else ""
        )
        async with self.db() as conn:
            for _ in range(1200):
                if await conn.fetchval(query, journal) >= count:
                    return
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the {journal} journals did not start")

    async def import_offers(self, daemon: Daemon) -> None:
        importer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "allegro_sync.daemon.cli",
            "offers",
            "import",
            env=daemon.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        if await importer.wait() != 0:
            raise RuntimeError("offers import failed")
        async with self.db() as conn:
            await conn.execute("SELECT pg_notify($1, '*')", WAKE_CHANNEL)


def new_id() -> str:
    return uuid.uuid4().hex[:8]
