"""The customer export's columns, in one place for CSV, XML and its schema.

Values become text here, once: ``None`` stays ``None`` (an empty CSV field, an absent XML
element), booleans are ``true``/``false`` and timestamps ISO 8601 with their UTC offset, which
both spreadsheet imports and ``xs:dateTime`` accept.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

CUSTOMER_COLUMNS: tuple[str, ...] = (
    "id",
    "account_id",
    "allegro_buyer_id",
    "email",
    "first_name",
    "last_name",
    "company",
    "nip",
    "country_code",
    "type",
    "street",
    "city",
    "zip_code",
    "active",
    "created_at",
    "updated_at",
)

# Buffered output is handed on in pieces of about this size: few writes, flat memory.
CHUNK_SIZE = 64 * 1024


def cell(value: Any) -> str | None:
    """One value as export text; None for no value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def customer_cells(row: Mapping[str, Any]) -> list[str | None]:
    """The row's values in ``CUSTOMER_COLUMNS`` order, as text."""
    return [cell(row[name]) for name in CUSTOMER_COLUMNS]
