"""Buyer profiles: Polish, other-EU and non-EU buyers, with or without a company and NIP."""

from __future__ import annotations

from typing import Any

from .ids import IdFactory
from .models import Buyer

FIRST_NAMES = ("Anna", "Piotr", "Katarzyna", "Tomasz", "Magdalena", "Jan", "Ewa", "Marek")
LAST_NAMES = ("Nowak", "Kowalska", "Wiśniewski", "Wójcik", "Kamińska", "Lewandowski")
ADDRESSES: dict[str, tuple[str, str, str]] = {
    "PL": ("Grunwaldzka 182", "Poznań", "60-166"),
    "CZ": ("Václavské náměstí 1", "Praha", "110 00"),
    "DE": ("Friedrichstraße 43", "Berlin", "10117"),
    "SK": ("Hlavná 12", "Košice", "040 01"),
    "UA": ("Khreshchatyk 22", "Kyiv", "01001"),
    "GB": ("10 Baker Street", "London", "NW1 6XE"),
}
COMPANIES = ("Hurtownia Max Sp. z o.o.", "ABC Serwis s.c.", "Technika PL S.A.")


def make_buyer(ids: IdFactory, profile: dict[str, Any]) -> Buyer:
    """A buyer from a (partial) profile; missing fields come from the seeded generator.

    Profile keys: login, first_name, last_name, company, nip, invoice, country, guest,
    pickup_point, language, vat_payer_status (ACTIVE, NON_ACTIVE, NOT_APPLICABLE), tax_ids
    (``[{type, value}]``, the spec's company.ids[]) and tax_id_text (the deprecated free-text
    ``taxId``, e.g. "NIP: 521-300-37-00").
    """
    rng = ids.rng
    company = profile.get("company")
    nip = profile.get("nip")
    tax_ids = [
        {"type": str(t["type"]), "value": str(t["value"])} for t in profile.get("tax_ids") or []
    ]
    if company is None and (nip or tax_ids):
        company = rng.choice(COMPANIES)
    typed = tax_ids or profile.get("tax_id_text") is not None
    if nip is None and not typed and company is not None and profile.get("country", "PL") == "PL":
        nip = "".join(rng.choice("0123456789") for _ in range(10))
    country = str(profile.get("country", "PL")).upper()
    street, city, zip_code = ADDRESSES.get(country, ("Main Street 1", "Springfield", "12345"))
    user_id = ids.user_id()
    first = str(profile.get("first_name") or rng.choice(FIRST_NAMES))
    last = str(profile.get("last_name") or rng.choice(LAST_NAMES))
    return Buyer(
        id=user_id,
        login=str(profile.get("login") or f"{first.lower()}_{user_id[-4:]}"),
        email="",  # set per transaction by sales.masked_email
        first_name=first,
        last_name=last,
        company_name=company,
        nip=nip,
        invoice_required=bool(profile.get("invoice", company is not None)),
        guest=bool(profile.get("guest", False)),
        phone="+48 " + "".join(rng.choice("0123456789") for _ in range(9)),
        street=street,
        city=city,
        zip_code=zip_code,
        country_code=country,
        pickup_point=bool(profile.get("pickup_point", False)),
        language=str(profile.get("language", "pl-PL")),
        tax_ids=tax_ids,
        tax_id_text=profile.get("tax_id_text"),
        vat_payer_status=profile.get("vat_payer_status"),
    )


def random_profile(ids: IdFactory) -> dict[str, Any]:
    """A plausible mix for the demo: mostly PL private buyers, some companies and foreigners."""
    rng = ids.rng
    roll = rng.random()
    country = "PL" if roll < 0.75 else rng.choice(("CZ", "DE", "SK", "UA", "GB"))
    profile: dict[str, Any] = {"country": country}
    if rng.random() < 0.25:
        profile["company"] = rng.choice(COMPANIES)
        profile["invoice"] = True
    elif rng.random() < 0.1:
        profile["invoice"] = True
    profile["pickup_point"] = rng.random() < 0.3
    return profile
