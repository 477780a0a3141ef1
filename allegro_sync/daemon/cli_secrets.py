"""``allegro-sync secrets rotate``: re-encrypt every stored secret under the current
``SECRET_KEY`` while the previous key (``SECRET_KEY_PREVIOUS`` or ``--old-key-file``) still
opens the old ones (``handlers/secret_rotation.py``). One line and a non-zero exit on refusal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from allegro_sync.adapters.allegro.crypto import TokenCipher
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.config.settings import Settings
from allegro_sync.daemon.cli_errors import CliError, report
from allegro_sync.handlers.secret_rotation import RotationCount, rotate_secrets


def add_secrets_command(commands: Any) -> None:
    """Register ``secrets`` and its sub-commands."""
    parser = commands.add_parser("secrets", help="manage the keys of the stored secrets")
    sub = parser.add_subparsers(dest="secrets_command", required=True, metavar="ACTION")
    rotate = sub.add_parser(
        "rotate",
        help="re-encrypt every stored token under SECRET_KEY (the old key: SECRET_KEY_PREVIOUS)",
    )
    rotate.add_argument("--dry-run", action="store_true", help="count what would change only")
    rotate.add_argument(
        "--old-key-file", type=Path, help="the previous key, instead of SECRET_KEY_PREVIOUS"
    )
    rotate.add_argument("--batch-size", type=int, default=100, help="rows per transaction")


def _old_keys(args: argparse.Namespace, settings: Settings) -> list[str]:
    keys = settings.secret_keys()[1:]
    if args.old_key_file is not None:
        try:
            old = args.old_key_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CliError(f"--old-key-file: {exc.strerror}: {args.old_key_file}") from None
        if len(old) < 32:
            raise CliError("--old-key-file: the key must be at least 32 characters")
        keys.append(old)
    if not keys:
        raise CliError(
            "no previous key: set ALLEGRO_SYNC_SECRET_KEY_PREVIOUS or give --old-key-file"
        )
    return keys


def _line(count: RotationCount, dry_run: bool) -> str:
    verb = "would re-encrypt" if dry_run else "re-encrypted"
    line = (
        f"{count.table}: {count.seen}/{count.total} rows, {verb} {count.rotated},"
        f" already under the current key {count.current}"
    )
    return line + (f", opened by no key {count.unreadable}" if count.unreadable else "")


async def run_secrets(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``secrets`` action."""
    try:
        if args.batch_size < 1:
            raise CliError("--batch-size must be at least 1")
        cipher = TokenCipher(settings.secret_key.get_secret_value(), *_old_keys(args, settings))
    except CliError as exc:
        return report(exc)
    pool = await pg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        counts = await rotate_secrets(
            pool,
            cipher,
            dry_run=args.dry_run,
            batch_size=args.batch_size,
            progress=lambda count: print(_line(count, args.dry_run), flush=True),
        )
    finally:
        await pool.close()
    for count in counts:
        print(_line(count, args.dry_run) + " (done)")
    unreadable = sum(c.unreadable for c in counts)
    if unreadable:
        print(
            f"allegro-sync: {unreadable} rows open under neither key and were left as they are"
            " (their accounts must reconnect)",
            file=sys.stderr,
        )
        return 1
    return 0
