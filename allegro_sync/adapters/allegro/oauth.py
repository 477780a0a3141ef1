"""Allegro's OAuth endpoints: authorization code with PKCE, device flow, refresh."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

from allegro_sync.adapters.allegro.errors import AllegroRateLimited, AllegroUnavailable, OAuthError


@dataclass(frozen=True)
class TokenSet:
    """An access and refresh token pair."""

    access_token: str
    refresh_token: str
    expires_in: int

    def __repr__(self) -> str:  # never show the tokens
        return f"TokenSet(expires_in={self.expires_in})"


@dataclass(frozen=True)
class DeviceAuthorization:
    """What the user must be shown to approve a device."""

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


def new_pkce_pair() -> tuple[str, str]:
    """A code verifier (86 characters) and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class OAuthClient:
    """The token endpoints of one environment (production or sandbox)."""

    def __init__(
        self, session: aiohttp.ClientSession, auth_url: str, client_id: str, client_secret: str
    ) -> None:
        self._session = session
        self._base = auth_url.rstrip("/") + "/auth/oauth"
        self._client_id = client_id
        token = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        self._basic = f"Basic {token}"

    def authorize_url(self, *, redirect_uri: str, state: str, code_challenge: str) -> str:
        """The URL the seller opens in a browser to grant access."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self._client_id,
                "redirect_uri": redirect_uri,
                "state": state,
                "code_challenge_method": "S256",
                "code_challenge": code_challenge,
                "prompt": "confirm",
            }
        )
        return f"{self._base}/authorize?{query}"

    async def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> TokenSet:
        """Trade an authorization code for tokens (PKCE: client id + verifier, no secret)."""
        body = await self._post(
            "/token",
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": self._client_id,
                "code_verifier": code_verifier,
            },
            basic=False,
        )
        return _token_set(body)

    async def refresh(self, refresh_token: str) -> TokenSet:
        """Rotate the pair; the old refresh token dies (60 s later)."""
        body = await self._post(
            "/token", {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
        return _token_set(body)

    async def start_device_flow(self) -> DeviceAuthorization:
        """Ask for a device code and the code the user types."""
        body = await self._post("/device", {"client_id": self._client_id})
        return DeviceAuthorization(
            device_code=str(body["device_code"]),
            user_code=str(body["user_code"]),
            verification_uri=str(body["verification_uri"]),
            verification_uri_complete=str(
                body.get("verification_uri_complete") or body["verification_uri"]
            ),
            # the documentation shows these as strings; accept both
            expires_in=int(body["expires_in"]),
            interval=int(body.get("interval") or 5),
        )

    async def poll_device_token(self, device_code: str) -> TokenSet:
        """One poll; raises OAuthError ``authorization_pending`` / ``slow_down`` / ... ."""
        body = await self._post(
            "/token",
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": device_code,
            },
        )
        return _token_set(body)

    async def _post(self, path: str, form: dict[str, str], *, basic: bool = True) -> dict[str, Any]:
        try:
            async with self._session.post(
                self._base + path,
                data=form,
                headers={
                    "Accept": "application/json",
                    **({"Authorization": self._basic} if basic else {}),
                },
                timeout=aiohttp.ClientTimeout(total=30),
            ) as response:
                trace_id = response.headers.get("trace-id")
                try:
                    body: Any = await response.json(content_type=None)
                except ValueError:
                    body = {}
                if response.status == 429:
                    raise AllegroRateLimited(
                        "token endpoint rate limited", status=429, trace_id=trace_id
                    )
                if response.status >= 500:
                    raise AllegroUnavailable(
                        f"token endpoint answered {response.status}",
                        status=response.status,
                        trace_id=trace_id,
                    )
                if response.status != 200 or not isinstance(body, dict):
                    error = body.get("error", "") if isinstance(body, dict) else ""
                    description = (
                        body.get("error_description", "") if isinstance(body, dict) else ""
                    )
                    raise OAuthError(
                        str(error or f"http_{response.status}"),
                        _scrub(str(description)),
                        status=response.status,
                    )
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AllegroUnavailable(f"token endpoint unreachable: {type(exc).__name__}") from exc


def _token_set(body: dict[str, Any]) -> TokenSet:
    return TokenSet(
        access_token=str(body["access_token"]),
        refresh_token=str(body["refresh_token"]),
        expires_in=int(body.get("expires_in") or 43199),
    )


def _scrub(description: str) -> str:
    """Allegro quotes the offending token in descriptions; never carry it further."""
    head, sep, _ = description.partition(": ")
    return head if sep else description
