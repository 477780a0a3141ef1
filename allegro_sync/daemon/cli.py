"""The ``allegro-sync`` command line: one line and a non-zero exit on bad input."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

import asyncpg

from allegro_sync.config.settings import (
    DatabaseSettings,
    Settings,
    SettingsError,
    load_settings,
)
from allegro_sync.daemon import runtime
from allegro_sync.daemon.logging import configure_logging

EXIT_SETTINGS = 2
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments: one line on stderr (no usage block) and exit 2; sub-commands inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def log_level(value: str) -> str:
    """``--log-level``: one of ``LOG_LEVELS``, any case."""
    if value.upper() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"{value!r} is not one of {', '.join(LOG_LEVELS)}")
    return value.upper()


def build_parser() -> argparse.ArgumentParser:
    """All commands and their options."""
    parser = OneLineParser(
        prog="allegro-sync",
        description="Sync Allegro seller accounts with an ERP over RabbitMQ and PostgreSQL.",
    )
    parser.add_argument("--log-level", default="INFO", type=log_level, help=", ".join(LOG_LEVELS))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="run the daemon (migrates and declares the topology first)")
    commands.add_parser("migrate", help="create the database if missing and apply migrations")
    from allegro_sync.daemon.cli_accounts import add_accounts_command

    add_accounts_command(commands)
    from allegro_sync.daemon.cli_customers import add_customers_command

    add_customers_command(commands)
    from allegro_sync.daemon.cli_offers import add_offers_command

    add_offers_command(commands)
    from allegro_sync.daemon.cli_shipments import add_shipments_command

    add_shipments_command(commands)
    from allegro_sync.daemon.cli_secrets import add_secrets_command

    add_secrets_command(commands)
    emulator = commands.add_parser("emulator", help="serve the bundled Allegro API emulator")
    from allegro_sync.emulator import server as emulator_server

    emulator_server.add_arguments(emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        return _dispatch(args)
    except SettingsError as exc:
        print(f"allegro-sync: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    except KeyboardInterrupt:
        return 130
    except (OSError, ConnectionError, asyncpg.PostgresError) as exc:
        print(
            f"allegro-sync: {_without_credentials(f'{type(exc).__name__}: {exc}')}", file=sys.stderr
        )
        return 1


def _without_credentials(text: str) -> str:
    """Drop ``user:password@`` from URLs that an error message may quote."""
    return re.sub(r"://[^/@\s]*@", "://***@", text).splitlines()[0] if text else text


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "migrate":
        from allegro_sync.adapters.postgres.migrations import migrate

        db = load_settings(DatabaseSettings)
        applied = asyncio.run(migrate(db.database_url))
        print(
            f"migrations applied: {len(applied)}" + (f" ({', '.join(applied)})" if applied else "")
        )
        return 0
    if args.command == "run":
        from allegro_sync.daemon.app import run_daemon

        settings = load_settings(Settings)
        return runtime.run(run_daemon(settings))
    if args.command == "accounts":
        from allegro_sync.daemon.cli_accounts import run_accounts

        return asyncio.run(run_accounts(args, load_settings(Settings)))
    if args.command == "offers":
        from allegro_sync.daemon.cli_offers import run_offers

        return asyncio.run(run_offers(args, load_settings(Settings)))
    if args.command == "shipments":
        from allegro_sync.daemon.cli_shipments import run_shipments

        return asyncio.run(run_shipments(args, load_settings(Settings)))
    if args.command == "secrets":
        from allegro_sync.daemon.cli_secrets import run_secrets

        return asyncio.run(run_secrets(args, load_settings(Settings)))
    if args.command == "customers":
        from allegro_sync.daemon.cli_customers import run_customers

        return asyncio.run(run_customers(args, load_settings(DatabaseSettings).database_url))
    if args.command == "emulator":
        from allegro_sync.emulator import server as emulator_server

        return emulator_server.run(args)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
