"""Admin API for orders. SKELETON."""

from __future__ import annotations

import asyncpg
from aiohttp import web


def add_order_routes(app: web.Application, pool: asyncpg.Pool) -> None:
    """``GET /orders``, ``POST /accounts/{id}/orders/fetch``."""
