"""The O2 recipient rule and the notification texts (pure functions)."""

from __future__ import annotations

import base64

import pytest

from allegro_sync.errors import BadInput
from allegro_sync.handlers.fulfillment import allegro_status
from allegro_sync.handlers.invoices import MAX_FILE_BYTES, decode_pdf
from allegro_sync.handlers.order_mails import Recipients, compose_mail, decide_recipients

BUYER = "wwgp215quo+77c5fa9f6@allegromail.pl"


def test_the_buyer_alone_is_mailed() -> None:
    assert decide_recipients(BUYER, [], []) == Recipients((BUYER,), ())


def test_allowed_extra_recipients_go_along_and_others_are_dropped() -> None:
    found = decide_recipients(
        BUYER, ["Biuro@Shop.pl", "obcy@example.com"], ["biuro@shop.pl", "magazyn@shop.pl"]
    )
    assert found == Recipients((BUYER, "Biuro@Shop.pl"), ("obcy@example.com",))


def test_duplicates_and_blanks_collapse() -> None:
    found = decide_recipients(BUYER, ["a@shop.pl", "A@shop.pl ", "", BUYER.upper()], ["a@shop.pl"])
    assert found == Recipients((BUYER, "a@shop.pl"), ())


@pytest.mark.parametrize("missing", [None, "", "  "])
def test_no_buyer_address_means_no_mail(missing: str | None) -> None:
    assert decide_recipients(missing, ["a@shop.pl"], ["a@shop.pl"]) == Recipients((), ())


def test_each_fact_has_its_own_key() -> None:
    form = "7c6e5e1e-0000-4000-8000-000000000001"
    keys = {
        compose_mail("ready", form_id=form, shop="s").dedupe_key,
        compose_mail("cancelled", form_id=form, shop="s").dedupe_key,
        compose_mail("fulfillment", form_id=form, shop="s", status="SENT").dedupe_key,
        compose_mail("fulfillment", form_id=form, shop="s", status="PROCESSING").dedupe_key,
        compose_mail("invoice", form_id=form, shop="s", invoice_number="FV/1").dedupe_key,
    }
    assert len(keys) == 5
    sent = compose_mail("fulfillment", form_id=form, shop="Sklep", status="SENT")
    assert "wysłane" in sent.subject and "sent" in sent.body and "Sklep" in sent.body


@pytest.mark.parametrize(
    ("erp", "allegro"),
    [("SENT", "SENT"), ("shipped", "SENT"), ("ready for shipment", "READY_FOR_SHIPMENT")],
)
def test_erp_statuses_map_to_allegro(erp: str, allegro: str) -> None:
    assert allegro_status(erp) == allegro


@pytest.mark.parametrize("erp", ["LOST", "RETURNED", "?"])
def test_other_statuses_are_bad_input(erp: str) -> None:
    with pytest.raises(BadInput):
        allegro_status(erp)


def test_invoice_files_are_checked_before_upload() -> None:
    pdf = b"%PDF-1.7\n%%EOF\n"
    assert decode_pdf(base64.b64encode(pdf).decode()) == pdf
    for bad in ("not base64!", "", base64.b64encode(b"hello").decode()):
        with pytest.raises(BadInput):
            decode_pdf(bad)
    with pytest.raises(BadInput, match="3 MB"):
        decode_pdf(base64.b64encode(pdf + b"0" * MAX_FILE_BYTES).decode())
