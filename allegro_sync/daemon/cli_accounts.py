"""``allegro-sync accounts ...``: connect (device flow), list, show, rename, (de)activate, delete,
change settings, refresh the token. One line and a non-zero exit on any refusal."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from allegro_sync.adapters.allegro.errors import OAuthError
from allegro_sync.adapters.postgres import accounts as store
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.config.settings import Settings
from allegro_sync.daemon.app import build_allegro_stack, new_http_session
from allegro_sync.daemon.cli_errors import REFUSALS, CliError, report
from allegro_sync.daemon.pollers import wake_poller
from allegro_sync.handlers import accounts
from allegro_sync.metrics import Metrics


def add_accounts_command(commands: Any) -> None:
    """Register ``accounts`` and its sub-commands."""
    parser = commands.add_parser("accounts", help="connect and manage Allegro seller accounts")
    sub = parser.add_subparsers(dest="accounts_command", required=True, metavar="ACTION")
    connect = sub.add_parser("connect", help="connect an account with the device flow (headless)")
    connect.add_argument("--sandbox", action="store_true", help="a sandbox account")
    sub.add_parser("list", help="list accounts")
    for name, text in (
        ("show", "show one account"),
        ("activate", "activate an account"),
        ("deactivate", "deactivate an account"),
        ("delete", "delete an account (refused while offers are bound)"),
        ("token", "get a fresh REST API token now"),
        ("fetch-orders", "fetch the account's orders now"),
    ):
        sub.add_parser(name, help=text).add_argument("id", type=int)
    rename = sub.add_parser("rename", help="rename an account")
    rename.add_argument("id", type=int)
    rename.add_argument("name")
    setting = sub.add_parser("set", help="change settings: KEY=VALUE (JSON values) ...")
    setting.add_argument("id", type=int)
    setting.add_argument("assignments", nargs="+", metavar="KEY=VALUE")


def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``stock_control=true price_list=retail`` -> a patch (values are JSON, else strings)."""
    patch: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CliError(f"expected KEY=VALUE, got {item!r}")
        try:
            patch[key] = json.loads(raw)
        except ValueError:
            patch[key] = raw
    return patch


async def run_accounts(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``accounts`` action."""
    pool = await pg.create_pool(settings.database_url, min_size=1, max_size=4)
    session = new_http_session(settings.user_agent)
    try:
        stack = build_allegro_stack(settings, pool, session, Metrics())
        action = args.accounts_command
        if action == "connect":
            return await _connect(args.sandbox, settings, stack, pool)
        if action == "list":
            async with pool.acquire() as conn:
                rows = await store.list_all(
                    conn, active=None, sandbox=None, after_id=None, limit=10_000
                )
            for row in rows:
                state = "active" if row["active"] else f"inactive ({row['deactivation_reason']})"
                env = " sandbox" if row["sandbox"] else ""
                print(f"{row['id']}\t{row['name']}\t{row['login']}{env}\t{state}")
            return 0
        if action == "token":
            auth = await stack.tokens.refresh(args.id, seen_generation=None)
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(auth.expires_at))
            print(f"account {args.id}: fresh token, valid until {expires}")
            return 0
        if action == "fetch-orders":
            async with pool.acquire() as conn:
                row = await _get(conn, args.id)
                if not row["active"]:
                    raise CliError(f"account {args.id} is inactive; activate it first")
                await wake_poller(conn, args.id, "order")
            print(f"account {args.id}: fetching orders now")
            return 0
        if action == "delete":
            async with pool.acquire() as conn, conn.transaction():
                await accounts.delete_account(conn, args.id)
            print(f"account {args.id} deleted")
            return 0
        patch: dict[str, Any]
        if action == "show":
            async with pool.acquire() as conn:
                print(json.dumps(accounts.account_json(await _get(conn, args.id)), indent=2))
            return 0
        if action == "rename":
            patch = {"name": args.name}
        elif action in ("activate", "deactivate"):
            patch = {"active": action == "activate"}
        else:
            patch = parse_assignments(args.assignments)
        row = await accounts.change_settings(pool, stack.allegro, args.id, patch)
        print(json.dumps(accounts.account_json(row), indent=2))
        return 0
    except REFUSALS as exc:
        return report(exc)
    finally:
        await session.close()
        await pool.close()


async def _get(conn: Any, account_id: int, *, lock: bool = False) -> Any:
    row = await store.get(conn, account_id, for_update=lock)
    if row is None:
        raise CliError(f"account {account_id} does not exist")
    return row


async def _connect(sandbox: bool, settings: Settings, stack: Any, pool: Any) -> int:
    """The device flow: show the code, poll at the given interval, store the account."""
    oauth = stack.oauth(sandbox)
    device = await oauth.start_device_flow()
    print(
        f"Open {device.verification_uri_complete}\n"
        f"(or {device.verification_uri} and type the code {device.user_code})\n"
        "and grant allegro-sync access. Waiting...",
        flush=True,
    )
    interval = max(device.interval, 1)
    deadline = time.monotonic() + device.expires_in
    while True:
        if time.monotonic() > deadline:
            raise CliError("the code expired before access was granted; run connect again")
        await asyncio.sleep(interval)
        try:
            tokens = await oauth.poll_device_token(device.device_code)
            break
        except OAuthError as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval += 5  # RFC 8628: back off by five seconds
                continue
            if exc.error == "access_denied":
                raise CliError("the seller refused access; nothing was connected") from None
            raise CliError(
                f"Allegro ended the device flow ({exc.error}); run connect again"
            ) from None
    me = await stack.allegro.me_with_token(sandbox=sandbox, access_token=tokens.access_token)
    start = await accounts.order_journal_start(
        stack.allegro, sandbox=sandbox, access_token=tokens.access_token
    )
    async with pool.acquire() as conn, conn.transaction():
        account_id, created = await accounts.connect_account(
            conn,
            stack.cipher,
            allegro_user_id=str(me["id"]),
            login=str(me["login"]),
            sandbox=sandbox,
            tokens=tokens,
            order_journal=start,
            email=accounts.account_email(me),
        )
    verb = "connected" if created else "reconnected"
    print(f"account {account_id} ({me['login']}) {verb}")
    return 0
