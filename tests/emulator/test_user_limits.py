"""UNCONFIRMED per-user limits, off by default (sections 2.1, 3): parallel requests and
token minting, each answered with 429 when switched on."""

from __future__ import annotations

import asyncio

from allegro_sync.emulator.config import Switches

from .conftest import Harness, MakeHarness


async def test_parallel_requests_per_user(make_emulator: MakeHarness) -> None:
    """On the catalogue, the resource with a per-user limit; other resources have only the
    client id's."""
    emu = await make_emulator(switches=Switches(max_parallel_requests_per_user=2))
    _, token = await emu.seller_with_token()
    _, other = await emu.seller_with_token("other")
    await emu.control("POST", "/faults", {"latency_ms": 200})
    products = "/sale/products?phrase=kubek"
    results = await asyncio.gather(
        *(emu.api("GET", products, token) for _ in range(4)), emu.api("GET", products, other)
    )
    statuses = [r[0] for r in results]
    assert sorted(statuses[:4]) == [200, 200, 429, 429]
    assert statuses[4] == 200  # another user has its own allowance
    refused = next(r for r in results if r[0] == 429)
    assert refused[1]["errors"][0]["code"] == "RateLimitExceedException"
    elsewhere = await asyncio.gather(*(emu.api("GET", "/me", token) for _ in range(4)))
    assert {r[0] for r in elsewhere} == {200}  # /me has no per-user limit
    await emu.control("DELETE", "/faults")
    # Sequential requests never overlap, so they are all fine.
    for _ in range(5):
        assert (await emu.api("GET", products, token))[0] == 200


async def test_parallel_requests_unlimited_by_default(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    await emu.control("POST", "/faults", {"latency_ms": 50})
    results = await asyncio.gather(*(emu.api("GET", "/me", token) for _ in range(10)))
    assert {r[0] for r in results} == {200}


async def test_token_minting_limit(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(
        switches=Switches(max_tokens_per_user=2, token_mint_window_seconds=600)
    )
    seller = await emu.seller()
    first = await emu.login(seller["id"])
    status, _ = await emu.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert status == 200
    code = await emu.authorize(seller["id"])
    status, body = await emu.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:8080/oauth/callback",
        }
    )
    assert status == 429 and body["errors"][0]["code"] == "RateLimitExceedException"
    other = await emu.seller("other")
    await emu.login(other["id"])  # per user
    await emu.advance(601)
    await emu.login(seller["id"])
