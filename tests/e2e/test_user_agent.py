"""USER_AGENT end to end: Allegro requires ``AppName/version (+url)`` on every REST call since
the end of June 2026 (allegro-2026.md 1). The contract check of every e2e test already refuses
a call without that form; here a seller's own registered name reaches Allegro on every call."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.helpers import eventually

AGENT = "Sklep-Kowalski_ERP/2.1.0 (+https://kowalski.example/kontakt)"


@pytest.fixture
async def agent_admin(database_url: str, amqp_url: str, emulator: Emulator) -> AsyncIterator[Admin]:
    daemon = Daemon(
        daemon_settings(database_url, amqp_url, emulator.url, user_agent=AGENT),
        poller_timing=FAST_POLLING,
    )
    await daemon.start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Admin(daemon, session)
    finally:
        await daemon.stop()


async def test_every_rest_call_carries_the_configured_user_agent(
    agent_admin: Admin, emulator: Emulator
) -> None:
    seller = await emulator.seller("kowalski")
    account = await agent_admin.connect(emulator, seller)
    status, body = await agent_admin.call(
        "PATCH", f"/accounts/{account['id']}", {"auto_create_orders": True}
    )
    assert status == 200, body
    offer = await emulator.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "Lampa", "stock": 3}
    )
    await emulator.control(
        "POST", "/purchases", {"offer_id": offer["id"], "quantity": 1, "then": "pay"}
    )
    status, _ = await agent_admin.call("GET", f"/accounts/{account['id']}/options")
    assert status == 200

    async def journal_read() -> dict[str, int] | None:
        requests = await emulator.control("GET", "/requests")
        by_path = requests["by_path"]
        return requests if by_path.get("GET /order/events") else None

    requests = await eventually(journal_read)
    seen = set(requests["by_path"])
    assert {"GET /me", "GET /order/events", "GET /account/additional-emails"} <= seen, seen
    # every REST call (the OAuth endpoints are not counted there) with the seller's name
    assert requests["by_user_agent"] == {AGENT: requests["total"] - _oauth(requests)}


def _oauth(requests: dict[str, object]) -> int:
    by_path = requests["by_path"]
    assert isinstance(by_path, dict)
    return sum(int(v) for k, v in by_path.items() if "/auth/oauth" in k)
