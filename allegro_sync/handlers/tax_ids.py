"""The buyer company's tax id, as Allegro gives it in 2026 (allegro-2026.md 2).

``invoice.address.company.ids[]`` (since 2024-06-27) carries typed ids; the spec's enum is
PL_NIP, CZ_ICO, CZ_DIC, HU_ADOSZAM, SK_ICO, SK_IC_DPH, VAT_EU and OTHER. The old ``taxId`` is
deprecated and may hold text such as "NIP: 123-456-78-90" (AA#11441): it is read only when
``ids[]`` has no usable entry, cleaned of such a prefix. Separators are dropped so one id is
stored one way; checksums are the ERP's to judge. Types outside the enum (a REGON, say) are
not tax ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The spec's enum, best first: VAT ids before company registration numbers (IČO), so a Czech
# company giving both is booked with its DIČ.
TAX_ID_TYPES: tuple[str, ...] = (
    "PL_NIP",
    "VAT_EU",
    "CZ_DIC",
    "SK_IC_DPH",
    "HU_ADOSZAM",
    "CZ_ICO",
    "SK_ICO",
    "OTHER",
)
_SEPARATORS = re.compile(r"[\s\-./]")
_PREFIX = re.compile(
    r"^\s*(?:NIP(?:\s*UE|\s*EU)?|VAT(?:\s*(?:ID|EU|UE|NO|NUMBER))?|TAX\s*ID|DI[ČC]|I[ČC]\s*DPH"
    r"|I[ČC]O|AD[ÓO]SZ[ÁA]M)\s*(?:[:#=]\s*|\s+|(?=\d))",
    re.IGNORECASE,
)
_PL_VAT = re.compile(r"^PL(\d{10})$")


@dataclass(frozen=True)
class TaxId:
    """One typed tax id: ``type`` from the spec's enum, ``value`` without separators."""

    type: str
    value: str

    def as_json(self) -> dict[str, str]:
        """``{"type", "value"}`` for the ``order.created`` customer card."""
        return {"type": self.type, "value": self.value}

    @property
    def nip(self) -> str:
        """The card's ``nip`` as before: a Polish NIP as 10 digits (also one given as the EU VAT
        id PL0123456789), any other id as its value."""
        match = _PL_VAT.match(self.value)
        if self.type in ("PL_NIP", "VAT_EU") and match:
            return match.group(1)
        return self.value


def clean(raw: str) -> str:
    """A tax id without a label ("NIP: ", "VAT ID ") and without separators, upper case."""
    return _SEPARATORS.sub("", _PREFIX.sub("", raw.strip())).upper()


def tax_id_of(company: Mapping[str, Any]) -> TaxId | None:
    """The company's tax id: the best typed entry of ``ids[]``, else the deprecated ``taxId``."""
    best: TaxId | None = None
    for item in company.get("ids") or ():
        if not isinstance(item, Mapping):
            continue
        kind = str(item.get("type") or "").strip().upper()
        value = clean(str(item.get("value") or ""))
        if kind not in TAX_ID_TYPES or not value:
            continue
        if best is None or TAX_ID_TYPES.index(kind) < TAX_ID_TYPES.index(best.type):
            best = TaxId(kind, value)
    if best is not None:
        return best
    raw = company.get("taxId")
    value = clean(str(raw)) if raw is not None else ""
    if not value:
        return None
    return TaxId(_guess_type(value), value)


def _guess_type(value: str) -> str:
    """The type of an untyped ``taxId``: ten digits are a NIP, a country prefix an EU VAT id."""
    if value.isdigit() and len(value) == 10:
        return "PL_NIP"
    if re.match(r"^[A-Z]{2}[0-9A-Z]{2,13}$", value) and any(c.isdigit() for c in value):
        return "VAT_EU"
    return "OTHER"
