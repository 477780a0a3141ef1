"""The message bus: the batch consumer, the one place that decides ack, delayed retry or
dead-letter.

Messages are taken in micro-batches (up to ``batch_size`` or ``batch_window`` seconds after the
first one) and handled in one PostgreSQL transaction, then acked: one commit per batch instead
of one per message. The batch first claims its inbox rows by (routing key, message id) (``ON
CONFLICT DO NOTHING``, one statement); a redelivered message finds its row and is a no-op, a
message of another type under the same id does not. When a handler fails, the batch
is rolled back and its messages are handled again one transaction each, so only the failing
message meets its fate. Messages are dispatched by routing key to the routes of
``handlers/registry.py``; runs of journal events are flattened for their handlers and regrouped
per run here (``Route.events``), and a run that fails is split into its events (``Route.split``).

Fates, by error class:
- ``BadInput`` (also invalid JSON, schema mismatch, unknown routing key, a body over its size
  limit, a value the database refuses: asyncpg's ``DataError`` family): published to the
  dead-letter exchange with an ``x-error`` header, then acked. Never retried.
- ``TransientError`` and unexpected exceptions: the message's writes are rolled back and a copy
  goes to a delay queue (``x-attempt`` + 1); after the last delay it is dead-lettered.
- Lost database connections: the whole batch is retried in process after a pause, without
  spending the message's attempts, so a database restart only pauses consumption.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aio_pika
import asyncpg
import orjson
import structlog
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from pydantic import ValidationError

from allegro_sync.adapters.broker.publisher import ConfirmingPublisher, OutgoingMessage
from allegro_sync.adapters.broker.signing import (
    ORIGINAL_ROUTING_KEY,
    SIGNATURE_HEADER,
    UNSIGNED,
    MessageSigner,
)
from allegro_sync.adapters.broker.topology import (
    DEAD_LETTER_EXCHANGE,
    RETRY_DELAYS_MS,
    retry_queue_name,
)
from allegro_sync.adapters.postgres import inbox
from allegro_sync.errors import BadInput, CredentialsDead, Refused, TransientError
from allegro_sync.handlers.registry import Route
from allegro_sync.metrics import Metrics
from allegro_sync.tasks import CANCEL_GRACE, wait_tasks

log = structlog.get_logger(__name__)

T = TypeVar("T")
BACKLOG_MEMORY = 1.0  # seconds a backlog seen in the broker is remembered
BACKLOG_TAIL = 5.0  # seconds after that its last messages, still in hand, count as a backlog
BACKLOG_LOOK_EVERY = 0.5  # seconds between looks at the broker's queue depth
ATTEMPT = "x-attempt"

# Errors that mean "the database is not there right now", not "this message is wrong".
DATABASE_DOWN: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.ConnectionFailureError,
    asyncpg.InternalClientError,  # a connection left mid-protocol by a terminated backend
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    ConnectionError,
    OSError,
    TimeoutError,
)


class _BatchAborted(Exception):
    """A handler failed: roll the batch's transaction back."""


@dataclass
class _Item:
    message: AbstractIncomingMessage
    routing_key: str
    message_id: str
    attempt: int
    route: Route | None = None
    payload: Any = None
    fate: str = "ack"  # ack | duplicate | refused | retry | dead | split (| paused, prepare only)
    error: str = ""


@dataclass
class ConsumerStats:
    """Counts kept for tests and the metrics endpoint."""

    batches: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


