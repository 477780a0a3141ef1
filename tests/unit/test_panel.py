"""The panel's pure parts: every Polish text has its English, dates in Warsaw time, cookies,
CSRF tokens and the sign-in lockout (issue 15)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from importlib import resources

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from allegro_sync.daemon.panel import accounts, i18n
from allegro_sync.daemon.panel.auth import MAX_FAILURES, PanelAuth
from allegro_sync.daemon.panel.render import local_input, local_time

_TEXT = re.compile(r"""_\(\s*(["'])(.+?)\1\s*\)""")


def _template_texts() -> set[str]:
    folder = resources.files("allegro_sync.daemon.panel") / "templates"
    found: set[str] = set()
    for entry in folder.iterdir():
        found.update(m.group(2) for m in _TEXT.finditer(entry.read_text("utf-8")))
    return found


def test_every_polish_text_has_its_english() -> None:
    texts = _template_texts()
    texts.update(title for _, title, _ in accounts.SECTIONS)
    texts.update(label for _, _, items in accounts.SECTIONS for _, label in items)
    texts.update(label for _, _, label in accounts.AFTER_SALES)
    missing = sorted(t for t in texts if t not in i18n.EN and ":" not in t[:8])
    assert missing == []
    english = i18n.translator("en")
    assert english("Konta Allegro") == "Allegro accounts"
    assert i18n.translator("pl")("type:intra_eu") == "Wewnątrzunijny"


def test_dates_are_shown_in_warsaw_time() -> None:
    winter = datetime(2026, 1, 15, 11, 30, tzinfo=UTC)
    summer = datetime(2026, 7, 15, 11, 30, tzinfo=UTC)
    assert local_time(winter) == "2026-01-15 12:30"
    assert local_time(summer.isoformat()) == "2026-07-15 13:30"
    assert local_time(None) == "—"
    assert local_input(summer) == "2026-07-15T13:30"


def _auth(https: bool) -> PanelAuth:
    return PanelAuth(
        None,  # type: ignore[arg-type]  # no session is stored here
        password="correct horse",
        secret_key="k" * 32,
        lifetime=timedelta(hours=8),
        https=https,
        prefix="/panel/",
    )


def test_cookies_are_http_only_strict_and_secure_over_https() -> None:
    for https in (False, True):
        response = web.Response()
        _auth(https).set_cookie(make_mocked_request("GET", "/panel/"), response, "c", "v", 60)
        header = response.cookies["c"].OutputString()
        assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/panel/" in header
        assert ("Secure" in header) is https


def test_csrf_tokens_differ_per_session_and_key() -> None:
    auth = _auth(False)
    assert auth.csrf_for("a") != auth.csrf_for("b")
    assert auth.csrf_for("a") == _auth(True).csrf_for("a")
    other = PanelAuth(
        None,  # type: ignore[arg-type]
        password="x",
        secret_key="z" * 32,
        lifetime=timedelta(hours=1),
        https=False,
        prefix="/panel/",
    )
    assert other.csrf_for("a") != auth.csrf_for("a")


def test_sign_in_locks_after_many_wrong_passwords() -> None:
    auth = _auth(False)
    assert auth.password_ok("correct horse")
    for _ in range(MAX_FAILURES):
        assert not auth.locked()
        assert not auth.password_ok("guess")
    assert auth.locked()
