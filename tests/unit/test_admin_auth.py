"""The admin API's bearer check: only the configured token, never an empty one (issue 14
finding 2)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from allegro_sync.daemon.api.auth import bearer_auth
from allegro_sync.daemon.api.errors import json_errors

TOKEN = "t" * 40


async def _accounts(request: web.Request) -> web.Response:
    return web.json_response([{"id": 1, "login": "seller"}])


async def _server(token: str) -> TestServer:
    app = web.Application(middlewares=[json_errors, bearer_auth(token)])
    app.router.add_get("/accounts", _accounts)
    server = TestServer(app)
    await server.start_server()
    return server


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    server = await _server(TOKEN)
    yield server
    await server.close()


async def _status(server: TestServer, authorization: str | None) -> tuple[int, object]:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/accounts"), headers=headers) as response,
    ):
        return response.status, await response.json()


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer ", "Bearer    ", "bearer  ", f"Basic {TOKEN}"]
)
async def test_no_or_an_empty_bearer_token_is_unauthorized(
    server: TestServer, authorization: str | None
) -> None:
    status, body = await _status(server, authorization)
    assert status == 401
    assert isinstance(body, dict) and body["error"] == "unauthorized"


async def test_the_configured_token_is_let_in(server: TestServer) -> None:
    assert (await _status(server, f"Bearer {TOKEN}"))[0] == 200


@pytest.mark.parametrize("configured", ["", "   "])
async def test_an_empty_configured_token_lets_nobody_in(configured: str) -> None:
    """Settings refuse such a token; the middleware does not rely on it."""
    server = await _server(configured)
    try:
        for authorization in ("Bearer ", "Bearer", f"Bearer {configured}"):
            assert (await _status(server, authorization))[0] == 401
    finally:
        await server.close()
