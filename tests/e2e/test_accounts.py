"""Accounts end to end: the daemon's admin API and CLI against the emulator over HTTP, with real
PostgreSQL and RabbitMQ (design.md A1-A11)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from typing import Any

import aiohttp
import asyncpg
import pytest

from allegro_sync.adapters.allegro.tokens import TokenManager
from allegro_sync.adapters.broker.topology import ERP_OUTBOUND_QUEUE
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.daemon.app import Daemon, build_allegro_stack, new_http_session
from allegro_sync.metrics import Metrics
from tests.e2e.conftest import Admin, Emulator, authorize_in_browser
from tests.helpers import ADMIN_TOKEN, SECRET_KEY, drain_queue, eventually


async def test_browser_connect_creates_the_account_named_after_its_login(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller = await emulator.seller("sklep-ala")
    account = await admin.connect(emulator, seller)
    assert account["login"] == "sklep-ala"
    assert account["name"] == "sklep-ala"
    assert account["allegro_user_id"] == str(seller["id"])
    assert account["active"] is True and account["sandbox"] is False
    # defaults of design.md section 4
    for switch in (
        "auto_create_orders",
        "send_order_emails",
        "bind_offers_by_ean",
        "stock_control",
        "raise_quantity_on_erp_sync",
        "auto_renew",
        "renew_with_current_price",
        "send_customer_card",
        "only_customers_with_nip",
        "sync_prices",
        "update_offers_from_products",
    ):
        assert account[switch] is False, switch
    assert account["do_not_renew_default"] is True
    assert account["mark_sent_on_tracking"] is True
    assert account["price_list"] == "default"
    assert account["warnings"] == []
    assert "token" not in json.dumps(account).lower()

    status, listing = await admin.call("GET", "/accounts")
    assert status == 200
    assert [a["id"] for a in listing["items"]] == [account["id"]]
    assert listing["next"] is None

    # tokens are stored encrypted, never in plain text
    row = await db.fetchrow("SELECT access_token_enc, refresh_token_enc FROM account_tokens")
    assert row is not None
    assert b"eyJ" not in bytes(row["access_token_enc"]) + bytes(row["refresh_token_enc"])
    # and they work: the options call reads Allegro on the account's behalf
    status, options = await admin.call("GET", f"/accounts/{account['id']}/options")
    assert status == 200, options
    assert options["return_policies"] and options["shipping_rates"]


async def test_the_browser_page_and_sandbox_accounts(
    admin: Admin, sandbox_emulator: Emulator
) -> None:
    seller = await sandbox_emulator.seller("piaskownica", sandbox=True)
    status, body = await admin.call("POST", "/accounts/connect", {"sandbox": True})
    assert status == 200
    callback = await authorize_in_browser(admin.session, body["authorize_url"], seller["id"])
    async with admin.session.get(callback) as r:
        assert r.status == 200
        assert r.content_type == "text/html"
        assert "piaskownica" in await r.text()
    status, listing = await admin.call("GET", "/accounts")
    account = listing["items"][0]
    assert account["sandbox"] is True
    assert account["warnings"] == ["stock control needs a production account"]
    # the sandbox account talks to the sandbox hosts with its own token
    status, options = await admin.call("GET", f"/accounts/{account['id']}/options")
    assert status == 200, options


async def test_state_must_be_known_fresh_and_unused(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller = await emulator.seller("shop")
    _, body = await admin.call("POST", "/accounts/connect", {"sandbox": False})
    callback = await authorize_in_browser(admin.session, body["authorize_url"], seller["id"])
    forged = re.sub(r"state=[^&]+", "state=forged", callback)
    async with admin.session.get(forged, headers={"Accept": "application/json"}) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "unknown_state"
    async with admin.session.get(callback, headers={"Accept": "application/json"}) as r:
        assert r.status == 200
    async with admin.session.get(callback, headers={"Accept": "application/json"}) as r:
        assert r.status == 400, "a replayed state must be refused"
        assert (await r.json())["error"] == "unknown_state"

    _, body = await admin.call("POST", "/accounts/connect", {"sandbox": False})
    await db.execute("UPDATE oauth_states SET expires_at = now() - interval '1 second'")
    callback = await authorize_in_browser(admin.session, body["authorize_url"], seller["id"])
    async with admin.session.get(callback, headers={"Accept": "application/json"}) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "expired_state"
    assert await db.fetchval("SELECT count(*) FROM accounts") == 1


async def test_a_refused_authorization_connects_nothing(admin: Admin, db: asyncpg.Pool) -> None:
    _, body = await admin.call("POST", "/accounts/connect", {})
    state = re.search(r"state=([^&]+)", body["authorize_url"])
    assert state is not None
    url = f"{admin.url}/oauth/callback?error=access_denied&state={state.group(1)}"
    async with admin.session.get(url, headers={"Accept": "application/json"}) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "access_denied"
    assert await db.fetchval("SELECT count(*) FROM accounts") == 0


@pytest.mark.parametrize("kind", ["html", "empty", "truncated"])
async def test_a_connect_read_that_is_not_allegros_json_is_retried(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, kind: str
) -> None:
    """The reads made with a new token while connecting (``GET /me`` here, ``GET
    /order/event-stats`` alike) take a 200 that is not Allegro's JSON (a CAPTCHA page, an
    empty or cut body) as "Allegro unavailable" and try again, as every other read does: the
    account is connected, not refused."""
    seller = await emulator.seller("shop")
    await emulator.control("DELETE", "/requests")
    await emulator.control(
        "POST", "/faults", {"paths": ["/me"], "not_json_count": 1, "not_json_kind": kind}
    )
    account = await admin.connect(emulator, seller)
    assert account["login"] == "shop" and account["active"] is True
    counts = (await emulator.control("GET", "/requests"))["by_path"]
    assert counts["GET /me"] == 2  # the page, then Allegro's answer
    assert await db.fetchval("SELECT email FROM accounts") == "shop@example.com"


async def test_reconnect_reactivates_the_same_account(admin: Admin, emulator: Emulator) -> None:
    seller = await emulator.seller("shop")
    first = await admin.connect(emulator, seller)
    await emulator.control("POST", f"/sellers/{seller['id']}/revoke-tokens")
    status, body = await admin.call("POST", f"/accounts/{first['id']}/token")
    assert status == 409 and body["error"] == "credentials_dead"
    _, shown = await admin.call("GET", f"/accounts/{first['id']}")
    assert shown["active"] is False

    again = await admin.connect(emulator, seller)
    assert again["id"] == first["id"]
    assert again["active"] is True
    assert again["deactivation_reason"] is None
    status, _ = await admin.call("POST", f"/accounts/{first['id']}/token")
    assert status == 200


async def test_invalid_grant_disables_only_that_account_and_announces_it(
    admin: Admin, emulator: Emulator, amqp_url: str
) -> None:
    doomed_seller = await emulator.seller("doomed")
    doomed = await admin.connect(emulator, doomed_seller)
    other = await admin.connect(emulator, await emulator.seller("healthy"))
    await emulator.control("POST", f"/sellers/{doomed_seller['id']}/revoke-tokens")

    status, body = await admin.call("GET", f"/accounts/{doomed['id']}/options")
    assert status == 409 and body["error"] == "credentials_dead"

    _, shown = await admin.call("GET", f"/accounts/{doomed['id']}")
    assert shown["active"] is False
    assert "invalid_grant" in shown["deactivation_reason"]
    _, entries = await admin.call("GET", f"/accounts/{doomed['id']}/event-log")
    codes = {(e["category"], e["code"]) for e in entries["items"]}
    assert ("accounts", "account_disabled") in codes
    assert ("offers", "account_deactivated") in codes

    async def announced() -> list[Any]:
        return [m for m in await drain_queue(amqp_url, ERP_OUTBOUND_QUEUE, wait=0.2)]

    messages = await eventually(announced)
    assert [m.routing_key for m in messages] == ["account.disabled"]
    payload = json.loads(messages[0].body)
    assert payload["account_id"] == doomed["id"] and payload["login"] == "doomed"
    assert "invalid_grant" in payload["reason"]

    _, still = await admin.call("GET", f"/accounts/{other['id']}")
    assert still["active"] is True
    status, _ = await admin.call("GET", f"/accounts/{other['id']}/options")
    assert status == 200


async def test_a_blocked_seller_is_switched_off(admin: Admin, emulator: Emulator) -> None:
    seller = await emulator.seller("blocked-shop")
    account = await admin.connect(emulator, seller)
    await emulator.control("POST", f"/sellers/{seller['id']}/block")
    status, _ = await admin.call("GET", f"/accounts/{account['id']}/options")
    assert status == 409
    _, shown = await admin.call("GET", f"/accounts/{account['id']}")
    assert shown["active"] is False


async def test_another_403_leaves_the_account_on_and_logs_the_action(
    admin: Admin, emulator: Emulator, daemon: Daemon, db: asyncpg.Pool
) -> None:
    """A token granted only the profile scope may read /me but not the seller's settings."""
    from allegro_sync.adapters.allegro.oauth import OAuthClient, new_pkce_pair
    from allegro_sync.handlers.accounts import connect_account

    seller = await emulator.seller("narrow")
    verifier, challenge = new_pkce_pair()
    redirect = "http://127.0.0.1:9/cb"
    async with aiohttp.ClientSession() as session:
        oauth = OAuthClient(session, emulator.url, "demo-client", "demo-secret")
        url = oauth.authorize_url(redirect_uri=redirect, state="s", code_challenge=challenge)
        location = await authorize_in_browser(
            session, url + "&scope=allegro:api:profile:read", seller["id"]
        )
        code = re.search(r"code=([^&]+)", location)
        assert code is not None
        tokens = await oauth.exchange_code(
            code=code.group(1), redirect_uri=redirect, code_verifier=verifier
        )
    assert daemon.cipher is not None
    async with db.acquire() as conn:
        account_id, _ = await connect_account(
            conn,
            daemon.cipher,
            allegro_user_id=str(seller["id"]),
            login="narrow",
            sandbox=False,
            tokens=tokens,
        )
    status, body = await admin.call("GET", f"/accounts/{account_id}/options")
    assert status == 409 and body["error"] == "allegro_refused"
    _, shown = await admin.call("GET", f"/accounts/{account_id}")
    assert shown["active"] is True
    _, entries = await admin.call("GET", f"/accounts/{account_id}/event-log?category=accounts")
    refusals = [e for e in entries["items"] if e["code"] == "allegro_refused"]
    assert len(refusals) == 1
    assert refusals[0]["message"].startswith("Allegro refused to read after-sales conditions")


