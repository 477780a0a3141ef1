"""Oferty and Klienci in a real browser (issue 15; design.md S3, P2, C4, C5): thumbnails and
the per-offer switches seen in the admin API, paging, and the customer export of the selected
rows, of a filtered view and of the whole list, each file parsed back."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from xml.etree import ElementTree

import asyncpg
from playwright.async_api import Page, expect

from tests.browser.conftest import Panel
from tests.e2e.conftest import Emulator

IMAGE = (
    "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' width='8' height='8'>"
    "<rect width='8' height='8' fill='%23f80'/></svg>"
)


async def _account(panel: Panel, emulator: Emulator, login: str) -> int:
    await panel.sign_in()
    return await panel.connect(emulator, await emulator.seller(login), sandbox=False)


async def test_offers_thumbnails_switches_and_paging(
    panel: Panel, emulator: Emulator, db: asyncpg.Pool
) -> None:
    page = panel.page
    account_id = await _account(panel, emulator, "sklep-ofert")
    await db.execute("INSERT INTO products (id, ean, name) VALUES ('P-MUG', '5901234123457', 'x')")
    await db.executemany(
        "INSERT INTO offers (id, account_id, name, format, status, stock, price, currency,"
        " image_url, ean, product_id, do_not_renew, sync_price)"
        " VALUES ($1, $2, $3, $4, $5, 3, 19.99, 'PLN', $6, $7, $8, true, false)",
        [
            (
                f"77{n:04d}",
                account_id,
                f"Kubek nr {n}",
                "AUCTION" if n % 10 == 0 else "BUY_NOW",
                "ENDED" if n % 3 == 0 else "ACTIVE",
                IMAGE if n % 2 else None,
                "5901234123457" if n == 1 else None,
                "P-MUG" if n == 1 else None,
            )
            for n in range(1, 61)
        ],
    )
    await panel.goto("offers")
    rows = page.locator("table.offers tbody tr")
    await expect(rows).to_have_count(50)
    first = page.locator("#offer-770001")
    await expect(first.locator("img.thumb")).to_have_attribute("src", IMAGE)
    await expect(first.get_by_label("Towar oferty 770001")).to_have_value("P-MUG")
    await panel.screenshot("offers", full_page=False)

    # the per-offer switches, as PATCH /offers/{id} sees them
    await first.get_by_label("Nie wznawiaj oferty automatycznie").uncheck()
    await first.get_by_label("Zmień cenę na ofercie").check()
    await first.get_by_role("button", name="Zapisz").click()
    saved = page.locator("#offer-770001")
    await expect(saved.get_by_label("Zmień cenę na ofercie")).to_be_checked()
    await expect(saved.get_by_label("Nie wznawiaj oferty automatycznie")).not_to_be_checked()
    status, listing = await panel.admin.call("GET", "/offers?text=770001")
    assert status == 200
    (offer,) = listing["items"]
    assert offer["do_not_renew"] is False and offer["sync_price"] is True

    # binding by hand: an unknown product refused next to the field, a known one bound
    second = page.locator("#offer-770002")
    await second.get_by_label("Towar oferty 770002").fill("P-NONE")
    await second.get_by_role("button", name="Powiąż ofertę 770002").click()
    await expect(page.locator("#product-770002-error")).to_have_text("no product P-NONE")
    await page.locator("#offer-770002").get_by_label("Towar oferty 770002").fill("P-MUG")
    await page.locator("#offer-770002").get_by_role("button", name="Powiąż ofertę 770002").click()
    await expect(page.locator("#product-770002")).to_have_value("P-MUG")
    status, listing = await panel.admin.call("GET", "/offers?text=770002")
    assert listing["items"][0]["product_id"] == "P-MUG"

    # paging by id, and filters kept across pages
    await page.get_by_role("link", name="Następna strona").click()
    await expect(rows).to_have_count(10)
    await expect(rows.first).to_contain_text("Kubek nr 51")
    await panel.goto("offers")
    await page.get_by_label("Status").select_option("ENDED")
    await page.get_by_label("Format sprzedaży").select_option("BUY_NOW")
    await page.get_by_role("button", name="Filtruj").click()
    await expect(rows).to_have_count(18)  # the 20 multiples of 3, less the auctions 30 and 60


async def _customers(db: asyncpg.Pool, account_id: int) -> None:
    people = [
        ("Anna", "Nowak", "PL", "domestic", "5260250274"),
        ("Jan", "Kowalski", "PL", "domestic", None),
        ("Hans", "Müller", "DE", "intra_eu", None),
        ("Marie", "Dubois", "FR", "intra_eu", "FR123"),
        ("John", "Smith", "GB", "extra_eu", None),
    ]
    await db.executemany(
        "INSERT INTO customers (account_id, allegro_buyer_id, email, first_name, last_name,"
        " country_code, type, nip) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [
            (account_id, f"b{n}", f"{first.lower()}+{n}@allegromail.pl", first, last, cc, t, nip)
            for n, (first, last, cc, t, nip) in enumerate(people)
        ],
    )


async def _download(page: Page, button: str, fmt: str) -> bytes:
    await page.get_by_label("Format pliku").select_option(fmt)
    async with page.expect_download() as info:
        await page.get_by_role("button", name=button).click()
    download = await info.value
    assert download.suggested_filename == f"customers.{fmt}"
    path = await download.path()
    return await asyncio.to_thread(Path(path).read_bytes)


def _csv_names(body: bytes) -> list[str]:
    return [row["last_name"] for row in csv.DictReader(io.StringIO(body.decode("utf-8-sig")))]


def _xml_names(body: bytes) -> list[str]:
    root = ElementTree.fromstring(body)
    return [el.text or "" for el in root.iter() if el.tag.endswith("last_name")]


async def test_customers_type_and_export_of_selected_view_and_all(
    panel: Panel, emulator: Emulator, db: asyncpg.Pool
) -> None:
    page = panel.page
    account_id = await _account(panel, emulator, "sklep-klientow")
    await _customers(db, account_id)
    await panel.goto("customers")
    rows = page.locator("tbody tr")
    await expect(rows).to_have_count(5)
    await expect(rows.filter(has_text="Müller")).to_contain_text("Wewnątrzunijny")
    await expect(rows.filter(has_text="Nowak")).to_contain_text("Krajowy")
    await expect(rows.filter(has_text="Smith")).to_contain_text("Pozaunijny")
    await panel.screenshot("customers")

    # the selected rows
    await page.get_by_label("Zaznacz Anna Nowak").check()
    await page.get_by_label("Zaznacz John Smith").check()
    assert _csv_names(await _download(page, "Eksportuj zaznaczone elementy", "csv")) == [
        "Nowak",
        "Smith",
    ]
    assert _xml_names(await _download(page, "Eksportuj zaznaczone elementy", "xml")) == [
        "Nowak",
        "Smith",
    ]

    # the current view: Typ klienta = Wewnątrzunijny
    await page.get_by_label("Typ klienta").select_option("intra_eu")
    await page.get_by_role("button", name="Filtruj").click()
    await expect(rows).to_have_count(2)
    assert _csv_names(await _download(page, "Eksportuj bieżący widok listy", "csv")) == [
        "Müller",
        "Dubois",
    ]
    assert _xml_names(await _download(page, "Eksportuj bieżący widok listy", "xml")) == [
        "Müller",
        "Dubois",
    ]
    # the whole list, from the filtered page still
    everyone = ["Nowak", "Kowalski", "Müller", "Dubois", "Smith"]
    assert _csv_names(await _download(page, "Eksportuj całą listę", "csv")) == everyone
    assert _xml_names(await _download(page, "Eksportuj całą listę", "xml")) == everyone

    # a filter the API refuses shows its text next to the field
    await panel.goto("customers?created_from=2026-13-01")
    await expect(page.locator("#created_from-error")).to_contain_text("expected an ISO date")
