"""Parcels sent with Allegro end to end (issue 16 items 2 and 3): ``shipment.requested`` becomes
one create command on the emulator, followed to its end, its label read and stored, and
``shipment.created`` (or ``shipment.failed``) published; a cancel; the protocol and a pickup
from the admin API and the CLI; bad input dead-lettered."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.cli import build_parser
from allegro_sync.daemon.cli_shipments import run_shipments
from tests.e2e.conftest import Admin, Emulator
from tests.e2e.flows import Erp, _buy, _dead_letters, _handled, _log_codes, _send, _shop
from tests.helpers import ADMIN_TOKEN

SENDER = {
    "name": "Sklep Kubek",
    "street": "Prosta 1",
    "postal_code": "00-001",
    "city": "Warszawa",
    "country_code": "PL",
    "phone": "+48 500 600 700",
    "email": "wysylka@kubek.example",
}
PACKAGE = {"type": "PACKAGE", "length": 30, "width": 20, "height": 10, "weight": 2.5}


async def _order(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, **settings: Any
) -> tuple[int, str]:
    """A connected account with shipping settings and one paid order: (account, form id)."""
    settings = {"shipping_sender": SENDER, "default_package": PACKAGE, **settings}
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True, **settings)
    form_id = await _buy(emulator, offers[0])
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    return int(account["id"]), form_id


async def _parcels_on_allegro(emulator: Emulator) -> list[dict[str, Any]]:
    found = await emulator.control("GET", "/parcels")
    return list(found["parcels"])


async def _created(erp: Erp, form_id: str, count: int = 1) -> list[dict[str, Any]]:
    await erp.wait_for("shipment.created", count, timeout=30)
    return [m for m in erp.of("shipment.created") if m["checkout_form_id"] == form_id]


async def _parcel_of(
    amqp_url: str, erp: Erp, form_id: str, message_id: str, **fields: Any
) -> dict[str, Any]:
    await _send(amqp_url, "shipment.requested", {"checkout_form_id": form_id, **fields}, message_id)
    [created] = await _created(erp, form_id)
    return created


def command_input() -> dict[str, Any]:
    """A create command's input as the daemon stores it for the test order."""
    return {
        "deliveryMethodId": "1fa56f79-4b6a-4821-a6f2-ca9c16d5c925",
        "sender": {
            "name": "Sklep Kubek",
            "street": "Prosta 1",
            "postalCode": "00-001",
            "city": "Warszawa",
            "countryCode": "PL",
            "email": "wysylka@kubek.example",
            "phone": "500600700",
        },
        "receiver": {
            "name": "Jan Kowalski",
            "street": "Długa 2",
            "postalCode": "60-001",
            "city": "Poznań",
            "countryCode": "PL",
            "email": "jan@allegromail.pl",
            "phone": "600700800",
        },
        "packages": [
            {
                "type": "PACKAGE",
                "length": {"value": 30, "unit": "CENTIMETER"},
                "width": {"value": 20, "unit": "CENTIMETER"},
                "height": {"value": 10, "unit": "CENTIMETER"},
                "weight": {"value": 2, "unit": "KILOGRAMS"},
            }
        ],
        "labelFormat": "PDF",
    }


