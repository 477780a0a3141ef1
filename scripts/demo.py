"""`make demo`: the daemon against the bundled Allegro emulator, with demo data.

Starts the emulator (seller ``demo-shop`` with offers and a stream of purchases) and the daemon,
connects the seller's account through the OAuth flow, switches the account's automations on,
sends the ERP's products and stock, and prints every message the daemon publishes to the ERP
as it flows. Stops on Ctrl-C or after DEMO_SECONDS (default 60), shutting both down cleanly.
The emulator answers with the ``realistic`` latency profile (``DEMO_LATENCY=none`` for instant
answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika
import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("DEMO_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = "allegro_sync_demo"
VHOST = "allegro-sync-demo"
ADMIN_TOKEN = "demo-admin-token-for-local-trials-only-0123"
PANEL_PASSWORD = "demo-panel"
DEMO_PRODUCTS = (  # the ERP's side of the emulator's demo offers (same EANs)
    ("SKU-0001", "5901234123457", "Smartfon Nokia 3310 odnowiony", 25),
    ("SKU-0002", "5906789012344", "Ładowarka USB-C 65W", 120),
    ("SKU-0003", "4006381333931", "Słuchawki bezprzewodowe ANC", 40),
    ("SKU-0004", "5901234567891", "Wiertarka udarowa 800W", 8),
    ("SKU-0005", "5907623456780", "Żarówka LED E27 10W (4 szt.)", 300),
)


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def port(preferred: int) -> int:
    """``preferred`` when free, else any free port."""
    for candidate in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


def vhost() -> str:
    """A virtual host of its own, so the demo never takes an ERP's messages on this broker."""
    if shutil.which("rabbitmqctl") is None:
        return "/"
    for args in (["add_vhost", VHOST], ["set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*"]):
        subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, timeout=60)
    return VHOST


async def fresh_database() -> str:
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    await conn.close()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + DATABASE


async def wait_http(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"[demo] the {what} exited early (code {process.returncode})")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status < 500:
                        return
            await asyncio.sleep(0.2)
    raise SystemExit(f"[demo] the {what} did not start within 60 s")


def describe(routing_key: str, body: dict[str, Any]) -> str:
    if routing_key == "order.created":
        lines = ", ".join(f"{line['quantity']}x {line['name']}" for line in body["lines"])
        customer = body["customer"]
        who = f"customer card {customer['type']}" if customer else "anonymous customer"
        return (
            f"order.created   {body['checkout_form_id'][:8]}  {body['total']} {body['currency']}"
            f"  {body['payment']['type']}  {who}  [{lines}]"
        )
    if routing_key == "order.cancelled":
        return f"order.cancelled {body['checkout_form_id'][:8]}"
    if routing_key == "offer.bound":
        return (
            f"offer.bound     offer {body['offer_id']} -> product {body['product_id']}"
            f" (EAN {body['ean']})"
        )
    return f"{routing_key:<15} {json.dumps(body, ensure_ascii=False)[:120]}"


