"""Admin API for offers. SKELETON: filled in by issue 6."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from allegro_sync.adapters.allegro.client import AllegroRestClient


def add_offer_routes(app: web.Application, pool: asyncpg.Pool, allegro: AllegroRestClient) -> None:
    """``GET /offers``, ``PATCH /offers/{id}``."""
