"""Access tokens per account: cached, refreshed before expiry or after a 401, one refresh at a time.

Allegro rotates refresh tokens and kills the previous access token on every refresh, so two
refreshes of one account must never race. In a process, a lock per account makes concurrent
callers wait for the one refresh; across processes and replicas, the token row is locked
(``FOR UPDATE``) while refreshing, and a caller that finds the row's generation moved on simply
takes the pair another process stored. The rotated pair is committed before anyone uses it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import structlog

from allegro_sync.adapters.allegro.crypto import TokenCipher
from allegro_sync.adapters.allegro.errors import OAuthError
from allegro_sync.adapters.allegro.oauth import OAuthClient, TokenSet
from allegro_sync.adapters.postgres import account_tokens
from allegro_sync.errors import CredentialsDead

log = structlog.get_logger(__name__)

OnCredentialsDead = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True)
class AccountAuth:
    """What a request on behalf of one account needs."""

    account_id: int
    sandbox: bool
    access_token: str
    generation: int
    expires_at: float

    def __repr__(self) -> str:
        return f"AccountAuth(account_id={self.account_id}, generation={self.generation})"


async def store_tokens(
    conn: asyncpg.Connection, cipher: TokenCipher, account_id: int, tokens: TokenSet
) -> int:
    """Store a new pair for ``account_id`` (insert or replace); the new generation."""
    generation: int = await conn.fetchval(
        account_tokens.STORE,
        account_id,
        cipher.encrypt(tokens.access_token, f"account:{account_id}:access"),
        cipher.encrypt(tokens.refresh_token, f"account:{account_id}:refresh"),
        float(tokens.expires_in),
    )
    return generation


class TokenManager:
    """Hands out working access tokens per account."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        cipher: TokenCipher,
        oauth: Callable[[bool], OAuthClient],
        on_credentials_dead: OnCredentialsDead,
        refresh_margin: float = 300.0,
    ) -> None:
        self._pool = pool
        self._cipher = cipher
        self._oauth = oauth
        self._on_dead = on_credentials_dead
        self._margin = refresh_margin
        self._cache: dict[int, AccountAuth] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        self.refreshes = 0

    async def current(self, account_id: int) -> AccountAuth:
        """A token valid for at least the refresh margin (refreshing first when needed)."""
        auth = self._cache.get(account_id)
        if auth is None:
            auth = await self._load(account_id)
        if auth.expires_at - time.time() < self._margin:
            auth = await self.refresh(account_id, seen_generation=auth.generation)
        return auth

    async def refresh(self, account_id: int, *, seen_generation: int | None) -> AccountAuth:
        """Refresh unless someone already replaced generation ``seen_generation``.

        ``seen_generation=None`` forces a refresh ("get a fresh REST API token").
        """
        lock = self._locks.setdefault(account_id, asyncio.Lock())
        async with lock:
            cached = self._cache.get(account_id)
            if (
                cached is not None
                and seen_generation is not None
                and cached.generation != seen_generation
            ):
                return cached  # refreshed by a caller we waited for
            dead_reason: str | None = None
            async with self._pool.acquire() as conn, conn.transaction():
                row = await account_tokens.get(conn, account_id, for_update=True)
                if row is None:
                    dead_reason = "no tokens are stored for the account"
                elif seen_generation is not None and row["generation"] != seen_generation:
                    auth = self._from_row(account_id, row)  # another process refreshed
                    self._cache[account_id] = auth
                    return auth
                else:
                    refresh_token = self._cipher.decrypt(
                        row["refresh_token_enc"], f"account:{account_id}:refresh"
                    )
                    try:
                        tokens = await self._oauth(row["sandbox"]).refresh(refresh_token)
                    except OAuthError as exc:
                        if exc.error != "invalid_grant":
                            raise
                        dead_reason = (
                            "Allegro refused to refresh the tokens (invalid_grant): the seller "
                            "must connect the account again"
                        )
                    else:
                        generation = await store_tokens(conn, self._cipher, account_id, tokens)
                        self.refreshes += 1
                        auth = AccountAuth(
                            account_id,
                            row["sandbox"],
                            tokens.access_token,
                            generation,
                            time.time() + tokens.expires_in,
                        )
            if dead_reason is not None:
                self._cache.pop(account_id, None)
                log.warning("account_credentials_dead", account_id=account_id)
                await self._on_dead(account_id, dead_reason)
                raise CredentialsDead(account_id, dead_reason)
            self._cache[account_id] = auth
            log.info("token_refreshed", account_id=account_id, generation=auth.generation)
            return auth

    def forget(self, account_id: int) -> None:
        """Drop the cached token (after a reconnect stored a new pair)."""
        self._cache.pop(account_id, None)

    async def _load(self, account_id: int) -> AccountAuth:
        row = await account_tokens.get(self._pool, account_id)
        if row is None:
            raise CredentialsDead(account_id, "no tokens are stored for the account")
        auth = self._from_row(account_id, row)
        self._cache[account_id] = auth
        return auth

    def _from_row(self, account_id: int, row: asyncpg.Record) -> AccountAuth:
        return AccountAuth(
            account_id,
            row["sandbox"],
            self._cipher.decrypt(row["access_token_enc"], f"account:{account_id}:access"),
            row["generation"],
            row["expires_at"],
        )
