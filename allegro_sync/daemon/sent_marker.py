"""The status step of tracking numbers (issue 16): orders whose tracking number is on Allegro
become SENT (``handlers/shipments.py`` ``mark_sent_pending``), outside the consumer's batch.

Every replica runs it: rows are leased (``FOR UPDATE SKIP LOCKED``), so two replicas never write
one order's status at once. A round that found work is followed by the next at once; an idle
one waits ``interval`` seconds. A step that keeps failing is tried again when its lease ends
(30 s) and given up within ``SentStepBounds`` (``SENT_STEP_MAX_ATTEMPTS``,
``SENT_STEP_GIVE_UP_AFTER``): an event-log entry and ``allegro_sync_sent_step_given_up_total``.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.postgres.notifications import Failures
from allegro_sync.handlers.shipments import (
    DEFAULT_SENT_BOUNDS,
    SentStepBounds,
    mark_sent_pending,
)
from allegro_sync.metrics import Metrics
from allegro_sync.tasks import stop_task

log = structlog.get_logger(__name__)


class SentMarker:
    """Writes the pending SENT statuses of tracking numbers on Allegro."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        allegro: AllegroRestClient,
        metrics: Metrics,
        bounds: SentStepBounds = DEFAULT_SENT_BOUNDS,
        interval: float = 0.5,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._bounds = bounds
        self._allegro = allegro
        self._interval = interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop."""
        self._task = asyncio.create_task(self._run(), name="sent-marker")

    async def stop(self, timeout: float) -> None:
        """Finish the round in hand within ``timeout``."""
        self._stopping.set()
        await stop_task(self._task, timeout)

    async def _run(self) -> None:
        failures = Failures("sent_marker_failing")
        while not self._stopping.is_set():
            pause = self._interval
            try:
                done = await mark_sent_pending(
                    self._allegro,
                    self._pool,
                    bounds=self._bounds,
                    given_up=self._metrics.sent_step_given_up.inc,
                )
                if done:
                    pause = 0.0
                failures.succeeded()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                pause = failures.pause(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), pause)
