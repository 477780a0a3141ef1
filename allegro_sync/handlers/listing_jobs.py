"""Listing many products (issue 17 item 3): a job lists every product with an EAN and no offer
on an account; its progress can be read while it runs (admin API, CLI).

A job asks for one listing per product (``adapters/postgres/listings.py``: the same intent an
``offer.list`` writes, idempotent per product and account), all in one transaction with the
job's items; the listing service (``daemon/listing_service.py``) carries them out within the
seller's write budget (``ChangeBudgets`` kind ``"listing"``, shared with every product-offer
writer; the client-wide limiter serves order traffic first). A crash or a stop leaves the
listings as they are, and the next start goes on with those still open: nothing is listed twice
(a listing whose POST may have reached Allegro looks for its offer by ``external.id`` first).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import asyncpg

from allegro_sync.adapters.postgres import accounts, event_log, listing_jobs, listings
from allegro_sync.handlers.listing_body import external_id_for

NO_PRICE = "no price on the account's price list"
NO_STOCK = "no ERP stock to publish (list it as a draft, or send stock.changed)"


class JobError(Exception):
    """A job that cannot be made: ``status`` 404 (no account) or 409 (account off)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def skip_reason(candidate: Mapping[str, Any], *, publish: bool) -> str | None:
    """Why a product is not listed (None: it is): no price, or no stock to publish."""
    if candidate["price"] is None or candidate["currency"] is None:
        return NO_PRICE
    if candidate["price"] <= 0:
        return NO_PRICE
    if publish and not candidate["quantity"]:
        return NO_STOCK
    return None


async def _account(conn: asyncpg.Connection, account_id: int) -> None:
    active = await accounts.is_active(conn, account_id)
    if active is None:
        raise JobError(404, f"account {account_id} does not exist")
    if not active:
        raise JobError(409, f"account {account_id} is switched off")


async def dry_run(pool: asyncpg.Pool, account_id: int, *, publish: bool) -> dict[str, Any]:
    """What a job would do now, changing nothing."""
    async with pool.acquire() as conn:
        await _account(conn, account_id)
        found = await listing_jobs.candidates(conn, account_id)
    reasons = [skip_reason(c, publish=publish) for c in found]
    return {
        "account_id": account_id,
        "dry_run": True,
        "total": len(found),
        "would_list": sum(1 for r in reasons if r is None),
        "would_skip": sum(1 for r in reasons if r is not None),
        "product_ids": [c["product_id"] for c in found[:100]],
    }


async def start_job(pool: asyncpg.Pool, account_id: int, *, publish: bool) -> asyncpg.Record:
    """A job listing the account's unlisted products now; the job with its progress."""
    async with pool.acquire() as conn, conn.transaction():
        await _account(conn, account_id)
        found = await listing_jobs.candidates(conn, account_id)
        items = [(c["product_id"], skip_reason(c, publish=publish)) for c in found]
        wanted = [c for c, (_, reason) in zip(found, items, strict=True) if reason is None]
        await listings.request_many(
            conn,
            account_id=account_id,
            product_ids=[c["product_id"] for c in wanted],
            prices=[Decimal(c["price"]) for c in wanted],
            currencies=[c["currency"] for c in wanted],
            quantities=[int(c["quantity"] or 0) for c in wanted],
            publish=publish,
            external_ids=[external_id_for(c["product_id"]) for c in wanted],
        )
        job_id = await listing_jobs.create(conn, account_id, publish, items)
        await event_log.write(
            conn,
            account_id,
            "offers",
            "info",
            "listing_job_started",
            f"Listing {len(wanted)} products without an offer"
            + ("" if publish else " as drafts")
            + (f" ({len(items) - len(wanted)} skipped)" if len(items) > len(wanted) else ""),
            details={"job_id": job_id, "total": len(items), "listing": len(wanted)},
        )
        job = await listing_jobs.get(conn, job_id)
    assert job is not None
    return job


CANCELLED = {
    "code": "allegro_sync.cancelled",
    "message": "the listing job was cancelled before this product was sent to Allegro",
}


async def cancel_job(pool: asyncpg.Pool, job_id: int) -> asyncpg.Record | None:
    """Cancel what a job has not sent yet: its pending listings fail with
    ``allegro_sync.cancelled`` (no ``offer.list_failed``: the ERP did not ask for them one by
    one); those already sent end as Allegro decides. The job, or None when there is none."""
    async with pool.acquire() as conn, conn.transaction():
        job = await listing_jobs.get(conn, job_id)
        if job is None:
            return None
        cancelled = await listings.cancel_pending_of_job(conn, job_id, [CANCELLED])
        await event_log.write(
            conn,
            job["account_id"],
            "offers",
            "info",
            "listing_job_cancelled",
            f"Listing job {job_id} cancelled: {cancelled} products not sent to Allegro.",
            details={"job_id": job_id, "cancelled": cancelled},
        )
        return await listing_jobs.get(conn, job_id)


def job_json(job: asyncpg.Record, failures: list[asyncpg.Record] | None = None) -> dict[str, Any]:
    """A job as the admin API shows it: ``running`` while any of its listings is open."""
    done = job["listed"] + job["failed"] + job["skipped"]
    body: dict[str, Any] = {
        "id": job["id"],
        "account_id": job["account_id"],
        "publish": job["publish"],
        "state": "running" if job["pending"] else "done",
        "total": job["total"],
        "done": done,
        "pending": job["pending"],
        "listed": job["listed"],
        "failed": job["failed"],
        "skipped": job["skipped"],
        "created_at": job["created_at"].isoformat(),
        "finished_at": (
            (job["last_done_at"] or job["created_at"]).isoformat() if not job["pending"] else None
        ),
    }
    if failures is not None:
        body["failures"] = [
            {"product_id": f["product_id"], "skipped": f["skipped"], "errors": f["errors"]}
            for f in failures
        ]
    return body
