"""``GET /customers`` and ``GET /customers/export`` (design.md C5).

The list pages by keyset: ``next`` is an opaque cursor to pass back as ``cursor``. The export
streams the selected customers (``ids=``, the list filters, or all) straight from a server-side
cursor to the client, so memory stays flat for a million customers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from allegro_sync.adapters.postgres.customer_queries import (
    CustomerFilter,
    iter_export_rows,
    list_customers,
)
from allegro_sync.adapters.postgres.pool import limit_transaction
from allegro_sync.daemon.api.errors import ApiError, error_response
from allegro_sync.export.filters import FILTER_FIELDS, FilterError, parse_customer_filter
from allegro_sync.export.formats import EXPORT_FORMATS, ExportFormat

log = structlog.get_logger(__name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "validation_error", f"{field}: {message}", field=field)


def _filter(query: Mapping[str, str]) -> CustomerFilter:
    try:
        return parse_customer_filter({k: query[k] for k in FILTER_FIELDS if k in query})
    except FilterError as exc:
        raise _invalid(exc.field, exc.message) from None


def _limit(query: Mapping[str, str]) -> int:
    text = query.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    try:
        if not text.isascii():
            raise ValueError(text)
        limit = int(text)
    except ValueError:
        raise _invalid("limit", f"expected a whole number, got {text!r}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise _invalid("limit", f"expected 1 to {MAX_LIMIT}, got {limit}")
    return limit


def _cursor(query: Mapping[str, str]) -> int | None:
    text = query.get("cursor")
    if text is None or text == "":
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > 2**63 - 1:
        raise _invalid("cursor", "not a cursor this list gave; start again without it")
    return int(text)


def _export_format(query: Mapping[str, str]) -> ExportFormat:
    name = query.get("format", "csv")
    found = EXPORT_FORMATS.get(name)
    if found is None:
        raise _invalid("format", f"expected one of {', '.join(EXPORT_FORMATS)}, got {name!r}")
    return found


def customer_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A customer as the API shows it."""
    item = dict(row)
    for key, value in item.items():
        if isinstance(value, datetime):
            item[key] = value.isoformat()
    return item


def add_customer_routes(
    app: web.Application, pool: asyncpg.Pool, gate: ExportGate | None = None
) -> None:
    """Add the customer list and its export (at most ``gate.limit`` at once) to ``app``."""
    exports = gate if gate is not None else ExportGate()

    async def list_view(request: web.Request) -> web.Response:
        query = request.query
        selection, limit, after_id = _filter(query), _limit(query), _cursor(query)
        async with pool.acquire() as conn:
            rows, next_id = await list_customers(conn, selection, limit=limit, after_id=after_id)
        return web.json_response(
            {
                "items": [customer_json(row) for row in rows],
                "next": str(next_id) if next_id is not None else None,
            }
        )

    async def export_view(request: web.Request) -> web.StreamResponse:
        # Judge every parameter before the first byte: after it, a JSON error is impossible.
        selection, fmt = _filter(request.query), _export_format(request.query)
        return await stream_export(request, pool, selection, fmt, exports)

    app.router.add_get("/customers", list_view)
    app.router.add_get("/customers/export", export_view)


@dataclass
class ExportGate:
    """How many customer exports run at once, and how long one may wait for its client.

    Each export holds a pool connection inside a transaction for as long as it streams: a
    client that stops reading would hold it for ever. ``stall_timeout`` cuts an export whose
    client takes no data for that long; PostgreSQL's own idle-in-transaction timeout, a little
    longer, is the backstop. The export after ``limit`` gets 429 with ``Retry-After``.
    """

    limit: int = 2
    statement_timeout: float = 600.0
    stall_timeout: float = 60.0
    retry_after: int = 10
    active: int = 0

    def busy(self) -> web.Response:
        """The answer while ``limit`` exports run."""
        response = error_response(
            429,
            "too_many_exports",
            f"{self.limit} exports are running; try again in {self.retry_after} seconds",
        )
        response.headers["Retry-After"] = str(self.retry_after)
        return response


async def stream_export(
    request: web.Request,
    pool: asyncpg.Pool,
    selection: CustomerFilter,
    fmt: ExportFormat,
    gate: ExportGate,
) -> web.StreamResponse:
    """Stream the customers of ``selection`` as ``fmt`` from one read-only transaction (flat
    memory), within ``gate``; the admin API and the panel both answer with it."""
    if gate.active >= gate.limit:
        log.info("customer_export_refused", running=gate.active)
        return gate.busy()
    gate.active += 1
    try:
        return await _stream(request, pool, selection, fmt, gate)
    finally:
        gate.active -= 1


async def _stream(
    request: web.Request,
    pool: asyncpg.Pool,
    selection: CustomerFilter,
    fmt: ExportFormat,
    gate: ExportGate,
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": fmt.content_type,
            "Content-Disposition": f"attachment; filename={fmt.filename}",
            "Cache-Control": "no-store",
        }
    )
    response.enable_chunked_encoding()
    async with pool.acquire() as conn:
        try:
            async with conn.transaction(readonly=True):
                # a big export may take longer than the pool's statement timeout allows
                await limit_transaction(
                    conn,
                    statement_timeout=gate.statement_timeout,
                    idle_in_transaction_timeout=gate.stall_timeout + 10,
                )
                await response.prepare(request)
                async with aclosing(fmt.encode(iter_export_rows(conn, selection))) as chunks:
                    async for chunk in chunks:
                        await asyncio.wait_for(response.write(chunk), gate.stall_timeout)
        except ConnectionError:
            # The client went away; the transaction and connection unwind on their own.
            log.info("customer_export_aborted", reason="client_disconnected")
            return response
        except TimeoutError:
            log.warning("customer_export_cut", reason="client_stopped_reading")
            _cut(request)
            return response
        except Exception:
            if not response.prepared:
                raise  # no byte out yet: the JSON error still can be sent
            # Headers are out: no JSON error can follow. Cutting the connection before the
            # last chunk tells the client the file is incomplete instead of passing it off as
            # whole.
            log.exception("customer_export_failed")
            _cut(request)
            return response
    await response.write_eof()
    return response


def _cut(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()
