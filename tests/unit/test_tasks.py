"""Stopping tasks in bounded time (allegro_sync/tasks.py) and the process's exit watchdog
(daemon/app.py): a task that ignores its cancellation is left behind, not waited for; the
caller's own cancellation is not swallowed; a process whose stop hangs still exits."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from allegro_sync.tasks import stop_task, wait_tasks


async def _stubborn(release: asyncio.Event) -> None:
    """Ignores cancellation until released (a handler that catches everything)."""
    while not release.is_set():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            continue


async def test_a_task_that_ignores_its_cancellation_is_left_behind_in_time() -> None:
    release = asyncio.Event()
    task = asyncio.create_task(_stubborn(release))
    await asyncio.sleep(0)
    started = time.monotonic()
    assert await stop_task(task, 0.1, grace=0.2) is False
    assert time.monotonic() - started < 1.0
    left = await wait_tasks([task], 0.1, what="stubborn", grace=0.2)
    assert left == 1 and not task.done()
    release.set()
    task.cancel()
    await asyncio.wait({task}, timeout=1)


async def test_a_task_that_finishes_in_time_is_waited_for_and_its_error_raised() -> None:
    async def short() -> None:
        await asyncio.sleep(0.05)

    async def failing() -> None:
        await asyncio.sleep(0.05)
        raise ValueError("broken")

    assert await stop_task(asyncio.create_task(short()), 1.0) is True
    with pytest.raises(ValueError, match="broken"):
        await stop_task(asyncio.create_task(failing()), 1.0)
    # wait_tasks retrieves errors instead of raising them
    assert await wait_tasks([asyncio.create_task(failing())], 1.0, what="failing") == 0


async def test_the_callers_cancellation_goes_through() -> None:
    """The stop of a part cut by its own timeout (``Daemon.stop``'s ``wait_for``) ends at once,
    even while the task it stops ignores its cancellation."""
    release = asyncio.Event()
    task = asyncio.create_task(_stubborn(release))
    await asyncio.sleep(0)
    started = time.monotonic()
    with pytest.raises(TimeoutError):  # cut while waiting for the cancelled task to unwind
        await asyncio.wait_for(stop_task(task, 0.05, grace=10.0), 0.3)
    assert time.monotonic() - started < 1.0
    release.set()
    task.cancel()
    await asyncio.wait({task}, timeout=1)


def test_the_exit_watchdog_ends_a_process_whose_stop_hangs() -> None:
    script = (
        "import time\n"
        "from allegro_sync.daemon.app import exit_watchdog\n"
        "exit_watchdog(0.3)\n"
        "time.sleep(30)\n"  # a stop that never returns (the loop blocked)
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert time.monotonic() - started < 20  # the import is most of it
    assert b"shutdown_overran" in done.stdout + done.stderr
