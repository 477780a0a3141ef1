"""OAuth endpoints under ``/auth/oauth``: authorize, token (code, refresh, device, client
credentials) and device authorisation."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from . import context
from .config import ClientRegistration
from .context import AuthorizationCode, DeviceAuthorization, Emulator
from .errors import OAuthError, json_response, rate_limited
from .tokens import IssuedPair, decode_claims, narrow_scopes

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def _basic_client(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _authenticated_client(
    emulator: Emulator, request: web.Request
) -> tuple[str, ClientRegistration]:
    pair = _basic_client(request)
    if pair is None:
        raise OAuthError(
            401, "unauthorized", "Full authentication is required to access this resource"
        )
    client_id, secret = pair
    registration = emulator.config.clients.get(client_id)
    if registration is None or registration.client_secret != secret:
        raise OAuthError(401, "invalid_client", "Bad client credentials")
    return client_id, registration


async def _params(request: web.Request) -> dict[str, str]:
    # Allegro's tutorial sends a form body; staff once said the query works too (#1438).
    params = {k: v for k, v in request.query.items()}
    if request.can_read_body:
        form = await request.post()
        params.update({k: str(v) for k, v in form.items()})
    return params


def _token_body(emulator: Emulator, pair: IssuedPair) -> dict[str, Any]:
    access = pair.access
    body: dict[str, Any] = {
        "access_token": access.token,
        "token_type": "bearer",
        "expires_in": int(access.expires_at - emulator.clock.timestamp()),
        "scope": " ".join(access.grant.scopes),
        "allegro_api": True,
        "jti": str((decode_claims(access.token) or {}).get("jti", "")),
    }
    if pair.refresh is not None:
        body["refresh_token"] = pair.refresh.token
    return body


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


async def authorize(request: web.Request) -> web.StreamResponse:
    """The consent page, acted out by a seller chosen via the control API or ``?seller_id=``."""
    emulator = context.get(request)
    q = request.query
    client_id = q.get("client_id", "")
    registration = emulator.config.clients.get(client_id)
    if registration is None:
        raise OAuthError(400, "invalid_client", "Unknown client id")
    if q.get("response_type") != "code":
        raise OAuthError(400, "unsupported_response_type", "response_type must be code")
    redirect_uri = q.get("redirect_uri")
    if (
        redirect_uri is None
        and len(registration.redirect_uris) == 1
        and "*" not in (registration.redirect_uris[0])
    ):
        redirect_uri = registration.redirect_uris[0]
    if redirect_uri is None or not registration.redirect_allowed(redirect_uri):
        raise OAuthError(400, "invalid_grant", "Redirect URI mismatch.")
    challenge = q.get("code_challenge")
    if challenge is not None and q.get("code_challenge_method") != "S256":
        raise OAuthError(400, "invalid_request", "code_challenge_method must be S256")
    seller_id = q.get("seller_id") or emulator.authorize_as
    if q.get("login"):
        found = emulator.market.sellers_by_login.get(q["login"])
        seller_id = found.id if found else None
    seller = emulator.market.sellers.get(seller_id or "")
    state = q.get("state")
    if seller is None:
        raise OAuthError(400, "login_required", "No seller is logged in to the emulator")
    if seller.blocked or seller.sandbox != emulator.config.sandbox:
        params = {"error": "access_denied"}
        if state is not None:
            params["state"] = state
        return _redirect(f"{redirect_uri}?{urlencode(params)}")
    code = AuthorizationCode(
        code=emulator.market.ids.code(32),
        client_id=client_id,
        seller_id=seller.id,
        redirect_uri=q.get("redirect_uri"),
        scopes=narrow_scopes(q.get("scope")),
        expires_at=emulator.clock.timestamp() + emulator.config.code_ttl,
        code_challenge=challenge,
    )
    emulator.codes[code.code] = code
    params = {"code": code.code}
    if state is not None:
        params["state"] = state
    return _redirect(f"{redirect_uri}?{urlencode(params)}")


def _check_mint(emulator: Emulator, seller_id: str | None) -> None:
    """429 when the (switchable, UNCONFIRMED) per-user token-minting limit is reached."""
    limiter = emulator.minting
    if seller_id is None or limiter is None or limiter.limit <= 0:
        return
    if not limiter.try_mint(seller_id):
        raise rate_limited(None)


def _pkce_ok(challenge: str, verifier: str) -> bool:
    if not 43 <= len(verifier) <= 128:
        return False
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge


async def _authorization_code(
    emulator: Emulator, request: web.Request, p: dict[str, str]
) -> IssuedPair:
    code_value = p.get("code")
    basic = _basic_client(request)
    verifier = p.get("code_verifier")
    if basic is None and verifier is not None and p.get("client_id"):
        # PKCE: client_id + code_verifier replace the Basic header.
        client_id = p["client_id"]
        if client_id not in emulator.config.clients:
            raise OAuthError(401, "invalid_client", "Bad client credentials")
    else:
        client_id, _ = _authenticated_client(emulator, request)
    if not code_value:
        raise OAuthError(400, "invalid_request", "An authorization code must be supplied")
    code = emulator.codes.get(code_value)
    invalid = OAuthError(400, "invalid_grant", f"Invalid authorization code: {code_value}")
    if code is None or code.used or code.client_id != client_id:
        raise invalid
    if emulator.clock.timestamp() >= code.expires_at:
        code.used = True
        raise invalid
    if code.redirect_uri is not None and p.get("redirect_uri") != code.redirect_uri:
        raise OAuthError(400, "invalid_grant", "Redirect URI mismatch.")
    if code.code_challenge is not None:
        if verifier is None or not _pkce_ok(code.code_challenge, verifier):
            raise OAuthError(400, "invalid_grant", "Invalid code verifier")
    elif basic is None:
        raise OAuthError(
            401, "unauthorized", "Full authentication is required to access this resource"
        )
    _check_mint(emulator, code.seller_id)
    code.used = True
    grant = emulator.tokens.new_grant(client_id, code.seller_id, code.scopes)
    return emulator.tokens.issue(grant)


def _device_code(emulator: Emulator, client_id: str, p: dict[str, str]) -> IssuedPair:
    device_code = p.get("device_code", "")
    record = emulator.devices.get(device_code)
    if record is None or record.used or record.client_id != client_id:
        raise OAuthError(400, "Invalid device code")
    now = emulator.clock.timestamp()
    if now >= record.expires_at:
        raise OAuthError(400, "expired_token", "Device code expired")
    if record.denied:
        record.used = True
        raise OAuthError(400, "access_denied")
    if record.seller_id is None:
        too_soon = record.last_poll is not None and now - record.last_poll < record.interval
        record.last_poll = now
        if too_soon:
            # RFC 8628: slow_down adds 5 seconds to the interval the client must keep.
            record.interval += 5
            raise OAuthError(400, "slow_down")
        raise OAuthError(400, "authorization_pending")
    _check_mint(emulator, record.seller_id)
    record.used = True
    grant = emulator.tokens.new_grant(client_id, record.seller_id, record.scopes)
    return emulator.tokens.issue(grant)


async def token(request: web.Request) -> web.Response:
    """``POST /auth/oauth/token`` for every grant type."""
    emulator = context.get(request)
    p = await _params(request)
    grant_type = p.get("grant_type")
    if grant_type == "authorization_code":
        pair = await _authorization_code(emulator, request, p)
    elif grant_type == "refresh_token":
        client_id, _ = _authenticated_client(emulator, request)
        value = p.get("refresh_token", "")
        known = emulator.tokens.refresh.get(value)
        if known is not None and not known.revoked:
            _check_mint(emulator, known.grant.seller_id)
        rotated = emulator.tokens.use_refresh(value, client_id)
        if rotated is None:
            raise OAuthError(400, "invalid_grant", f"Invalid refresh token: {value}")
        pair = rotated
    elif grant_type == DEVICE_GRANT:
        client_id, _ = _authenticated_client(emulator, request)
        pair = _device_code(emulator, client_id, p)
    elif grant_type == "client_credentials":
        client_id, _ = _authenticated_client(emulator, request)
        grant = emulator.tokens.new_grant(client_id, None, ())
        pair = emulator.tokens.issue(grant, with_refresh=False)
    else:
        _authenticated_client(emulator, request)
        raise OAuthError(400, "unsupported_grant_type", f"Unsupported grant type: {grant_type}")
    return json_response(_token_body(emulator, pair), content_type="application/json")


async def device(request: web.Request) -> web.Response:
    """``POST /auth/oauth/device``: start a device-flow authorisation."""
    emulator = context.get(request)
    client_id, registration = _authenticated_client(emulator, request)
    p = await _params(request)
    if not registration.device_grant:
        raise OAuthError(400, "unauthorized_client", "Client does not have the device_code grant.")
    ids = emulator.market.ids
    record = DeviceAuthorization(
        device_code=ids.code(32),
        user_code=ids.code(9, "abcdefghijklmnopqrstuvwxyz0123456789"),
        client_id=client_id,
        scopes=narrow_scopes(p.get("scope")),
        expires_at=emulator.clock.timestamp() + emulator.config.device_code_ttl,
        interval=emulator.config.device_interval,
    )
    emulator.devices[record.device_code] = record
    emulator.devices_by_user_code[record.user_code] = record
    as_str = emulator.config.switches.device_numbers_as_strings
    expires: int | str = emulator.config.device_code_ttl
    interval: int | str = record.interval
    if as_str:
        expires, interval = str(expires), str(interval)
    verification = f"https://{emulator.config.host_suffix}/skojarz-aplikacje"
    return json_response(
        {
            "user_code": record.user_code,
            "device_code": record.device_code,
            "expires_in": expires,
            "interval": interval,
            "verification_uri": verification,
            "verification_uri_complete": f"{verification}?code={record.user_code}",
        },
        content_type="application/json",
    )


def routes() -> list[web.RouteDef]:
    """The OAuth routes."""
    return [
        web.get("/auth/oauth/authorize", authorize),
        web.post("/auth/oauth/token", token),
        web.post("/auth/oauth/device", device),
    ]