async def test_two_concurrent_refreshers_cause_one_refresh(
    admin: Admin, emulator: Emulator, daemon: Daemon, database_url: str
) -> None:
    account = await admin.connect(emulator, await emulator.seller("busy"))
    managers: list[TokenManager] = []
    pools = []
    sessions = []
    for _ in range(2):  # two replicas: separate pools, separate caches
        pool = await pg.create_pool(database_url, min_size=1, max_size=2)
        session = new_http_session()
        pools.append(pool)
        sessions.append(session)
        managers.append(build_allegro_stack(daemon.settings, pool, session, Metrics()).tokens)
    try:
        seen = [await m.current(account["id"]) for m in managers]
        assert seen[0].generation == seen[1].generation
        before = await emulator.token_requests()
        results = await asyncio.gather(
            *(
                m.refresh(account["id"], seen_generation=s.generation)
                for m, s in zip(managers, seen, strict=True)
            )
        )
        assert await emulator.token_requests() - before == 1
        assert results[0].access_token == results[1].access_token
        assert results[0].generation == seen[0].generation + 1
        # the one new token works
        stack = build_allegro_stack(daemon.settings, pools[0], sessions[0], Metrics())
        me = await stack.allegro.get(account["id"], "/me", action="read account")
        assert me["login"] == "busy"
    finally:
        for session in sessions:
            await session.close()
        for pool in pools:
            await pool.close()


