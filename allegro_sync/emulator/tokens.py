"""JWT-shaped tokens: issuing, refresh rotation with a grace period, revocation, lookup."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from .models import AccessToken, RefreshToken, TokenGrant
from .state import Marketplace

ALL_SCOPES = tuple(
    f"allegro:api:{s}"
    for s in (
        "profile:read",
        "profile:write",
        "sale:offers:read",
        "sale:offers:write",
        "orders:read",
        "orders:write",
        "shipments:read",
        "shipments:write",
        "ratings",
        "disputes",
        "bids",
        "messaging",
        "billing:read",
        "payments:read",
        "payments:write",
        "sale:settings:read",
        "sale:settings:write",
        "campaigns",
        "fulfillment:read",
        "fulfillment:write",
        "affiliate:read",
        "affiliate:write",
    )
)


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT-shaped token, or None when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def narrow_scopes(requested: str | None) -> tuple[str, ...]:
    """Asking for none grants all; asking for more is clipped to the declared ones."""
    if not requested:
        return ALL_SCOPES
    wanted = set(requested.replace(",", " ").split())
    return tuple(s for s in ALL_SCOPES if s in wanted)


@dataclass
class IssuedPair:
    """What the token endpoint returns."""

    access: AccessToken
    refresh: RefreshToken | None


class TokenStore:
    """All tokens of one emulator instance. Unknown tokens (another instance's, garbage) are
    told apart from known but dead ones, as Allegro's 401 messages do."""

    def __init__(self, market: Marketplace) -> None:
        self._market = market
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshToken] = {}
        self.grants: dict[str, TokenGrant] = {}

    def _jwt(self, claims: dict[str, Any]) -> str:
        header = _b64({"alg": "RS256", "typ": "JWT"})
        signature = self._market.ids.token_bytes(64)
        return f"{header}.{_b64(claims)}.{signature}"

    def new_grant(
        self, client_id: str, seller_id: str | None, scopes: tuple[str, ...]
    ) -> TokenGrant:
        """Start a grant (one authorisation of the client by the seller)."""
        grant = TokenGrant(self._market.ids.uuid(), client_id, seller_id, scopes)
        self.grants[grant.id] = grant
        return grant

    def issue(self, grant: TokenGrant, *, with_refresh: bool = True) -> IssuedPair:
        """A new access token (and refresh token) for ``grant``; it becomes the current one."""
        config = self._market.config
        now = self._market.clock.timestamp()
        exp = now + config.access_token_ttl
        claims: dict[str, Any] = {
            "user_name": grant.seller_id,
            "scope": list(grant.scopes),
            "allegro_api": True,
            "exp": int(exp),
            "jti": self._market.ids.uuid(),
            "client_id": grant.client_id,
        }
        if grant.seller_id is None:
            del claims["user_name"]
        access = AccessToken(self._jwt(claims), grant, exp)
        self.access[access.token] = access
        grant.current_access = access.token
        refresh = None
        if with_refresh:
            r_exp = now + config.refresh_token_ttl
            r_claims = {
                "user_name": grant.seller_id,
                "scope": list(grant.scopes),
                "allegro_api": True,
                "ati": claims["jti"],
                "exp": int(r_exp),
                "jti": self._market.ids.uuid(),
                "client_id": grant.client_id,
            }
            refresh = RefreshToken(self._jwt(r_claims), grant, r_exp, access_token=access.token)
            self.refresh[refresh.token] = refresh
        return IssuedPair(access, refresh)

    def _kill_access(self, token: str | None) -> None:
        if token is not None and token in self.access:
            self.access[token].revoked = True

    def use_refresh(self, token: str, client_id: str) -> IssuedPair | None:
        """Rotate: a new pair; the old access dies now, the old refresh lives ``refresh_grace``
        seconds after its first use. None means ``invalid_grant``."""
        record = self.refresh.get(token)
        now = self._market.clock.timestamp()
        if record is None or record.revoked or record.grant.client_id != client_id:
            return None
        if now >= record.expires_at:
            return None
        if record.used_at is not None and now >= record.used_at + self._market.config.refresh_grace:
            return None
        seller_id = record.grant.seller_id
        if seller_id is not None:
            seller = self._market.sellers.get(seller_id)
            if seller is None or (
                seller.blocked and self._market.config.switches.blocked_seller == "revoke"
            ):
                return None
        if record.used_at is None:
            record.used_at = now
        grant = record.grant
        self._kill_access(record.access_token)
        if self._market.config.switches.refresh_kills_sibling_access:
            self._kill_access(grant.current_access)
        return self.issue(grant)

    def revoke_seller(self, seller_id: str) -> int:
        """Kill every access and refresh token of a seller (password change, block, logout)."""
        count = 0
        for access in self.access.values():
            if access.grant.seller_id == seller_id and not access.revoked:
                access.revoked = True
                count += 1
        for refresh in self.refresh.values():
            if refresh.grant.seller_id == seller_id and not refresh.revoked:
                refresh.revoked = True
                count += 1
        return count
