"""The customer export as XML, valid against ``customers.xsd`` (shipped next to this module).

Written as text rather than through a tree so that it streams. A value of None leaves its
element out; an empty string is an empty element. Text is escaped by hand for what a parser
would otherwise change: ``&<>`` always, and CR as ``&#13;`` because XML parsers turn a bare CR
into LF. Characters XML 1.0 cannot carry at all (control characters other than tab, LF and CR)
become U+FFFD: a well-formed file beats a faithful byte that no parser would read.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncGenerator, AsyncIterable, Mapping
from typing import Any

from allegro_sync.export.columns import CHUNK_SIZE, CUSTOMER_COLUMNS, customer_cells

CONTENT_TYPE = "application/xml; charset=utf-8"
NAMESPACE = "urn:allegro-sync:customers:1"
SCHEMA_FILE = "customers.xsd"

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<customers xmlns="{NAMESPACE}"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    f' xsi:schemaLocation="{NAMESPACE} {SCHEMA_FILE}">\n'
)
_FOOTER = "</customers>\n"


def xml_text(value: str) -> str:
    """``value`` as XML element content that parses back to the same string."""
    if _NOT_XML.search(value) is not None:
        value = _NOT_XML.sub("\ufffd", value)
    # Chained str.replace beats str.translate here: most values need no change at all.
    return (
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


def _customer(row: Mapping[str, Any]) -> str:
    parts = ["  <customer>\n"]
    for name, value in zip(CUSTOMER_COLUMNS, customer_cells(row), strict=True):
        if value is not None:
            parts.append(f"    <{name}>{xml_text(value)}</{name}>\n")
    parts.append("  </customer>\n")
    return "".join(parts)


async def customers_xml(
    rows: AsyncIterable[Mapping[str, Any]], *, chunk_size: int = CHUNK_SIZE
) -> AsyncGenerator[bytes, None]:
    """The XML document of ``rows``, in UTF-8 pieces of about ``chunk_size`` bytes."""
    buffer = io.StringIO()
    buffer.write(_HEADER)
    async for row in rows:
        buffer.write(_customer(row))
        if buffer.tell() >= chunk_size:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    buffer.write(_FOOTER)
    yield buffer.getvalue().encode("utf-8")
