"""``ListingService``: moves requested listings on (``handlers/listing.py``), a daemon service.

An ``offer.list`` (or ``POST /offers``) writes a ``listings`` row in its transaction; the row's
trigger notifies ``allegro_sync_listings``. The service leases due rows (``SKIP LOCKED``, so
replicas and the CLI share them), runs ``advance_listing`` for up to ``concurrency`` of them at
once, and sleeps until a notification or the next due row (a 202's ``Retry-After``, a budget
wait, a retry's backoff). No consumer transaction is held while Allegro is asked: each step
records itself in a short transaction of its own, and only while its lease is its own.

Listings Allegro accepted (202) are not followed one by one: once ``CHECK_BATCH`` of them are
due, or the oldest due one has waited ``gather_seconds`` (or at once when nothing is left to
post), up to ``CHECK_BATCH`` of one account are looked at in one ``GET /sale/offers`` by their
``offer.id`` (``check_following``); only those the list does not show as done after
``MAX_CHECKS`` looks have their operation read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import asyncpg
import structlog

from allegro_sync.adapters.postgres import listings
from allegro_sync.adapters.postgres.notifications import Failures, Waker
from allegro_sync.handlers.listing import (
    CHECK_BATCH,
    LEASE_SECONDS,
    MAX_CHECKS,
    ListingDeps,
    advance_listing,
    check_following,
    step_failed,
)
from allegro_sync.tasks import stop_task

log = structlog.get_logger(__name__)


class ListingService:
    """Listings from intent to offer, ``concurrency`` at a time."""

    def __init__(
        self,
        *,
        dsn: str,
        deps: ListingDeps,
        concurrency: int = 16,
        sweep_interval: float = 2.0,
        gather_seconds: float = 1.0,
    ) -> None:
        self._deps = deps
        self._pool: asyncpg.Pool = deps.pool
        self._concurrency = concurrency
        self._sweep_interval = sweep_interval
        self._gather_seconds = gather_seconds
        self._check: asyncio.Task[None] | None = None
        self._checked_at = 0.0
        self._waker = Waker(dsn, listings.CHANNEL)
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[str]] = set()
        self.steps = 0

    async def start(self) -> None:
        """Start the loop (what a previous run left open is looked at at once)."""
        self._waker.event.set()
        self._task = asyncio.create_task(self._run(), name="listing-service")

    async def stop(self, timeout: float) -> None:
        """Let the steps in hand finish within ``timeout``; open listings wait for the next
        start (their lease runs out)."""
        self._stopping = True
        self._waker.event.set()
        await stop_task(self._task, timeout)
        running = self._inflight | ({self._check} if self._check else set())
        if running:
            _, pending = await asyncio.wait(running, timeout=timeout)
            for task in pending:
                task.cancel()
        await self._waker.close()

    async def _run(self) -> None:
        failures = Failures("listing_service_failing")
        while not self._stopping:
            try:
                await self._waker.listen()
                self._waker.event.clear()
                await self._start_check()
                free = self._concurrency - len(self._inflight)
                claimed = (
                    await listings.claim(self._pool, free, LEASE_SECONDS, MAX_CHECKS)
                    if free
                    else []
                )
                for row in claimed:
                    task = asyncio.create_task(self._step(row), name=f"listing-{row['id']}")
                    self._inflight.add(task)
                    task.add_done_callback(self._done)
                failures.succeeded()
                if claimed and len(claimed) == free:
                    await self._wait_for_slot()
                    continue
                due = await listings.next_due_in(self._pool)
                timeout = self._sweep_interval if due is None else min(due, self._sweep_interval)
                if due is not None and due <= 0:  # only looks are due: gather them a while
                    timeout = self._gather_seconds / 4
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._waker.event.wait(), max(timeout, 0.05))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._waker.close()
                await asyncio.sleep(failures.pause(exc))
        log.info("listing_service_stopped", steps=self.steps)

    async def _start_check(self) -> None:
        """Look at the due followed listings of one account, in a task of its own, once
        enough are due or the oldest has waited long enough."""
        if self._check is not None and not self._check.done():
            return
        now = time.monotonic()
        if now - self._checked_at < self._gather_seconds / 4:
            return
        self._checked_at = now
        due, waited, more_coming = await listings.due_to_check(self._pool, MAX_CHECKS)
        if not due or (due < CHECK_BATCH and waited < self._gather_seconds and more_coming):
            return
        rows = await listings.claim_to_check(self._pool, CHECK_BATCH, LEASE_SECONDS, MAX_CHECKS)
        if rows:
            self._check = asyncio.create_task(self._look(rows), name="listing-check")
            self._check.add_done_callback(lambda _: self._waker.event.set())

    async def _look(self, rows: list[asyncpg.Record]) -> None:
        try:
            await check_following(self._deps, rows)
            self.steps += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the leases run out and the rows are looked at again
            log.warning("listing_check_failed", listings=len(rows), error=repr(exc))

    def _done(self, task: asyncio.Task[str]) -> None:
        self._inflight.discard(task)
        self._waker.event.set()  # a slot is free

    async def _wait_for_slot(self) -> None:
        if self._inflight:
            await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)

    async def _step(self, row: asyncpg.Record) -> str:
        try:
            state = await advance_listing(self._deps, row)
            self.steps += 1
            return state
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # backoff, then the listing fails saying so
            try:
                return await step_failed(self._deps, row, exc)
            except Exception as again:  # the database too: the lease runs out, taken again
                log.warning("listing_step_failed", listing_id=row["id"], error=repr(again))
                return str(row["state"])
