"""Customer storage, list and export (design.md C2, C5) against a real PostgreSQL.

Exports are parsed back with ``csv`` and ``xml.etree.ElementTree`` and compared field by field
with what was stored, including values that break naive writers.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from allegro_sync.daemon.api.auth import bearer_auth
from allegro_sync.daemon.api.customers import add_customer_routes
from allegro_sync.daemon.api.errors import json_errors
from allegro_sync.daemon.cli_customers import Progress, add_customers_command, run_customers
from allegro_sync.export.columns import CUSTOMER_COLUMNS
from allegro_sync.export.customers_xml import NAMESPACE
from allegro_sync.handlers.customers import CustomerCard, customer_type, upsert_customer
from tests.helpers import ADMIN_TOKEN

POLISH = "ąćęłńóśźż ĄĆĘŁŃÓŚŹŻ"
NS = {"c": NAMESPACE}


async def add_account(conn: asyncpg.Connection, login: str) -> int:
    account_id: int = await conn.fetchval(
        "INSERT INTO accounts (allegro_user_id, sandbox, login, name)"
        " VALUES ($1, false, $1, $1) RETURNING id",
        login,
    )
    return account_id


def card(buyer_id: str, **fields: Any) -> CustomerCard:
    country = fields.pop("country_code", "PL")
    address = {
        "street": fields.pop("street", "Grunwaldzka 182"),
        "city": fields.pop("city", "Poznań"),
        "zip_code": fields.pop("zip_code", "60-166"),
        "country_code": country,
    }
    values: dict[str, Any] = {
        "email": f"{buyer_id.lower()}+77c5fa9f6@allegromail.pl",
        "first_name": "Anna",
        "last_name": "Nowak",
        "company": None,
        "nip": None,
    }
    values.update(fields)
    return CustomerCard(
        allegro_buyer_id=buyer_id,
        country_code=country,
        type=customer_type(country),
        address=address,
        **values,
    )


TRICKY = [
    card(
        "B-comma",
        first_name="Zażółć, gęślą",
        last_name='Jaźń "Ósemka"',
        company='A&B <Sp. z o.o.>, "Łódź"',
        nip="7791011327",
        street="ul. Długa 1\r\nm. 2",
        city="Kraków\nPodgórze",
    ),
    card(
        "B-polish",
        first_name=POLISH,
        last_name=POLISH.upper(),
        company="Spółka <&> ‘cytat’ — „polski”",
        nip=None,
        street="Tab\there; semi;colon",
        country_code="DE",
        city="Köln",
    ),
    card("B-us", first_name="John", last_name="O'Brien", country_code="US", zip_code=None),
]


@pytest.fixture
async def stored(db: asyncpg.Pool) -> dict[str, Any]:
    """Two accounts; tricky customers on the first, one plain customer on the second."""
    async with db.acquire() as conn:
        first = await add_account(conn, "seller_one")
        second = await add_account(conn, "seller_two")
        ids = [await upsert_customer(conn, first, c) for c in TRICKY]
        other = card("B-other", first_name="Piotr", nip="5260250274")
        ids.append(await upsert_customer(conn, second, other))
    return {"accounts": (first, second), "ids": ids, "cards": [*TRICKY, other]}


async def expected_rows(
    db: asyncpg.Pool, ids: list[int], cards: list[CustomerCard], account_ids: list[int]
) -> list[dict[str, str | None]]:
    """What an export must say for these customers, built from the cards that were stored."""
    rows = []
    async with db.acquire() as conn:
        for customer_id, c, account_id in zip(ids, cards, account_ids, strict=True):
            times = await conn.fetchrow(
                "SELECT created_at, updated_at FROM customers WHERE id = $1", customer_id
            )
            rows.append(
                {
                    "id": str(customer_id),
                    "account_id": str(account_id),
                    "allegro_buyer_id": c.allegro_buyer_id,
                    "email": c.email,
                    "first_name": c.first_name,
                    "last_name": c.last_name,
                    "company": c.company,
                    "nip": c.nip,
                    "country_code": c.country_code,
                    "type": c.type,
                    "street": c.address["street"],
                    "city": c.address["city"],
                    "zip_code": c.address["zip_code"],
                    "active": "false",
                    "created_at": times["created_at"].isoformat(),
                    "updated_at": times["updated_at"].isoformat(),
                }
            )
    return rows


def parse_csv(data: bytes) -> list[dict[str, str | None]]:
    """CSV back to rows; an empty field is no value."""
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header = next(reader)
    assert tuple(header) == CUSTOMER_COLUMNS
    return [
        {k: (v if v != "" else None) for k, v in zip(header, row, strict=True)} for row in reader
    ]


def parse_xml(data: bytes) -> list[dict[str, str | None]]:
    """XML back to rows, checking the structure ``customers.xsd`` demands on the way."""
    root = ET.fromstring(data)
    assert root.tag == f"{{{NAMESPACE}}}customers"
    required = {"id", "account_id", "allegro_buyer_id", "email", "type", "active", "created_at"}
    rows = []
    for customer in root:
        assert customer.tag == f"{{{NAMESPACE}}}customer"
        names = [child.tag.removeprefix(f"{{{NAMESPACE}}}") for child in customer]
        # elements in schema order, none repeated, none unknown, the required ones present
        assert names == [c for c in CUSTOMER_COLUMNS if c in names], names
        assert required <= set(names)
        row: dict[str, str | None] = dict.fromkeys(CUSTOMER_COLUMNS)
        for name, child in zip(names, customer, strict=True):
            row[name] = child.text or ""
        assert row["type"] in {"domestic", "intra_eu", "extra_eu"}
        assert row["active"] in {"true", "false"}
        datetime.fromisoformat(str(row["created_at"]))
        rows.append(row)
    return rows


def as_csv_sees_it(rows: list[dict[str, str | None]]) -> list[dict[str, str | None]]:
    """CSV cannot tell "" from none: both read back as none."""
    return [{k: (v if v != "" else None) for k, v in row.items()} for row in rows]


# --- storing a card ---------------------------------------------------------------------------


async def test_upsert_keeps_one_inactive_customer_per_account_and_buyer(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        account = await add_account(conn, "seller")
        first = await upsert_customer(conn, account, card("B-1", email="a+1@allegromail.pl"))
        again = await upsert_customer(
            conn, account, card("B-1", email="a+2@allegromail.pl", nip="7791011327")
        )
        row = await conn.fetchrow("SELECT * FROM customers WHERE id = $1", first)
        count = await conn.fetchval("SELECT count(*) FROM customers")
    assert again == first and count == 1
    assert row["email"] == "a+2@allegromail.pl"  # the masked address, exactly as given
    assert row["nip"] == "7791011327"
    assert row["active"] is False
    assert row["address"]["city"] == "Poznań"


# --- the HTTP API -----------------------------------------------------------------------------


@pytest.fixture
async def api(db: asyncpg.Pool) -> AsyncIterator[tuple[TestServer, aiohttp.ClientSession]]:
    app = web.Application(middlewares=[json_errors, bearer_auth(ADMIN_TOKEN)])
    add_customer_routes(app, db)
    server = TestServer(app)
    await server.start_server()
    session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    yield server, session
    await session.close()
    await server.close()


async def get(
    api: tuple[TestServer, aiohttp.ClientSession], path: str, **params: str
) -> tuple[int, Any, Any, bytes]:
    server, session = api
    async with session.get(server.make_url(path), params=params) as response:
        body = await response.read()
        payload = await response.json() if response.content_type == "application/json" else None
        return response.status, payload, response.headers, body


@pytest.mark.parametrize("fmt", ["csv", "xml"])
async def test_export_everything_round_trips_every_field(
    db: asyncpg.Pool, stored: dict[str, Any], api: Any, fmt: str
) -> None:
    first, second = stored["accounts"]
    expected = await expected_rows(
        db, stored["ids"], stored["cards"], [first, first, first, second]
    )
    status, _, headers, body = await get(api, "/customers/export", format=fmt)
    assert status == 200
    assert headers["Content-Disposition"] == f"attachment; filename=customers.{fmt}"
    if fmt == "csv":
        assert headers["Content-Type"] == "text/csv; charset=utf-8"
        assert body.startswith(b"id,account_id,allegro_buyer_id,") and body.endswith(b"\r\n")
        assert parse_csv(body) == as_csv_sees_it(expected)
    else:
        assert headers["Content-Type"] == "application/xml; charset=utf-8"
        assert parse_xml(body) == expected
    assert POLISH.encode("utf-8") in body


@pytest.mark.parametrize("fmt", ["csv", "xml"])
async def test_export_selected_ids_and_filtered_view(
    db: asyncpg.Pool, stored: dict[str, Any], api: Any, fmt: str
) -> None:
    first, second = stored["accounts"]
    ids, cards = stored["ids"], stored["cards"]
    expected = await expected_rows(db, ids, cards, [first, first, first, second])
    parse = parse_csv if fmt == "csv" else parse_xml
    shown = as_csv_sees_it if fmt == "csv" else (lambda rows: rows)

    _, _, _, body = await get(api, "/customers/export", format=fmt, ids=f"{ids[2]},{ids[0]}")
    assert parse(body) == shown([expected[0], expected[2]])

    _, _, _, body = await get(api, "/customers/export", format=fmt, has_nip="true")
    assert parse(body) == shown([expected[0], expected[3]])

    _, _, _, body = await get(
        api, "/customers/export", format=fmt, account_id=str(first), type="intra_eu"
    )
    assert parse(body) == shown([expected[1]])

    _, _, _, body = await get(api, "/customers/export", format=fmt, ids="999999")
    assert parse(body) == []


async def test_list_filters(stored: dict[str, Any], api: Any) -> None:
    first, second = stored["accounts"]
    ids = stored["ids"]

    async def listed(**params: str) -> list[int]:
        status, payload, _, _ = await get(api, "/customers", **params)
        assert status == 200, payload
        return [item["id"] for item in payload["items"]]

    assert await listed() == ids
    assert await listed(account_id=str(first)) == ids[:3]
    assert await listed(account_id=str(second)) == [ids[3]]
    assert await listed(type="extra_eu") == [ids[2]]
    assert await listed(type="domestic") == [ids[0], ids[3]]
    assert await listed(has_nip="true") == [ids[0], ids[3]]
    assert await listed(has_nip="false") == [ids[1], ids[2]]
    assert await listed(q="łÓdź") == [ids[0]]  # company, any case, Polish letters
    assert await listed(q="piotr NOWAK") == [ids[3]]  # first and last name together
    assert await listed(q="o'brien") == [ids[2]]
    assert await listed(q="779-101-13-27") == [ids[0]]  # NIP typed with separators
    assert await listed(q="b-us+") == [ids[2]]  # e-mail
    assert await listed(q="%") == []  # LIKE wildcards are literal
    today = datetime.now(UTC).date()
    assert await listed(created_from=today.isoformat(), created_to=today.isoformat()) == ids
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert await listed(created_from=tomorrow) == []
    assert await listed(ids=f"{ids[1]},{ids[3]}") == [ids[1], ids[3]]

    _, payload, _, _ = await get(api, "/customers", ids=str(ids[0]))
    item = payload["items"][0]
    assert item["company"] == 'A&B <Sp. z o.o.>, "Łódź"'
    assert item["address"] == {
        "street": "ul. Długa 1\r\nm. 2",
        "city": "Kraków\nPodgórze",
        "zip_code": "60-166",
        "country_code": "PL",
    }
    assert item["active"] is False
    assert item["type"] == "domestic"


async def test_list_pages_with_next(stored: dict[str, Any], api: Any) -> None:
    seen: list[int] = []
    params: dict[str, str] = {"limit": "1"}
    pages = 0
    while True:
        status, payload, _, _ = await get(api, "/customers", **params)
        assert status == 200
        pages += 1
        seen += [item["id"] for item in payload["items"]]
        if payload["next"] is None:
            break
        params["cursor"] = payload["next"]
    assert seen == stored["ids"]
    assert pages == 4

    status, payload, _, _ = await get(api, "/customers", limit="3", has_nip="true")
    assert [i["id"] for i in payload["items"]] == [stored["ids"][0], stored["ids"][3]]
    assert payload["next"] is None


async def test_without_the_token_401(db: asyncpg.Pool, api: Any) -> None:
    server, _ = api
    async with aiohttp.ClientSession() as anonymous:
        for path in ("/customers", "/customers/export?format=csv"):
            async with anonymous.get(server.make_url(path)) as response:
                assert response.status == 401
                assert (await response.json())["error"] == "unauthorized"


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/customers", {"limit": "0"}, "limit"),
        ("/customers", {"limit": "1001"}, "limit"),
        ("/customers", {"limit": "ten"}, "limit"),
        ("/customers", {"cursor": "abc"}, "cursor"),
        ("/customers", {"account_id": "x"}, "account_id"),
        ("/customers", {"account_id": "-1"}, "account_id"),
        ("/customers", {"type": "martian"}, "type"),
        ("/customers", {"has_nip": "maybe"}, "has_nip"),
        ("/customers", {"created_from": "yesterday"}, "created_from"),
        ("/customers", {"created_from": "2026-02-01", "created_to": "2026-01-01"}, "created_to"),
        ("/customers/export", {"format": "xlsx"}, "format"),
        ("/customers/export", {"format": "csv", "ids": "1,two"}, "ids"),
        ("/customers/export", {"format": "csv", "ids": ""}, "ids"),
    ],
)
async def test_bad_parameters_422(
    db: asyncpg.Pool, api: Any, path: str, params: dict[str, str], field: str
) -> None:
    status, payload, _, _ = await get(api, path, **params)
    assert status == 422
    assert payload["error"] == "validation_error"
    assert payload["field"] == field
    assert payload["detail"].startswith(f"{field}: ")


# --- the command line -------------------------------------------------------------------------


def cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="allegro-sync")
    add_customers_command(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["customers", "export", *argv])


@pytest.mark.parametrize("fmt", ["csv", "xml"])
async def test_cli_exports_a_filtered_view_to_a_file(
    db: asyncpg.Pool, database_url: str, stored: dict[str, Any], tmp_path: Path, fmt: str
) -> None:
    first, second = stored["accounts"]
    expected = await expected_rows(
        db, stored["ids"], stored["cards"], [first, first, first, second]
    )
    out = tmp_path / f"customers.{fmt}"
    code = await run_customers(cli_args("--format", fmt, "--has-nip", "-o", str(out)), database_url)
    assert code == 0
    rows = (parse_csv if fmt == "csv" else parse_xml)(out.read_bytes())
    want = [expected[0], expected[3]]
    assert rows == (as_csv_sees_it(want) if fmt == "csv" else want)
    assert os.listdir(tmp_path) == [out.name]  # no temporary file left behind


async def test_cli_exports_ids_and_all(
    database_url: str, stored: dict[str, Any], tmp_path: Path
) -> None:
    ids = stored["ids"]
    out = tmp_path / "picked.csv"
    args = cli_args("--format", "csv", "--ids", f"{ids[1]},{ids[2]}", "-o", str(out))
    assert await run_customers(args, database_url) == 0
    assert [r["id"] for r in parse_csv(out.read_bytes())] == [str(ids[1]), str(ids[2])]
    args = cli_args("--format", "xml", "--no-nip", "--type", "extra_eu", "-o", str(out))
    assert await run_customers(args, database_url) == 0
    assert [r["id"] for r in parse_xml(out.read_bytes())] == [str(ids[2])]


async def test_cli_bad_filter_is_one_line_and_exit_2(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.csv"
    args = cli_args("--format", "csv", "--created-from", "someday", "-o", str(out))
    assert await run_customers(args, database_url) == 2
    err = capsys.readouterr().err
    assert err.startswith("allegro-sync: --created-from: ") and err.count("\n") == 1
    assert not out.exists()


async def test_cli_database_failure_leaves_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.csv"
    out.write_text("previous export\n")
    url = "postgresql://postgres:s3cret@127.0.0.1:5432/allegro_sync_no_such_db"
    assert await run_customers(cli_args("--format", "csv", "-o", str(out)), url) == 1
    err = capsys.readouterr().err
    assert err.startswith("allegro-sync: export failed: ") and err.count("\n") == 1
    assert "s3cret" not in err
    assert out.read_text() == "previous export\n"  # the old file is untouched
    assert os.listdir(tmp_path) == [out.name]


# --- streaming: memory stays flat -------------------------------------------------------------

MANY = 200_000


@pytest.mark.slow
async def test_export_of_many_customers_streams_in_flat_memory(
    db: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    async with db.acquire() as conn:
        account = await add_account(conn, "big_seller")
        records = (
            (
                account,
                f"B-{n}",
                f"code{n}+77c5fa9f6@allegromail.pl",
                "Zażółć",
                f"Gęślą-{n}",
                'Firma, "Jaźń" <&>' if n % 3 == 0 else None,
                f"{n:010d}" if n % 2 == 0 else None,
                "PL",
                "domestic",
            )
            for n in range(MANY)
        )
        await conn.copy_records_to_table(
            "customers",
            records=records,
            columns=[
                "account_id",
                "allegro_buyer_id",
                "email",
                "first_name",
                "last_name",
                "company",
                "nip",
                "country_code",
                "type",
            ],
        )
    out = tmp_path / "many.csv"
    tracemalloc.start()
    try:
        code = await run_customers(cli_args("--format", "csv", "-o", str(out)), database_url)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 0
    size = out.stat().st_size
    with out.open(newline="", encoding="utf-8") as file:
        rows = sum(1 for _ in csv.reader(file)) - 1
    assert rows == MANY
    # Holding every row would take more than the file itself; a stream needs a few chunks.
    assert size > 20_000_000
    assert peak < 10_000_000, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB export"


def test_schema_lists_the_export_columns_in_order() -> None:
    xsd = resources.files("allegro_sync.export") / "customers.xsd"
    root = ET.fromstring(xsd.read_bytes())
    xs = {"xs": "http://www.w3.org/2001/XMLSchema"}
    assert root.get("targetNamespace") == NAMESPACE
    customer = root.find("xs:complexType[@name='customer']/xs:sequence", xs)
    assert customer is not None
    assert tuple(e.get("name") for e in customer) == CUSTOMER_COLUMNS


async def test_xml_stays_well_formed_with_control_characters(db: asyncpg.Pool, api: Any) -> None:
    async with db.acquire() as conn:
        account = await add_account(conn, "seller")
        await upsert_customer(conn, account, card("B-ctl", first_name="bell\x07 and nul-ish\x01"))
    status, _, _, body = await get(api, "/customers/export", format="xml")
    assert status == 200
    (row,) = parse_xml(body)
    assert row["first_name"] == "bell\ufffd and nul-ish\ufffd"


class Terminal(io.StringIO):
    """stderr as a terminal would be."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_and_only_after_the_delay() -> None:
    quick = Terminal()
    bar = Progress(10, quick, delay=60.0)
    bar.update(10)
    bar.finish(10)
    assert quick.getvalue() == ""  # done before the delay: nothing drawn

    piped = io.StringIO()
    bar = Progress(10, piped, delay=0.0)
    bar.update(5)
    bar.finish(10)
    assert piped.getvalue() == ""  # not a terminal: nothing drawn

    slow = Terminal()
    bar = Progress(10, slow, delay=0.0)
    bar.update(5)
    bar.finish(10)
    lines = slow.getvalue().split("\r")
    assert "50%" in lines[1] and "5/10" in lines[1]
    assert lines[-1].endswith("100% 10/10\n")


@pytest.mark.parametrize(
    "name",
    ['=HYPERLINK("http://x","y")', "+48 600", "-2+3", "@SUM(A1)", "\tTab", "\r=1+1"],
)
async def test_csv_cells_a_spreadsheet_would_run_are_text(
    db: asyncpg.Pool, api: Any, name: str
) -> None:
    async with db.acquire() as conn:
        account = await add_account(conn, "seller")
        await upsert_customer(conn, account, card("B-formula", first_name=name, company=name))
    status, _, _, body = await get(api, "/customers/export", format="csv")
    assert status == 200
    (row,) = parse_csv(body)
    # OWASP: a leading single quote makes a spreadsheet show the cell as text
    assert row["first_name"] == "'" + name and row["company"] == "'" + name
    assert row["last_name"] == "Nowak"  # plain cells untouched
    status, _, _, body = await get(api, "/customers/export", format="xml")
    (row,) = parse_xml(body)
    assert row["first_name"] == name  # XML carries it as it is: it escapes, it runs nothing