async def main() -> int:
    seconds = float(os.environ.get("DEMO_SECONDS", "60"))
    python = sys.executable
    emulator_port, daemon_port = port(8090), port(8080)
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    daemon_url = f"http://127.0.0.1:{daemon_port}"
    amqp_url = "amqp://guest:guest@127.0.0.1:5672/" + quote(vhost(), safe="")
    database_url = await fresh_database()
    logs = ROOT / ".demo"
    logs.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLEGRO_SYNC_")}
    env.update(
        {
            "ALLEGRO_SYNC_DATABASE_URL": database_url,
            "ALLEGRO_SYNC_AMQP_URL": amqp_url,
            "ALLEGRO_SYNC_ALLEGRO_API_URL": emulator_url,
            "ALLEGRO_SYNC_ALLEGRO_AUTH_URL": emulator_url,
            "ALLEGRO_SYNC_ALLEGRO_SANDBOX_API_URL": emulator_url,
            "ALLEGRO_SYNC_ALLEGRO_SANDBOX_AUTH_URL": emulator_url,
            "ALLEGRO_SYNC_CLIENT_ID": "demo-client",
            "ALLEGRO_SYNC_CLIENT_SECRET": "demo-secret",
            "ALLEGRO_SYNC_SECRET_KEY": "demo-secret-key-for-local-trials-only-0123456789",
            "ALLEGRO_SYNC_ADMIN_TOKEN": ADMIN_TOKEN,
            "ALLEGRO_SYNC_PANEL_PASSWORD": PANEL_PASSWORD,
            "ALLEGRO_SYNC_HTTP_PORT": str(daemon_port),
            "ALLEGRO_SYNC_PUBLIC_URL": daemon_url,
        }
    )
    say(f"emulator on {emulator_url}, daemon on {daemon_url}, logs in {logs}/")
    emulator = subprocess.Popen(
        [
            python,
            "-m",
            "allegro_sync.emulator",
            "--port",
            str(emulator_port),
            "--demo",
            "--purchase-every",
            "3",
            "--check-contract",
            # answers as slow as Allegro's across the internet (emulator README, "Latency
            # profile"): what a newcomer sees is what a seller would see
            "--latency",
            os.environ.get("DEMO_LATENCY", "realistic"),
        ],
        stdout=(logs / "emulator.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    daemon = subprocess.Popen(
        [python, "-m", "allegro_sync.daemon.cli", "run"],
        env=env,
        stdout=(logs / "daemon.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    counts: dict[str, int] = {}
    try:
        await wait_http(emulator_url + "/__control__/clock", emulator, "emulator")
        await wait_http(daemon_url + "/healthz", daemon, "daemon")
        say("daemon is up; connecting the demo seller through OAuth ...")
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "application/json"}
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.post(daemon_url + "/accounts/connect", json={"sandbox": False}) as r:
                authorize_url = (await r.json())["authorize_url"]
            async with session.get(authorize_url) as r:  # the seller clicks "allow"
                connected = await r.json()
            account = connected["account"]
            say(f"account {account['id']} ({account['login']}) connected")
            settings = {
                "auto_create_orders": True,
                "send_customer_card": True,
                "bind_offers_by_ean": True,
                "stock_control": True,
                "sync_prices": True,
            }
            async with session.patch(f"{daemon_url}/accounts/{account['id']}", json=settings) as r:
                assert r.status == 200, await r.text()
            say("switched on: " + ", ".join(settings))

        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel(publisher_confirms=True)
        erp_exchange = await channel.get_exchange("erp.events")
        for n, (sku, ean, name, stock) in enumerate(DEMO_PRODUCTS, start=1):
            for routing_key, body in (
                (
                    "product.upserted",
                    {"product_id": sku, "ean": ean, "name": name, "image_url": None},
                ),
                ("stock.changed", {"product_id": sku, "quantity": stock, "version": 1}),
            ):
                await erp_exchange.publish(
                    aio_pika.Message(
                        json.dumps(body).encode(),
                        message_id=f"demo:{routing_key}:{n}",
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=routing_key,
                )
        say(f"the ERP sent {len(DEMO_PRODUCTS)} products with their stock")
        say(f"the seller's panel: {daemon_url}/panel/ (password: {PANEL_PASSWORD})")
        say(
            "buyers purchase every few seconds; what reaches the ERP"
            f" (for {seconds:.0f} s, Ctrl-C stops):"
        )
        queue = await channel.get_queue("allegro-sync.events.erp")
        deadline = loop.time() + seconds
        while not stop.is_set() and loop.time() < deadline:
            if daemon.poll() is not None:
                say(f"the daemon exited (code {daemon.returncode}); see {logs}/daemon.log")
                return 1
            message = await queue.get(fail=False)
            if message is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.3)
                continue
            await message.ack()
            key = message.routing_key or ""
            counts[key] = counts.get(key, 0) + 1
            say(describe(key, json.loads(message.body)))
        await connection.close()
    finally:
        say("stopping ...")
        for process in (daemon, emulator):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        code = daemon.wait(30)
        emulator.wait(30)
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "no messages"
        say(f"daemon exited with code {code}; the ERP received: {summary}")
        log_text = (logs / "emulator.log").read_text(encoding="utf-8", errors="replace")
        violations = log_text.count("contract violation:")
        say(
            f"{violations} exchange(s) that Allegro's OpenAPI spec does not allow"
            + (f"; see {logs}/emulator.log" if violations else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
