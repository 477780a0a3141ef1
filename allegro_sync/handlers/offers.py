"""Offers: the live mirror and binding by EAN (design.md O3, O4, P2, S3 flags).

SKELETON: filled in by the offers work (issue 6).
"""

from __future__ import annotations

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.broker.consumer import Route


def offer_routes(allegro: AllegroRestClient) -> dict[str, Route]:
    """Routes of the journal queue for offers: ``allegro.offer_event`` and
    ``allegro.offer_touched`` (an order mentioned the offer)."""
    return {}
