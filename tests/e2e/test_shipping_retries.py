"""Shipping steps that keep failing end, and parcels not made yet are listed (issue 16 leftovers):
a parcel whose create or cancel keeps failing becomes ``shipment.failed`` with the reason, a
SENT status step that keeps failing is given up with an event-log entry and a metric, and
``GET /shipments`` lists parcels still requested or failed with their state and Allegro's
errors. The daemon here runs with small bounds; the emulator's injected 5xx is the failure."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest

from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.e2e.flows import Erp, _buy, _handled, _log_codes, _send, _shop
from tests.helpers import eventually

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
MAX_FAILURES = 3


@pytest.fixture
async def daemon(
    database_url: str, amqp_url: str, emulator: Emulator, sandbox_emulator: Emulator
) -> AsyncIterator[Daemon]:
    """A daemon whose parcel steps give up after three failures, its SENT steps after one."""
    running = Daemon(
        daemon_settings(
            database_url,
            amqp_url,
            emulator.url,
            sandbox_emulator.url,
            parcel_max_failures=MAX_FAILURES,
            sent_step_max_attempts=1,
        ),
        poller_timing=FAST_POLLING,
    )
    await running.start()
    yield running
    await running.stop()


async def _order(admin: Admin, emulator: Emulator, db: asyncpg.Pool) -> tuple[int, str]:
    settings = {"shipping_sender": SENDER, "default_package": PACKAGE}
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True, **settings)
    form_id = await _buy(emulator, offers[0])
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    return int(account["id"]), form_id


async def _fail_5xx(emulator: Emulator, *paths: str) -> None:
    await emulator.control("POST", "/faults", {"error_5xx_rate": 1.0, "paths": list(paths)})


async def _page(admin: Admin, query: str) -> dict[str, Any]:
    status, page = await admin.call("GET", f"/shipments?{query}")
    assert status == 200, page
    return dict(page)


async def test_parcels_not_made_yet_are_listed_with_their_state_and_allegros_errors(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    erp = Erp(amqp_url)
    heavy = {**PACKAGE, "weight": 40}
    await _send(
        amqp_url, "shipment.requested", {"checkout_form_id": form_id, "packages": [heavy]}, "p-1"
    )
    [failed] = await erp.wait_for("shipment.failed", timeout=30)

    # a second parcel cannot reach Allegro for now: it stays requested
    await _fail_5xx(emulator, "/shipment-management")
    await _send(amqp_url, "shipment.requested", {"checkout_form_id": form_id}, "p-2")

    async def two_listed() -> dict[str, Any] | None:
        page = await _page(admin, f"checkout_form_id={form_id}")
        return page if len(page["items"]) == 2 else None

    page = await eventually(two_listed, timeout=20)
    waiting, refused = page["items"]  # newest first
    assert waiting["id"] is None and waiting["waybill"] is None
    assert waiting["status"] == "pending" and waiting["account_id"] == account_id
    assert waiting["parcel"]["status"] in ("requested", "creating")
    assert waiting["parcel"]["reason"] is None and waiting["parcel"]["errors"] is None

    assert refused["id"] is None and refused["status"] == "refused"
    assert refused["error"] == failed["reason"] and "exceeds the limit" in refused["error"]
    assert refused["parcel"]["status"] == "failed"
    assert refused["parcel"]["errors"][0]["code"] == "PACKAGE_WEIGHT_LIMIT_EXCEEDED"
    assert refused["parcel"]["trace_id"] == failed["trace_id"]

    only_refused = await _page(admin, f"checkout_form_id={form_id}&status=refused")
    assert [i["parcel"]["status"] for i in only_refused["items"]] == ["failed"]
    assert (await _page(admin, f"checkout_form_id={form_id}&status=DELIVERED"))["items"] == []

    # pages of one: the cursor walks over parcels as over tracking numbers
    first = await _page(admin, f"checkout_form_id={form_id}&limit=1")
    assert first["items"][0]["parcel"]["id"] == waiting["parcel"]["id"] and first["next"]
    second = await _page(admin, f"checkout_form_id={form_id}&limit=1&cursor={quote(first['next'])}")
    assert second["items"][0]["parcel"]["id"] == refused["parcel"]["id"]
    assert second["next"] is None
    status, bad = await admin.call("GET", "/shipments?cursor=2026-01-01T00:00:00|1|x")
    assert status == 422 and bad["field"] == "cursor"

    # once made, the parcel is listed as its tracking number, once
    await emulator.control("POST", "/faults", {})
    [created] = await erp.wait_for("shipment.created", timeout=60)

    async def made() -> dict[str, Any] | None:
        page = await _page(admin, f"checkout_form_id={form_id}")
        return page if page["items"][0]["id"] is not None else None

    page = await eventually(made, timeout=20)
    assert len(page["items"]) == 2
    assert page["items"][0]["waybill"] == created["waybill"]
    assert page["items"][0]["parcel"]["status"] == "created"


async def test_a_parcel_whose_create_keeps_failing_is_given_up_with_the_reason(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    erp = Erp(amqp_url)
    await _fail_5xx(emulator, "/shipment-management")
    body = {"checkout_form_id": form_id}
    await _send(amqp_url, "shipment.requested", body, "doomed")
    await _send(amqp_url, "shipment.requested", body, "doomed")  # redelivered: one parcel
    [failed] = await erp.wait_for("shipment.failed", timeout=60)
    await erp.settle()
    assert len(erp.of("shipment.failed")) == 1 and erp.of("shipment.created") == []
    assert failed["checkout_form_id"] == form_id and failed["operation"] == "create"
    assert f"gave up after {MAX_FAILURES} failed attempts" in failed["reason"]
    assert "Allegro answered 5" in failed["reason"]  # the last failure, in Allegro's words
    command_id = await db.fetchval(
        "SELECT command_id FROM parcels WHERE checkout_form_id = $1", uuid.UUID(form_id)
    )
    assert str(command_id) in failed["reason"]  # Allegro may still carry it out
    assert failed["errors"][0]["code"] == "GIVEN_UP"
    requests = (await emulator.control("GET", "/requests"))["by_path"]
    # the first attempt posts; the later ones read the command on Allegro first (its answer may
    # have been lost) and would post again only on a 404, so every attempt is one request
    assert requests.get("POST /shipment-management/shipments/create-commands") == 1
    follow = "GET /shipment-management/shipments/create-commands/{commandId}"
    assert requests.get(follow) == MAX_FAILURES - 1
    assert "parcel_given_up" in await _log_codes(db, account_id)
    page = await _page(admin, f"checkout_form_id={form_id}")
    [item] = page["items"]
    assert item["status"] == "refused" and item["parcel"]["status"] == "failed"
    assert item["error"] == failed["reason"]

    # no more attempts once given up
    await emulator.control("POST", "/faults", {})
    await erp.settle()
    assert erp.of("shipment.created") == []
    requests = (await emulator.control("GET", "/requests"))["by_path"]
    # the first attempt posts; the later ones read the command on Allegro first (its answer may
    # have been lost) and would post again only on a 404, so every attempt is one request
    assert requests.get("POST /shipment-management/shipments/create-commands") == 1
    follow = "GET /shipment-management/shipments/create-commands/{commandId}"
    assert requests.get(follow) == MAX_FAILURES - 1


async def test_a_cancel_that_keeps_failing_is_given_up_and_the_parcel_stays(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    erp = Erp(amqp_url)
    await _send(amqp_url, "shipment.requested", {"checkout_form_id": form_id}, "to-keep")
    [created] = await erp.wait_for("shipment.created", timeout=30)
    await _fail_5xx(emulator, "/shipment-management/shipments/cancel-commands")
    await _send(amqp_url, "shipment.cancel", {"shipment_id": created["shipment_id"]}, "cancel")
    [failed] = await erp.wait_for("shipment.failed", timeout=60)
    assert failed["operation"] == "cancel" and failed["shipment_id"] == created["shipment_id"]
    assert f"gave up after {MAX_FAILURES} failed attempts" in failed["reason"]
    assert "the cancel was not carried out" in failed["reason"]
    assert erp.of("shipment.cancelled") == []
    assert "parcel_given_up" in await _log_codes(db, account_id)
    page = await _page(admin, f"checkout_form_id={form_id}")
    assert page["items"][0]["parcel"]["status"] == "created"
    [parcel] = (await emulator.control("GET", "/parcels"))["parcels"]
    assert parcel["cancelled"] is False


async def test_a_sent_status_step_that_keeps_failing_is_given_up_with_a_log_entry_and_metric(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str, daemon: Daemon
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    await _fail_5xx(emulator, f"/order/checkout-forms/{form_id}/fulfillment")
    waybill = "620012345678901"
    shipment = {"checkout_form_id": form_id, "carrier_id": "INPOST", "waybill": waybill}
    await _send(amqp_url, "shipment.added", shipment, "ship-1")
    await _send(amqp_url, "shipment.added", shipment, "ship-1")  # redelivered

    async def given_up() -> bool:
        return "fulfillment_status_given_up" in await _log_codes(db, account_id)

    await eventually(given_up, timeout=30)
    row = await db.fetchrow(
        "SELECT status, fulfillment_at, status_step_attempts, status_step_error"
        " FROM shipments WHERE checkout_form_id = $1",
        uuid.UUID(form_id),
    )
    assert row["status"] == "sent" and row["fulfillment_at"] is not None
    assert row["status_step_attempts"] == 1 and "attempts" in row["status_step_error"]
    entry = await db.fetchval(
        "SELECT message FROM event_log WHERE account_id = $1"
        " AND code = 'fulfillment_status_given_up'",
        account_id,
    )
    assert waybill in entry and "Allegro answered 5" in entry
    assert daemon.metrics.registry.get_sample_value("allegro_sync_sent_step_given_up_total") == 1
    form = await emulator.control("GET", f"/checkout-forms/{form_id}")
    assert form["fulfillment"]["status"] != "SENT"
    # not tried again once given up, even with Allegro back
    await emulator.control("POST", "/faults", {})
    requests = (await emulator.control("GET", "/requests"))["by_path"]
    before = requests.get("PUT /order/checkout-forms/{id}/fulfillment", 0)
    await asyncio.sleep(2.0)  # rounds of the SENT step pass (every half second when idle)
    requests = (await emulator.control("GET", "/requests"))["by_path"]
    assert requests.get("PUT /order/checkout-forms/{id}/fulfillment", 0) == before
    assert daemon.metrics.registry.get_sample_value("allegro_sync_sent_step_given_up_total") == 1
