"""The offer updater: sends the product edits queued in ``offer_updates`` to Allegro
(issue 17 item 4, ``handlers/offer_updates.py``).

Each due row is leased (``SKIP LOCKED``, so replicas share the work and a crashed sender's rows
come due again), then, outside any transaction: ``PATCH /sale/product-offers/{offerId}`` with
the queued fields, within the seller's write budget (``ChangeBudgets`` kind ``"listing"``:
2 490 a minute, 74 700 an hour, shared with listing). Images Allegro cannot take as links
(not https) are uploaded through ``POST /sale/images`` first, by the listing's own upload step
(``handlers/listing.py``), and the PATCH carries the links on Allegro's image host. 200: done.
202: the operation in ``Location`` is read after ``Retry-After`` until it answers 303 (done). 409
``OfferConflictException`` (an edit still in progress), 429, 5xx, no budget: sent again later,
with whatever changed meanwhile. Another refusal (400, 403, 404, 422): the event log and
``offer.update_failed``. Wakes on ``allegro_sync_offer_updates`` (a trigger on insert).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import urlsplit

import asyncpg
import structlog

from allegro_sync.adapters.allegro.client import AllegroRestClient, Response
from allegro_sync.adapters.allegro.errors import (
    AllegroAuthError,
    AllegroConflict,
    AllegroError,
    AllegroUnavailable,
)
from allegro_sync.adapters.allegro.limits import ChangeBudgets
from allegro_sync.adapters.postgres import catalog, offer_updates
from allegro_sync.adapters.postgres.notifications import Failures, Waker
from allegro_sync.errors import CredentialsDead
from allegro_sync.handlers.listing import ListingDeps, hosted_images
from allegro_sync.handlers.offer_updates import (
    patch_body,
    record_refusal,
    record_updated,
    sent_fields,
)
from allegro_sync.tasks import stop_task

log = structlog.get_logger(__name__)

CHANNEL = "allegro_sync_offer_updates"
BUDGET_KIND = "listing"
OPERATION_PREFIX = "/sale/product-offers/"


def retry_after(response: Response, default: float = 1.0) -> float:
    """Allegro's ``Retry-After`` in seconds (at least 0.2, at most 60)."""
    for name, value in response.headers.items():
        if name.lower() == "retry-after":
            try:
                return min(60.0, max(0.2, float(value)))
            except ValueError:
                break
    return default


def backoff(attempts: int) -> float:
    """Seconds before another attempt after the ``attempts``-th failed one (2 s doubling,
    at most 5 minutes)."""
    return float(min(300, 2 ** min(attempts, 9)))


def operation_path(location: str | None, offer_id: str) -> str | None:
    """The operation's path from ``Location`` (only one of this offer: the token goes to our
    Allegro host, never to where a header points)."""
    if not location:
        return None
    parts = urlsplit(location)
    if not parts.path.startswith(f"{OPERATION_PREFIX}{offer_id}/operations/"):
        return None
    return parts.path


