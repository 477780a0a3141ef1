"""``allegro-sync customers export``: the customer list to a CSV or XML file (design.md C5).

The file appears only when complete: rows go to a temporary file beside it, renamed into place on
success and removed on failure. On a terminal, an export that takes longer than a moment draws a
progress bar on stderr, counted against a ``count(*)`` taken in the same snapshot as the rows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

import asyncpg

from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.adapters.postgres.customer_queries import (
    CustomerFilter,
    count_customers,
    iter_export_rows,
)
from allegro_sync.contract import CUSTOMER_TYPES
from allegro_sync.daemon.progress import Progress
from allegro_sync.export.filters import FilterError, parse_customer_filter
from allegro_sync.export.formats import EXPORT_FORMATS, Encoder

EXIT_FAILED = 1
EXIT_USAGE = 2


def add_customers_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Register ``customers export`` on the top-level subcommands."""
    customers = commands.add_parser("customers", help="customer cards: export the list")
    actions = customers.add_subparsers(dest="customers_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export",
        help="write customers to a CSV or XML file (selected ids, a filter, or all)",
        description="Write customers to a CSV or XML file. Without --ids or filters: all.",
    )
    export.add_argument("--format", required=True, choices=sorted(EXPORT_FORMATS))
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    export.add_argument("--ids", metavar="1,2,...", help="only these customer ids")
    export.add_argument("--account-id", metavar="N", help="only customers of this account")
    export.add_argument("--type", choices=CUSTOMER_TYPES, help="only this customer type")
    nip = export.add_mutually_exclusive_group()
    nip.add_argument(
        "--has-nip", dest="has_nip", action="store_const", const="true", help="only with a NIP"
    )
    nip.add_argument(
        "--no-nip", dest="has_nip", action="store_const", const="false", help="only without a NIP"
    )
    export.add_argument("--q", metavar="TEXT", help="text in the name, company, e-mail or NIP")
    export.add_argument("--created-from", metavar="ISO", help="created on or after (date/time)")
    export.add_argument("--created-to", metavar="ISO", help="created on or before (date/time)")


async def _counted(
    rows: AsyncIterable[Any], progress: Progress, counter: list[int]
) -> AsyncIterator[Any]:
    async for row in rows:
        counter[0] += 1
        progress.update(counter[0])
        yield row


def _without_credentials(text: str) -> str:
    """The first line of ``text``, with ``user:password@`` dropped from URLs."""
    lines = re.sub(r"://[^/@\s]*@", "://***@", text).splitlines()
    return lines[0] if lines else text


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"allegro-sync: {_without_credentials(message)}", file=sys.stderr)
    return code


async def run_customers(args: argparse.Namespace, database_url: str) -> int:
    """Run a ``customers`` action; the process exit code."""
    if args.customers_command != "export":
        return _fail(f"unknown customers action {args.customers_command!r}", EXIT_USAGE)
    try:
        selection = parse_customer_filter(
            {
                key: value
                for key, value in {
                    "ids": args.ids,
                    "account_id": args.account_id,
                    "type": args.type,
                    "has_nip": args.has_nip,
                    "q": args.q,
                    "created_from": args.created_from,
                    "created_to": args.created_to,
                }.items()
                if value is not None
            }
        )
    except FilterError as exc:
        return _fail(f"--{exc.field.replace('_', '-')}: {exc.message}", EXIT_USAGE)
    fmt = EXPORT_FORMATS[args.format]
    output = Path(args.output)
    if await asyncio.to_thread(output.is_dir):
        return _fail(f"{output} is a directory; name a file with -o")
    try:
        fd, temp_name = tempfile.mkstemp(
            dir=output.parent, prefix=f".{output.name}.", suffix=".part"
        )
    except OSError as exc:
        return _fail(f"cannot write beside {output}: {exc.strerror or exc}")
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as file:
            written = await _export(database_url, selection, fmt.encode, file)
            file.flush()
            os.fsync(file.fileno())
        await asyncio.to_thread(temp.replace, output)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        await asyncio.to_thread(_remove, temp)
        return _fail(f"export failed: {type(exc).__name__}: {exc}")
    except BaseException:
        _remove(temp)  # cancelled or interrupted: no await is safe here any more
        raise
    print(f"customers exported: {written} to {output}", file=sys.stderr)
    return 0


async def _export(
    database_url: str, selection: CustomerFilter, encode: Encoder, file: BinaryIO
) -> int:
    conn = await pg.connect(database_url)
    try:
        # One snapshot for the count and the rows, so the bar ends where the file does.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            total = await count_customers(conn, selection)
            progress = Progress(total, sys.stderr, label="customers")
            counter = [0]
            rows = _counted(iter_export_rows(conn, selection), progress, counter)
            async for chunk in encode(rows):
                # Disk writes off the event loop: the database connection keeps being served.
                await asyncio.to_thread(file.write, chunk)
            progress.finish(counter[0])
            return counter[0]
    finally:
        await conn.close()
