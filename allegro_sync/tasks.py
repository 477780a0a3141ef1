"""Stopping asyncio tasks in bounded time: the parts of the daemon stop with these, so that a
task hanging on Allegro, the broker or the database, or one that ignores its cancellation, is
left behind (and named in the log) instead of holding up the process's exit."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

import structlog

log = structlog.get_logger(__name__)

CANCEL_GRACE = 2.0  # seconds a cancelled task gets to unwind before it is left behind


async def stop_task(
    task: asyncio.Task[Any] | None, timeout: float, *, grace: float = CANCEL_GRACE
) -> bool:
    """Let ``task`` finish the step in hand within ``timeout``, then cancel it and give it
    ``grace`` seconds to unwind; True when it ended. Bounded either way: a task that ignores
    its cancellation is named in the log and left behind. The caller's own cancellation (a
    stop that ran out of time) goes through, never swallowed; an error the task ended with is
    raised, as before."""
    if task is None:
        return True
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        log.error("task_stop_timed_out", task=task.get_name())
        return False
    error = None if task.cancelled() else task.exception()
    if error is not None:
        raise error
    return True


async def wait_tasks(
    tasks: Collection[asyncio.Task[Any]], timeout: float, *, what: str, grace: float = CANCEL_GRACE
) -> int:
    """Let ``tasks`` end within ``timeout``, cancel those that did not and give them ``grace``
    seconds to unwind; how many were left behind (logged as ``what``). Their errors are
    retrieved, not raised; the caller's own cancellation goes through."""
    pending: set[asyncio.Task[Any]] = set(tasks)
    if pending:
        _, pending = await asyncio.wait(pending, timeout=max(timeout, 0.0))
    for task in pending:
        task.cancel()
    if pending:
        _, pending = await asyncio.wait(pending, timeout=grace)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: an error at stop is no news
    if pending:
        log.error("tasks_stop_timed_out", what=what, left=len(pending))
    return len(pending)