class BatchConsumer:
    """Consumes one queue in micro-batches and dispatches to handlers by routing key."""

    def __init__(
        self,
        *,
        connection: AbstractRobustConnection,
        pool: asyncpg.Pool,
        queue_name: str,
        routes: Mapping[str, Route],
        metrics: Metrics,
        prefetch: int = 200,
        batch_size: int = 200,
        batch_window: float = 0.005,
        retry_delays_ms: tuple[int, ...] = RETRY_DELAYS_MS,
        prepare_concurrency: int = 16,
        concurrency: int = 1,
        signer: MessageSigner | None = None,
        verify: bool = False,
        max_message_bytes: int | None = None,
        max_bytes_by_key: Mapping[str, int] | None = None,
    ) -> None:
        self._connection = connection
        # ``signer`` signs the split parts this consumer publishes; with ``verify`` a message
        # it does not verify is dead-lettered before anything else looks at it.
        if verify and signer is None:
            raise ValueError("verifying needs a signer")
        self._signer = signer
        self._verify = verify
        self._pool = pool
        self._queue_name = queue_name
        self._routes = routes
        self._metrics = metrics
        self._prefetch = prefetch
        self._batch_size = min(batch_size, prefetch)
        self._batch_window = batch_window
        self._retry_delays_ms = retry_delays_ms
        self._prepare_concurrency = prepare_concurrency
        self._concurrency = concurrency
        self._max_message_bytes = max_message_bytes
        self._max_bytes_by_key = dict(max_bytes_by_key or {})
        self._buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._queue: AbstractQueue | None = None
        # the queue as seen from a channel of its own, for looks at its depth: a look that
        # times out closes its channel, which must not be the one the deliveries come on
        self._looking: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._publisher: ConfirmingPublisher | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._backlog_seen = -BACKLOG_MEMORY
        self._backlog_depth = 0  # messages waiting at the last look that saw a backlog
        self._full_batch = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self.stats = ConsumerStats()

    def backlogged(self) -> bool:
        """Whether a backlog waits: at least ten batches' worth of messages in the broker
        beyond those in hand, seen in the last second (looked at while batches come full), or,
        for a few seconds after, the last of it still in hand (buffered or in a batch). Other
        work of the process may then wait; see the offer-change batcher."""
        since = time.monotonic() - self._backlog_seen
        if since < BACKLOG_MEMORY:
            return True
        return since < BACKLOG_TAIL and (not self._buffer.empty() or bool(self._in_flight))

    def deeply_backlogged(self, batches: int = 20) -> bool:
        """Whether at least ``batches`` batches' worth of messages waited in the broker at a
        look in the last second: a backlog of seconds of work (a catalogue re-sent), not the
        lag of a steady flow that the consumer keeps up with."""
        since = time.monotonic() - self._backlog_seen
        return since < BACKLOG_MEMORY and self._backlog_depth >= batches * self._batch_size

    async def _watch_backlog(self) -> None:
        while True:
            # only while batches come full: otherwise nothing can be waiting
            await self._full_batch.wait()
            self._full_batch.clear()
            if self._queue is None:
                continue
            if await self._look_at_backlog():
                await asyncio.sleep(BACKLOG_LOOK_EVERY)

    async def _look_at_backlog(self) -> bool:
        """Ask the broker how many messages wait; False when it could not tell."""
        try:
            if self._looking is None or self._looking.channel.is_closed:
                channel = await self._connection.channel()
                self._looking = await channel.get_queue(self._queue_name, ensure=False)
            declared = await self._looking.declare(timeout=2)
        except Exception as exc:  # a slow broker or a reconnect: the next look will tell
            log.debug("consumer_backlog_unknown", queue=self._queue_name, error=str(exc))
            if self._looking is not None:
                with contextlib.suppress(Exception):
                    await self._looking.channel.close()
            self._looking = None
            return False
        if (declared.message_count or 0) >= 10 * self._batch_size:
            self._backlog_seen = time.monotonic()
            self._backlog_depth = declared.message_count or 0
        return True

    async def start(self) -> None:
        """Open channels and start consuming."""
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        self._publisher = await ConfirmingPublisher.open(self._connection, self._signer)
        self._queue = await channel.get_queue(self._queue_name, ensure=True)
        await self._look_at_backlog()  # a backlog waiting at start is known before the first batch
        self._consumer_tag = await self._queue.consume(self._buffer.put, no_ack=False)
        # More than one worker overlaps one batch's database work with the next one's reads;
        # handlers stay correct under that (version and read-time guards, row locks), but on a
        # small machine it measured no faster, so one is the default.
        self._workers = [
            asyncio.create_task(self._run(), name=f"consumer:{self._queue_name}:{n}")
            for n in range(self._concurrency)
        ]
        self._watcher = asyncio.create_task(self._watch_backlog(), name="consumer-backlog")
        log.info("consumer_started", queue=self._queue_name, prefetch=self._prefetch)

    async def stop(self, timeout: float) -> None:
        """Stop intake, finish the batches in hand within ``timeout``, requeue the rest."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
        if self._looking is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._looking.channel.close(), 2.0)
        if self._queue is not None and self._consumer_tag is not None:
            # bounded: on a connection that is reconnecting the cancel may never be answered
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._queue.cancel(self._consumer_tag), 2.0)
        for worker in self._workers:
            worker.cancel()  # wakes idle workers; batches in hand run on as their own tasks
        await wait_tasks(self._workers, CANCEL_GRACE, what=f"consumer {self._queue_name}")
        # the batches in hand get the timeout; those cancelled past it are awaited (bounded)
        # before the pool they hold connections of is closed; their messages are redelivered
        await wait_tasks(list(self._in_flight), timeout, what=f"batches of {self._queue_name}")
        prefetched = []
        while not self._buffer.empty():
            prefetched.append(self._buffer.get_nowait())
        if prefetched:  # back to the queue at once (else when the channel closes), one bound
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.gather(
                        *(m.nack(requeue=True) for m in prefetched), return_exceptions=True
                    ),
                    2.0,
                )
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._publisher.close(), 2.0)
        log.info("consumer_stopped", queue=self._queue_name)

    async def _run(self) -> None:
        while not self._stopping:
            batch = await self._next_batch()
            # A batch in hand finishes even if stop() cancels this worker meanwhile.
            task = asyncio.create_task(self._process(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Never let one batch stop the consumer: its messages go back to the queue.
                log.exception("consumer_batch_failed", queue=self._queue_name)
                for message in batch:
                    with contextlib.suppress(Exception):
                        await message.nack(requeue=True)

    async def _next_batch(self) -> list[AbstractIncomingMessage]:
        batch = [await self._buffer.get()]
        deadline = asyncio.get_running_loop().time() + self._batch_window
        while len(batch) < self._batch_size:
            if not self._buffer.empty():
                batch.append(self._buffer.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._buffer.get(), remaining))
            except TimeoutError:
                break
        if len(batch) >= self._batch_size:
            self._full_batch.set()
        return batch

    async def _process(self, messages: list[AbstractIncomingMessage]) -> None:
        items = [self._decode(m) for m in messages]
        await self._prepare([i for i in items if i.fate == "ack"])
        await self._prepare_while_database_down(items)
        live = [i for i in items if i.fate == "ack"]
        pause = 0.2
        while live:
            for item in live:
                item.fate, item.error = "ack", ""
            try:
                await self._handle_in_transaction(live)
                break
            except DATABASE_DOWN as exc:
                log.warning(
                    "consumer_database_unavailable",
                    queue=self._queue_name,
                    error=type(exc).__name__,
                    pause_seconds=round(pause, 2),
                )
                self._metrics.consumer_db_pauses.labels(self._queue_name).inc()
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)
        await self._settle_all(items)
        self.stats.batches += 1

    async def _prepare_while_database_down(self, items: list[_Item]) -> None:
        """A database outage met in a prepare step pauses the batch as one in its transaction
        does: the prepare is tried again in process, the message's attempts unspent."""
        pause = 0.2
        while paused := [i for i in items if i.fate == "paused"]:
            log.warning(
                "consumer_database_unavailable",
                queue=self._queue_name,
                error=paused[0].error,
                step="prepare",
                pause_seconds=round(pause, 2),
            )
            self._metrics.consumer_db_pauses.labels(self._queue_name).inc()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)
            for item in paused:
                item.fate, item.error = "ack", ""
            await self._prepare(paused)

    def _decode(self, message: AbstractIncomingMessage) -> _Item:
        headers = dict(message.headers or {})
        routing_key = str(headers.get(ORIGINAL_ROUTING_KEY) or message.routing_key or "")
        raw_attempt = headers.get(ATTEMPT, 0)
        attempt = raw_attempt if isinstance(raw_attempt, int) else 0
        item = _Item(message, routing_key, message.message_id or "", attempt)
        route = self._routes.get(routing_key)
        if self._verify and not self._signed(message, routing_key, headers):
            item.fate, item.error = "dead", UNSIGNED
        elif route is None:
            item.fate, item.error = "dead", f"unknown routing key {routing_key!r}"
        elif not item.message_id:
            item.fate, item.error = "dead", "message has no message_id"
        elif (
            limit := self._max_bytes_by_key.get(routing_key, self._max_message_bytes)
        ) is not None and len(message.body) > limit:
            item.fate = "dead"
            item.error = (
                f"message too large: {len(message.body)} bytes, {routing_key} takes at most"
                f" {limit} bytes"
            )
        else:
            try:
                payload = route.model.model_validate_json(message.body)
                item.payload = route.events(payload) if route.events else payload
                item.route = route
            except ValidationError as exc:
                errors = exc.errors()
                if errors and errors[0]["type"] == "json_invalid":
                    item.fate, item.error = "dead", f"invalid JSON: {errors[0]['msg']}"
                else:
                    item.fate, item.error = "dead", f"schema mismatch: {_summarise(exc)}"
        return item

    def _signed(
        self, message: AbstractIncomingMessage, routing_key: str, headers: Mapping[str, Any]
    ) -> bool:
        assert self._signer is not None
        return self._signer.verify(
            message.message_id or "", routing_key, message.body, headers.get(SIGNATURE_HEADER)
        )

    async def _prepare(self, items: list[_Item]) -> None:
        limit = asyncio.Semaphore(self._prepare_concurrency)

        async def one(item: _Item) -> None:
            assert item.route is not None and item.route.prepare is not None
            async with limit:
                try:
                    item.payload = await item.route.prepare(item.payload)
                except Exception as exc:
                    item.fate, item.error = _fate_of(exc)
                    if item.fate == "retry" and not isinstance(exc, TransientError):
                        log.exception("prepare_failed", message_id=item.message_id)

        await asyncio.gather(*(one(i) for i in items if i.route and i.route.prepare))

        groups: dict[int, list[_Item]] = {}
        for item in items:
            if item.fate == "ack" and item.route is not None and item.route.prepare_many:
                groups.setdefault(id(item.route), []).append(item)
        for group in groups.values():
            route = group[0].route
            assert route is not None and route.prepare_many is not None
            events = _events(route, group)
            try:
                results = await route.prepare_many(events)
            except Exception as exc:
                results = [exc] * len(events)
            if route.events is not None:
                results = per_run(results, [len(i.payload) for i in group])
            for item, result in zip(group, results, strict=True):
                if isinstance(result, Exception):
                    item.fate, item.error = _fate_of(result)
                else:
                    item.payload = result

    async def _handle_in_transaction(self, items: list[_Item]) -> None:
        """The whole batch in one transaction; if a handler fails, the transaction is rolled
        back and every message is handled again in a transaction of its own, so the others
        still commit and only the failing one meets its fate."""
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await self._handle_batch(conn, items)
                return
            except _BatchAborted:
                if len(items) == 1:
                    return  # nothing else to save; its fate is set
            for item in items:
                item.fate, item.error = "ack", ""
                try:
                    async with conn.transaction():
                        await self._handle_batch(conn, [item])
                except _BatchAborted:
                    pass  # its fate is set; its writes were rolled back

    async def _handle_batch(self, conn: asyncpg.Connection, items: list[_Item]) -> None:
        # One round trip claims every inbox row of the batch; a message already there (or
        # twice in this batch) is a redelivery and a no-op.
        claimed = await inbox.claim(conn, self._queue_name, [_inbox_key(item) for item in items])
        together: dict[int, list[_Item]] = {}
        for item in items:
            assert item.route is not None
            if _inbox_key(item) not in claimed:
                item.fate = "duplicate"
                continue
            claimed.discard(_inbox_key(item))
            if item.route.handle_many is not None:
                together.setdefault(id(item.route), []).append(item)
                continue
            assert item.route.handler is not None
            try:
                with structlog.contextvars.bound_contextvars(
                    message_id=item.message_id, routing_key=item.routing_key
                ):
                    await item.route.handler(item.payload, conn)
            except DATABASE_DOWN:
                raise
            except Exception as exc:
                item.fate, item.error = _fate_of(exc)
                if item.fate == "retry" and not isinstance(exc, TransientError):
                    log.exception("handler_failed", message_id=item.message_id)
                raise _BatchAborted from exc
        for group in together.values():
            route = group[0].route
            assert route is not None and route.handle_many is not None
            try:
                await route.handle_many(_events(route, group), conn)
            except DATABASE_DOWN:
                raise
            except Exception as exc:
                # The whole group shares the fate here; the one-by-one pass that follows an
                # aborted batch finds the message that really fails.
                for item in group:
                    item.fate, item.error = _fate_of(exc)
                if group[0].fate == "retry" and not isinstance(exc, TransientError):
                    log.exception("handler_failed", message_id=group[0].message_id)
                raise _BatchAborted from exc

    async def _settle_all(self, items: list[_Item]) -> None:
        """Settle a batch: copies to the delay or dead-letter queues first, then the acks.

        With one worker, deliveries reach batches in order and every earlier batch is settled
        (acked, or nacked back to the queue), so a single ``basic.ack`` with ``multiple`` on
        the batch's last delivery acknowledges the whole batch: one frame instead of one per
        message. Several workers, a batch that spans channels (a reconnect) or a copy that
        could not be published fall back to one settlement per message.
        """
        placed = [await self._place_copy(item) for item in items]
        if self._concurrency == 1 and len(items) > 1 and all(placed) and _one_channel(items):
            try:
                await items[-1].message.ack(multiple=True)
            except Exception as exc:
                # The channel is gone: the broker redelivers the whole batch.
                log.warning("consumer_settle_failed", batch=len(items), error=str(exc))
                return
            for item in items:
                self._count(item)
            return
        for item, copy_placed in zip(items, placed, strict=True):
            try:
                if copy_placed:
                    await item.message.ack()
                else:
                    # Back to the queue now rather than left unacked (a later multiple ack
                    # would take it along); the queue's delivery limit still bounds it.
                    await item.message.nack(requeue=True)
                    continue
            except Exception as exc:
                # The delivery's channel is gone: it will be redelivered.
                log.warning("consumer_settle_failed", message_id=item.message_id, error=str(exc))
                continue
            self._count(item)

    async def _place_copy(self, item: _Item) -> bool:
        """For a message to retry or dead-letter, publish its copy (or its parts); False if
        that failed."""
        try:
            if item.fate in ("retry", "dead") and await self._split(item):
                return True
            if item.fate == "retry":
                if item.attempt < len(self._retry_delays_ms):
                    await self._publish_copy(
                        "",
                        retry_queue_name(self._queue_name, self._retry_delays_ms[item.attempt]),
                        item,
                        {ATTEMPT: item.attempt + 1, "x-last-error": item.error[:500]},
                    )
                else:
                    item.fate = "dead"
                    item.error = f"gave up after {item.attempt + 1} attempts; {item.error}"
            if item.fate == "dead":
                await self._publish_copy(
                    DEAD_LETTER_EXCHANGE, "", item, {"x-error": item.error[:1000]}
                )
        except Exception as exc:
            # The broker refused the copy: the original stays unacked and is redelivered.
            log.warning("consumer_settle_failed", message_id=item.message_id, error=str(exc))
            return False
        return True

    def _count(self, item: _Item) -> None:
        fate = item.fate
        self.stats.outcomes[fate] = self.stats.outcomes.get(fate, 0) + 1
        self._metrics.messages.labels(self._queue_name, fate).inc()
        if fate in ("dead", "retry", "split"):
            log.warning(
                {"dead": "message_dead_lettered", "retry": "message_retry_scheduled"}.get(
                    fate, "message_split"
                ),
                queue=self._queue_name,
                message_id=item.message_id,
                routing_key=item.routing_key,
                attempt=item.attempt,
                error=item.error,
            )

    async def _split(self, item: _Item) -> bool:
        """Publish a failed message's parts in its place (see ``Route.split``); False when it
        has no parts to split into."""
        if item.route is None or item.route.split is None:
            return False
        parts = item.route.split(orjson.loads(item.message.body))
        if len(parts) < 2:
            return False
        attempt, target = item.attempt, self._queue_name
        headers: dict[str, Any] = {"x-split-from": item.message_id}
        if item.fate == "retry" and attempt < len(self._retry_delays_ms):
            target = retry_queue_name(self._queue_name, self._retry_delays_ms[attempt])
            attempt += 1
            headers["x-last-error"] = item.error[:500]
        assert self._publisher is not None
        await self._publisher.publish_many(
            [
                OutgoingMessage(
                    exchange="",
                    routing_key=target,
                    message_id=message_id,
                    payload=payload,
                    headers={**headers, ORIGINAL_ROUTING_KEY: routing_key, ATTEMPT: attempt},
                )
                for routing_key, message_id, payload in parts
            ]
        )
        item.error = f"split into {len(parts)} messages after: {item.error}"
        item.fate = "split"
        return True

    async def _publish_copy(
        self, exchange: str, routing_key: str, item: _Item, extra: dict[str, Any]
    ) -> None:
        assert self._publisher is not None
        original = item.message
        headers = dict(original.headers or {})
        headers.pop("x-death", None)
        headers.update(extra)
        headers[ORIGINAL_ROUTING_KEY] = item.routing_key
        headers["x-original-queue"] = self._queue_name
        copy = aio_pika.Message(
            body=original.body,
            content_type=original.content_type,
            message_id=original.message_id,
            headers=headers,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            timestamp=original.timestamp,
        )
        await self._publisher.publish_raw(exchange, routing_key, copy)


