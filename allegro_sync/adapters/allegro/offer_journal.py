"""The offer event journal (``GET /sale/offer-events``). SKELETON: filled in by issue 6."""

from __future__ import annotations

import asyncpg

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.daemon.pollers import Journal


def offer_journals(allegro: AllegroRestClient, pool: asyncpg.Pool) -> list[Journal]:
    """The offer journal(s) the pollers read; empty until the offer journal exists."""
    return []
