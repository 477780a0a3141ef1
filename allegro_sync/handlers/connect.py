"""The start of a browser connect (design.md A1): a single-use ``state`` with a PKCE verifier,
and the Allegro authorize URL to send the seller to.

The same steps as ``POST /accounts/connect``; the OAuth callback finishes the flow.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from allegro_sync.adapters.allegro.crypto import TokenCipher
from allegro_sync.adapters.allegro.oauth import OAuthClient, new_pkce_pair
from allegro_sync.adapters.postgres import oauth_states

STATE_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class ConnectStart:
    """Where to send the seller, and until when the link works."""

    authorize_url: str
    expires_at: datetime


def state_hash(state: str) -> str:
    """How a state is stored: its SHA-256, never the state itself."""
    return hashlib.sha256(state.encode()).hexdigest()


async def start_connect(
    pool: asyncpg.Pool,
    cipher: TokenCipher,
    oauth: Callable[[bool], OAuthClient],
    *,
    redirect_uri: str,
    sandbox: bool,
) -> ConnectStart:
    """Store a fresh state and return the authorize URL.

    Raises ``SettingsError`` when the environment's client is not configured.
    """
    client = oauth(sandbox)
    state = secrets.token_urlsafe(32)
    verifier, challenge = new_pkce_pair()
    expires_at = datetime.now(UTC) + STATE_TTL
    hashed = state_hash(state)
    verifier_enc = cipher.encrypt(verifier, f"oauth_state:{hashed}")
    await oauth_states.add(pool, hashed, verifier_enc, sandbox, expires_at)
    url = client.authorize_url(redirect_uri=redirect_uri, state=state, code_challenge=challenge)
    return ConnectStart(url, expires_at)
