"""Konta Allegro in a real browser (issue 15; design.md A1-A11): connecting through the
emulator's OAuth pages, renaming, every switch as the admin API sees it, the production-only
note, orders-from locked after 7 days, deletion refused while offers are bound, CSRF."""

from __future__ import annotations

import asyncpg
from playwright.async_api import expect

from allegro_sync.daemon.panel.accounts import SECTIONS
from tests.browser.conftest import Panel
from tests.e2e.conftest import Emulator

ALL_SWITCHES = [name for _, _, items in SECTIONS for name, _ in items]
DEFAULT_ON = {"do_not_renew_default", "mark_sent_on_tracking"}  # flipped, these go off


async def test_connect_rename_switches_and_the_production_only_note(
    panel: Panel, emulator: Emulator, sandbox_emulator: Emulator
) -> None:
    page = panel.page
    await panel.sign_in()
    shop = await emulator.seller("sklep-ala")
    shop_id = await panel.connect(emulator, shop, sandbox=False)
    test_seller = await sandbox_emulator.seller("piaskownica", sandbox=True)
    sandbox_id = await panel.connect(sandbox_emulator, test_seller, sandbox=True)

    await panel.goto("accounts")
    rows = page.get_by_role("row")
    await expect(rows).to_have_count(3)
    sandbox_row = rows.filter(has_text="piaskownica")
    await expect(sandbox_row.get_by_text("Tryb testowy")).to_be_visible()
    await expect(sandbox_row.get_by_text("! Wymaga kont produkcyjnych")).to_be_visible()
    await expect(rows.filter(has_text="sklep-ala").get_by_text("Tryb testowy")).to_have_count(0)
    await panel.screenshot("accounts-list")

    # rename
    await panel.goto(f"accounts/{shop_id}")
    await page.get_by_label("Nazwa konta").fill("Sklep Ali")
    await page.get_by_role("button", name="Zmień nazwę").click()
    await expect(page.get_by_role("status")).to_have_text("Zapisano.")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sklep Ali")
    status, account = await panel.admin.call("GET", f"/accounts/{shop_id}")
    assert status == 200 and account["name"] == "Sklep Ali"
    # an empty name is refused next to the field, with the API's text
    await page.get_by_label("Nazwa konta").fill("   ")
    await page.get_by_role("button", name="Zmień nazwę").click()
    await expect(page.locator("#name-error")).to_contain_text("at least 1 character")
    await expect(page.get_by_label("Nazwa konta")).to_have_attribute("aria-invalid", "true")

    # every switch, section by section, seen in the admin API
    await panel.goto(f"accounts/{shop_id}")
    assert not account["stock_control"]
    await expect(page.get_by_text("! Wymaga kont produkcyjnych")).to_have_count(0)
    for key, _title, items in SECTIONS:
        section = page.locator(f"section[aria-labelledby=h-{key}]")
        for name, _label in items:
            await section.locator(f"#{name}").click()  # flip
        await section.get_by_role("button", name="Zapisz").click()
        await expect(page.get_by_role("status")).to_have_text("Zapisano.")
    status, account = await panel.admin.call("GET", f"/accounts/{shop_id}")
    flipped = {name: account[name] for name in ALL_SWITCHES}
    assert flipped == {name: name not in DEFAULT_ON for name in ALL_SWITCHES}
    await panel.screenshot("account-details")
    # the event log by category
    log = page.locator("section[aria-labelledby=h-log]")
    await log.get_by_role("link", name="Konta", exact=True).click()
    entries = page.locator("section[aria-labelledby=h-log] tbody tr")
    await expect(entries.first).to_contain_text("Settings changed")
    assert all("Konta" in text for text in await entries.all_inner_texts())
    await (
        page.locator("section[aria-labelledby=h-log]")
        .get_by_role("link", name="Ceny", exact=True)
        .click()
    )
    await expect(entries).to_have_text(["Brak wpisów."])
    # and back off by their labels
    stock = page.locator("section[aria-labelledby=h-stock]")
    await stock.get_by_label("Kontroluj stany magazynowe dla oferty Allegro").uncheck()
    await stock.get_by_role("button", name="Zapisz").click()
    await expect(page.get_by_role("status")).to_have_text("Zapisano.")
    status, account = await panel.admin.call("GET", f"/accounts/{shop_id}")
    assert account["stock_control"] is False and account["auto_renew"] is True

    # the sandbox account: the note next to stock control
    await panel.goto(f"accounts/{sandbox_id}")
    note = page.locator("#stock_control-note")
    await expect(note).to_have_text("! Wymaga kont produkcyjnych")
    stock_switch = page.get_by_label("Kontroluj stany magazynowe dla oferty Allegro")
    await expect(stock_switch).to_have_attribute("aria-describedby", "stock_control-note")
    await panel.screenshot("account-sandbox")

    # deactivate from the list: the slider
    await panel.goto("accounts")
    slider = page.get_by_role("switch", name="Aktywne: piaskownica")
    await expect(slider).to_have_attribute("aria-checked", "true")
    await slider.click()
    await expect(page.get_by_role("switch", name="Aktywne: piaskownica")).to_have_attribute(
        "aria-checked", "false"
    )
    status, account = await panel.admin.call("GET", f"/accounts/{sandbox_id}")
    assert account["active"] is False and account["deactivation_reason"]


