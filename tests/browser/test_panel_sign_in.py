"""The panel's sign-in (issue 15): a session cookie, wrong secrets refused, sign-out."""

from __future__ import annotations

import asyncpg
from playwright.async_api import expect

from tests.browser.conftest import Panel


async def test_sign_in_wrong_password_and_sign_out(panel: Panel, db: asyncpg.Pool) -> None:
    page = panel.page
    await panel.goto("accounts")
    assert page.url.endswith("/panel/login")  # pages need a session
    await page.get_by_label("Hasło panelu").fill("not the password")
    await page.get_by_role("button", name="Zaloguj").click()
    await expect(page.get_by_role("alert")).to_have_text("Nieprawidłowe hasło.")
    await panel.screenshot("login-refused")
    assert not [c for c in await page.context.cookies() if c["name"] == "allegro_sync_panel"]

    await panel.sign_in()
    (cookie,) = [c for c in await page.context.cookies() if c["name"] == "allegro_sync_panel"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]
    await panel.screenshot("overview-empty")

    await page.get_by_role("button", name="Wyloguj").click()
    await expect(page.get_by_label("Hasło panelu")).to_be_visible()
    await panel.goto("accounts")
    assert page.url.endswith("/panel/login")

    # sessions expire: stored as hashes only, and refused once past their time
    await panel.sign_in()
    (cookie,) = [c for c in await page.context.cookies() if c["name"] == "allegro_sync_panel"]
    stored = await db.fetch("SELECT id_hash FROM panel_sessions")
    assert cookie["value"] not in {r["id_hash"] for r in stored}
    await db.execute("UPDATE panel_sessions SET expires_at = now() - interval '1 second'")
    await panel.goto("customers")
    assert page.url.endswith("/panel/login")


async def test_panel_without_the_trailing_slash_leads_to_the_panel(panel: Panel) -> None:
    page = panel.page
    response = await page.request.get(panel.base + "/panel", max_redirects=0)
    assert response.status in (301, 308)
    assert response.headers["location"] == "/panel/"
    await page.goto(panel.base + "/panel")
    await expect(page.get_by_label("Hasło panelu")).to_be_visible()
    await panel.sign_in()
    await page.goto(panel.base + "/panel")
    await expect(page.get_by_role("heading", name="Przegląd")).to_be_visible()
    assert page.url == panel.url