async def test_a_requested_parcel_is_made_once_and_its_label_published(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    erp = Erp(amqp_url)
    body = {"checkout_form_id": form_id, "reference": "ZAM/2026/1", "label_format": "PDF"}
    await _send(amqp_url, "shipment.requested", body, "parcel-1")
    await _send(amqp_url, "shipment.requested", body, "parcel-1")  # redelivered
    [created] = await _created(erp, form_id)
    await erp.settle()
    assert len(erp.of("shipment.created")) == 1

    [parcel] = await _parcels_on_allegro(emulator)
    assert created["shipment_id"] == parcel["id"] and parcel["reference"] == "ZAM/2026/1"
    assert created["waybill"] == parcel["waybills"][0]
    assert created["carrier_id"] == parcel["carrier"] and created["label_format"] == "PDF"
    label = base64.b64decode(created["label_base64"])
    assert label.startswith(b"%PDF-") and label.rstrip().endswith(b"%%EOF")
    assert created["waybill"].encode() in label

    async with admin.session.get(
        f"{admin.url}/shipments/{parcel['id']}/label",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as r:
        assert r.status == 200 and r.content_type == "application/pdf"
        assert await r.read() == label
    status, missing = await admin.call("GET", "/shipments/no-such-parcel/label")
    assert status == 404 and missing["error"] == "not_found"

    # the parcel's tracking number is listed with the order's, with the parcel's state
    status, page = await admin.call("GET", f"/shipments?checkout_form_id={form_id}")
    assert status == 200
    [item] = page["items"]
    assert item["waybill"] == created["waybill"] and item["status"] == "sent"
    assert item["parcel"]["status"] == "created" and item["parcel"]["label_format"] == "PDF"
    assert "parcel_created" in await _log_codes(db, account_id)
    requests = (await emulator.control("GET", "/requests"))["by_path"]
    assert requests.get("POST /shipment-management/shipments/create-commands") == 1, requests


async def test_a_crash_after_persisting_the_command_makes_exactly_one_parcel(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str, daemon: Daemon
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    assert daemon.allegro is not None
    erp = Erp(amqp_url)
    request = command_input()
    command_id = uuid.uuid4()
    # The daemon persisted the command and sent it; Allegro took it; the daemon died before
    # it stored the answer. Its row says "requested": it sends the same command again, and
    # Allegro's 409 (the id used already) is taken as sent.
    await daemon.allegro.request(
        account_id,
        "POST",
        "/shipment-management/shipments/create-commands",
        action="create parcel",
        json={"commandId": str(command_id), "input": request},
    )
    await db.execute(
        "INSERT INTO parcels (account_id, checkout_form_id, command_id, request, label_format)"
        " VALUES ($1, $2, $3, $4, 'PDF')",
        account_id,
        uuid.UUID(form_id),
        command_id,
        request,
    )
    await db.execute("SELECT pg_notify('allegro_sync_parcels', '')")
    [created] = await _created(erp, form_id)
    [parcel] = await _parcels_on_allegro(emulator)
    assert created["shipment_id"] == parcel["id"] and parcel["command_id"] == str(command_id)
    requests = (await emulator.control("GET", "/requests"))["by_path"]
    assert requests.get("POST /shipment-management/shipments/create-commands") == 2, requests


async def test_allegro_refusing_a_too_heavy_parcel_is_published_with_its_words(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    erp = Erp(amqp_url)
    heavy = {**PACKAGE, "weight": 40}
    body = {"checkout_form_id": form_id, "packages": [heavy]}
    await _send(amqp_url, "shipment.requested", body, "too-heavy")
    [failed] = await erp.wait_for("shipment.failed", timeout=30)
    assert failed["checkout_form_id"] == form_id and failed["operation"] == "create"
    assert "exceeds the limit" in failed["reason"] and failed["shipment_id"] is None
    assert failed["errors"][0]["code"] == "PACKAGE_WEIGHT_LIMIT_EXCEEDED"
    assert failed["trace_id"]
    assert await _parcels_on_allegro(emulator) == []
    assert erp.of("shipment.created") == []
    assert "parcel_refused" in await _log_codes(db, account_id)
    # an unknown delivery method: Allegro's 400 at once
    await _send(
        amqp_url,
        "shipment.requested",
        {"checkout_form_id": form_id, "delivery_method_id": str(uuid.uuid4())},
        "unknown-method",
    )
    failures = await erp.wait_for("shipment.failed", 2, timeout=30)
    assert "not available" in failures[1]["reason"]
    assert failures[1]["errors"][0]["path"] == "input.deliveryMethodId"


async def test_a_parcel_is_cancelled_once(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    _, form_id = await _order(admin, emulator, db)
    erp = Erp(amqp_url)
    created = await _parcel_of(amqp_url, erp, form_id, "to-cancel")
    cancel = {"shipment_id": created["shipment_id"]}
    await _send(amqp_url, "shipment.cancel", cancel, "cancel-1")
    await _send(amqp_url, "shipment.cancel", cancel, "cancel-1")  # redelivered
    [cancelled] = await erp.wait_for("shipment.cancelled", timeout=30)
    assert cancelled == {"checkout_form_id": form_id, "shipment_id": created["shipment_id"]}
    [parcel] = await _parcels_on_allegro(emulator)
    assert parcel["cancelled"] is True
    await _send(amqp_url, "shipment.cancel", cancel, "cancel-again")  # cancelled: nothing more
    await erp.settle()
    assert len(erp.of("shipment.cancelled")) == 1
    status, page = await admin.call("GET", f"/shipments?checkout_form_id={form_id}")
    assert status == 200 and page["items"][0]["parcel"]["status"] == "cancelled"


def _cli(*argv: str) -> Any:
    return build_parser().parse_args(["shipments", *argv])


async def test_protocol_and_pickup_from_the_admin_api_and_the_cli(
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    amqp_url: str,
    daemon: Daemon,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    erp = Erp(amqp_url)
    first = await _parcel_of(amqp_url, erp, form_id, "proto-1")
    await _send(amqp_url, "shipment.requested", {"checkout_form_id": form_id}, "proto-2")
    both = await _created(erp, form_id, 2)
    ids = [p["shipment_id"] for p in both]
    assert first["shipment_id"] in ids

    body = {"account_id": account_id, "shipment_ids": ids}
    async with admin.session.post(
        f"{admin.url}/shipments/protocol",
        json=body,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as r:
        assert r.status == 200 and r.content_type == "application/pdf"
        document = await r.read()
    assert document.startswith(b"%PDF-") and b"Parcels: 2" in document
    output = tmp_path / "protocol.pdf"
    args = _cli(
        "protocol", "--account", str(account_id), "--shipment", *ids, "--output", str(output)
    )
    assert await run_shipments(args, daemon.settings) == 0
    assert output.read_bytes().startswith(b"%PDF-") and b"Parcels: 2" in output.read_bytes()

    status, picked = await admin.call(
        "POST", "/shipments/pickup", {"account_id": account_id, "shipment_ids": ids[:1]}
    )
    assert status == 200, picked
    assert picked["pickup_id"] and picked["carrier_pickup_id"] and picked["date"]
    on_allegro = {p["id"]: p for p in await _parcels_on_allegro(emulator)}
    assert on_allegro[ids[0]]["pickup_id"] == picked["pickup_id"]
    capsys.readouterr()
    args = _cli("pickup", "--account", str(account_id), "--shipment", ids[1])
    assert await run_shipments(args, daemon.settings) == 0
    assert '"pickup_id"' in capsys.readouterr().out
    # a pickup already ordered: Allegro's refusal, one line, exit 1
    args = _cli("pickup", "--account", str(account_id), "--shipment", ids[0])
    assert await run_shipments(args, daemon.settings) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already ordered" in err

    # bad input: JSON errors, one-line CLI refusals
    for wrong in (
        {"account_id": account_id, "shipment_ids": []},
        {"account_id": "1", "shipment_ids": ids},
        {"account_id": account_id, "shipment_ids": ids, "extra": 1},
    ):
        status, error = await admin.call("POST", "/shipments/protocol", wrong)
        assert status == 422 and error["error"] == "validation_error", error
    status, error = await admin.call(
        "POST", "/shipments/protocol", {"account_id": account_id, "shipment_ids": ["nope"]}
    )
    assert status == 422 and "nope" in error["detail"]
    status, error = await admin.call("POST", "/shipments/pickup", {**body, "date": "tomorrow"})
    assert status == 422 and error["field"] == "date"
    args = _cli("protocol", "--account", "999999", "--shipment", ids[0], "--output", str(output))
    assert await run_shipments(args, daemon.settings) == 1
    assert capsys.readouterr().err.strip() == "allegro-sync: no account 999999"


async def test_bad_parcel_messages_are_dead_lettered_with_the_reason(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    _, form_id = await _order(admin, emulator, db, default_package=None)
    _, other, offers = await _shop(admin, emulator, db, login="no-sender", auto_create_orders=True)
    bare_form = await _buy(emulator, offers[0])
    await _handled(db, bare_form, "READY_FOR_PROCESSING")
    await _send(
        amqp_url, "shipment.requested", {"checkout_form_id": str(uuid.uuid4())}, "bad-order"
    )
    await _send(amqp_url, "shipment.requested", {"checkout_form_id": form_id}, "no-package")
    await _send(amqp_url, "shipment.requested", {"checkout_form_id": bare_form}, "no-sender")
    await _send(
        amqp_url,
        "shipment.requested",
        {"checkout_form_id": form_id, "packages": [{**PACKAGE, "weight": "2"}]},
        "weight-text",
    )
    await _send(amqp_url, "shipment.cancel", {"shipment_id": "no-such"}, "bad-cancel")
    errors = "\n".join(await _dead_letters(amqp_url, 5))
    assert "no such order" in errors
    assert "no default_package" in errors
    assert "no shipping_sender" in errors
    assert "weight" in errors
    assert "unknown shipment no-such" in errors
    assert await _parcels_on_allegro(emulator) == []
    assert not await db.fetchval("SELECT count(*) FROM parcels")
    assert other["id"]
