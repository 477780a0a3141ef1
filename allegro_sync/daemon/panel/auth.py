"""Sign-in, sessions and CSRF for the panel.

The seller signs in with ``PANEL_PASSWORD`` (or, when it is unset, the admin token). A session
is a random id in an HttpOnly, SameSite=Strict cookie (Secure when the panel is served over
HTTPS); PostgreSQL keeps only its SHA-256 and its expiry. Every form that changes something
carries a CSRF token derived from the session id with the daemon's secret key (HMAC), so no
other site can post on the seller's behalf; the sign-in form has its own double-submit token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Middleware

from allegro_sync.adapters.postgres import panel_sessions

SESSION_COOKIE = "allegro_sync_panel"
LOGIN_COOKIE = "allegro_sync_panel_login"
PUBLIC = ("login", "static/", "lang/")
# Wrong passwords: after this many within the window, every sign-in waits for the window's end.
MAX_FAILURES = 10
FAILURE_WINDOW = 60.0

SIGNED_IN = web.RequestKey("panel_signed_in", bool)
CSRF = web.RequestKey("panel_csrf", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def session_hash(session_id: str) -> str:
    """How a session id is stored."""
    return hashlib.sha256(session_id.encode()).hexdigest()


class PanelAuth:
    """Checks the sign-in secret, starts and ends sessions, guards every page and form."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        password: str,
        secret_key: str,
        lifetime: timedelta,
        https: bool,
        prefix: str,
    ) -> None:
        self._pool = pool
        self._password = password.encode()
        self._key = hashlib.sha256(b"allegro-sync panel csrf:" + secret_key.encode()).digest()
        self.lifetime = lifetime
        self._https = https
        self.prefix = prefix
        self._failures: list[float] = []

    def locked(self) -> bool:
        """Too many wrong passwords lately: sign-ins are refused for a while."""
        cutoff = time.monotonic() - FAILURE_WINDOW
        self._failures = [t for t in self._failures if t > cutoff]
        return len(self._failures) >= MAX_FAILURES

    def password_ok(self, given: str) -> bool:
        """Constant-time comparison with the sign-in secret; a wrong one is counted."""
        if hmac.compare_digest(given.encode(), self._password):
            return True
        self._failures.append(time.monotonic())
        return False

    def csrf_for(self, session_id: str) -> str:
        """The CSRF token of a session."""
        return hmac.new(self._key, session_id.encode(), hashlib.sha256).hexdigest()

    def _secure(self, request: web.Request) -> bool:
        return self._https or request.secure

    def set_cookie(
        self,
        request: web.Request,
        response: web.StreamResponse,
        name: str,
        value: str,
        max_age: int,
    ) -> None:
        """An HttpOnly, SameSite=Strict cookie for the panel's path, Secure over HTTPS."""
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=self.prefix,
            httponly=True,
            samesite="Strict",
            secure=self._secure(request),
        )

    def new_login_token(self, request: web.Request) -> str:
        """The sign-in form's CSRF token (kept in its cookie), reused while it lasts."""
        token = request.cookies.get(LOGIN_COOKIE, "")
        return token if len(token) == 43 else secrets.token_urlsafe(32)

    def login_token_ok(self, request: web.Request, given: str) -> bool:
        """The sign-in form's token matches its cookie."""
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), given.encode())

    async def start(self, request: web.Request, response: web.StreamResponse) -> None:
        """Sign the browser in: a new session and its cookie."""
        session_id = secrets.token_urlsafe(32)
        expires_at = datetime.now(UTC) + self.lifetime
        await panel_sessions.create(self._pool, session_hash(session_id), expires_at)
        self.set_cookie(
            request, response, SESSION_COOKIE, session_id, int(self.lifetime.total_seconds())
        )
        response.del_cookie(LOGIN_COOKIE, path=self.prefix)

    async def end(self, request: web.Request, response: web.StreamResponse) -> None:
        """Sign out: the session is deleted and its cookie cleared."""
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            await panel_sessions.delete(self._pool, session_hash(session_id))
        response.del_cookie(SESSION_COOKIE, path=self.prefix)

    async def session_of(self, request: web.Request) -> str | None:
        """The live session id of the request, or None."""
        session_id = request.cookies.get(SESSION_COOKIE)
        if not session_id or len(session_id) > 100:
            return None
        if await panel_sessions.is_live(self._pool, session_hash(session_id)):
            return session_id
        return None

    def middleware(self) -> Middleware:
        """Pages need a session; forms (every POST) its CSRF token."""

        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            relative = request.path[len(self.prefix) :]
            if relative.startswith(PUBLIC):
                return await handler(request)
            session_id = await self.session_of(request)
            if session_id is None:
                if request.method == "GET":
                    raise web.HTTPSeeOther(self.prefix + "login")
                raise web.HTTPForbidden(text="session")
            request[SIGNED_IN] = True
            request[CSRF] = self.csrf_for(session_id)
            if request.method == "POST":
                form = await request.post()
                given = str(form.get("csrf", ""))
                if not hmac.compare_digest(given.encode(), request[CSRF].encode()):
                    raise web.HTTPForbidden(text="csrf")
            return await handler(request)

        return guard
