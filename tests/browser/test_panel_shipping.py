"""The "Wysyłam z Allegro" settings in a real browser: the sender on labels (``shipping_sender``)
and the default package (``default_package``) set, refused next to their fields with the
API's words, and cleared; what is saved is what the admin API shows and what a parcel sends."""

from __future__ import annotations

import asyncpg
from playwright.async_api import expect

from tests.browser.conftest import Panel
from tests.e2e.conftest import Emulator
from tests.e2e.flows import Erp, _buy, _handled, _send


async def test_sender_and_default_package_from_the_panel(
    panel: Panel, emulator: Emulator, db: asyncpg.Pool
) -> None:
    page = panel.page
    await panel.sign_in()
    shop = await emulator.seller("sklep-wysylka")
    account_id = await panel.connect(emulator, shop, sandbox=False)
    await panel.goto(f"accounts/{account_id}")
    shipping = page.locator("section[aria-labelledby=h-shipping]")
    await expect(shipping.get_by_role("heading", name="Wysyłam z Allegro")).to_be_visible()
    await expect(shipping.get_by_label("Kraj (kod)")).to_have_value("PL")

    # a sender with neither a name nor a company: refused, with the API's words
    sender_form = shipping.locator("form[action$='/sender']")
    await sender_form.get_by_label("Ulica").fill("Prosta 1")
    await sender_form.get_by_label("Kod pocztowy").fill("00-001")
    await sender_form.get_by_label("Miejscowość").fill("Warszawa")
    await sender_form.get_by_label("Telefon").fill("+48 500 600 700")
    await sender_form.get_by_label("E-mail").fill("wysylka@sklep.example")
    await sender_form.get_by_role("button", name="Zapisz nadawcę").click()
    await expect(page.locator("#shipping_sender-error")).to_contain_text("name or a company")
    # what was typed stays in the form
    sender_form = page.locator("section[aria-labelledby=h-shipping] form[action$='/sender']")
    await expect(sender_form.get_by_label("Ulica")).to_have_value("Prosta 1")
    # a phone Allegro would not take: next to its field
    await sender_form.get_by_label("Imię i nazwisko").fill("Jan Nadawca")
    await sender_form.get_by_label("Telefon").fill("dzwoń")
    await sender_form.get_by_role("button", name="Zapisz nadawcę").click()
    phone = page.get_by_label("Telefon")
    await expect(phone).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#shipping_sender-phone-error")).to_contain_text("pattern")
    status, account = await panel.admin.call("GET", f"/accounts/{account_id}")
    assert account["shipping_sender"] is None

    await phone.fill("+48 500 600 700")
    await page.get_by_role("button", name="Zapisz nadawcę").click()
    await expect(page.get_by_role("status")).to_have_text("Zapisano.")
    status, account = await panel.admin.call("GET", f"/accounts/{account_id}")
    assert account["shipping_sender"] == {
        "name": "Jan Nadawca",
        "company": None,
        "street": "Prosta 1",
        "postal_code": "00-001",
        "city": "Warszawa",
        "country_code": "PL",
        "phone": "+48 500 600 700",
        "email": "wysylka@sklep.example",
    }
    await expect(page.get_by_label("Imię i nazwisko")).to_have_value("Jan Nadawca")

    # the default package: a size that is no number, then a good one (decimal comma too)
    package = page.locator("form[action$='/package']")
    await package.get_by_label("Rodzaj").select_option("PACKAGE")
    await package.get_by_label("Długość (cm)").fill("trzydzieści")
    await package.get_by_label("Szerokość (cm)").fill("20")
    await package.get_by_label("Wysokość (cm)").fill("10")
    await package.get_by_label("Waga (kg)").fill("2,5")
    await package.get_by_role("button", name="Zapisz paczkę").click()
    await expect(page.locator("#default_package-length-error")).to_be_visible()
    await expect(page.get_by_label("Waga (kg)")).to_have_value("2,5")
    package = page.locator("form[action$='/package']")
    await package.get_by_label("Długość (cm)").fill("30")
    await package.get_by_role("button", name="Zapisz paczkę").click()
    await expect(page.get_by_role("status")).to_have_text("Zapisano.")
    status, account = await panel.admin.call("GET", f"/accounts/{account_id}")
    assert account["default_package"] == {
        "type": "PACKAGE",
        "length": 30,
        "width": 20,
        "height": 10,
        "weight": 2.5,
    }
    await panel.screenshot("account-shipping")

    # a parcel requested with no packages goes with the sender and package set here
    await panel.admin.call("PATCH", f"/accounts/{account_id}", {"auto_create_orders": True})
    offer = await emulator.control(
        "POST", f"/sellers/{shop['id']}/offers", {"name": "Kubek", "stock": 5, "price": "9.99"}
    )
    form_id = await _buy(emulator, str(offer["id"]))
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    erp = Erp(panel.daemon.settings.amqp_url)
    await _send(
        panel.daemon.settings.amqp_url,
        "shipment.requested",
        {"checkout_form_id": form_id},
        "panel-parcel",
    )
    await erp.wait_for("shipment.created", timeout=30)
    [parcel] = (await emulator.control("GET", "/parcels"))["parcels"]
    request = await db.fetchval("SELECT request FROM parcels")
    assert request["sender"]["name"] == "Jan Nadawca" and request["sender"]["city"] == "Warszawa"
    assert request["packages"][0]["weight"] == {"value": 2.5, "unit": "KILOGRAMS"}
    assert parcel["command_id"]

    # every size emptied: no default package any more
    await panel.goto(f"accounts/{account_id}")
    package = page.locator("form[action$='/package']")
    for label in ("Długość (cm)", "Szerokość (cm)", "Wysokość (cm)", "Waga (kg)"):
        await package.get_by_label(label).fill("")
    await package.get_by_role("button", name="Zapisz paczkę").click()
    await expect(page.get_by_role("status")).to_have_text("Zapisano.")
    status, account = await panel.admin.call("GET", f"/accounts/{account_id}")
    assert status == 200
    assert account["default_package"] is None and account["shipping_sender"] is not None
