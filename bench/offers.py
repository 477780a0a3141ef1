"""Import speed of the offer mirror (issue 6): ``python -m bench offers``.

Starts the emulator in a subprocess, creates 100 000 offers through its control API, connects a
seller account (authorization-code flow against the emulator, tokens stored as the daemon stores
them) in a throwaway database, then runs ``offers import`` as a subprocess three times and prints
the medians of: offers per second, the import process's peak RSS, and the listing requests
Allegro answered, against the targets (>= 5 000 offers/s, < 200 MB, within 1% of
ceil(offers / 1000)), at each of the emulator's latency profiles (``--latency``, default
``none,realistic``) side by side. Needs PostgreSQL (``TEST_PG_ADMIN_URL``, as the tests).
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import aiohttp
import asyncpg

from allegro_sync.adapters.allegro.crypto import TokenCipher
from allegro_sync.adapters.allegro.oauth import OAuthClient, new_pkce_pair
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.adapters.postgres.migrations import migrate
from allegro_sync.handlers.accounts import connect_account
from bench._support import LATENCIES, side_by_side

OFFERS = int(os.environ.get("BENCH_OFFERS", "100000"))
RUNS = 3
TARGET_RATE = 5000.0
TARGET_RSS_MB = 200.0
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET_KEY = "bench-secret-key-0123456789abcdef0123456789"
CLIENT = ("demo-client", "demo-secret")
REDIRECT = "http://127.0.0.1:1/callback"


@dataclass
class Run:
    """One import's measurements."""

    seconds: float
    peak_rss_mb: float
    listing_requests: int


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _wait_up(session: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            async with session.get(url + "/__control__/clock") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the emulator did not start")


async def _connect(session: aiohttp.ClientSession, url: str, database_url: str) -> None:
    """Create the seller and its offers, authorise, and store the account."""
    async with session.post(url + "/__control__/sellers", json={"login": "bench-seller"}) as r:
        seller = await r.json()
    started = time.monotonic()
    async with session.post(
        url + f"/__control__/sellers/{seller['id']}/offers",
        json={
            "count": OFFERS,
            "name": "Offer {n}",
            "ean_base": "5900000000000",
            "external_id": "SKU-{n}",
            "image_url": "https://img.example/{n}.jpg",
        },
    ) as r:
        assert r.status == 201, await r.text()
    print(f"created {OFFERS} offers in {time.monotonic() - started:.1f} s", file=sys.stderr)
    oauth = OAuthClient(session, url, *CLIENT)
    verifier, challenge = new_pkce_pair()
    authorize = oauth.authorize_url(redirect_uri=REDIRECT, state="s", code_challenge=challenge)
    async with session.get(authorize + f"&seller_id={seller['id']}", allow_redirects=False) as r:
        code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    tokens = await oauth.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    conn = await pg.connect(database_url)  # with the JSON codecs the daemon uses
    try:
        await connect_account(
            conn,
            TokenCipher(SECRET_KEY),
            allegro_user_id=str(seller["id"]),
            login=seller["login"],
            sandbox=False,
            tokens=tokens,
        )
    finally:
        await conn.close()


def _import_once(env: dict[str, str]) -> tuple[float, float]:
    """Run ``offers import``; (seconds, peak RSS in MB) of that process."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "allegro_sync.daemon.cli", "offers", "import"],
        env=env,
        stdout=subprocess.PIPE,
    )
    # wait4 gives this child's own rusage (ru_maxrss in KiB on Linux), not the sum of children.
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    output = process.stdout.read().decode() if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"import failed: {output}")
    print(output.strip(), file=sys.stderr)
    return seconds, usage.ru_maxrss / 1024


async def _bench(latency: str) -> list[Run]:
    name = f"allegro_sync_bench_{uuid.uuid4().hex[:10]}"
    database_url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    emulator = subprocess.Popen(
        [sys.executable, "-m", "allegro_sync.emulator", "--port", str(port), "--latency", latency],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    runs: list[Run] = []
    try:
        await migrate(database_url)  # creates the database
        async with aiohttp.ClientSession() as session:
            await _wait_up(session, url)
            await _connect(session, url, database_url)
            env = {k: v for k, v in os.environ.items() if not k.startswith("ALLEGRO_SYNC_")}
            env.update(
                {
                    "ALLEGRO_SYNC_DATABASE_URL": database_url,
                    "ALLEGRO_SYNC_ALLEGRO_API_URL": url,
                    "ALLEGRO_SYNC_ALLEGRO_AUTH_URL": url,
                    "ALLEGRO_SYNC_CLIENT_ID": CLIENT[0],
                    "ALLEGRO_SYNC_CLIENT_SECRET": CLIENT[1],
                    "ALLEGRO_SYNC_SECRET_KEY": SECRET_KEY,
                    "ALLEGRO_SYNC_ADMIN_TOKEN": "bench-admin-token-0123456789abcdef0123456789",
                    "ALLEGRO_SYNC_PUBLIC_URL": "http://127.0.0.1:1",
                }
            )
            for _ in range(RUNS):
                async with session.delete(url + "/__control__/requests"):
                    pass
                seconds, rss = await asyncio.to_thread(_import_once, env)
                async with session.get(url + "/__control__/requests") as r:
                    counts = await r.json()
                runs.append(Run(seconds, rss, int(counts["by_path"].get("GET /sale/offers", 0))))
    finally:
        emulator.terminate()
        emulator.wait(10)
        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
    return runs


def main(latencies: Sequence[str] = LATENCIES) -> int:
    """Run, print the medians against the targets; 1 when a target is missed."""
    by_latency = {latency: asyncio.run(_bench(latency)) for latency in latencies}
    ceiling = math.ceil(OFFERS / 1000)
    rates = {k: statistics.median(OFFERS / r.seconds for r in v) for k, v in by_latency.items()}
    rss = {k: statistics.median(r.peak_rss_mb for r in v) for k, v in by_latency.items()}
    requests = {k: statistics.median(r.listing_requests for r in v) for k, v in by_latency.items()}
    side_by_side(
        f"bench offers: import of {OFFERS} offers, median of {RUNS} runs per latency profile",
        latencies,
        [
            ("offers/s", {k: f"{v:,.0f}" for k, v in rates.items()}, f">= {TARGET_RATE:,.0f}"),
            ("peak RSS", {k: f"{v:.0f} MB" for k, v in rss.items()}, f"< {TARGET_RSS_MB:.0f} MB"),
            ("listing requests", {k: f"{v:.0f}" for k, v in requests.items()}, f"{ceiling} (+1%)"),
        ],
    )
    ok = all(
        rates[k] >= TARGET_RATE
        and rss[k] < TARGET_RSS_MB
        and abs(requests[k] - ceiling) <= max(1, ceiling // 100)
        for k in by_latency
    )
    print(f"  {'all targets met' if ok else 'a target MISSED'}")
    return 0 if ok else 1
