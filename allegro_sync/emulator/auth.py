"""Bearer-token checks for REST calls: 401 in the OAuth format, rate limit, 403 for scopes."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from . import context
from .errors import OAuthError, access_denied, rate_limited
from .models import AccessToken, Seller


@dataclass
class Caller:
    """The authenticated caller of a REST request."""

    token: AccessToken
    client_id: str
    seller: Seller | None


def _authenticate(request: web.Request) -> Caller:
    emulator = context.get(request)
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        raise OAuthError(
            401, "unauthorized", "Full authentication is required to access this resource"
        )
    raw = header[7:].strip()
    record = emulator.tokens.access.get(raw)
    if record is None:
        # Garbage, or a token from another environment (sandbox vs production).
        raise OAuthError(401, "invalid_token", "Cannot convert access token to JSON")
    if emulator.clock.timestamp() >= record.expires_at:
        raise OAuthError(401, "invalid_token", f"Access token expired: {raw}")
    if record.revoked:
        raise OAuthError(401, "invalid_token", f"Invalid access token: {raw}")
    seller = None
    if record.grant.seller_id is not None:
        seller = emulator.market.sellers[record.grant.seller_id]
    return Caller(record, record.grant.client_id, seller)


def caller(request: web.Request, scope: str | None) -> Caller:
    """Authenticate, apply the per-client rate limit, then check the scope."""
    found = _authenticate(request)
    emulator = context.get(request)
    emulator.market.recordings.requests_by_client[found.client_id] += 1
    if found.seller is not None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else request.path
        emulator.market.recordings.requests_by_seller[
            (found.seller.id, f"{request.method} {route}")
        ] += 1
    blocked_for = emulator.limiter.check(found.client_id)
    if blocked_for is not None:
        retry = int(blocked_for) + 1 if emulator.config.switches.send_retry_after else None
        raise rate_limited(retry)
    if scope is not None and scope not in found.token.grant.scopes:
        raise access_denied()
    return found


def seller_caller(request: web.Request, scope: str) -> tuple[Caller, Seller]:
    """Like :func:`caller`, for resources that need a user context."""
    found = caller(request, scope)
    if found.seller is None:
        raise access_denied()
    if found.seller.blocked:
        # Only reachable with the "forbidden" switch: "revoke" already killed the tokens.
        raise access_denied()
    return found, found.seller


def scope(name: str) -> str:
    """Full scope name from its short form (``orders:read``)."""
    return f"allegro:api:{name}"