async def test_fresh_token_on_demand_rotates_the_pair(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    account = await admin.connect(emulator, await emulator.seller("shop"))
    before = await db.fetchval("SELECT generation FROM account_tokens")
    status, body = await admin.call("POST", f"/accounts/{account['id']}/token")
    assert status == 200 and body["refreshed"] is True
    assert "access_token" not in body
    assert await db.fetchval("SELECT generation FROM account_tokens") == before + 1


async def test_settings_are_validated_and_stored(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    account = await admin.connect(emulator, await emulator.seller("shop"))
    path = f"/accounts/{account['id']}"
    _, options = await admin.call("GET", path + "/options")

    status, body = await admin.call(
        "PATCH", path, {"stock_control": True, "name": "Sklep Ali", "bind_offers_by_ean": True}
    )
    assert status == 200, body
    assert body["stock_control"] is True and body["name"] == "Sklep Ali"
    assert await db.fetchval("SELECT bind_offers_by_ean_since IS NOT NULL FROM accounts")

    for patch, field, code in (
        ({"no_such_setting": 1}, "no_such_setting", 422),
        ({"stock_control": "yes"}, "stock_control", 422),
        ({"name": ""}, "name", 422),
        ({"price_list": "retail"}, "price_list", 422),
        ({"after_sales": {"return_policy_id": "nope"}}, "after_sales.return_policy_id", 422),
        ({"shipping_rates_id": "nope"}, "shipping_rates_id", 422),
        ({"orders_from": "yesterday"}, "orders_from", 422),
        ({"stock_control": None}, "stock_control", 422),
        ({"mark_sent_on_tracking": None}, "mark_sent_on_tracking", 422),
        ({"mark_sent_on_tracking": "no"}, "mark_sent_on_tracking", 422),
        ({"update_offers_from_products": None}, "update_offers_from_products", 422),
        ({"update_offers_from_products": 1}, "update_offers_from_products", 422),
    ):
        status, body = await admin.call("PATCH", path, patch)
        assert (status, body.get("field")) == (code, field), (patch, body)

    chosen = {
        "after_sales": {
            "return_policy_id": options["return_policies"][0]["id"],
            "implied_warranty_id": options["implied_warranties"][0]["id"],
            "warranty_id": None,
        },
        "shipping_rates_id": options["shipping_rates"][0]["id"],
        "address": {"city": "Poznań", "post_code": "60-166", "street": "Grunwaldzka 182"},
        "orders_from": "2026-11-20T00:00:00Z",
    }
    status, body = await admin.call("PATCH", path, chosen)
    assert status == 200, body
    assert body["after_sales"] == chosen["after_sales"]
    assert body["address"]["city"] == "Poznań"

    await db.execute("INSERT INTO price_lists (id, name) VALUES ('retail', 'Retail')")
    status, body = await admin.call("PATCH", path, {"price_list": "retail"})
    assert status == 200 and body["price_list"] == "retail"

    await db.execute("UPDATE accounts SET created_at = now() - interval '6 days'")
    status, body = await admin.call("PATCH", path, {"orders_from": "2026-11-21T00:00:00Z"})
    assert status == 200, body  # day 6: still editable
    await db.execute("UPDATE accounts SET created_at = now() - interval '8 days'")
    status, body = await admin.call("PATCH", path, {"orders_from": "2026-11-21T00:00:00Z"})
    assert status == 409 and body["field"] == "orders_from"  # day 8: too late

    status, body = await admin.call("PATCH", "/accounts/999", {"name": "x"})
    assert status == 404


async def test_each_extra_recipient_is_one_address(admin: Admin, emulator: Emulator) -> None:
    account = await admin.connect(emulator, await emulator.seller("shop"))
    path = f"/accounts/{account['id']}"
    for bad in (
        "a@b.pl,x",
        "a@b.pl, c@d.pl",
        "a@b.pl;c@d.pl",
        "a@b.pl\r\nBcc: x@y.pl",
        "Jan <a@b.pl>",
        "a b@c.pl",
        "a@@b.pl",
        "a@b",
        ".a@b.pl",
        "a@-b.pl",
    ):
        status, body = await admin.call(
            "PATCH", path, {"extra_order_email_recipients": ["ok@sklep.pl", bad]}
        )
        assert (status, body.get("field")) == (422, "extra_order_email_recipients.1"), (bad, body)
    status, body = await admin.call("GET", path)
    assert body["extra_order_email_recipients"] == []
    good = ["biuro@sklep.pl", "j.kowalski+zamowienia@sub.example.com.pl"]
    status, body = await admin.call("PATCH", path, {"extra_order_email_recipients": good})
    assert status == 200 and body["extra_order_email_recipients"] == good


async def test_delete_is_refused_while_offers_are_bound(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    account = await admin.connect(emulator, await emulator.seller("shop"))
    await db.executemany(
        "INSERT INTO offers (id, account_id, name, format, status, product_id)"
        " VALUES ($1, $2, 'x', 'BUY_NOW', 'ACTIVE', $3)",
        [("1", account["id"], "p1"), ("2", account["id"], "p2"), ("3", account["id"], None)],
    )
    status, body = await admin.call("DELETE", f"/accounts/{account['id']}")
    assert status == 409
    assert "2 offers bound" in body["detail"]
    await db.execute("UPDATE offers SET product_id = NULL")
    status, _ = await admin.call("DELETE", f"/accounts/{account['id']}")
    assert status == 204
    assert await db.fetchval("SELECT count(*) FROM accounts") == 0


async def test_event_log_filters_and_hides_old_deactivation_entries(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller = await emulator.seller("shop")
    account = await admin.connect(emulator, seller)
    await emulator.control("POST", f"/sellers/{seller['id']}/revoke-tokens")
    await admin.call("POST", f"/accounts/{account['id']}/token")
    path = f"/accounts/{account['id']}/event-log"
    _, offers = await admin.call("GET", path + "?category=offers")
    assert [e["code"] for e in offers["items"]] == ["account_deactivated"]
    await db.execute(
        "UPDATE event_log SET created_at = now() - interval '31 days'"
        " WHERE code = 'account_deactivated'"
    )
    _, offers = await admin.call("GET", path + "?category=offers")
    assert offers["items"] == []
    _, everything = await admin.call("GET", path + "?limit=1")
    assert len(everything["items"]) == 1 and everything["next"] is not None
    status, body = await admin.call("GET", path + "?category=nonsense")
    assert status == 422 and body["field"] == "category"


def _cli_env(daemon: Daemon) -> dict[str, str]:
    settings = daemon.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLEGRO_SYNC_")}
    env.update(
        {
            "ALLEGRO_SYNC_DATABASE_URL": settings.database_url,
            "ALLEGRO_SYNC_AMQP_URL": settings.amqp_url,
            "ALLEGRO_SYNC_ALLEGRO_API_URL": settings.api_url(False),
            "ALLEGRO_SYNC_ALLEGRO_AUTH_URL": settings.auth_url(False),
            "ALLEGRO_SYNC_CLIENT_ID": "demo-client",
            "ALLEGRO_SYNC_CLIENT_SECRET": "demo-secret",
            "ALLEGRO_SYNC_SECRET_KEY": SECRET_KEY,
            "ALLEGRO_SYNC_ADMIN_TOKEN": ADMIN_TOKEN,
        }
    )
    return env


async def _device_connect(
    daemon: Daemon, emulator: Emulator, seller: dict[str, Any], approve: bool
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "allegro_sync.daemon.cli",
        "accounts",
        "connect",
        env=_cli_env(daemon),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    shown = ""
    while "code" not in shown or "Waiting" not in shown:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line, "the CLI ended before showing a code"
        shown += line.decode()
    user_code = re.search(r"type the code (\S+)\)", shown)
    assert user_code is not None, shown
    action = "approve" if approve else "deny"
    await emulator.control(
        "POST", f"/device/{action}", {"user_code": user_code.group(1), "seller_id": seller["id"]}
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, shown + out.decode(), err.decode()


@pytest.mark.slow
async def test_device_flow_connects_a_headless_account(
    daemon: Daemon, emulator: Emulator, admin: Admin
) -> None:
    seller = await emulator.seller("headless")
    code, out, err = await _device_connect(daemon, emulator, seller, approve=True)
    assert code == 0, err
    assert "(headless) connected" in out
    _, listing = await admin.call("GET", "/accounts")
    assert [a["login"] for a in listing["items"]] == ["headless"]


@pytest.mark.slow
async def test_device_flow_refused_by_the_seller(
    daemon: Daemon, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller = await emulator.seller("refuser")
    code, _, err = await _device_connect(daemon, emulator, seller, approve=False)
    assert code == 1
    assert err.strip() == "allegro-sync: the seller refused access; nothing was connected"
    assert await db.fetchval("SELECT count(*) FROM accounts") == 0


async def test_cli_operations(daemon: Daemon, emulator: Emulator, admin: Admin) -> None:
    account = await admin.connect(emulator, await emulator.seller("cli-shop"))

    async def cli(*args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "allegro_sync.daemon.cli",
            "accounts",
            *args,
            env=_cli_env(daemon),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, _ = await cli("list")
    assert code == 0 and "cli-shop" in out
    code, out, _ = await cli("rename", str(account["id"]), "Nowa nazwa")
    assert code == 0 and json.loads(out)["name"] == "Nowa nazwa"
    code, out, _ = await cli("set", str(account["id"]), "stock_control=true", "auto_renew=true")
    assert code == 0 and json.loads(out)["auto_renew"] is True
    code, _, err = await cli("set", str(account["id"]), "stock_control=maybe")
    assert (
        code == 1
        and err.startswith("allegro-sync: stock_control")
        and len(err.strip().splitlines()) == 1
    )
    code, out, _ = await cli("deactivate", str(account["id"]))
    assert code == 0 and json.loads(out)["active"] is False
    code, out, _ = await cli("token", str(account["id"]))
    assert code == 0 and "fresh token" in out
    code, _, err = await cli("show", "999")
    assert code == 1 and "does not exist" in err


async def test_tokens_never_reach_the_logs(
    admin: Admin,
    emulator: Emulator,
    daemon: Daemon,
    db: asyncpg.Pool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seller = await emulator.seller("quiet-shop")
    account = await admin.connect(emulator, seller)
    await admin.call("POST", f"/accounts/{account['id']}/token")  # a refresh, logged
    await admin.call("GET", f"/accounts/{account['id']}/options")
    await emulator.control("POST", f"/sellers/{seller['id']}/revoke-tokens")
    await admin.call("POST", f"/accounts/{account['id']}/token")  # invalid_grant, logged
    assert daemon.cipher is not None
    row = await db.fetchrow("SELECT access_token_enc, refresh_token_enc FROM account_tokens")
    access = daemon.cipher.decrypt(row["access_token_enc"], f"account:{account['id']}:access")
    refresh = daemon.cipher.decrypt(row["refresh_token_enc"], f"account:{account['id']}:refresh")
    captured = capsys.readouterr()
    logs = captured.out + captured.err
    assert "token_refreshed" in logs and "account_credentials_dead" in logs  # logging happened
    for secret in (access, refresh, access[:40], refresh[:40], "demo-secret", ADMIN_TOKEN):
        assert secret not in logs


async def test_reads_with_a_token_not_yet_stored_wait_for_the_request_limit(
    admin: Admin, emulator: Emulator, daemon: Daemon, database_url: str
) -> None:
    """``GET /me`` while connecting an account takes its slot of the client-wide limit like any
    other request: with 60 requests a minute (one a second, a burst of one) and the burst spent
    by a stored account's read, two more reads with a fresh token take about two seconds."""
    account = await admin.connect(emulator, await emulator.seller("paced"))
    slow = daemon.settings.model_copy(update={"allegro_requests_per_minute": 60})
    pool = await pg.create_pool(database_url, min_size=1, max_size=2)
    session = new_http_session()
    try:
        stack = build_allegro_stack(slow, pool, session, Metrics())
        token = (await stack.tokens.current(account["id"])).access_token
        await stack.allegro.get(account["id"], "/me", action="read account")
        started = asyncio.get_running_loop().time()
        for _ in range(2):
            me = await stack.allegro.me_with_token(sandbox=False, access_token=token)
            assert me["login"] == "paced"
        # one slot a second: the second read waits about two, never less than one and a half
        assert asyncio.get_running_loop().time() - started >= 1.5
    finally:
        await session.close()
        await pool.close()
