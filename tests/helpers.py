"""Test helpers: the daemon as a real subprocess, a TCP proxy for cutting connections, polling."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp

from allegro_sync.adapters.broker.signing import SIGNATURE_HEADER, MessageSigner
from allegro_sync.adapters.broker.topology import JOURNAL_EXCHANGE

ADMIN_TOKEN = "test-admin-token-0123456789abcdef0123"
SECRET_KEY = "test-secret-key-0123456789abcdef0123456789"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 15.0, interval: float = 0.05
) -> Any:
    """Poll ``check`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def daemon_env(database_url: str, amqp_url: str, http_port: int, **extra: str) -> dict[str, str]:
    """Environment for ``allegro-sync run`` against the test's database and virtual host."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLEGRO_SYNC_")}
    env.update(
        {
            "ALLEGRO_SYNC_DATABASE_URL": database_url,
            "ALLEGRO_SYNC_AMQP_URL": amqp_url,
            "ALLEGRO_SYNC_CLIENT_ID": "test-client",
            "ALLEGRO_SYNC_CLIENT_SECRET": "test-client-secret",
            "ALLEGRO_SYNC_SECRET_KEY": SECRET_KEY,
            "ALLEGRO_SYNC_ADMIN_TOKEN": ADMIN_TOKEN,
            "ALLEGRO_SYNC_HTTP_PORT": str(http_port),
            "ALLEGRO_SYNC_PUBLIC_URL": f"http://127.0.0.1:{http_port}",
        }
    )
    env.update(extra)
    return env


class DaemonProcess:
    """``allegro-sync run`` in a subprocess, with its log captured to a file."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = dict(env)
        self.port = int(self.env["ALLEGRO_SYNC_HTTP_PORT"])
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 30.0) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "allegro_sync.daemon.cli", "run"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.log_path.parent,
        )
        log.close()

        async def healthy() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited early:\n{self.log()}")
            try:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(self.base_url + "/healthz") as response,
                ):
                    return response.status == 200
            except aiohttp.ClientError:
                return False

        await eventually(healthy, timeout=timeout, interval=0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


async def publish_json(
    amqp_url: str,
    exchange: str,
    messages: list[tuple[str, str, bytes]],
    *,
    signed_with: str | None = SECRET_KEY,
) -> None:
    """Publish (routing key, message id, body) triples with confirms, as a producer would.

    Messages to the journal exchange are signed as the daemon's pollers sign them, under
    ``signed_with`` (the tests' ``SECRET_KEY``; None: unsigned, as a forger would send them).
    """
    signer = MessageSigner([signed_with]) if signed_with and exchange == JOURNAL_EXCHANGE else None

    def headers(routing_key: str, message_id: str, body: bytes) -> dict[str, Any]:
        if signer is None:
            return {}
        return {SIGNATURE_HEADER: signer.sign(message_id, routing_key, body)}

    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    target = await channel.get_exchange(exchange)
    await asyncio.gather(
        *(
            target.publish(
                aio_pika.Message(
                    body,
                    message_id=message_id,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    headers=headers(routing_key, message_id, body),
                ),
                routing_key=routing_key,
            )
            for routing_key, message_id, body in messages
        )
    )
    await connection.close()


async def drain_queue(
    amqp_url: str, queue: str, *, wait: float = 0.5
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take every message currently in ``queue`` (acked), waiting ``wait`` s for stragglers."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    source = await channel.get_queue(queue)
    taken = []
    idle_since = time.monotonic()
    while time.monotonic() - idle_since < wait:
        message = await source.get(fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        await message.ack()
        taken.append(message)
        idle_since = time.monotonic()
    await connection.close()
    return taken


class TcpProxy:
    """A TCP proxy that can cut every connection and refuse new ones (a broker going away)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Close the listening socket and cut every open connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.discard(writer)
        self._writers.discard(up_writer)


def rabbitmq_list(vhost: str, what: str, *columns: str) -> list[dict[str, object]]:
    """``rabbitmqctl <what> -p <vhost> <columns>`` as rows (``arguments`` as a dict)."""
    result = subprocess.run(
        ["rabbitmqctl", "-q", "--formatter", "json", what, "-p", vhost, *columns],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    rows = list(json.loads(result.stdout))
    for row in rows:
        if isinstance(row.get("arguments"), list):  # [[name, type, value], ...]
            row["arguments"] = {a[0]: a[-1] for a in row["arguments"]}
    return rows
