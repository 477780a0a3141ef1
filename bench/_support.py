"""Shared pieces of the benchmarks: throwaway services, subprocesses, the machine's raw rates.

Benchmarks report ratios against the raw limits of the same machine measured in the same run,
and medians of several runs: the machine is shared and noisy.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aio_pika
import aiohttp
import asyncpg

PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_BASE = os.environ.get("TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672/")
SECRET_KEY = "bench-secret-key-0123456789abcdef0123456789"
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef0123456789"
RESULTS = Path(__file__).parent / "results"
# the emulator's latency profiles each benchmark runs at (``--latency``): instant answers, and
# Allegro's across the internet (allegro_sync/emulator/README.md, "Latency profile")
LATENCIES = ("none", "realistic")
Row = tuple[str, dict[str, str], str]  # label, the value per latency profile, the target


def side_by_side(title: str, latencies: Sequence[str], rows: Sequence[Row]) -> None:
    """A benchmark's medians, one column per latency profile, with the targets."""
    width = max(len(label) for label, _, _ in rows)
    print(title)
    print(f"  {'':<{width}}  " + "".join(f"{name:>14}" for name in latencies) + "   target")
    for label, values, target in rows:
        cells = "".join(f"{values.get(name, '-'):>14}" for name in latencies)
        print(f"  {label:<{width}}  {cells}   {target}".rstrip(), flush=True)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def throwaway_database(prefix: str) -> AsyncIterator[str]:
    """A new, empty database (``migrate`` fills it), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


@contextlib.contextmanager
def throwaway_vhost(prefix: str) -> Iterator[str]:
    """A RabbitMQ virtual host of its own (needs rabbitmqctl), deleted afterwards."""
    if shutil.which("rabbitmqctl") is None:
        raise SystemExit("the benchmarks need rabbitmqctl to make a virtual host of their own")
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    ctl = ["rabbitmqctl", "-q"]
    subprocess.run([*ctl, "add_vhost", name], check=True, capture_output=True, timeout=60)
    subprocess.run(
        [*ctl, "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        yield AMQP_BASE.rstrip("/") + "/" + quote(name, safe="")
    finally:
        subprocess.run([*ctl, "delete_vhost", name], capture_output=True, timeout=60)


def start_emulator(port: int, *extra: str, latency: str = "none") -> subprocess.Popen[bytes]:
    """``python -m allegro_sync.emulator`` on ``port`` with the ``latency`` profile."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "allegro_sync.emulator",
            "--port",
            str(port),
            "--latency",
            latency,
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def daemon_env(
    database_url: str, amqp_url: str, emulator_url: str, http_port: int
) -> dict[str, str]:
    """The environment of ``allegro-sync`` commands against the benchmark's services; a
    ``BENCH_ALLEGRO_SYNC_<NAME>`` variable sets the daemon's ``ALLEGRO_SYNC_<NAME>`` (to compare
    tunings), other ``ALLEGRO_SYNC_`` variables of the caller are left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLEGRO_SYNC_")}
    env.update(
        {
            k.removeprefix("BENCH_"): v
            for k, v in os.environ.items()
            if k.startswith("BENCH_ALLEGRO_SYNC_")
        }
    )
    env.update(
        {
            "ALLEGRO_SYNC_DATABASE_URL": database_url,
            "ALLEGRO_SYNC_AMQP_URL": amqp_url,
            "ALLEGRO_SYNC_ALLEGRO_API_URL": emulator_url,
            "ALLEGRO_SYNC_ALLEGRO_AUTH_URL": emulator_url,
            "ALLEGRO_SYNC_CLIENT_ID": "demo-client",
            "ALLEGRO_SYNC_CLIENT_SECRET": "demo-secret",
            "ALLEGRO_SYNC_SECRET_KEY": SECRET_KEY,
            "ALLEGRO_SYNC_ADMIN_TOKEN": ADMIN_TOKEN,
            "ALLEGRO_SYNC_HTTP_PORT": str(http_port),
            "ALLEGRO_SYNC_PUBLIC_URL": f"http://127.0.0.1:{http_port}",
        }
    )
    return env


def start_daemon(
    env: dict[str, str], log: Path, *, profile: bool = False
) -> subprocess.Popen[bytes]:
    """``allegro-sync run`` with its log in ``log``; with ``profile`` and BENCH_PYSPY set to a
    path, sampled by py-spy into that file (to see where the time goes)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "allegro_sync.daemon.cli", "--log-level", "WARNING", "run"]
    process = subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    output = os.environ.get("BENCH_PYSPY")
    if profile and output:
        subprocess.Popen(
            [
                "py-spy",
                "record",
                "-r",
                "50",
                "-d",
                os.environ.get("BENCH_PYSPY_SECONDS", "20"),
                "-f",
                "raw",
                "-o",
                output,
                "--pid",
                str(process.pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return process


@dataclass
class Stack:
    """A benchmark's throwaway services (``services``): database, virtual host, emulator, and
    the daemon against them once started (``start_daemon``; one at a time)."""

    database_url: str
    amqp_url: str
    emulator_url: str
    daemon_url: str
    env: dict[str, str]  # the daemon's; a benchmark may add to it before starting one
    emulator: subprocess.Popen[bytes]
    log: Path
    daemon: subprocess.Popen[bytes] | None = None

    async def start_daemon(self, *, profile: bool = False, wait: bool = True) -> None:
        """``allegro-sync run`` (see ``start_daemon``); with ``wait``, until /healthz answers."""
        self.daemon = start_daemon(self.env, self.log, profile=profile)
        if wait:
            await self.daemon_ready()

    async def daemon_ready(self) -> None:
        """Until the daemon's /healthz answers: every part of it runs."""
        await wait_http(self.daemon_url + "/healthz")

    def stop_daemon(self) -> int:
        """SIGTERM the daemon and wait; its exit code."""
        if self.daemon is None:
            return 0
        code = stop(self.daemon)
        self.daemon = None
        return code


@contextlib.asynccontextmanager
async def services(
    name: str, *, latency: str = "none", log: str | None = None
) -> AsyncIterator[Stack]:
    """A throwaway database (empty: the daemon, or ``migrate``, fills it) and virtual host named
    after ``name``, the emulator at ``latency`` answering, and the daemon's environment against
    them (its log ``bench/results/<log>``, default ``<name>-daemon.log``); afterwards the
    daemon, if one runs, and the emulator are stopped and the database and host dropped."""
    async with throwaway_database(f"bench_{name}") as database_url:
        with throwaway_vhost(f"bench-{name}") as amqp_url:
            emulator_port, http_port = free_port(), free_port()
            emulator_url = f"http://127.0.0.1:{emulator_port}"
            emulator = start_emulator(emulator_port, latency=latency)
            stack = Stack(
                database_url=database_url,
                amqp_url=amqp_url,
                emulator_url=emulator_url,
                daemon_url=f"http://127.0.0.1:{http_port}",
                env=daemon_env(database_url, amqp_url, emulator_url, http_port),
                emulator=emulator,
                log=RESULTS / (log or f"{name}-daemon.log"),
            )
            try:
                await wait_http(emulator_url + "/__control__/clock")
                yield stack
            finally:
                stack.stop_daemon()
                stop(emulator)


async def allegro_requests(emulator_url: str) -> dict[str, int]:
    """The Allegro requests the emulator has answered so far, by endpoint."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{emulator_url}/__control__/requests") as r,
    ):
        return dict((await r.json())["by_path"])


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """User + system CPU time the (running) process has used so far, from /proc."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM and wait."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(60)


async def wait_http(url: str, timeout: float = 60.0) -> None:
    """Until ``url`` answers below 500."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


async def raw_broker_rates(amqp_url: str, count: int = 20_000) -> tuple[float, float]:
    """(publish with confirms, consume + ack at prefetch 200) in messages per second, on a quorum
    queue like ours: the broker's own limit on this machine right now."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    queue = await channel.declare_queue(
        f"bench.raw.{uuid.uuid4().hex[:6]}", durable=True, arguments={"x-queue-type": "quorum"}
    )
    body = b'{"product_id":"p","quantity":1,"version":1}'
    started = time.perf_counter()
    window = 1000
    for first in range(0, count, window):
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=queue.name,
                )
                for _ in range(min(window, count - first))
            )
        )
    publish_rate = count / (time.perf_counter() - started)
    consumer_channel = await connection.channel()
    await consumer_channel.set_qos(prefetch_count=200)
    source = await consumer_channel.get_queue(queue.name)
    done = asyncio.Event()
    seen = 0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal seen
        await message.ack()
        seen += 1
        if seen == count:
            done.set()

    started = time.perf_counter()
    await source.consume(on_message)
    await done.wait()
    consume_rate = count / (time.perf_counter() - started)
    await queue.delete(if_unused=False, if_empty=False)
    await connection.close()
    return publish_rate, consume_rate


async def connect_seller(
    session: aiohttp.ClientSession,
    emulator_url: str,
    daemon_url: str,
    login: str,
    settings: dict[str, object],
) -> str:
    """Create a seller in the emulator, connect its account through the daemon's browser flow
    (``session`` carries the admin token) and apply ``settings``; the seller's id."""
    async with session.post(f"{emulator_url}/__control__/sellers", json={"login": login}) as r:
        seller = await r.json()
    async with session.post(f"{daemon_url}/accounts/connect", json={}) as r:
        authorize_url = (await r.json())["authorize_url"]
    async with session.get(f"{authorize_url}&seller_id={seller['id']}") as r:
        account = (await r.json())["account"]
    async with session.patch(f"{daemon_url}/accounts/{account['id']}", json=settings) as r:
        assert r.status == 200, await r.text()
    return str(seller["id"])
