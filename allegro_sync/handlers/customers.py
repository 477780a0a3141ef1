"""Customer cards (design.md C1-C4): who the ERP is told bought an order.

Pure decisions first (the card built from a checkout form, whether to send it, the customer
type), then the one effect: storing the card. An order is announced with ``customer: null`` (the
ERP's anonymous customer) unless the account sends customer cards; with "only customers with a
NIP" on, only buyers who gave a tax id get one. A card is always stored inactive and keeps
Allegro's masked e-mail as it is: the ERP must not mistake it for the buyer's real address.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import asyncpg

from allegro_sync.contract import CustomerType
from allegro_sync.errors import BadInput
from allegro_sync.handlers.tax_ids import TaxId, tax_id_of

DOMESTIC_COUNTRY = "PL"


def _load_member_states() -> frozenset[str]:
    # The member list is data (it changes by treaty, not by code review): one ISO code a line.
    text = (resources.files("allegro_sync.handlers") / "data" / "eu_member_states.txt").read_text(
        "utf-8"
    )
    codes = (line.strip().upper() for line in text.splitlines())
    return frozenset(code for code in codes if code and not code.startswith("#"))


EU_MEMBER_STATES: frozenset[str] = _load_member_states()


def customer_type(country_code: str | None) -> CustomerType:
    """``domestic`` for PL, ``intra_eu`` for another EU member state, ``extra_eu`` otherwise.

    Codes are compared case-insensitively. A missing or blank code counts as domestic: Allegro
    leaves it out only for Polish addresses in practice, and domestic is the safe VAT treatment
    (a wrong extra_eu would zero-rate a sale that owes Polish VAT). Any other code that is not
    an EU member, known to ISO or not, is extra_eu.
    """
    code = (country_code or "").strip().upper()
    if not code or code == DOMESTIC_COUNTRY:
        return "domestic"
    if code in EU_MEMBER_STATES:
        return "intra_eu"
    return "extra_eu"


@dataclass(frozen=True)
class CustomerCard:
    """A customer record made from an order's buyer data; the ERP gets it inactive."""

    allegro_buyer_id: str
    email: str
    first_name: str | None
    last_name: str | None
    company: str | None
    nip: str | None
    country_code: str | None
    type: CustomerType
    address: Mapping[str, str | None] = field(default_factory=dict)
    active: bool = False
    tax_id: TaxId | None = None


def _text(value: Any) -> str | None:
    """A stripped string, or None for missing and blank values."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def card_from_checkout_form(form: Mapping[str, Any]) -> CustomerCard:
    """The customer card of a checkout form (``GET /order/checkout-forms/{id}``).

    Rule: when the buyer asked for an invoice (``invoice.address`` present), the card is the
    invoice party: its address, its company and NIP, and the natural person's name when the
    invoice is private. Otherwise the buyer's own data: ``buyer.address``, ``companyName``, no
    NIP (Allegro gives a tax id only on invoice data). The delivery address is used only when
    the buyer has no address of their own: it may be a gift recipient's. The e-mail is kept
    exactly as Allegro masks it. Raises ``BadInput`` when the form names no buyer id.
    """
    buyer = _mapping(form.get("buyer"))
    buyer_id = _text(buyer.get("id"))
    if buyer_id is None:
        raise BadInput("checkout form has no buyer.id")
    invoice_address = _mapping(_mapping(form.get("invoice")).get("address"))
    first_name, last_name = _text(buyer.get("firstName")), _text(buyer.get("lastName"))
    if invoice_address:
        company_data = _mapping(invoice_address.get("company"))
        person = _mapping(invoice_address.get("naturalPerson"))
        if person:
            first_name = _text(person.get("firstName")) or first_name
            last_name = _text(person.get("lastName")) or last_name
        company = _text(company_data.get("name")) if company_data else None
        tax_id = tax_id_of(company_data) if company_data else None
        nip = tax_id.nip if tax_id else None
        address = _address(invoice_address, zip_key="zipCode")
    else:
        company = _text(buyer.get("companyName"))
        nip = None
        tax_id = None
        own = _mapping(buyer.get("address"))
        if any(_text(v) for v in own.values()):
            address = _address(own, zip_key="postCode")
        else:
            delivery = _mapping(_mapping(form.get("delivery")).get("address"))
            address = _address(delivery, zip_key="zipCode")
    country = address["country_code"]
    return CustomerCard(
        allegro_buyer_id=buyer_id,
        email=str(buyer.get("email") or ""),
        first_name=first_name,
        last_name=last_name,
        company=company,
        nip=nip,
        country_code=country,
        type=customer_type(country),
        address=address,
        tax_id=tax_id,
    )


def _address(source: Mapping[str, Any], *, zip_key: str) -> dict[str, str | None]:
    # Allegro names the postal code postCode on the buyer and zipCode elsewhere.
    country = _text(source.get("countryCode"))
    return {
        "street": _text(source.get("street")),
        "city": _text(source.get("city")),
        "zip_code": _text(source.get(zip_key)),
        "country_code": country.upper() if country else None,
    }


def decide_customer(
    card: CustomerCard, *, send_customer_card: bool, only_customers_with_nip: bool
) -> CustomerCard | None:
    """The card to send with the order, or None for the anonymous customer (C1-C3).

    "Only customers with a NIP" narrows "send customer card"; on its own it sends nothing.
    """
    if not send_customer_card:
        return None
    if only_customers_with_nip and not card.nip:
        return None
    return card


def card_payload(card: CustomerCard) -> dict[str, Any]:
    """The ``customer`` object of the ``order.created`` message (design.md section 4)."""
    return {
        "email": card.email,
        "first_name": card.first_name,
        "last_name": card.last_name,
        "company": card.company,
        "nip": card.nip,
        "country_code": card.country_code,
        "type": card.type,
        "address": dict(card.address),
        "active": False,
        # additive (2026): the typed id; ``nip`` keeps a Polish NIP as digits
        "tax_id": card.tax_id.as_json() if card.tax_id else None,
    }


async def upsert_customer(conn: asyncpg.Connection, account_id: int, card: CustomerCard) -> int:
    """Store the card per (account, Allegro buyer); the id of the customer row.

    A later order refreshes the data (the masked e-mail changes per transaction, the address may
    too). ``active`` is written only on insert: the daemon never activates a customer, and an
    activation made elsewhere is not the buyer data's to undo.
    """
    customer_id: int = await conn.fetchval(
        """
        INSERT INTO customers (account_id, allegro_buyer_id, email, first_name, last_name,
                               company, nip, country_code, type, address, active)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, false)
        ON CONFLICT (account_id, allegro_buyer_id) DO UPDATE
           SET email = EXCLUDED.email, first_name = EXCLUDED.first_name,
               last_name = EXCLUDED.last_name, company = EXCLUDED.company, nip = EXCLUDED.nip,
               country_code = EXCLUDED.country_code, type = EXCLUDED.type,
               address = EXCLUDED.address, updated_at = now()
        RETURNING id
        """,
        account_id,
        card.allegro_buyer_id,
        card.email,
        card.first_name,
        card.last_name,
        card.company,
        card.nip,
        card.country_code,
        card.type,
        dict(card.address),
    )
    return customer_id
