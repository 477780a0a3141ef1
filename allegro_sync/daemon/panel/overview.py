"""Przegląd: per account, how far behind its journals are, offer changes waiting for Allegro,
failures of the last day, token expiry, and why a switched-off account is off."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from allegro_sync.adapters.postgres import panel_reads
from allegro_sync.daemon.panel.deps import deps_of
from allegro_sync.daemon.panel.render import render


async def overview_page(request: web.Request) -> web.Response:
    rows = await panel_reads.overview(deps_of(request).pool)
    now = datetime.now(UTC)

    def lag(moment: datetime | None) -> int | None:
        return None if moment is None else max(0, int((now - moment).total_seconds()))

    items = [
        {
            **dict(r),
            "order_lag": lag(r["order_journal_read_at"]),
            "offer_lag": lag(r["offer_journal_read_at"]),
            "token_expired": r["token_expires_at"] is not None and r["token_expires_at"] < now,
        }
        for r in rows
    ]
    return render(request, "overview.html", section="overview", items=items)
