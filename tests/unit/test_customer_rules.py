"""Customer cards (design.md C1-C4): who gets one, what it holds, which type it is."""

from __future__ import annotations

from typing import Any

import pytest

from allegro_sync.errors import BadInput
from allegro_sync.handlers.customers import (
    EU_MEMBER_STATES,
    CustomerCard,
    card_from_checkout_form,
    card_payload,
    customer_type,
    decide_customer,
)

MASKED = "wwgp215quo+77c5fa9f6@allegromail.pl"


def form(
    *,
    country: str = "PL",
    company: str | None = None,
    nip: str | None = None,
    invoice: bool = False,
    ids: list[dict[str, str]] | None = None,
    id_type: str = "PL_NIP",
) -> dict[str, Any]:
    """A checkout form as ``GET /order/checkout-forms/{id}`` gives it (allegro-api.md 6.2)."""
    company_data = None
    if company is not None:
        company_data = {
            "name": company,
            "ids": ids if ids is not None else ([{"type": id_type, "value": nip}] if nip else []),
            "vatPayerStatus": "ACTIVE" if nip else "NOT_APPLICABLE",
            "taxId": nip,
        }
    return {
        "id": "29738e61-7f6a-11e8-ac45-09db60ede9d6",
        "buyer": {
            "id": "B-1001",
            "email": MASKED,
            "login": "anna_1001",
            "firstName": "Anna",
            "lastName": "Wiśniewska",
            "companyName": company,
            "guest": False,
            "phoneNumber": "+48 600100200",
            "address": {
                "street": "Grunwaldzka 182",
                "city": "Poznań",
                "postCode": "60-166",
                "countryCode": country,
            },
        },
        "delivery": {
            "address": {
                "firstName": "Jan",
                "lastName": "Prezent",
                "street": "Inna 1",
                "city": "Gdańsk",
                "zipCode": "80-001",
                "countryCode": "PL",
            }
        },
        "invoice": (
            {
                "required": True,
                "address": {
                    "street": "Fakturowa 5",
                    "city": "Kraków" if country == "PL" else "Elsewhere",
                    "zipCode": "30-001",
                    "countryCode": country,
                    "company": company_data,
                    "naturalPerson": (
                        None if company_data else {"firstName": "Anna", "lastName": "Faktura"}
                    ),
                },
                "dueDate": None,
            }
            if invoice
            else {"required": False, "address": None, "dueDate": None}
        ),
    }


# --- C4: type from the country --------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("PL", "domestic"),
        ("pl", "domestic"),
        (" Pl ", "domestic"),
        ("DE", "intra_eu"),
        ("de", "intra_eu"),
        ("CZ", "intra_eu"),
        ("SK", "intra_eu"),
        ("GR", "intra_eu"),
        ("US", "extra_eu"),
        ("us", "extra_eu"),
        ("UA", "extra_eu"),
        ("GB", "extra_eu"),  # left the EU in 2020
        ("NO", "extra_eu"),  # EEA, not EU
        ("CH", "extra_eu"),
        ("XX", "extra_eu"),  # unknown code: not an EU member
        (None, "domestic"),  # no country: treated as a Polish address
        ("", "domestic"),
        ("  ", "domestic"),
    ],
)
def test_customer_type_follows_the_country(code: str | None, expected: str) -> None:
    assert customer_type(code) == expected


def test_member_list_is_the_27_states_from_the_data_file() -> None:
    assert len(EU_MEMBER_STATES) == 27
    assert {"PL", "DE", "FR", "HR", "IE", "CY", "MT"} <= EU_MEMBER_STATES
    assert "GB" not in EU_MEMBER_STATES
    assert all(len(code) == 2 and code.isupper() for code in EU_MEMBER_STATES)


# --- the card built from a checkout form ----------------------------------------------------


def test_private_pl_buyer_without_invoice_gets_the_buyer_data_and_no_nip() -> None:
    card = card_from_checkout_form(form())
    assert card == CustomerCard(
        allegro_buyer_id="B-1001",
        email=MASKED,
        first_name="Anna",
        last_name="Wiśniewska",
        company=None,
        nip=None,
        country_code="PL",
        type="domestic",
        address={
            "street": "Grunwaldzka 182",
            "city": "Poznań",
            "zip_code": "60-166",
            "country_code": "PL",
        },
        active=False,
    )


