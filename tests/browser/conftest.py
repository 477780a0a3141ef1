"""Browser fixtures: Debian's chromium driven by Playwright against the daemon's panel.

The daemon runs in-process against the emulator as in the other end-to-end tests. Browser
downloads are impossible here, so chromium is the system's (``scripts/ensure-browser.sh``
installs it); ``playwright install`` is never run. Screenshots land in ``.artifacts/panel/``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import (  # noqa: F401  (fixtures)
    Admin,
    Emulator,
    admin,
    daemon,
    emulator,
    sandbox_emulator,
)
from tests.helpers import ADMIN_TOKEN

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HAVE_CHROMIUM = Path(CHROMIUM).exists()
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "panel"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-browser.sh (make test does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


class Panel:
    """A seller in front of the panel."""

    def __init__(self, daemon: Daemon, page: Page, admin: Admin) -> None:
        self.daemon = daemon
        self.page = page
        self.admin = admin
        self.base = f"http://127.0.0.1:{daemon.settings.http_port}"
        self.url = self.base + "/panel/"

    async def goto(self, path: str = "") -> None:
        await self.page.goto(self.url + path.lstrip("/"))

    async def sign_in(self, password: str = ADMIN_TOKEN) -> None:
        await self.goto("login")
        await self.page.get_by_label("Hasło panelu").fill(password)
        await self.page.get_by_role("button", name="Zaloguj").click()
        await expect(self.page.get_by_role("heading", name="Przegląd")).to_be_visible()

    async def screenshot(
        self, name: str, *, full_page: bool = True, page: Page | None = None
    ) -> Path:
        """The page as a test artifact, ``.artifacts/panel/<name>.png``."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await (page or self.page).screenshot(path=str(path), full_page=full_page)
        return path

    async def connect(self, emulator: Emulator, seller: dict[str, Any], sandbox: bool) -> int:
        """Through "Dodaj konto Allegro" and the emulator's OAuth pages; the new account's id."""
        await emulator.control("POST", "/authorize-as", {"seller_id": seller["id"]})
        await self.goto("accounts")
        await self.page.get_by_role("link", name="Dodaj konto Allegro").click()
        if sandbox:
            await self.page.get_by_label("Tryb testowy").check()
        await self.page.get_by_role("button", name="ZALOGUJ PRZEZ ALLEGRO").click()
        await expect(self.page.get_by_text(seller["login"])).to_be_visible()
        await self.page.get_by_role("link", name="Panel").click()
        await self.page.get_by_role("link", name=re.compile(seller["login"])).first.click()
        match = re.search(r"/panel/accounts/(\d+)", self.page.url)
        assert match, self.page.url
        return int(match.group(1))


@pytest.fixture
async def panel(daemon: Daemon, browser: Browser, admin: Admin) -> AsyncIterator[Panel]:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="pl-PL", timezone_id="Europe/Warsaw"
    )
    page = await context.new_page()
    yield Panel(daemon, page, admin)
    await context.close()
