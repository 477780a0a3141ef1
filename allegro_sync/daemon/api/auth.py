"""Bearer-token authentication of the admin API, compared in constant time."""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Middleware

from allegro_sync.daemon.api.errors import Handler, error_response

# ``/panel`` only redirects to ``/panel/``.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/oauth/callback", "/panel"})
# The seller's panel signs in with its own form and session cookie (daemon/panel/auth.py).
PUBLIC_PREFIXES = ("/panel/",)


def bearer_auth(admin_token: str) -> Middleware:
    """A middleware that admits only ``Authorization: Bearer <admin_token>``; an empty token
    never matches (not even an empty ``admin_token``, which settings refuse anyway)."""
    expected = admin_token.strip().encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        # surrogateescape: aiohttp keeps a header's raw non-UTF-8 bytes as surrogates.
        given = token.strip().encode("utf-8", "surrogateescape")
        if (
            scheme.lower() != "bearer"
            or not given
            or not expected
            or not hmac.compare_digest(given, expected)
        ):
            return error_response(401, "unauthorized", "send Authorization: Bearer <ADMIN_TOKEN>")
        return await handler(request)

    return middleware