async def test_orders_from_delete_refusal_and_csrf(
    panel: Panel, emulator: Emulator, db: asyncpg.Pool
) -> None:
    page = panel.page
    await panel.sign_in()
    shop = await emulator.seller("sklep-ola")
    account_id = await panel.connect(emulator, shop, sandbox=False)

    # orders-from, in Warsaw time, within 7 days of adding
    await panel.goto(f"accounts/{account_id}")
    listing = page.locator("section[aria-labelledby=h-listing]")
    await listing.get_by_label("Pobieraj zamówienia od").fill("2026-03-01T12:30")
    await listing.get_by_role("button", name="Zapisz").click()
    await expect(page.get_by_role("status")).to_have_text("Zapisano.")
    status, account = await panel.admin.call("GET", f"/accounts/{account_id}")
    assert account["orders_from"] == "2026-03-01T11:30:00+00:00"  # CET is UTC+1
    await expect(listing.get_by_label("Cennik", exact=True)).to_have_value("default")
    # a price list known from the ERP is offered once it exists
    await db.execute("INSERT INTO price_lists (id, name) VALUES ('retail', 'Detal')")
    await panel.goto(f"accounts/{account_id}")
    listing = page.locator("section[aria-labelledby=h-listing]")
    await listing.get_by_label("Cennik", exact=True).select_option(label="Detal")
    await listing.get_by_role("button", name="Zapisz").click()
    await expect(page.get_by_role("status")).to_have_text("Zapisano.")
    status, account = await panel.admin.call("GET", f"/accounts/{account_id}")
    assert account["price_list"] == "retail"
    # Allegro's lists to choose from; a choice Allegro refuses is shown next to its field
    listing = page.locator("section[aria-labelledby=h-listing]")
    policy = listing.get_by_label("Warunki zwrotów")
    chosen = await policy.locator("option").nth(1).get_attribute("value")
    await policy.select_option(chosen)
    await listing.get_by_role("button", name="Zapisz").click()
    await expect(page.get_by_role("status")).to_have_text("Zapisano.")
    status, account = await panel.admin.call("GET", f"/accounts/{account_id}")
    assert account["after_sales"]["return_policy_id"] == chosen
    categories = page.locator("section[aria-labelledby=h-listing]").get_by_label(
        "Domyślna kategoria"
    )
    await categories.select_option(index=1)
    await page.locator("section[aria-labelledby=h-listing]").get_by_role("button").click()
    await expect(page.locator("#default_category_id-error")).to_contain_text("leaf category")

    await db.execute("UPDATE accounts SET created_at = now() - interval '8 days'")
    await panel.goto(f"accounts/{account_id}")
    field = page.locator("section[aria-labelledby=h-listing]").get_by_label(
        "Pobieraj zamówienia od"
    )
    await expect(field).to_be_disabled()
    await expect(field).to_have_value("2026-03-01 12:30")
    await expect(page.get_by_text("Minęło 7 dni od dodania konta")).to_be_visible()

    # extra recipients of order e-mails: the API's validation next to the field
    recipients = page.get_by_label("Adresy (jeden w wierszu)")
    await recipients.fill("biuro@sklep.pl\nnot-an-address")
    await page.locator("section[aria-labelledby=h-recipients]").get_by_role("button").click()
    await expect(page.get_by_role("alert")).to_contain_text("should match pattern")
    await page.get_by_label("Adresy (jeden w wierszu)").fill("biuro@sklep.pl")
    await page.locator("section[aria-labelledby=h-recipients]").get_by_role("button").click()
    await expect(page.get_by_role("status")).to_have_text("Zapisano.")
    status, account = await panel.admin.call("GET", f"/accounts/{account_id}")
    assert account["extra_order_email_recipients"] == ["biuro@sklep.pl"]

    # "Pobierz token REST API": a fresh token, shown to the seller who asked, once
    await page.get_by_role("button", name="Pobierz token REST API").click()
    token = await page.get_by_label("Token REST API", exact=False).input_value()
    assert token.count(".") == 2  # a JWT, as Allegro's
    await panel.goto(f"accounts/{account_id}")
    assert token not in await page.content()

    # deletion refused while offers are bound, with their number
    await db.execute("INSERT INTO products (id, ean, name) VALUES ('P-1', '590', 'Kubek')")
    for n in (1, 2):
        await db.execute(
            "INSERT INTO offers (id, account_id, name, format, status, product_id)"
            " VALUES ($1, $2, 'Kubek', 'BUY_NOW', 'ACTIVE', 'P-1')",
            f"9000{n}",
            account_id,
        )
    await page.get_by_label("Tak, usuń to konto z panelu").check()
    await page.get_by_role("button", name="Usuń konto").click()
    await expect(page.locator("#delete-error")).to_contain_text("2 offers bound to products")
    await panel.screenshot("account-delete-refused")
    status, _ = await panel.admin.call("GET", f"/accounts/{account_id}")
    assert status == 200

    # a form posted without the CSRF token (as another site would) changes nothing
    url = f"{panel.url}accounts/{account_id}/name"
    response = await page.request.post(url, form={"name": "przejęte"})
    assert response.status == 403
    assert "CSRF" in await response.text()
    response = await page.request.post(url, form={"name": "przejęte", "csrf": "0" * 64})
    assert response.status == 403
    status, account = await panel.admin.call("GET", f"/accounts/{account_id}")
    assert account["name"] == "sklep-ola"

    # without bound offers it goes
    await db.execute("UPDATE offers SET product_id = NULL")
    await panel.goto(f"accounts/{account_id}")
    csrf = await page.locator("input[name=csrf]").first.get_attribute("value")
    assert csrf
    response = await page.request.post(
        f"{panel.url}accounts/{account_id}/delete", form={"csrf": csrf}
    )
    assert response.status == 422  # not confirmed: stays
    assert "Zaznacz potwierdzenie." in await response.text()
    await page.get_by_label("Tak, usuń to konto z panelu").check()
    await page.get_by_role("button", name="Usuń konto").click()
    await expect(page.get_by_text("Nie ma jeszcze żadnego konta.")).to_be_visible()
    status, _ = await panel.admin.call("GET", f"/accounts/{account_id}")
    assert status == 404
