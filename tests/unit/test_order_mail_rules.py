"""The O2 recipient rule and the notification texts (pure functions)."""

from __future__ import annotations

import base64

import pytest

from allegro_sync.errors import BadInput
from allegro_sync.handlers.fulfillment import allegro_status
from allegro_sync.handlers.invoices import MAX_FILE_BYTES, decode_pdf
from allegro_sync.handlers.order_mails import (
    Recipients,
    Sender,
    choose_sender,
    compose_message,
    decide_recipients,
    masked_with_suffix,
)

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


def test_a_message_is_keyed_by_its_content() -> None:
    form = "7c6e5e1e-0000-4000-8000-000000000001"
    one = compose_message(form, "Opóźnienie", "Wyślemy jutro.", shop="Sklep")
    assert one == compose_message(form, "Opóźnienie", "Wyślemy jutro.", shop="Sklep")
    assert one.dedupe_key != compose_message(form, "Opóźnienie", "Pojutrze.", shop="S").dedupe_key
    assert form in one.subject and "Sklep" in one.body


@pytest.mark.parametrize(
    ("email", "deliverable"),
    [
        ("wwgp215quo+77c5fa9f6@allegromail.pl", True),
        ("abc+1f@user.allegrogroup.pl", True),
        ("wwgp215quo@allegromail.pl", False),  # Allegro needs the +<id> suffix
        ("wwgp215quo+@allegromail.pl", False),
        ("buyer@example.com", True),
        (None, False),
    ],
)
def test_a_masked_address_needs_its_suffix(email: str | None, deliverable: bool) -> None:
    assert masked_with_suffix(email) is deliverable


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


def test_the_mail_comes_from_the_account_or_an_address_allegro_allows() -> None:
    allowed = ["Biuro@Shop.pl"]
    assert choose_sender(None, "shop@example.com", allowed) == Sender("shop@example.com")
    assert choose_sender("biuro@shop.pl", "shop@example.com", allowed) == Sender("Biuro@Shop.pl")
    assert choose_sender("SHOP@example.com", "shop@example.com", []) == Sender("shop@example.com")
    # the account's address unknown: MAIL_FROM (None)
    assert choose_sender(None, None, allowed) == Sender(None)
    refused = choose_sender("obcy@example.com", "shop@example.com", allowed)
    assert refused.address is None and refused.refused is not None
    assert "obcy@example.com" in refused.refused
