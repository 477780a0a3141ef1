"""OAuth behaviour from allegro-api.md section 2."""

from __future__ import annotations

import base64
import json

from .conftest import BASIC, REDIRECT, Harness, MakeHarness


def claims(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


async def test_code_flow_with_basic_and_jwt_claims(emu: Harness) -> None:
    seller = await emu.seller()
    code = await emu.authorize(seller["id"], state="xyz")
    status, body = await emu.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    )
    assert status == 200
    assert body["token_type"] == "bearer" and body["expires_in"] == 43199
    c = claims(body["access_token"])
    assert c["user_name"] == seller["id"] and c["client_id"] == "demo-client"
    assert isinstance(c["scope"], list) and "exp" in c
    # single use
    status, again = await emu.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    )
    assert status == 400 and again == {
        "error": "invalid_grant",
        "error_description": f"Invalid authorization code: {code}",
    }


async def test_code_expires_after_ten_seconds(emu: Harness) -> None:
    seller = await emu.seller()
    code = await emu.authorize(seller["id"])
    await emu.advance(10)
    status, body = await emu.token(
        {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    )
    assert status == 400 and body["error"] == "invalid_grant"


async def test_redirect_uri_must_match(emu: Harness) -> None:
    seller = await emu.seller()
    code = await emu.authorize(seller["id"])
    status, body = await emu.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:9999/other",
        }
    )
    assert status == 400 and body["error_description"] == "Redirect URI mismatch."
    async with emu.session.get(
        emu.url("/auth/oauth/authorize"),
        allow_redirects=False,
        params={
            "response_type": "code",
            "client_id": "demo-client",
            "redirect_uri": "https://evil.example/cb",
            "seller_id": seller["id"],
        },
    ) as r:
        assert r.status == 400


async def test_pkce_wrong_verifier_refused(emu: Harness) -> None:
    seller = await emu.seller()
    code = await emu.authorize(seller["id"], code_challenge="a" * 43, code_challenge_method="S256")
    status, body = await emu.token(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": "demo-client",
            "code_verifier": "b" * 43,
        },
        basic=False,
    )
    assert status == 400 and body["error"] == "invalid_grant"
    ok = await emu.login(seller["id"])
    assert "refresh_token" in ok


async def test_token_endpoint_needs_client_auth(emu: Harness) -> None:
    status, body = await emu.token(
        {"grant_type": "refresh_token", "refresh_token": "x"}, basic=False
    )
    assert status == 401 and body["error"] == "unauthorized"


async def test_refresh_rotation_and_grace(emu: Harness) -> None:
    seller = await emu.seller()
    first = await emu.login(seller["id"])
    status, second = await emu.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert status == 200 and second["refresh_token"] != first["refresh_token"]
    status, body, _ = await emu.api("GET", "/me", first["access_token"])
    assert status == 401 and body["error"] == "invalid_token"
    status, _, _ = await emu.api("GET", "/me", second["access_token"])
    assert status == 200
    await emu.advance(30)
    status, _ = await emu.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert status == 200  # inside the 60-second grace
    await emu.advance(31)
    status, body = await emu.token(
        {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    )
    assert status == 400 and body == {
        "error": "invalid_grant",
        "error_description": f"Invalid refresh token: {first['refresh_token']}",
    }


async def test_access_token_expiry_configurable(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(access_token_ttl=5)
    _, token = await emu.seller_with_token()
    await emu.advance(5)
    status, body, headers = await emu.api("GET", "/me", token)
    assert status == 401
    assert body == {"error": "invalid_token", "error_description": f"Access token expired: {token}"}
    assert headers["Content-Type"].startswith("application/json")


async def test_401_formats(emu: Harness) -> None:
    status, body, _ = await emu.api("GET", "/me", None)
    assert status == 401 and body["error"] == "unauthorized"
    status, body, _ = await emu.api("GET", "/me", "garbage")
    assert body == {
        "error": "invalid_token",
        "error_description": "Cannot convert access token to JSON",
    }


async def test_tokens_do_not_cross_environments(make_emulator: MakeHarness) -> None:
    prod = await make_emulator()
    sandbox = await make_emulator(sandbox=True)
    _, token = await prod.seller_with_token()
    status, body, _ = await sandbox.api("GET", "/me", token)
    assert status == 401 and body["error_description"] == "Cannot convert access token to JSON"


async def _device(emu: Harness) -> dict[str, str]:
    async with emu.session.post(
        emu.url("/auth/oauth/device"),
        data={"client_id": "demo-client"},
        headers={"Authorization": BASIC},
    ) as r:
        assert r.status == 200
        return dict(await r.json())


async def test_device_flow(emu: Harness) -> None:
    seller = await emu.seller()
    dev = await _device(emu)
    assert dev["verification_uri_complete"].endswith(dev["user_code"])
    grant = {
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": dev["device_code"],
    }
    status, body = await emu.token(grant)
    assert status == 400 and body["error"] == "authorization_pending"
    status, body = await emu.token(grant)
    assert body["error"] == "slow_down"
    await emu.control(
        "POST", "/device/approve", {"user_code": dev["user_code"], "seller_id": seller["id"]}
    )
    await emu.advance(int(dev["interval"]) + 5)
    status, body = await emu.token(grant)
    assert status == 200 and "access_token" in body
    status, body = await emu.token(grant)
    assert status == 400 and body["error"] == "Invalid device code"


async def test_device_flow_denied(emu: Harness) -> None:
    dev = await _device(emu)
    await emu.control("POST", "/device/deny", {"user_code": dev["user_code"]})
    status, body = await emu.token(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": dev["device_code"],
        }
    )
    assert status == 400 and body["error"] == "access_denied"


async def test_block_and_revoke(emu: Harness) -> None:
    seller = await emu.seller()
    tokens = await emu.login(seller["id"])
    await emu.control("POST", f"/sellers/{seller['id']}/block")
    status, _, _ = await emu.api("GET", "/me", tokens["access_token"])
    assert status == 401
    status, body = await emu.token(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    assert status == 400 and body["error"] == "invalid_grant"
    other = await emu.seller("other")
    tokens = await emu.login(other["id"])
    await emu.control("POST", f"/sellers/{other['id']}/revoke-tokens")
    status, _, _ = await emu.api("GET", "/me", tokens["access_token"])
    assert status == 401
