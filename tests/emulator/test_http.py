"""Media types, trace-id, scopes, rate limits and faults (sections 1, 3, 4)."""

from __future__ import annotations

from .conftest import Harness, MakeHarness


async def test_media_types_and_trace_id(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    status, body, headers = await emu.api(
        "GET", "/me", token, headers={"Accept": "application/json"}
    )
    assert status == 406 and body["errors"][0]["code"] == "NotAcceptableException"
    assert headers["trace-id"]
    status, body, _ = await emu.api(
        "PUT",
        "/sale/offer-price-change-commands/x",
        token,
        raw="{}",
        headers={"Content-Type": "application/json"},
    )
    assert status == 415
    status, body, headers = await emu.api("GET", "/me", token)
    assert headers["Content-Type"].startswith("application/vnd.allegro.public.v1+json")


async def test_rate_limit_blocks_for_a_minute(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(rate_limit_per_minute=5)
    _, token = await emu.seller_with_token()
    for _ in range(5):
        assert (await emu.api("GET", "/me", token))[0] == 200
    status, body, headers = await emu.api("GET", "/me", token)
    assert status == 429 and body["errors"][0]["code"] == "RateLimitExceedException"
    assert "Retry-After" not in headers
    await emu.advance(61)
    assert (await emu.api("GET", "/me", token))[0] == 200


async def test_faults(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    await emu.control("POST", "/faults", {"status_429_seconds": 30})
    assert (await emu.api("GET", "/me", token))[0] == 429
    await emu.advance(31)
    assert (await emu.api("GET", "/me", token))[0] == 200
    await emu.control("POST", "/faults", {"error_5xx_rate": 1.0, "paths": ["/me"]})
    assert (await emu.api("GET", "/me", token))[0] == 503
    await emu.control("DELETE", "/faults")
    assert (await emu.api("GET", "/me", token))[0] == 200
    counts = await emu.control("GET", "/requests")
    assert counts["by_path"]["GET /me"] >= 4


async def test_missing_scope_is_403(emu: Harness) -> None:
    seller = await emu.seller()
    code = await emu.authorize(seller["id"], scope="allegro:api:orders:read")
    status, body = await emu.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:8080/oauth/callback",
        }
    )
    status, body, _ = await emu.api("GET", "/me", body["access_token"])
    assert status == 403 and body["errors"][0]["code"] == "AccessDenied"


async def test_account_settings(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    status, body, _ = await emu.api("GET", "/after-sales-service-conditions/return-policies", token)
    assert status == 200 and body["count"] >= 1 and body["returnPolicies"][0]["name"]
    status, _, _ = await emu.api(
        "GET", "/after-sales-service-conditions/warranties?limit=61", token
    )
    assert status == 422
    status, body, _ = await emu.api("GET", "/sale/shipping-rates", token)
    assert body["shippingRates"]
    status, body, _ = await emu.api("GET", "/sale/categories", token)
    assert {c["id"] for c in body["categories"]} == {"2", "3"}
