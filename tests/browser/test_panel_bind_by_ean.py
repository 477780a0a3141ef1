"""Oferty's "Powiąż wszystkie po EAN" in a real browser (issue 15; design.md O3): the dry run
lists what would be bound and binds nothing, the confirmation binds, the form wants its CSRF
token."""

from __future__ import annotations

import argparse

import asyncpg
from playwright.async_api import expect

from allegro_sync.daemon.cli_offers import run_offers
from tests.browser.conftest import Panel
from tests.e2e.conftest import Emulator
from tests.e2e.flows import bound_messages, new_offer, products

EAN_MUG = "5901234123457"
EAN_CUP = "5901234123464"


async def test_bind_all_by_ean_dry_run_first_then_confirmed(
    panel: Panel, emulator: Emulator, db: asyncpg.Pool
) -> None:
    await products(panel.daemon, db, ("P-MUG", EAN_MUG), ("P-A", EAN_CUP), ("P-B", EAN_CUP))
    seller = await emulator.seller("sklep-hurt")
    mug = await new_offer(emulator, seller, name="Kubek", ean=EAN_MUG)
    cup = await new_offer(emulator, seller, name="Filiżanka", ean=EAN_CUP)
    bare = await new_offer(emulator, seller, name="Bez EAN")
    await emulator.control("POST", "/clock", {"advance_seconds": 25 * 3600})
    await panel.sign_in()
    account_id = await panel.connect(emulator, seller, sandbox=False)
    imported = argparse.Namespace(offers_command="import", account=account_id)
    assert await run_offers(imported, panel.daemon.settings) == 0
    await bound_messages(panel.daemon)
    page = panel.page

    # a form posted without the CSRF token binds nothing
    response = await page.request.post(
        f"{panel.url}offers/bind-by-ean", form={"account_id": str(account_id), "confirm": "yes"}
    )
    assert response.status == 403

    await panel.goto("offers")
    await page.get_by_label("Konto do powiązania po EAN").select_option(str(account_id))
    await page.get_by_role("button", name="Powiąż wszystkie po EAN").click()
    await expect(page.get_by_text("Podgląd: nic nie zostało powiązane.")).to_be_visible()
    to_bind = page.locator("table.bind-offers tbody tr")
    await expect(to_bind).to_have_count(1)
    await expect(to_bind.first).to_contain_text("Kubek")
    await expect(to_bind.first).to_contain_text("P-MUG")
    await expect(to_bind.first).to_contain_text(EAN_MUG)
    skipped = page.locator("table.bind-skipped tbody tr")
    await expect(skipped).to_have_count(2)
    await expect(skipped.filter(has_text="Filiżanka")).to_contain_text("Kilka towarów z tym EAN")
    await expect(skipped.filter(has_text="Bez EAN")).to_contain_text("Brak EAN")
    counts = page.locator("table.bind-counts")
    await expect(counts.locator("tr", has_text="Do powiązania / powiązane")).to_contain_text("1")
    await panel.screenshot("offers-bind-by-ean-dry-run")
    status, listing = await panel.admin.call("GET", f"/offers?account_id={account_id}")
    assert status == 200
    assert all(o["product_id"] is None for o in listing["items"])
    assert await bound_messages(panel.daemon) == []

    await page.get_by_role("button", name="Potwierdź powiązanie").click()
    await expect(page.get_by_text("Powiązano oferty: 1")).to_be_visible()
    await expect(page.locator("table.bind-offers tbody tr").first).to_contain_text("P-MUG")
    status, listing = await panel.admin.call("GET", f"/offers?account_id={account_id}")
    assert {o["id"]: o["product_id"] for o in listing["items"]} == {
        mug: "P-MUG",
        cup: None,
        bare: None,
    }
    announced = await bound_messages(panel.daemon)
    assert [(m["offer_id"], m["product_id"]) for m in announced] == [(mug, "P-MUG")]
