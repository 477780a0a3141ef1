"""Command-line entry: ``allegro-sync emulator`` and ``python -m allegro_sync.emulator``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os

from aiohttp import web

from . import contract
from .app import create_app
from .config import ClientRegistration, EmulatorConfig, default_clients
from .context import EMULATOR_KEY
from .demo import purchase_stream, seed_demo
from .latency import PROFILES

logger = logging.getLogger("allegro_sync.emulator")


def port(value: str) -> int:
    """A TCP port to listen on: 0 (any free one) to 65535."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0 to 65535)")
    return number


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the emulator subcommand."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=port, default=8090)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sandbox", action="store_true", help="act as the sandbox hosts")
    parser.add_argument(
        "--token-ttl", type=int, default=43199, help="access token lifetime in seconds"
    )
    parser.add_argument(
        "--client-id",
        action="append",
        default=[],
        help="register a client (repeatable; pairs with --client-secret)",
    )
    parser.add_argument("--client-secret", action="append", default=[])
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        help="redirect URI (pattern) for the clients given here",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="create seller demo-shop with offers and a stream of purchases",
    )
    parser.add_argument(
        "--purchase-every", type=float, default=5.0, help="seconds between demo purchases"
    )
    parser.add_argument(
        "--latency",
        choices=sorted(PROFILES),
        default=os.environ.get("EMULATOR_LATENCY", "none"),
        help="latency profile: none answers at once, realistic as Allegro across the internet"
        " (default: $EMULATOR_LATENCY or none)",
    )
    parser.add_argument(
        "--rate-limit-per-minute",
        type=int,
        default=9000,
        help="requests a minute per client id before it is blocked (Allegro: 9000)",
    )
    parser.add_argument(
        "--check-contract",
        action="store_true",
        help="log every request and answer that Allegro's OpenAPI spec does not allow",
    )


def config_from(args: argparse.Namespace) -> EmulatorConfig:
    """An :class:`EmulatorConfig` from parsed arguments."""
    clients = default_clients()
    if len(args.client_id) != len(args.client_secret):
        raise SystemExit("--client-id and --client-secret must be given the same number of times")
    if args.latency not in PROFILES:  # argparse leaves a default from the environment unchecked
        raise SystemExit(f"EMULATOR_LATENCY must be one of {', '.join(sorted(PROFILES))}")
    uris = tuple(args.redirect_uri) or default_clients()["demo-client"].redirect_uris
    for cid, secret in zip(args.client_id, args.client_secret, strict=True):
        clients[cid] = ClientRegistration(secret, uris, device_grant=True)
    return EmulatorConfig(
        seed=args.seed,
        sandbox=args.sandbox,
        access_token_ttl=args.token_ttl,
        clients=clients,
        latency=args.latency,
        rate_limit_per_minute=args.rate_limit_per_minute,
    )


async def _serve(args: argparse.Namespace) -> None:
    app = create_app(config_from(args))
    if args.check_contract:
        log = contract.install(app)
        log.on_finding = lambda finding: logger.warning("contract violation: %s", finding)
    emulator = app[EMULATOR_KEY]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    print(
        f"allegro emulator on http://{args.host}:{args.port} "
        f"({'sandbox' if args.sandbox else 'production'}, latency {args.latency})",
        flush=True,
    )
    if args.demo:
        seller = seed_demo(emulator)
        print(
            f"demo seller {seller.login} (id {seller.id}); client demo-client/demo-secret",
            flush=True,
        )
        emulator.spawn(purchase_stream(emulator, seller, args.purchase_every))
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted. Returns the process exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m allegro_sync.emulator``."""
    parser = argparse.ArgumentParser(
        prog="allegro-sync emulator", description="Allegro REST API emulator"
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
