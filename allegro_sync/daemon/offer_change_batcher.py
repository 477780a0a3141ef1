"""The offer-change batcher: desired quantities, prices and publications -> Allegro batch commands.

Handlers upsert desired values into ``offer_changes`` (latest wins per offer and kind) and
PostgreSQL notifies ``allegro_sync_offer_changes`` on commit. The batcher then:

1. waits a short window (at most ``window`` seconds, less when a group already fills a command)
   so that a burst coalesces; while the ERP intake is backlogged (``intake_busy``: ten batches
   or more wait in the broker, as when the ERP sends a whole catalogue's stock), partial groups
   are held for up to ``max_hold`` seconds instead: the intake gets the machine, and an offer
   changed again meanwhile goes out once, with its latest value (fewer commands, fewer Allegro
   requests, less of the seller's offer-change budget, and fewer journal echoes to read back).
   A hold starts only on a deep backlog (``intake_deep``: twenty batches or more, seconds of
   work); once started it lasts while the intake is backlogged (``keep_holding``). A steady
   flow that the consumer keeps up with, a few batches behind now and then on a busy machine,
   starts none: holding it would only turn its lag into a backlog (the changes wait, the
   commands go out in bursts). A group that fills a command is sent at once all the same.
   A flush makes no more commands than the sender has free slots for (``concurrency`` less
   those in flight; none while due commands wait for one, as when the client-wide request
   limit, not the daemon, sets the pace), and waits for a quarter of the slots to be free:
   commands made faster than they can be sent would queue behind each other, while the
   changes left in ``offer_changes`` coalesce (latest wins) and go out, with whatever came
   meanwhile, when their turn comes. The groups whose changes have waited longest go first,
   so when every seller has changes all the time (sales and receipts at random), each of its
   (kind, value) groups gets a command once per turn of all of them, made just before a slot
   takes it: a change waits for about one turn, not for the rest of one flush's commands to be
   sent and then for its own;
2. picks the groups of ready changes, by (account, kind, value): a command sets ONE quantity /
   ONE price / ONE action for all its offers, so offers with the same target share a command,
   at most 1000 per command; leases, for each seller at once, the offer-change budget their
   commands will spend (``ChangeBudgets.prepare``: one round trip per seller, not one per
   command, and before any change is locked); then claims the groups' changes (``FOR UPDATE
   SKIP LOCKED``: replicas share the work), spends the budget, persists each command (a fresh
   UUID, its payload and offers) and marks the changes as carried by it, all in one
   transaction, BEFORE any request;
3. in a loop of its own (so that a slow Allegro never delays the next flush), sends the
   persisted commands (``PUT .../{commandId}``) at once, up to ``concurrency`` in flight, each
   as soon as a slot is free (several sellers' flushes are in flight at once; the client-wide
   limiter keeps them within the request budget); a restart after a crash re-sends the same
   id, and a 409 "command id already used" means the first attempt arrived;
4. in another loop, the same way, follows each sent command's tasks
   (``GET .../{commandId}/tasks``) until none is NEW; succeeded
   changes are done unless a newer value arrived meanwhile (it goes out in a later command);
   failed tasks go to the event log with Allegro's error and the trace-id, and are retried with
   backoff when the error is one that retrying can cure.

A 429 or 5xx on a PUT leaves the command pending: it is re-sent with the same id after a backoff,
so nothing is lost. Order traffic keeps priority through the client-wide limiter (``bulk=True``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import structlog

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import (
    AllegroConflict,
    AllegroError,
    AllegroNotFound,
    AllegroUnavailable,
)
from allegro_sync.adapters.allegro.limits import MAX_COMMAND, ChangeBudgets
from allegro_sync.adapters.postgres import event_log, notifications
from allegro_sync.adapters.postgres import offer_changes as store
from allegro_sync.adapters.postgres.event_log import Category
from allegro_sync.adapters.postgres.notifications import Failures, Waker
from allegro_sync.errors import CredentialsDead
from allegro_sync.tasks import stop_task

log = structlog.get_logger(__name__)

CHANNEL = "allegro_sync_offer_changes"
PATHS = {
    "quantity": "/sale/offer-quantity-change-commands",
    "price": "/sale/offer-price-change-commands",
    "publication": "/sale/offer-publication-commands",
}
CATEGORY: dict[str, Category] = {"quantity": "stock", "publication": "stock", "price": "prices"}
# Task errors worth another attempt: Allegro's own hiccups and an edit still being processed.
# Everything else (invalid quantity, offer gone, auction price, not the seller's offer) would
# fail the same way again.
RETRYABLE_TASK_ERRORS = frozenset(
    {
        "EXCEPTION_DURING_OFFER_QUANTITY_UPDATE",
        "OfferConflictException",
        "ERR_YOU_CANT_CHANGE_ITEM_EDIT_IN_PROGRESS",
        "InternalServerErrorException",
        "ServiceUnavailableException",
    }
)
MAX_TASK_ATTEMPTS = 5
HOLD_CHECK = 0.5  # seconds between looks for a full group while partial groups are held
LEASE_MARGIN = 1.25  # of the changes counted, leased for a flush (more arrive before the claim)


@dataclass(frozen=True)
class Group:
    """Changes one command can carry."""

    account_id: int
    kind: str
    value: str
    currency: str | None
    offer_ids: tuple[str, ...]
    oldest: int = 0  # the smallest ``seq`` of its changes: the longest waiting


def group_changes(rows: Sequence[Any], max_offers: int = MAX_COMMAND) -> list[Group]:
    """Rows (ordered by account, kind, value, currency) -> commands of at most ``max_offers``."""
    groups: dict[tuple[int, str, str, str | None], list[tuple[str, int]]] = {}
    for row in rows:
        key = (row["account_id"], row["kind"], row["value"], row["currency"])
        groups.setdefault(key, []).append((row["offer_id"], row.get("seq", 0)))
    result = []
    for (account_id, kind, value, currency), offers in groups.items():
        for first in range(0, len(offers), max_offers):
            chunk = offers[first : first + max_offers]
            oldest = min(seq for _, seq in chunk)
            ids = tuple(offer_id for offer_id, _ in chunk)
            result.append(Group(account_id, kind, value, currency, ids, oldest))
    return result


def command_payload(group: Group) -> dict[str, Any]:
    """The body of the batch command for ``group`` (allegro-api.md 9.1, 9.2, 9.4)."""
    criteria = [{"type": "CONTAINS_OFFERS", "offers": [{"id": o} for o in group.offer_ids]}]
    if group.kind == "quantity":
        modification: dict[str, Any] = {"changeType": "FIXED", "value": int(group.value)}
        return {"modification": modification, "offerCriteria": criteria}
    if group.kind == "price":
        price = {"amount": str(Decimal(group.value)), "currency": group.currency or "PLN"}
        return {
            "modification": {"type": "FIXED_PRICE", "marketplaceId": "allegro-pl", "price": price},
            "offerCriteria": criteria,
        }
    return {"publication": {"action": group.value}, "offerCriteria": criteria}


def backoff(attempt: int, *, first: float = 0.5, cap: float = 30.0) -> float:
    """Seconds before attempt ``attempt + 1``."""
    return float(min(cap, first * 2**attempt))


def keep_holding(
    *,
    held: bool,
    waited: float,
    max_hold: float,
    busy: Callable[[], bool],
    deep: Callable[[], bool],
) -> bool:
    """Whether the partial groups of a flush window wait on: not past ``max_hold``, and the
    intake backlogged (``busy``); a hold not yet ``held`` in this window starts only on a deep
    backlog (``deep``), so a steady flow's lag never starts one, while a burst, once held, is
    held to its end (its last batches are still a backlog, but no longer a deep one)."""
    if waited >= max_hold or not busy():
        return False
    return held or deep()


class OfferChangeBatcher:
    """Coalesces desired offer changes into batch commands and follows them (a daemon service)."""

    def __init__(
        self,
        *,
        dsn: str,
        pool: asyncpg.Pool,
        allegro: AllegroRestClient,
        budgets: ChangeBudgets,
        window: float = 0.25,
        max_offers: int = MAX_COMMAND,
        claim_limit: int = 50_000,
        concurrency: int = 32,
        sweep_interval: float = 1.0,
        halt_after_persist: bool = False,
        intake_busy: Callable[[], bool] = lambda: False,
        intake_deep: Callable[[], bool] = lambda: True,
        max_hold: float = 30.0,
    ) -> None:
        self._dsn = dsn
        self._pool = pool
        self._allegro = allegro
        self._budgets = budgets
        self._window = window
        self._max_offers = max_offers
        self._claim_limit = claim_limit
        self._concurrency = concurrency
        self._sweep_interval = sweep_interval
        self._halt_after_persist = halt_after_persist
        self._intake_busy = intake_busy
        self._intake_deep = intake_deep
        self._max_hold = max_hold
        self._held = False  # logged once per hold
        self._waker = Waker(dsn, CHANNEL)
        self._wake = self._waker.event
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._follower: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._sent = asyncio.Event()  # wakes the follower: commands were sent
        self._persisted = asyncio.Event()  # wakes the sender: commands were persisted
        # the commands a flush may make: the sender's free slots as its loop last saw them
        # (none while due commands wait for one), less the commands made since
        self._room = concurrency
        self._room_step = max(1, concurrency // 4)  # the room a waiting flush waits for
        self._wants_room = False  # a flush left groups for want of room: wake it with room
        # (account, kind) -> loop time until which its budget refused a command: its groups
        # are left out meanwhile, so that the longest waiting never block everyone else's
        self._out_of_budget: dict[tuple[int, str], float] = {}
        self.commands_created = 0

    async def start(self) -> None:
        """Start the loop (it listens for notifications itself)."""
        self._wake.set()  # look at what a previous run left behind
        self._task = asyncio.create_task(self._run(), name="offer-change-batcher")
        self._follower = asyncio.create_task(
            self._pipeline("sent", self._follow, self._sent, "offer_follower_failing"),
            name="offer-command-follower",
        )
        if not self._halt_after_persist:  # test-only: persist, never send
            self._sender = asyncio.create_task(
                self._pipeline("pending", self._send, self._persisted, "offer_sender_failing"),
                name="offer-command-sender",
            )

    async def stop(self, timeout: float) -> None:
        """Finish the step in hand within ``timeout``; persisted commands survive for the next
        start."""
        self._stopping = True
        self._wake.set()
        self._sent.set()
        self._persisted.set()
        await stop_task(self._task, timeout)
        await stop_task(self._sender, timeout)
        await stop_task(self._follower, timeout)
        await self._waker.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        window_started = window_ends = None
        looked_at = 0.0  # when a full group was last looked for
        failures = Failures("offer_batcher_failing")
        while not self._stopping:
            try:
                await self._waker.listen()
                now = loop.time()
                if self._wake.is_set():
                    self._wake.clear()
                    if window_ends is None:
                        window_started, window_ends = now, now + self._window
                look_every = self._window / 5 if not self._held else HOLD_CHECK
                for_sender = False  # the window is over, the flush waits for a sender slot
                if window_ends is not None and window_started is not None:
                    full = False
                    if now < window_ends and now - looked_at >= look_every:
                        looked_at = now
                        full = await self._pool.fetchval(store.FULL_GROUP, self._max_offers)
                    if now >= window_ends and self._holding(now - window_started):
                        window_ends = now + HOLD_CHECK
                    elif (now >= window_ends or full) and self.sender_full:
                        self._wants_room = True  # the sender wakes us with room
                        window_ends, for_sender = now, True
                    elif now >= window_ends or full:
                        window_started = window_ends = None
                        self._held = False
                        budget_wait = await self.flush()
                        # groups were left: the next flush once there is room; a budget's
                        # wait holds the next flush a window at most (others' changes come)
                        if self._wants_room:
                            window_started = window_ends = loop.time()
                        elif budget_wait > 0:
                            wait = min(budget_wait, self._window)
                            window_started, window_ends = now, loop.time() + wait
                failures.succeeded()
                delays = [self._sweep_interval]
                if window_ends is not None and not for_sender:
                    delays.append(min(max(window_ends - loop.time(), 0.0), look_every))
                timeout = max(min(delays), 0.005)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                if (
                    not self._wake.is_set()
                    and window_ends is None
                    and timeout >= self._sweep_interval
                ):
                    self._wake.set()  # periodic look: retries whose backoff ran out
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._waker.close()
                await asyncio.sleep(failures.pause(exc))
        log.info("offer_batcher_stopped", commands=self.commands_created)

    def _sender_seen(self, in_flight: int, *, due_waiting: bool) -> None:
        """The sender's loop looked: the room a flush may fill; a flush that waits for room
        is woken once there is enough."""
        self._room = 0 if due_waiting else self._concurrency - in_flight
        if self._wants_room and self._room >= self._room_step:
            self._wants_room = False
            self._wake.set()

    @property
    def sender_full(self) -> bool:
        """Whether the sender has too little room for a flush's commands (none is made then)."""
        return self._room < self._room_step

    def _holding(self, waited: float) -> bool:
        """Whether partial groups wait on (``keep_holding``)."""
        if not keep_holding(
            held=self._held,
            waited=waited,
            max_hold=self._max_hold,
            busy=self._intake_busy,
            deep=self._intake_deep,
        ):
            return False
        if not self._held:
            self._held = True
            log.info("offer_changes_held_while_intake_busy", max_hold_seconds=self._max_hold)
        return True

    async def _pipeline(
        self,
        state: str,
        step: Callable[[asyncpg.Record], Awaitable[None]],
        wake: asyncio.Event,
        failing: str,
    ) -> None:
        """Run ``step`` on every command in ``state`` that is due, up to ``concurrency`` at
        once, each as soon as a slot is free: one slow answer holds up no other."""
        failures = Failures(failing)
        in_flight: dict[UUID, asyncio.Task[None]] = {}
        try:
            while not self._stopping:
                for command_id in [k for k, t in in_flight.items() if t.done()]:
                    del in_flight[command_id]
                wake.clear()
                try:
                    next_check = await self._start_due(state, step, in_flight)
                    failures.succeeded()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    next_check = failures.pause(exc)
                if state == "pending":
                    self._sender_seen(len(in_flight), due_waiting=next_check <= 0)
                if next_check <= 0 and len(in_flight) < self._concurrency:
                    continue  # became due meanwhile
                if len(in_flight) >= self._concurrency:
                    next_check = self._sweep_interval  # until a slot frees up
                woken = asyncio.ensure_future(wake.wait())
                try:
                    await asyncio.wait(
                        {woken, *in_flight.values()},
                        timeout=max(next_check, 0.005),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    woken.cancel()
        finally:
            for task in in_flight.values():
                task.cancel()
            if in_flight:
                await asyncio.gather(*in_flight.values(), return_exceptions=True)

    async def _start_due(
        self,
        state: str,
        step: Callable[[asyncpg.Record], Awaitable[None]],
        in_flight: dict[UUID, asyncio.Task[None]],
    ) -> float:
        """Start a step for each due command not in flight while slots are free; seconds until
        the next command not in flight is due."""
        free = self._concurrency - len(in_flight)
        busy = list(in_flight)
        if free > 0:
            for row in await self._pool.fetch(store.DUE_COMMANDS_EXCEPT, state, free, busy):
                in_flight[row["id"]] = asyncio.create_task(self._step(step, row))
        left = await self._pool.fetchval(store.NEXT_COMMAND_CHECK_EXCEPT, state, list(in_flight))
        return self._sweep_interval if left is None else max(left.total_seconds(), 0.0)

    async def _step(self, step: Callable[[asyncpg.Record], Awaitable[None]], row: Any) -> None:
        try:
            await step(row)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the others go on; this command is looked at again
            log.warning("offer_command_step_failed", command_id=str(row["id"]), error=str(exc))
            await asyncio.sleep(1.0)  # not at once: the slot stays taken a moment

    async def flush(self) -> float:
        """Claim the ready changes of as many groups as the sender has room for, the longest
        waiting first (the others stay changes: ``_wants_room``), and persist their commands;
        then (unless halted for a test) the sender sends them. Returns the seconds until a
        budget-refused group fits (0: none)."""
        commands: list[dict[str, Any]] = []
        room = max(self._room, 0)
        if room == 0:
            self._wants_room = True
            return self._budget_wait()
        clock = asyncio.get_running_loop().time
        self._out_of_budget = {
            key: until for key, until in self._out_of_budget.items() if until > clock()
        }
        ready = await self._pool.fetch(
            store.READY_GROUPS,
            room + 1,
            [account_id for account_id, _ in self._out_of_budget],
            [kind for _, kind in self._out_of_budget],
        )
        if not ready:
            return self._budget_wait()
        if len(ready) > room:
            ready = ready[:room]
            self._wants_room = True
        # the budget their commands will spend, leased before any change is locked (the
        # intake may be writing the same rows), with room for the changes that arrive before
        # the claim (what is left over is held for the next flush)
        needs: dict[tuple[int, str], int] = {}
        for g in ready:
            key = (g["account_id"], g["kind"])
            needs[key] = needs.get(key, 0) + g["changes"]
        await self._budgets.prepare({k: math.ceil(n * LEASE_MARGIN) for k, n in needs.items()})
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                store.CLAIM_GROUPS,
                [g["account_id"] for g in ready],
                [g["kind"] for g in ready],
                [g["value"] for g in ready],
                [g["currency"] for g in ready],
                self._claim_limit,
            )
            assigned: list[tuple[str, str, UUID]] = []
            groups = sorted(group_changes(rows, self._max_offers), key=lambda g: g.oldest)
            if len(groups) > room:  # a group of more than a command's offers
                groups = groups[:room]
                self._wants_room = True
            for group in groups:
                wait = self._budgets.try_spend(group.account_id, group.kind, len(group.offer_ids))
                if wait > 0:
                    self._out_of_budget[(group.account_id, group.kind)] = clock() + wait
                    continue
                command_id = uuid4()  # fresh per command; persisted before it is sent
                commands.append(
                    {
                        "id": str(command_id),
                        "account_id": group.account_id,
                        "kind": group.kind,
                        "payload": command_payload(group),
                        "offers": list(group.offer_ids),
                    }
                )
                assigned.extend((o, group.kind, command_id) for o in group.offer_ids)
            if commands:
                await store.insert_commands(conn, commands, assigned)
        if commands:
            self._room -= len(commands)
            self.commands_created += len(commands)
            self._persisted.set()
            log.info(
                "offer_commands_persisted",
                commands=len(commands),
                offers=sum(len(c["offers"]) for c in commands),
            )
            if self._halt_after_persist:
                # Test-only (settings: OFFER_BATCHER_HALT_AFTER_PERSIST): stop here so that a
                # test can kill the process between persisting and sending.
                log.warning(
                    "offer_batcher_halted_after_persist", command_ids=[c["id"] for c in commands]
                )
                await asyncio.Event().wait()
        return self._budget_wait()

    def _budget_wait(self) -> float:
        """Seconds until the first budget-refused (account, kind) may try again (0: none)."""
        if not self._out_of_budget:
            return 0.0
        return max(min(self._out_of_budget.values()) - asyncio.get_running_loop().time(), 0.005)

    async def _send(self, row: asyncpg.Record) -> None:
        command_id: UUID = row["id"]
        kind = row["kind"]
        path = f"{PATHS[kind]}/{command_id}"
        try:
            await self._allegro.request(
                row["account_id"],
                "PUT",
                path,
                action=f"send {kind} command",
                json=_payload(row),
                bulk=True,
            )
        except AllegroConflict:
            pass  # 409 "command id already used": our first attempt arrived; follow it
        except AllegroUnavailable as exc:  # 429, 5xx, no connection: same id again later
            await store.postpone(self._pool, command_id, backoff(row["attempts"]))
            log.info("offer_command_send_postponed", command_id=str(command_id), error=str(exc))
            return
        except (AllegroError, CredentialsDead) as exc:
            await self._refused(row, exc)
            return
        await store.mark_sent(self._pool, command_id)
        # the command's echo comes through the offer journal: poll it at its busy interval
        await notifications.wake_journal(self._pool, row["account_id"], "offer")
        self._sent.set()

    async def _follow(self, row: asyncpg.Record) -> None:
        command_id: UUID = row["id"]
        kind = row["kind"]
        try:
            response = await self._allegro.request(
                row["account_id"],
                "GET",
                f"{PATHS[kind]}/{command_id}/tasks",
                action=f"read {kind} command report",
                params={"limit": MAX_COMMAND, "offset": 0},
                bulk=True,
            )
        except AllegroNotFound:
            # Allegro does not know the command (a PUT lost on the way): send it again.
            await self._pool.execute(store.RESEND, command_id)
            self._wake.set()
            return
        except AllegroUnavailable:
            await store.postpone(self._pool, command_id, backoff(row["attempts"]))
            return
        except (AllegroError, CredentialsDead) as exc:
            await self._refused(row, exc)
            return
        tasks = list((response.body or {}).get("tasks") or [])
        offers = list(row["offers"])
        if len(tasks) < len(offers) or any(t.get("status") == "NEW" for t in tasks):
            await store.postpone(
                self._pool, command_id, backoff(row["attempts"], first=0.05, cap=5)
            )
            return
        trace_id = response.headers.get("trace-id") or response.headers.get("Trace-Id")
        await self._settle(row, tasks, trace_id)

    async def _settle(
        self, row: asyncpg.Record, tasks: list[dict[str, Any]], trace_id: str | None
    ) -> None:
        command_id: UUID = row["id"]
        kind = row["kind"]
        succeeded: list[str] = []
        failed: dict[tuple[str, str], list[str]] = {}
        for task in tasks:
            offer_id = str((task.get("offer") or {}).get("id"))
            if task.get("status") == "SUCCESS":
                succeeded.append(offer_id)
                continue
            errors = task.get("errors") or [{}]
            code = str(errors[0].get("code") or "UNKNOWN")
            message = str(task.get("message") or errors[0].get("message") or "")
            failed.setdefault((code, message), []).append(offer_id)
        async with self._pool.acquire() as conn, conn.transaction():
            attempts = {
                r["offer_id"]: r["attempts"]
                # locked first, in (offer, kind) order like every writer of offer_changes
                for r in await conn.fetch(store.LOCK_COMMAND_CHANGES, command_id)
            }
            retry: list[tuple[str, float]] = []
            for (code, message), offer_ids in failed.items():
                retrying = [
                    o
                    for o in offer_ids
                    if code in RETRYABLE_TASK_ERRORS and attempts.get(o, 0) < MAX_TASK_ATTEMPTS
                ]
                retry.extend((o, backoff(attempts.get(o, 0), first=2.0, cap=300)) for o in retrying)
                await event_log.write(
                    conn,
                    row["account_id"],
                    CATEGORY[kind],
                    "error",
                    "offer_change_failed",
                    f"{_what(kind, _payload(row))} failed for {len(offer_ids)} offer(s)"
                    f" ({', '.join(offer_ids[:5])}{'...' if len(offer_ids) > 5 else ''}):"
                    f" Allegro {code}: {message}"
                    + (f" (trace-id {trace_id})" if trace_id else "")
                    + ("; trying again later." if retrying else "."),
                    details={
                        "command_id": str(command_id),
                        "kind": kind,
                        "offers": offer_ids[:1000],
                        "error": {"code": code, "message": message},
                        "trace_id": trace_id,
                        "retrying": len(retrying),
                    },
                )
            await store.mirror_applied(conn, kind, _payload(row), succeeded)
            await store.finish(conn, command_id, retry=retry, trace_id=trace_id)
            # the offers changed: their journal's echo is read soon (delivered on commit)
            await notifications.wake_journal(conn, row["account_id"], "offer")
        log.info(
            "offer_command_done",
            command_id=str(command_id),
            kind=kind,
            succeeded=len(succeeded),
            failed=sum(len(v) for v in failed.values()),
        )

    async def _refused(self, row: asyncpg.Record, exc: Exception) -> None:
        """Allegro refused the command itself (400/403/422...): retrying the same body cannot
        help; the changes are dropped with an event-log entry."""
        kind = row["kind"]
        trace_id = getattr(exc, "trace_id", None)
        async with self._pool.acquire() as conn, conn.transaction():
            await event_log.write(
                conn,
                row["account_id"],
                CATEGORY[kind],
                "error",
                "offer_command_refused",
                f"{_what(kind, _payload(row))} for {len(row['offers'])} offer(s) was refused: "
                f"{exc}" + (f" (trace-id {trace_id})" if trace_id else ""),
                details={
                    "command_id": str(row["id"]),
                    "kind": kind,
                    "offers": list(row["offers"])[:1000],
                    "trace_id": trace_id,
                },
            )
            await store.finish(conn, row["id"], retry=[], trace_id=trace_id)
        log.warning("offer_command_refused", command_id=str(row["id"]), error=str(exc))


def _payload(row: asyncpg.Record) -> dict[str, Any]:
    payload = row["payload"]
    return json.loads(payload) if isinstance(payload, str) else dict(payload)


def _what(kind: str, payload: dict[str, Any]) -> str:
    if kind == "quantity":
        return f"Setting the quantity to {payload['modification']['value']}"
    if kind == "price":
        price = payload["modification"]["price"]
        return f"Setting the price to {price['amount']} {price['currency']}"
    action = payload["publication"]["action"]
    return "Ending the offer" if action == "END" else "Activating the offer"
