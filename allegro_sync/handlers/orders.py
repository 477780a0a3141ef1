"""Orders (design.md O1, O4): paid purchases become ERP orders, exactly once. SKELETON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.broker.consumer import Route
from allegro_sync.adapters.broker.publisher import ConfirmingPublisher


def order_routes(allegro: AllegroRestClient, pool: asyncpg.Pool) -> dict[str, Route]:
    """Routes of the journal queue for orders."""
    return {}


def make_backfill(
    allegro: AllegroRestClient, pool: asyncpg.Pool, publisher: ConfirmingPublisher
) -> Callable[[int], Awaitable[None]]:
    """The backfill of an orders-from date in the past, run before each order poll."""

    async def backfill(account_id: int) -> None:
        return None

    return backfill
