"""``allegro-sync shipments ...``: the handover protocol and a courier pickup of parcels sent
with Allegro (``handlers/parcels.py``).

``shipments protocol --account ID --shipment ID... --output FILE`` writes the day's handover
protocol (a PDF) of the parcels to FILE. ``shipments pickup --account ID --shipment ID...
[--date YYYY-MM-DD]`` orders a courier for the parcels (the first slot Allegro proposes, or the
first on the date) and prints the pickup; while Allegro is still ordering it, one line with its
command id and exit code 75 (try again): ``shipments pickup --account ID --command-id UUID``
reads that pickup again (never a second courier). A refusal is one line on stderr and exit
code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from allegro_sync.adapters.postgres import accounts
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.config.settings import Settings
from allegro_sync.daemon.app import build_allegro_stack, new_http_session
from allegro_sync.daemon.cli_errors import REFUSALS, CliError, report
from allegro_sync.handlers.parcel_handover import (
    PickupPending,
    pickup,
    protocol,
    resume_pickup,
)
from allegro_sync.handlers.parcels import ParcelError
from allegro_sync.metrics import Metrics

# sysexits.h: a temporary failure, the same call may succeed later
EX_TEMPFAIL = 75


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a command id (a UUID): {text!r}") from None


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def add_shipments_command(commands: Any) -> None:
    """Register ``shipments`` and its sub-commands."""
    parser = commands.add_parser("shipments", help="parcels sent with Allegro: protocol, pickup")
    sub = parser.add_subparsers(dest="shipments_command", required=True, metavar="ACTION")
    for name, text in (
        ("protocol", "write the handover protocol (PDF) of parcels to a file"),
        ("pickup", "order a courier pickup of parcels"),
    ):
        action = sub.add_parser(name, help=text)
        action.add_argument("--account", type=int, metavar="ID", required=True)
        if name == "protocol":
            action.add_argument(
                "--shipment", metavar="ID", nargs="+", required=True, help="Allegro shipment ids"
            )
            action.add_argument("--output", metavar="FILE", type=Path, required=True)
        else:
            which = action.add_mutually_exclusive_group(required=True)
            which.add_argument("--shipment", metavar="ID", nargs="+", help="Allegro shipment ids")
            which.add_argument(
                "--command-id",
                type=_uuid,
                metavar="UUID",
                help="read again a pickup asked for before (its command id)",
            )
            action.add_argument("--date", type=_date, metavar="YYYY-MM-DD")


async def run_shipments(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``shipments`` action; the exit code."""
    pool = await pg.create_pool(settings.database_url, min_size=1, max_size=2)
    session = new_http_session(settings.user_agent)
    try:
        if await accounts.is_active(pool, args.account) is None:
            raise CliError(f"no account {args.account}")
        stack = build_allegro_stack(settings, pool, session, Metrics())
        if args.shipments_command == "protocol":
            document = await protocol(stack.allegro, pool, args.account, args.shipment)
            _write(args.output, document)
            print(f"protocol of {len(set(args.shipment))} parcels written to {args.output}")
        else:
            if args.command_id is not None:
                result = await resume_pickup(stack.allegro, pool, args.account, args.command_id)
            else:
                result = await pickup(stack.allegro, pool, args.account, args.shipment, args.date)
            print(json.dumps(result))
        return 0
    except PickupPending as exc:
        print(f"allegro-sync: {exc}", file=sys.stderr)
        return EX_TEMPFAIL
    except (*REFUSALS, ParcelError) as exc:
        return report(exc)
    finally:
        await session.close()
        await pool.close()


def _write(path: Path, document: bytes) -> None:
    """Write the file whole or not at all (a temporary file beside it, then renamed)."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(document)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