class OfferUpdater:
    """Sends queued product edits to the offers that follow their product."""

    def __init__(
        self,
        *,
        dsn: str,
        pool: asyncpg.Pool,
        allegro: AllegroRestClient,
        budgets: ChangeBudgets,
        batch_size: int = 100,
        concurrency: int = 16,
        lease: timedelta = timedelta(seconds=120),
        poll_interval: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._pool = pool
        self._allegro = allegro
        self._budgets = budgets
        self._batch_size = batch_size
        self._slots = asyncio.Semaphore(concurrency)
        self._lease = lease
        self._poll_interval = poll_interval
        self._waker = Waker(dsn, CHANNEL)
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.sent = 0  # PATCHes sent, for tests and benchmarks

    async def start(self) -> None:
        """Start the loop."""
        self._task = asyncio.create_task(self._run(), name="offer-updater")

    async def stop(self, timeout: float) -> None:
        """Finish the requests in hand within ``timeout``."""
        self._stopping = True
        self._waker.event.set()
        await stop_task(self._task, timeout)
        await self._waker.close()

    async def _run(self) -> None:
        failures = Failures("offer_updater_failing")
        while not self._stopping:
            try:
                await self._waker.listen()
                self._waker.event.clear()
                taken = await self.run_once()
                failures.succeeded()
                if taken == self._batch_size:
                    continue
                due_in = await offer_updates.next_due_in(self._pool)
                wait = self._poll_interval if due_in is None else min(due_in, self._poll_interval)
                if wait > 0:
                    await self._waker.wait(max(wait, 0.05))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._waker.close()
                await asyncio.sleep(failures.pause(exc))

    async def run_once(self) -> int:
        """Send or follow one batch of due edits; how many rows were taken."""
        rows = await offer_updates.claim_due(self._pool, self._batch_size, self._lease)
        if rows:
            await asyncio.gather(*(self._one(row) for row in rows))
        return len(rows)

    async def _one(self, row: asyncpg.Record) -> None:
        async with self._slots:
            try:
                if row["operation_url"]:
                    await self._follow(row)
                else:
                    await self._send(row)
            except (AllegroAuthError, CredentialsDead) as exc:
                # the account is being switched off (tokens dead); try much later
                log.warning("offer_update_unauthorised", offer_id=row["offer_id"], error=str(exc))
                await offer_updates.postpone(self._pool, row["offer_id"], 300.0)

    async def _send(self, row: asyncpg.Record) -> None:
        offer_id, account_id = row["offer_id"], row["account_id"]
        product = await catalog.get_listing_product(self._pool, row["product_id"])
        body = patch_body(dict(product), row["sending"] or []) if product is not None else {}
        if not body:
            await offer_updates.finish(self._pool, offer_id)
            return
        wait = self._budgets.try_spend(account_id, BUDGET_KIND, 1)
        if wait > 0:
            await offer_updates.postpone(self._pool, offer_id, wait)
            return
        try:
            if "images" in body:
                # the same links the listing would send: uploaded where Allegro cannot fetch them
                deps = ListingDeps(self._allegro, self._pool, self._budgets)
                body["images"] = await hosted_images(deps, account_id, product)
            response = await self._allegro.request(
                account_id,
                "PATCH",
                f"{OPERATION_PREFIX}{offer_id}",
                action="update offer from product",
                json=body,
                bulk=True,
            )
        except (AllegroConflict, AllegroUnavailable) as exc:
            log.info("offer_update_postponed", offer_id=offer_id, error=str(exc))
            await offer_updates.postpone(self._pool, offer_id, backoff(row["attempts"]))
            return
        except AllegroError as exc:
            await self._refused(row, sent_fields(body), exc)
            return
        self.sent += 1
        if response.status == 202:
            path = operation_path(_location(response), offer_id)
            if path is not None:
                await offer_updates.follow(self._pool, offer_id, path, retry_after(response))
                return
        await self._done(row, sent_fields(body))

    async def _follow(self, row: asyncpg.Record) -> None:
        offer_id = row["offer_id"]
        try:
            response = await self._allegro.request(
                row["account_id"],
                "GET",
                row["operation_url"],
                action="read offer edit operation",
                bulk=True,
                follow_redirects=False,
            )
        except AllegroUnavailable:
            await offer_updates.retry_follow(self._pool, offer_id, backoff(row["attempts"]))
            return
        except AllegroError as exc:
            # the operation is gone (404): its edit was taken or not; send it again
            log.info("offer_update_operation_lost", offer_id=offer_id, error=str(exc))
            await offer_updates.postpone(self._pool, offer_id, 0.0)
            return
        if response.status == 202:
            await offer_updates.retry_follow(self._pool, offer_id, retry_after(response))
            return
        await self._done(row, sorted(row["sending"] or []))

    async def _done(self, row: asyncpg.Record, fields: list[str]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await record_updated(
                conn, account_id=row["account_id"], offer_id=row["offer_id"], fields=fields
            )

    async def _refused(self, row: asyncpg.Record, fields: list[str], exc: AllegroError) -> None:
        log.warning("offer_update_refused", offer_id=row["offer_id"], error=str(exc))
        async with self._pool.acquire() as conn, conn.transaction():
            await record_refusal(
                conn,
                account_id=row["account_id"],
                offer_id=row["offer_id"],
                product_id=row["product_id"],
                fields=fields,
                error=exc,
            )


def _location(response: Response) -> str | None:
    for name, value in response.headers.items():
        if name.lower() == "location":
            return str(value)
    return None
