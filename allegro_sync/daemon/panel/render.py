"""Pages: Jinja2 templates shipped in the package, in the signed-in seller's language, with
dates in Europe/Warsaw."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from allegro_sync.daemon.panel import i18n
from allegro_sync.daemon.panel.auth import CSRF, SIGNED_IN

WARSAW = ZoneInfo("Europe/Warsaw")
LANG_COOKIE = "allegro_sync_panel_lang"

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("allegro_sync.daemon.panel", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def local_time(value: datetime | str | None, with_seconds: bool = False) -> str:
    """A moment as the seller reads it: Warsaw time, ``2026-03-01 14:05``."""
    if value is None or value == "":
        return "—"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(WARSAW).strftime("%Y-%m-%d %H:%M" + (":%S" if with_seconds else ""))


def local_input(value: datetime | str | None) -> str:
    """A moment for an ``<input type=datetime-local>``, in Warsaw time."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(WARSAW).strftime("%Y-%m-%dT%H:%M")


ENV.filters["local_time"] = local_time
ENV.filters["local_input"] = local_input


def language(request: web.Request) -> str:
    """Polish unless the seller switched to English."""
    return "en" if request.cookies.get(LANG_COOKIE) == "en" else "pl"


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """The page ``template`` with the common context (language, CSRF token, current path)."""
    lang = language(request)
    # Where this page can be had again (a form's answer is not: its GET page is given).
    here = context.pop("here", None) or (request.path_qs if request.method == "GET" else "/panel/")
    page = ENV.get_template(template).render(
        _=i18n.translator(lang),
        lang=lang,
        csrf=request.get(CSRF, ""),
        signed_in=request.get(SIGNED_IN, False),
        path=here,
        section=context.pop("section", ""),
        **context,
    )
    response = web.Response(text=page, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src * data:; style-src 'self'; script-src 'self';"
        " form-action 'self' https: http:; frame-ancestors 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def see_other(location: str) -> web.Response:
    """A 303 to ``location`` (after a form, so a reload does not post it again)."""
    return web.Response(status=303, headers={"Location": location})
