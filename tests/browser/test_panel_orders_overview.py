"""Zamówienia and Przegląd in a real browser (issue 15; design.md O1, O4): a purchase on the
emulator becomes an order with its line's image; the overview per account; English by the
switch; the pages at phone width."""

from __future__ import annotations

import asyncpg
from playwright.async_api import Browser, expect

from tests.browser.conftest import Panel
from tests.e2e.conftest import Emulator
from tests.helpers import eventually

# Every visible form control has a label (a <label for>, or aria-label).
UNLABELLED = """
[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
  .map(e => e.name || e.id)
"""
IMAGE = "data:image/gif;base64,R0lGODlhAQABAIAAAP+AAP///yH5BAAAAAAALAAAAAABAAEAAAICRAEAOw=="


async def test_orders_with_images_overview_english_and_phone_width(
    panel: Panel, emulator: Emulator, db: asyncpg.Pool, browser: Browser
) -> None:
    page = panel.page
    await panel.sign_in()
    seller = await emulator.seller("sklep-zamowien")
    account_id = await panel.connect(emulator, seller, sandbox=False)
    orders_section = page.locator("section[aria-labelledby=h-orders]")
    await orders_section.get_by_label("Twórz automatycznie zamówienia do oferty").check()
    await orders_section.get_by_role("button", name="Zapisz").click()
    await expect(page.get_by_role("status")).to_have_text("Zapisano.")

    offer = await emulator.control(
        "POST",
        f"/sellers/{seller['id']}/offers",
        {
            "name": "Kubek ceramiczny",
            "ean": "5901234123457",
            "stock": 50,
            "price": "19.99",
            "image_url": IMAGE,
        },
    )

    async def journal_started() -> bool:
        return bool(
            await db.fetchval(
                "SELECT true FROM journal_cursors WHERE account_id = $1 AND journal = 'order'",
                account_id,
            )
        )

    await eventually(journal_started)

    async def mirrored() -> bool:  # order lines take their image from the offer mirror
        return bool(
            await db.fetchval("SELECT image_url FROM offers WHERE id = $1", str(offer["id"]))
        )

    await eventually(mirrored)
    result = await emulator.control(
        "POST",
        "/purchases",
        {"offer_id": str(offer["id"]), "quantity": 2, "payment_type": "ONLINE", "then": "pay"},
    )
    form_id = str(result["checkout_form_id"])

    async def sent() -> bool:
        return bool(
            await db.fetchval(
                "SELECT announced_at IS NOT NULL FROM orders WHERE checkout_form_id = $1", form_id
            )
        )

    await eventually(sent)
    await panel.goto("orders")
    row = page.locator("tbody tr").filter(has_text="Kubek ceramiczny")
    await expect(row).to_contain_text("2 × Kubek ceramiczny")
    await expect(row).to_contain_text("Gotowe do realizacji")
    await expect(row.locator("img.thumb")).to_have_attribute("src", IMAGE)
    await panel.screenshot("orders")
    await page.get_by_label("Wysłane do ERP").select_option("false")
    await page.get_by_role("button", name="Filtruj").click()
    await expect(page.get_by_text("Brak zamówień.")).to_be_visible()

    await page.get_by_role("link", name="Przegląd").click()
    overview = page.locator("tbody tr").filter(has_text="sklep-zamowien")
    await expect(overview).to_contain_text("s temu")
    await expect(overview).to_contain_text("Włączony")
    await panel.screenshot("overview")

    # English by the switch, kept across pages
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    await page.get_by_role("link", name="Allegro accounts").click()
    await page.get_by_role("link", name="sklep-zamowien").click()
    await expect(page.get_by_label("Create orders automatically", exact=True)).to_be_checked()
    await panel.screenshot("account-details-en")
    await page.get_by_role("link", name="Polski").click()
    await expect(page.get_by_role("heading", name="Zamówienia")).to_be_visible()

    # phone width: the same pages, nothing wider than the screen
    cookies = await page.context.cookies()
    phone = await browser.new_context(
        viewport={"width": 390, "height": 844}, locale="pl-PL", timezone_id="Europe/Warsaw"
    )
    await phone.add_cookies(cookies)  # type: ignore[arg-type]
    small = await phone.new_page()
    pages = (
        ("overview", ""),
        ("accounts", f"accounts/{account_id}"),
        ("offers", "offers"),
        ("orders", "orders"),
        ("customers", "customers"),
    )
    for name, path in pages:
        await small.goto(panel.url + path)
        width = await small.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (name, width)
        unlabelled = await small.evaluate(UNLABELLED)
        assert unlabelled == [], (name, unlabelled)
        await panel.screenshot(f"phone-{name}", page=small)
    await phone.close()
