"""``allegro-sync offers list --all-unlisted --account ID [--dry-run] [--draft]``: list every
product with an EAN and no offer on the account (issue 17 item 3).

The run is a listing job in the database (``handlers/listing_jobs.py``), carried out by the
running daemon's listing service, whose limiter and per-seller write budget it shares with
every other writer (order traffic first); this command starts it and shows its progress with a
bar on stderr (on a terminal) until nothing is open. Interrupted, the job goes on in the
daemon (``GET /offers/listing-jobs/{id}``). ``--dry-run`` only counts, sending nothing.
Exit 0 when every product was listed, 1 when some failed or were skipped (the job's failures
say why), 2 on bad input.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

import asyncpg

from allegro_sync.adapters.postgres import listing_jobs as store
from allegro_sync.daemon.cli_errors import CliError
from allegro_sync.daemon.progress import Progress
from allegro_sync.handlers import listing_jobs as jobs

POLL_INTERVAL = 0.5


async def list_all_unlisted(
    pool: asyncpg.Pool,
    account_id: int,
    *,
    dry_run: bool,
    publish: bool = True,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    poll_interval: float = POLL_INTERVAL,
) -> int:
    """Run (or dry-run) a listing job for one account; the exit code."""
    try:
        if dry_run:
            found = await jobs.dry_run(pool, account_id, publish=publish)
            out.write(
                f"account {account_id} (dry run): {found['would_list']} products with an EAN and"
                f" no offer would be listed, {found['would_skip']} skipped (no price"
                + (" or no stock" if publish else "")
                + ")\n"
            )
            return 0
        job = await jobs.start_job(pool, account_id, publish=publish)
    except jobs.JobError as exc:
        raise CliError(exc.detail) from None
    job_id = job["id"]
    err.write(
        f"listing job {job_id}: {job['total']} products, carried out by the daemon"
        f" (GET /offers/listing-jobs/{job_id})\n"
    )
    started = time.monotonic()
    bar = Progress(job["total"], err, label=f"account {account_id} listing")
    done = 0
    try:
        while True:
            job = await store.get(pool, job_id)
            assert job is not None
            done = job["total"] - job["pending"]
            bar.update(done, job["total"])
            if not job["pending"]:
                break
            await asyncio.sleep(poll_interval)
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.write(f"\nthe job goes on in the daemon: GET /offers/listing-jobs/{job_id}\n")
        raise
    bar.finish(done)
    seconds = time.monotonic() - started
    out.write(
        f"account {account_id}: {job['listed']} listed, {job['failed']} refused,"
        f" {job['skipped']} skipped of {job['total']} in {seconds:.1f} s (job {job_id})\n"
    )
    return 0 if job["failed"] == 0 and job["skipped"] == 0 else 1
