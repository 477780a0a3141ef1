"""The customer export as CSV: RFC 4180 (CRLF, double quotes), UTF-8, a header row.

An empty field means no value; CSV cannot tell an empty string from none. No byte-order mark:
RFC 4180 readers and ERP imports take plain UTF-8.

Formula injection (OWASP "CSV Injection"): a cell starting with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return is a formula to a spreadsheet (``=HYPERLINK(...)`` in a buyer's name runs
when the file is opened). Such a cell gets a leading single quote, which spreadsheets read as
"this is text" and do not show; an ERP import sees the quote. The XML export needs none of this.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncGenerator, AsyncIterable, Mapping
from typing import Any

from allegro_sync.export.columns import CHUNK_SIZE, CUSTOMER_COLUMNS, customer_cells

CONTENT_TYPE = "text/csv; charset=utf-8"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str | None) -> str | None:
    """``value`` as a cell no spreadsheet takes for a formula."""
    if value is not None and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


async def customers_csv(
    rows: AsyncIterable[Mapping[str, Any]], *, chunk_size: int = CHUNK_SIZE
) -> AsyncGenerator[bytes, None]:
    """The CSV document of ``rows``, in UTF-8 pieces of about ``chunk_size`` bytes."""
    buffer = io.StringIO()
    # QUOTE_MINIMAL quotes exactly the fields RFC 4180 requires: with a comma, a quote, CR or LF.
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CUSTOMER_COLUMNS)
    async for row in rows:
        writer.writerow([neutralise(value) for value in customer_cells(row)])
        if buffer.tell() >= chunk_size:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")
