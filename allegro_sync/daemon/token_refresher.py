"""Refreshes tokens shortly before they expire, so idle accounts never hold a dead token."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from allegro_sync.adapters.allegro.tokens import TokenManager
from allegro_sync.adapters.postgres import account_tokens
from allegro_sync.errors import CredentialsDead
from allegro_sync.tasks import wait_tasks

log = structlog.get_logger(__name__)


class TokenRefresher:
    """Every ``interval`` seconds, refresh active accounts whose token expires within ``ahead``."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        tokens: TokenManager,
        interval: float = 60.0,
        ahead: float = 900.0,
    ) -> None:
        self._pool = pool
        self._tokens = tokens
        self._interval = interval
        self._ahead = ahead
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop."""
        self._task = asyncio.create_task(self._run(), name="token-refresher")

    async def stop(self, timeout: float) -> None:
        """Stop the loop (a refresh in flight is committed or not at all)."""
        if self._task is not None:
            await wait_tasks([self._task], 0.0, what="token refresher")

    async def refresh_due(self) -> int:
        """One pass; the number of accounts refreshed."""
        rows = await self._pool.fetch(account_tokens.EXPIRING, self._ahead)
        done = 0
        for row in rows:
            try:
                await self._tokens.refresh(row["account_id"], seen_generation=row["generation"])
                done += 1
            except CredentialsDead:
                pass  # already switched off and logged by the token manager's hook
            except Exception as exc:
                log.warning("token_refresh_failed", account_id=row["account_id"], error=str(exc))
        return done

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh_due()
            except Exception as exc:
                log.warning("token_refresher_failed", error=str(exc))
            await asyncio.sleep(self._interval)