def test_masked_email_is_kept_exactly() -> None:
    assert card_from_checkout_form(form()).email == MASKED


def test_company_with_nip_on_invoice_takes_the_invoice_address_company_and_nip() -> None:
    card = card_from_checkout_form(
        form(company="Hurtownia Max Sp. z o.o.", nip="7791011327", invoice=True)
    )
    assert card.company == "Hurtownia Max Sp. z o.o."
    assert card.nip == "7791011327"
    assert card.first_name == "Anna" and card.last_name == "Wiśniewska"
    assert card.address == {
        "street": "Fakturowa 5",
        "city": "Kraków",
        "zip_code": "30-001",
        "country_code": "PL",
    }
    assert card.type == "domestic"


def test_nip_with_separators_is_stored_as_digits() -> None:
    card = card_from_checkout_form(form(company="ABC s.c.", nip="779-101-13-27", invoice=True))
    assert card.nip == "7791011327"


def test_nip_from_ids_when_tax_id_is_missing() -> None:
    f = form(company="ABC s.c.", invoice=True, ids=[{"type": "PL_NIP", "value": "5260250274"}])
    assert card_from_checkout_form(f).nip == "5260250274"


def test_regon_is_not_a_nip() -> None:
    f = form(company="ABC s.c.", invoice=True, ids=[{"type": "PL_REGON", "value": "012345678"}])
    assert card_from_checkout_form(f).nip is None


def test_company_without_nip_on_invoice_has_company_but_no_nip() -> None:
    card = card_from_checkout_form(form(company="ABC s.c.", invoice=True))
    assert card.company == "ABC s.c."
    assert card.nip is None


def test_private_invoice_takes_the_natural_person_name() -> None:
    card = card_from_checkout_form(form(invoice=True))
    assert (card.first_name, card.last_name) == ("Anna", "Faktura")
    assert card.company is None and card.nip is None
    assert card.address["street"] == "Fakturowa 5"


def test_company_name_without_invoice_comes_from_the_buyer_and_has_no_nip() -> None:
    card = card_from_checkout_form(form(company="ABC s.c."))
    assert card.company == "ABC s.c."
    assert card.nip is None
    assert card.address["street"] == "Grunwaldzka 182"


def test_german_company_is_intra_eu_with_its_vat_id() -> None:
    card = card_from_checkout_form(
        form(
            country="DE",
            company="Berliner Handel GmbH",
            nip="DE 123 456 789",
            invoice=True,
            id_type="VAT_EU",
        )
    )
    assert card.type == "intra_eu"
    assert card.country_code == "DE"
    assert card.nip == "DE123456789"


def test_us_buyer_is_extra_eu() -> None:
    card = card_from_checkout_form(form(country="us"))
    assert card.type == "extra_eu"
    assert card.country_code == "US"


def test_buyer_without_address_falls_back_to_delivery() -> None:
    f = form()
    f["buyer"]["address"] = None
    card = card_from_checkout_form(f)
    assert card.address["city"] == "Gdańsk"
    assert card.type == "domestic"


def test_form_without_buyer_id_is_bad_input() -> None:
    f = form()
    del f["buyer"]["id"]
    with pytest.raises(BadInput):
        card_from_checkout_form(f)


# --- C1-C3: whether a card is sent ---------------------------------------------------------

WITH_NIP = card_from_checkout_form(form(company="ABC s.c.", nip="7791011327", invoice=True))
WITHOUT_NIP = card_from_checkout_form(form())


@pytest.mark.parametrize(
    ("send", "only_nip", "card", "sent"),
    [
        (False, False, WITHOUT_NIP, False),  # C1: anonymous by default
        (False, False, WITH_NIP, False),
        (False, True, WITHOUT_NIP, False),  # "only with NIP" alone sends nothing
        (False, True, WITH_NIP, False),
        (True, False, WITHOUT_NIP, True),  # C2: every buyer, NIP or not
        (True, False, WITH_NIP, True),
        (True, True, WITHOUT_NIP, False),  # C3: only buyers who gave a NIP
        (True, True, WITH_NIP, True),
    ],
)
def test_decide_customer(send: bool, only_nip: bool, card: CustomerCard, sent: bool) -> None:
    decided = decide_customer(card, send_customer_card=send, only_customers_with_nip=only_nip)
    assert decided == (card if sent else None)


