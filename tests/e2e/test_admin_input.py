"""Hostile and malformed input to the running daemon's admin API (issue 14, items 11 and 13):
every one a JSON error with a 4xx status, never a 500; an unexpected failure a JSON 500 that
names nothing inside.

Requests go over a raw socket where an HTTP client would tidy them up (percent-escapes kept as
sent, bytes that are not UTF-8 in a header)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from tests.e2e.conftest import Admin, Emulator
from tests.e2e.flows import _buy, _handled, _shop
from tests.helpers import ADMIN_TOKEN

TWENTY = "9" * 20
FIVE_THOUSAND = "7" * 5000
NESTED = b"[" * 50_000 + b"]" * 50_000


async def raw(
    admin: Admin,
    method: str,
    target: str,
    body: bytes = b"",
    authorization: bytes = f"Bearer {ADMIN_TOKEN}".encode(),
    content_type: bytes = b"application/json",
) -> tuple[int, str, Any]:
    """One request written byte for byte; (status, content type, parsed JSON body)."""
    port = admin.daemon.settings.http_port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        f"Content-Length: {len(body)}\r\n"
    ).encode()
    head += b"Authorization: " + authorization + b"\r\nContent-Type: " + content_type + b"\r\n"
    writer.write(head + b"\r\n" + body)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    header, _, payload = data.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    content_type_seen = headers.get("content-type", "")
    parsed = json.loads(payload) if content_type_seen.startswith("application/json") else None
    return status, content_type_seen, parsed


def assert_json_error(result: tuple[int, str, Any], *statuses: int) -> None:
    status, content_type, body = result
    assert status in statuses, result
    assert content_type.startswith("application/json"), result
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    assert isinstance(body.get("detail"), str), body


@pytest.fixture
async def account(admin: Admin, emulator: Emulator) -> dict[str, Any]:
    seller = await emulator.seller("hostile")
    return await admin.connect(emulator, seller)


async def test_ids_that_are_no_bigint_are_404(admin: Admin, account: dict[str, Any]) -> None:
    assert account["id"] == 1
    status, _, body = await raw(admin, "GET", "/accounts/1")
    assert status == 200 and body["id"] == 1
    # "²" and an Arabic-Indic one: Python's int() reads both, no id is written so
    for odd in ("%C2%B2", "%D9%A1", "%EF%BC%91", "1_0", "+1", "%201"):
        assert_json_error(await raw(admin, "GET", f"/accounts/{odd}"), 404)
    for big in (TWENTY, FIVE_THOUSAND, str(2**63)):
        for method, path in (
            ("GET", f"/accounts/{big}"),
            ("PATCH", f"/accounts/{big}"),
            ("DELETE", f"/accounts/{big}"),
            ("POST", f"/accounts/{big}/token"),
            ("POST", f"/accounts/{big}/orders/fetch"),
            ("GET", f"/accounts/{big}/event-log"),
            ("GET", f"/accounts/{big}/options"),
        ):
            body = b'{"name": "x"}' if method == "PATCH" else b""
            assert_json_error(await raw(admin, method, path, body), 404)
    # the largest bigint is an id, merely not one that exists
    assert_json_error(await raw(admin, "GET", f"/accounts/{2**63 - 1}"), 404)


async def test_query_numbers_and_cursors_that_are_no_such_thing_are_422(
    admin: Admin, account: dict[str, Any]
) -> None:
    for target in (
        "/orders?cursor=2026-01-01T00:00:00%2B00:00%7Cnot-a-uuid",
        "/orders?cursor=2026-01-01T00:00:00%7C6d1b5c2e-8f1a-4c52-9b36-0e6c3f2a9d11",
        "/orders?account_id=%D9%A1",
        f"/orders?account_id={TWENTY}",
        f"/accounts?cursor={FIVE_THOUSAND}",
        "/accounts/1/event-log?cursor=%C2%B2",
        "/customers?cursor=9999999999999999999",
        "/customers?limit=%D9%A1%D9%A0",
        "/customers?account_id=%D9%A1",
        f"/offers?account_id={TWENTY}",
        "/offers?cursor=%00abc",  # PostgreSQL's text holds no NUL
        "/customers?q=a%00b",
    ):
        assert_json_error(await raw(admin, "GET", target), 422)


async def test_bodies_nested_too_deep_or_in_a_charset_unknown_are_400(
    admin: Admin, account: dict[str, Any]
) -> None:
    for method, path in (
        ("PATCH", "/accounts/1"),
        ("POST", "/accounts/connect"),
        ("PATCH", "/offers/123"),
    ):
        assert_json_error(await raw(admin, method, path, NESTED), 400)
        weird = b"application/json; charset=no-such-charset"
        assert_json_error(await raw(admin, method, path, b"{}", content_type=weird), 400)
    # over aiohttp's body limit: 413, also as JSON
    huge = b'{"name": "' + b"x" * 3_000_000 + b'"}'
    assert_json_error(await raw(admin, "PATCH", "/accounts/1", huge), 413)
    # a value PostgreSQL cannot store
    assert_json_error(await raw(admin, "PATCH", "/accounts/1", b'{"name": "a\\u0000b"}'), 400, 422)
    status, _, body = await raw(admin, "GET", "/accounts/1")
    assert status == 200 and body["name"] != "a\x00b"


async def test_raw_bytes_in_authorization_are_401(admin: Admin, account: dict[str, Any]) -> None:
    for header in (
        b"Bearer \xff\xfe\x80",
        b"\xc3\x28 abc",
        b"Bearer " + ADMIN_TOKEN.encode() + b"\xff",
    ):
        assert_json_error(await raw(admin, "GET", "/accounts", authorization=header), 401)


async def test_an_unexpected_failure_is_a_json_500_naming_nothing_inside(
    admin: Admin, db: asyncpg.Pool
) -> None:
    await db.execute("ALTER TABLE order_lines RENAME TO order_lines_gone")
    result = await raw(admin, "GET", "/orders")
    assert_json_error(result, 500)
    assert result[2] == {
        "error": "internal_error",
        "detail": "the request failed; see the daemon log",
    }


async def test_order_search_is_literal_and_capped(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _seller, _account, offers = await _shop(admin, emulator, db)
    first = await _buy(emulator, offers[0], login="ewa_kot")
    second = await _buy(emulator, offers[1], login="ewaxkot")
    await _handled(db, first, "READY_FOR_PROCESSING")
    await _handled(db, second, "READY_FOR_PROCESSING")

    async def found(q: str) -> list[str]:
        status, body = await admin.call("GET", "/orders", params={"q": q})
        assert status == 200, body
        return sorted(item["buyer_login"] for item in body["items"])

    assert await found("ewa") == ["ewa_kot", "ewaxkot"]
    assert await found("%") == []  # a wildcard only when it is not escaped
    assert await found("ewa_kot") == ["ewa_kot"]
    assert await found("\\") == []
    assert await found("EWA_K") == ["ewa_kot"]  # still case-insensitive
    status, body = await admin.call("GET", "/orders", params={"q": "x" * 201})
    assert status == 422 and body["field"] == "q", body
    status, body = await admin.call("GET", "/orders", params={"q": "a\x00b"})
    assert status == 422 and body["field"] == "q", body


async def test_orders_from_is_neither_in_the_future_nor_before_allegros_history(
    admin: Admin, account: dict[str, Any]
) -> None:
    now = datetime.now(UTC)
    for moment, says in (
        ("9999-12-31T00:00:00Z", "must not be in the future"),
        ((now + timedelta(days=2)).isoformat(), "must not be in the future"),
        ("2000-01-01T00:00:00Z", "within the last 365 days"),
        ((now - timedelta(days=366)).isoformat(), "within the last 365 days"),
    ):
        status, body = await admin.call("PATCH", "/accounts/1", {"orders_from": moment})
        assert status == 422 and body["field"] == "orders_from", (moment, body)
        assert says in body["detail"], body
    status, body = await admin.call("GET", "/accounts/1")
    assert body["orders_from"] is None  # nothing was stored
    for moment in (now - timedelta(days=364), now + timedelta(minutes=30)):
        status, body = await admin.call("PATCH", "/accounts/1", {"orders_from": moment.isoformat()})
        assert status == 200, body
        assert datetime.fromisoformat(body["orders_from"]) == moment
