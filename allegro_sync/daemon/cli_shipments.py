"""``allegro-sync shipments ...``: the handover protocol and a courier pickup of parcels sent
with Allegro (``handlers/parcels.py``).

``shipments protocol --account ID --shipment ID... --output FILE`` writes the day's handover
protocol (a PDF) of the parcels to FILE. ``shipments pickup --account ID --shipment ID...
[--date YYYY-MM-DD]`` orders a courier for the parcels (the first slot Allegro proposes, or the
first on the date) and prints the pickup. A refusal is one line on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import date
from pathlib import Path
from typing import Any

from allegro_sync.adapters.postgres import accounts
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.config.settings import Settings
from allegro_sync.daemon.app import build_allegro_stack, new_http_session
from allegro_sync.daemon.cli_errors import REFUSALS, CliError, report
from allegro_sync.handlers.parcels import ParcelError, pickup, protocol
from allegro_sync.metrics import Metrics


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
        action.add_argument(
            "--shipment", metavar="ID", nargs="+", required=True, help="Allegro shipment ids"
        )
        if name == "protocol":
            action.add_argument("--output", metavar="FILE", type=Path, required=True)
        else:
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
            result = await pickup(stack.allegro, pool, args.account, args.shipment, args.date)
            print(json.dumps(result))
        return 0
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
