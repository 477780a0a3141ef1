"""End-to-end fixtures: the emulator over real HTTP and the daemon running against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from allegro_sync.config.settings import Settings, load_settings
from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.pollers import PollerSettings
from allegro_sync.emulator import contract
from allegro_sync.emulator.app import EmulatorConfig, create_app
from tests.helpers import ADMIN_TOKEN, SECRET_KEY, free_port

# Seconds, not the production defaults: tests wait for journals to be read.
FAST_POLLING = PollerSettings(
    busy_interval=0.1,
    ceilings={"order": 0.3, "offer": 0.3},
    idle_budget_per_minute=9000,
    supervise_interval=0.3,
    lock_check_interval=0.2,
)


class Emulator:
    """The Allegro emulator on a real port, and its control API."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session
        self.url = str(server.make_url("")).rstrip("/")

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, f"{self.url}/__control__{path}", json=body) as r:
            data = await r.json()
            assert r.status < 300, data
            return data

    async def seller(self, login: str, **extra: Any) -> dict[str, Any]:
        seller: dict[str, Any] = await self.control("POST", "/sellers", {"login": login, **extra})
        return seller

    async def token_requests(self) -> int:
        """How many requests the OAuth token endpoint has answered so far."""
        counts = await self.control("GET", "/requests")
        by_route = counts["by_path"]
        return sum(
            v for k, v in by_route.items() if isinstance(v, int) and "/auth/oauth/token" in k
        )


async def _serve(config: EmulatorConfig) -> AsyncIterator[Emulator]:
    app = create_app(config)
    # The contract test: every exchange of the suite held to Allegro's OpenAPI spec.
    seen = contract.install(app)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield Emulator(server, session)
    await server.close()
    assert not seen.findings, "exchanges that Allegro's OpenAPI spec does not allow:\n" + (
        seen.report()
    )


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """Production Allegro."""
    async for running in _serve(EmulatorConfig(seed=7)):
        yield running


@pytest.fixture
async def sandbox_emulator() -> AsyncIterator[Emulator]:
    """The sandbox: a separate environment whose tokens do not work on production."""
    async for running in _serve(EmulatorConfig(seed=8, sandbox=True)):
        yield running


def daemon_settings(
    database_url: str,
    amqp_url: str,
    emulator_url: str,
    sandbox_url: str | None = None,
    **extra: Any,
) -> Settings:
    """Settings for a daemon against the test's database, virtual host and emulator."""
    port = free_port()
    return load_settings(
        Settings,
        database_url=database_url,
        amqp_url=amqp_url,
        allegro_api_url=emulator_url,
        allegro_auth_url=emulator_url,
        allegro_sandbox_api_url=sandbox_url or emulator_url,
        allegro_sandbox_auth_url=sandbox_url or emulator_url,
        client_id="demo-client",
        client_secret="demo-secret",
        sandbox_client_id="demo-client",
        sandbox_client_secret="demo-secret",
        secret_key=SECRET_KEY,
        admin_token=ADMIN_TOKEN,
        http_port=port,
        public_url=f"http://127.0.0.1:{port}",
        **extra,
    )


class Admin:
    """The admin API of a running daemon."""

    def __init__(self, daemon: Daemon, session: aiohttp.ClientSession) -> None:
        self.daemon = daemon
        self.session = session
        self.url = f"http://127.0.0.1:{daemon.settings.http_port}"

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "application/json"}
        async with self.session.request(
            method, self.url + path, json=body, headers=headers, **kw
        ) as r:
            text = await r.text()
            import json

            return r.status, (json.loads(text) if text else None)

    async def connect(
        self, emulator: Emulator, seller: dict[str, Any], sandbox: bool = False
    ) -> dict[str, Any]:
        """The browser flow, as a seller clicking through it."""
        status, body = await self.call("POST", "/accounts/connect", {"sandbox": sandbox})
        assert status == 200, body
        callback = await authorize_in_browser(self.session, body["authorize_url"], seller["id"])
        async with self.session.get(callback, headers={"Accept": "application/json"}) as r:
            result = await r.json()
            assert r.status == 200, result
        account: dict[str, Any] = result["account"]
        return account


async def authorize_in_browser(
    session: aiohttp.ClientSession, authorize_url: str, seller_id: str
) -> str:
    """Open the authorize URL as the seller; the callback URL Allegro redirects to."""
    url = authorize_url + f"&seller_id={seller_id}"
    async with session.get(url, allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        location = r.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert "code" in query and "state" in query
    return location


@pytest.fixture
async def daemon(
    database_url: str, amqp_url: str, emulator: Emulator, sandbox_emulator: Emulator
) -> AsyncIterator[Daemon]:
    running = Daemon(
        daemon_settings(database_url, amqp_url, emulator.url, sandbox_emulator.url),
        poller_timing=FAST_POLLING,
    )
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def switched_emulator(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    """An emulator with realism switches on: ``@pytest.mark.parametrize("switched_emulator",
    [{"duplicate_ready_event": True}], indirect=True)``."""
    from allegro_sync.emulator.config import Switches

    async for running in _serve(EmulatorConfig(seed=9, switches=Switches(**request.param))):
        yield running


@pytest.fixture
async def clocked_emulator(request: pytest.FixtureRequest) -> AsyncIterator[Emulator]:
    """An emulator built with other settings: ``@pytest.mark.parametrize("clocked_emulator",
    [{"frozen_clock": True}], indirect=True)``."""
    async for running in _serve(EmulatorConfig(seed=11, **request.param)):
        yield running


@pytest.fixture
async def admin(daemon: Daemon) -> AsyncIterator[Admin]:
    async with aiohttp.ClientSession() as session:
        yield Admin(daemon, session)
