"""The seller's panel (issue 15): every setting of the account in a web page, under ``/panel/``
on the admin API's port, server-rendered, Polish by default with English by a switch.

Every write goes through the functions the admin API calls (``handlers``), with their
validation and their error texts shown next to the field.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import resources

import asyncpg
import structlog
from aiohttp import web

from allegro_sync.adapters.allegro.errors import AllegroError, AllegroUnavailable
from allegro_sync.daemon.panel import accounts, customers, offers, orders, overview
from allegro_sync.daemon.panel.auth import Handler, PanelAuth
from allegro_sync.daemon.panel.deps import PANEL_KEY, PanelDeps, deps_of
from allegro_sync.daemon.panel.render import LANG_COOKIE, render, see_other
from allegro_sync.errors import CredentialsDead

__all__ = ["PREFIX", "PanelDeps", "create_panel_app", "new_auth"]

log = structlog.get_logger(__name__)

PREFIX = "/panel/"


def new_auth(
    pool: asyncpg.Pool, *, password: str, secret_key: str, session_hours: float, public_url: str
) -> PanelAuth:
    """The panel's sign-in for the daemon's settings."""
    return PanelAuth(
        pool,
        password=password,
        secret_key=secret_key,
        lifetime=timedelta(hours=session_hours),
        https=public_url.startswith("https://"),
        prefix=PREFIX,
    )


@web.middleware
async def trailing_slash(request: web.Request, handler: Handler) -> web.StreamResponse:
    """``/panel`` (which the mounted panel also receives) is ``/panel/``."""
    if request.path == PREFIX.rstrip("/"):
        raise web.HTTPPermanentRedirect(PREFIX)
    return await handler(request)


@web.middleware
async def html_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as a page in the panel's language, never a trace."""
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = {403: "csrf" if exc.text == "csrf" else "forbidden", 404: "not_found"}.get(
            exc.status, "bad_request"
        )
        return render(request, "error.html", status=exc.status, kind=kind, detail="")
    except CredentialsDead as exc:
        return render(request, "error.html", status=409, kind="credentials", detail=exc.reason)
    except AllegroUnavailable as exc:
        return render(request, "error.html", status=503, kind="allegro_down", detail=str(exc))
    except AllegroError as exc:
        return render(request, "error.html", status=409, kind="allegro_refused", detail=str(exc))
    except Exception:
        log.exception("panel_page_failed", path=request.path, method=request.method)
        return render(request, "error.html", status=500, kind="internal", detail="")


async def login_page(request: web.Request) -> web.Response:
    auth = deps_of(request).auth
    token = auth.new_login_token(request)
    response = render(request, "login.html", login_csrf=token, error=False)
    auth.set_cookie(request, response, "allegro_sync_panel_login", token, 3600)
    return response


async def login(request: web.Request) -> web.StreamResponse:
    auth = deps_of(request).auth
    form = await request.post()
    if not auth.login_token_ok(request, str(form.get("csrf", ""))):
        raise web.HTTPForbidden(text="csrf")
    locked = auth.locked()
    if locked or not auth.password_ok(str(form.get("password", ""))):
        log.info("panel_sign_in_refused", locked=locked)
        token = auth.new_login_token(request)
        error = "locked" if locked else "wrong"
        response = render(request, "login.html", status=401, login_csrf=token, error=error)
        auth.set_cookie(request, response, "allegro_sync_panel_login", token, 3600)
        return response
    response = see_other(PREFIX)
    await auth.start(request, response)
    log.info("panel_signed_in")
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    response = see_other(PREFIX + "login")
    await deps_of(request).auth.end(request, response)
    return response


async def switch_language(request: web.Request) -> web.StreamResponse:
    lang = request.match_info["lang"]
    if lang not in ("pl", "en"):
        raise web.HTTPNotFound()
    back = request.query.get("next", PREFIX)
    if not back.startswith(PREFIX) or back.startswith("//"):
        back = PREFIX
    response = see_other(back)
    response.set_cookie(
        LANG_COOKIE, lang, max_age=365 * 86400, path=PREFIX, samesite="Strict", httponly=True
    )
    return response


async def home(request: web.Request) -> web.StreamResponse:
    return await overview.overview_page(request)


def create_panel_app(deps: PanelDeps) -> web.Application:
    """The panel as an application to mount at ``/panel/``."""
    app = web.Application(middlewares=[trailing_slash, html_errors, deps.auth.middleware()])
    app[PANEL_KEY] = deps
    static = resources.files("allegro_sync.daemon.panel") / "static"
    app.router.add_static("/static/", str(static))
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/lang/{lang}", switch_language)
    app.router.add_get("/", home)
    accounts.add_routes(app)
    offers.add_routes(app)
    customers.add_routes(app)
    orders.add_routes(app)
    return app
