"""What the panel's pages need: the same parts the admin API gets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
from aiohttp import web

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.crypto import TokenCipher
from allegro_sync.adapters.allegro.oauth import OAuthClient
from allegro_sync.adapters.allegro.tokens import TokenManager
from allegro_sync.daemon.api.customers import ExportGate
from allegro_sync.daemon.panel.auth import PanelAuth


@dataclass(frozen=True)
class PanelDeps:
    """The pool, the Allegro stack and the panel's sign-in."""

    pool: asyncpg.Pool
    cipher: TokenCipher
    oauth: Callable[[bool], OAuthClient]
    tokens: TokenManager
    allegro: AllegroRestClient
    public_url: str
    auth: PanelAuth
    # shared with the admin API's export: one cap for both
    exports: ExportGate = field(default_factory=ExportGate)

    @property
    def redirect_uri(self) -> str:
        """Where Allegro sends the seller back (the admin API's OAuth callback)."""
        return self.public_url.rstrip("/") + "/oauth/callback"


PANEL_KEY = web.AppKey("panel_deps", PanelDeps)


def deps_of(request: web.Request) -> PanelDeps:
    """The panel's parts, from its application."""
    return request.app[PANEL_KEY]