def _inbox_key(item: _Item) -> tuple[str, str]:
    """What makes a message the same message: its type and its id (the contract's rule)."""
    return item.routing_key, item.message_id


def _events(route: Route, group: list[_Item]) -> list[Any]:
    """The payloads of a group of one route's messages, runs flattened into their events."""
    if route.events is None:
        return [item.payload for item in group]
    return [event for item in group for event in item.payload]


def per_run(results: Sequence[T | Exception], runs: Sequence[int]) -> list[list[T] | Exception]:
    """The results of a batch's runs, prepared event by event as one list, back per run (``runs``
    gives each run's length): a run with a failed event takes that event's failure (and is then
    split)."""
    grouped: list[list[T] | Exception] = []
    start = 0
    for length in runs:
        run = results[start : start + length]
        start += length
        failed = [r for r in run if isinstance(r, Exception)]
        grouped.append(failed[0] if failed else [r for r in run if not isinstance(r, Exception)])
    return grouped


def _one_channel(items: list[_Item]) -> bool:
    """Whether every message of the batch came on the same (still open) channel."""
    try:
        channel = items[0].message.channel
        return all(item.message.channel is channel for item in items)
    except Exception:  # a closed channel refuses to be looked at
        return False


def _fate_of(exc: BaseException) -> tuple[str, str]:
    """The fate of a message whose handling raised ``exc`` (style.md convention 5). A database
    outage (met in a prepare step: the transaction re-raises it) pauses the batch instead."""
    if isinstance(exc, DATABASE_DOWN):
        return "paused", type(exc).__name__
    if isinstance(exc, BadInput):
        return "dead", f"bad input: {exc}"
    if isinstance(exc, asyncpg.DataError):
        # a value the database refuses (out of range, a NUL, too long, not a number): the
        # same message can never succeed, a second line behind the schemas' bounds
        return "dead", f"bad input: {data_error_reason(exc)}"
    if isinstance(exc, (Refused, CredentialsDead)):
        return "refused", str(exc)  # already in the account's event log; retrying cannot help
    if isinstance(exc, TransientError):
        return "retry", f"transient: {exc}"
    return "retry", f"{type(exc).__name__}: {exc}"  # a bug or an unforeseen failure: bounded


def data_error_reason(exc: asyncpg.DataError) -> str:
    """Why the database refused a value, without the value: its texts quote what they refused
    (``invalid input syntax for type uuid: "..."``, ``invalid input for query argument $1:
    [...]``), which may be buyer data."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    text = _ARGUMENT_VALUE.sub(r"\1 (", text)
    text = _QUOTED.sub('"..."', text)
    return f"the database refused a value: {text[:200]} ({type(exc).__name__}, {exc.sqlstate})"


# asyncpg's own encoding errors: ``invalid input for query argument $2: <value> (<why>)``
_ARGUMENT_VALUE = re.compile(r"(query argument \$\d+): .*? \((?=[^()]*\)$)")
# a quoted value longer than a type or encoding name
_QUOTED = re.compile(r'"[^"]{9,}"|"[^"]*"$')


def _summarise(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
