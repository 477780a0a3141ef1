"""Fixtures: an emulator served over real HTTP and a small client speaking the reference."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from allegro_sync.emulator import contract
from allegro_sync.emulator.app import EmulatorConfig, create_app

VND = "application/vnd.allegro.public.v1+json"
REDIRECT = "http://127.0.0.1:8080/oauth/callback"
BASIC = "Basic " + base64.b64encode(b"demo-client:demo-secret").decode()


class Harness:
    """An emulator over HTTP plus helpers written from allegro-api.md."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.session.request(method, self.url(f"/__control__{path}"), json=body) as r:
            data = await r.json()
            assert r.status < 300, data
            return data

    async def api(
        self, method: str, path: str, token: str | None, body: Any = None, **kw: Any
    ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        headers = {"Accept": VND}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            import json

            data = json.dumps(body)
            headers["Content-Type"] = VND
        headers.update(kw.pop("headers", {}))
        async with self.session.request(
            method, self.url(path), headers=headers, data=kw.pop("raw", data), **kw
        ) as r:
            text = await r.text()
            import json as _json

            return r.status, (_json.loads(text) if text else None), r.headers

    async def seller(self, login: str = "shop", **extra: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.control("POST", "/sellers", {"login": login, **extra})
        return result

    async def authorize(self, seller_id: str, **params: str) -> str:
        query = {
            "response_type": "code",
            "client_id": "demo-client",
            "redirect_uri": REDIRECT,
            "seller_id": seller_id,
            **params,
        }
        async with self.session.get(
            self.url("/auth/oauth/authorize"), params=query, allow_redirects=False
        ) as r:
            assert r.status == 302, await r.text()
            location = r.headers["Location"]
        return parse_qs(urlparse(location).query)["code"][0]

    async def token(self, form: dict[str, str], basic: bool = True) -> tuple[int, Any]:
        headers = {"Authorization": BASIC} if basic else {}
        async with self.session.post(
            self.url("/auth/oauth/token"), data=form, headers=headers
        ) as r:
            return r.status, await r.json()

    async def login(self, seller_id: str) -> dict[str, Any]:
        """Authorization code + PKCE; returns the token response."""
        verifier = "v" * 50
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        code = await self.authorize(
            seller_id,
            code_challenge=challenge.rstrip(b"=").decode(),
            code_challenge_method="S256",
        )
        status, body = await self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "client_id": "demo-client",
                "code_verifier": verifier,
            },
            basic=False,
        )
        assert status == 200, body
        return dict(body)

    async def seller_with_token(self, login: str = "shop") -> tuple[dict[str, Any], str]:
        seller = await self.seller(login)
        tokens = await self.login(seller["id"])
        return seller, str(tokens["access_token"])

    async def advance(self, seconds: float) -> None:
        await self.control("POST", "/clock", {"advance_seconds": seconds})


MakeHarness = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def make_emulator() -> AsyncIterator[MakeHarness]:
    """Factory: ``await make_emulator(**EmulatorConfig fields)``. The clock is frozen by
    default so timing rules are exact; tests move it through the control API."""
    started: list[tuple[TestServer, aiohttp.ClientSession]] = []
    logs: list[contract.ContractLog] = []

    async def make(**fields: Any) -> Harness:
        fields.setdefault("frozen_clock", True)
        fields.setdefault("task_completion_delay", 0.0)
        app = create_app(EmulatorConfig(**fields))
        # these tests send bad requests on purpose; the answers are still Allegro's own
        logs.append(contract.install(app, requests=False))
        server = TestServer(app)
        await server.start_server()
        session = aiohttp.ClientSession()
        started.append((server, session))
        return Harness(server, session)

    yield make
    for server, session in started:
        await session.close()
        await server.close()
    findings = "\n".join(log.report() for log in logs if log.findings)
    assert not findings, "answers that Allegro's OpenAPI spec does not allow:\n" + findings


@pytest.fixture
async def emu(make_emulator: MakeHarness) -> Harness:
    """A default emulator."""
    return await make_emulator()