def test_payload_is_the_order_created_customer_object_and_inactive() -> None:
    payload = card_payload(WITH_NIP)
    assert payload == {
        "email": MASKED,
        "first_name": "Anna",
        "last_name": "Wiśniewska",
        "company": "ABC s.c.",
        "nip": "7791011327",
        "country_code": "PL",
        "type": "domestic",
        "address": {
            "street": "Fakturowa 5",
            "city": "Kraków",
            "zip_code": "30-001",
            "country_code": "PL",
        },
        "active": False,
        "tax_id": {"type": "PL_NIP", "value": "7791011327"},
    }


# --- typed tax ids (2026: company.ids[] first, the deprecated taxId only as a fallback) ----


@pytest.mark.parametrize(
    ("country", "kind", "given", "value", "nip"),
    [
        ("PL", "PL_NIP", "779-101-13-27", "7791011327", "7791011327"),
        ("DE", "VAT_EU", "DE 123 456 789", "DE123456789", "DE123456789"),
        ("PL", "VAT_EU", "PL7791011327", "PL7791011327", "7791011327"),
        ("CZ", "CZ_DIC", "CZ12345678", "CZ12345678", "CZ12345678"),
        ("CZ", "CZ_ICO", "12345678", "12345678", "12345678"),
        ("SK", "SK_IC_DPH", "SK2020123456", "SK2020123456", "SK2020123456"),
        ("SK", "SK_ICO", "12345678", "12345678", "12345678"),
        ("HU", "HU_ADOSZAM", "12345678-1-42", "12345678142", "12345678142"),
        ("UA", "OTHER", "1234567890123", "1234567890123", "1234567890123"),
    ],
)
def test_each_tax_id_type_of_the_spec_keeps_its_type(
    country: str, kind: str, given: str, value: str, nip: str
) -> None:
    f = form(country=country, company="Firma", invoice=True, ids=[{"type": kind, "value": given}])
    f["invoice"]["address"]["company"]["taxId"] = None
    card = card_from_checkout_form(f)
    assert card.tax_id is not None
    assert card_payload(card)["tax_id"] == {"type": kind, "value": value}
    assert card.nip == nip


def test_ids_win_over_the_deprecated_tax_id_and_vat_ids_over_registration_numbers() -> None:
    ids = [{"type": "CZ_ICO", "value": "12345678"}, {"type": "CZ_DIC", "value": "CZ12345678"}]
    f = form(country="CZ", company="Firma s.r.o.", invoice=True, ids=ids)
    f["invoice"]["address"]["company"]["taxId"] = "stale 999"
    assert card_payload(card_from_checkout_form(f))["tax_id"] == {
        "type": "CZ_DIC",
        "value": "CZ12345678",
    }


@pytest.mark.parametrize(
    ("tax_id", "expected"),
    [
        ("NIP: 779-101-13-27", {"type": "PL_NIP", "value": "7791011327"}),
        ("nip 7791011327", {"type": "PL_NIP", "value": "7791011327"}),
        ("NIP7791011327", {"type": "PL_NIP", "value": "7791011327"}),
        ("VAT ID: DE123456789", {"type": "VAT_EU", "value": "DE123456789"}),
        ("PL 779 101 13 27", {"type": "VAT_EU", "value": "PL7791011327"}),
    ],
)
def test_the_deprecated_tax_id_is_a_fallback_cleaned_of_its_label(
    tax_id: str, expected: dict[str, str]
) -> None:
    f = form(company="ABC s.c.", invoice=True, ids=[])
    f["invoice"]["address"]["company"]["taxId"] = tax_id
    card = card_from_checkout_form(f)
    assert card_payload(card)["tax_id"] == expected
    assert card.nip == "7791011327" if "779" in tax_id else card.nip == expected["value"]


def test_an_id_type_outside_the_spec_is_no_tax_id() -> None:
    f = form(company="ABC s.c.", invoice=True, ids=[{"type": "PL_REGON", "value": "012345678"}])
    card = card_from_checkout_form(f)
    assert card.tax_id is None and card_payload(card)["tax_id"] is None
