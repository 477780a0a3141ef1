"""The steps of a parcel sent with Allegro, end to end on the emulator, where they can go wrong:
a step that outlives its claim, a create command whose answer was lost, failures no retry
cures, a parcel of several packages, the order's SENT status and a cancelled parcel's tracking,
a courier pickup still in progress."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.cli import build_parser
from allegro_sync.daemon.cli_shipments import run_shipments
from allegro_sync.handlers.parcel_handover import PickupPending, pickup
from allegro_sync.handlers.parcels import advance
from tests.e2e.conftest import Admin, Emulator
from tests.e2e.flows import Erp, _buy, _dead_letters, _handled, _send, _shop, switch
from tests.e2e.test_parcels import PACKAGE, SENDER, command_input
from tests.helpers import eventually

CREATE = "POST /shipment-management/shipments/create-commands"
# The columns of a claim (adapters/postgres/parcels.py CLAIM), read as an earlier claim had them.
CLAIMED = """
SELECT p.id, p.account_id, p.checkout_form_id, p.command_id, p.request, p.label_format,
       $2::text AS status, p.attempts - 1 AS attempts, p.allegro_shipment_id,
       p.cancel_command_id, p.cancel_sent_at, p.sent_at, true AS active
  FROM parcels p WHERE p.id = $1
"""


async def _order(admin: Admin, emulator: Emulator, db: asyncpg.Pool) -> tuple[int, str, str]:
    """A connected account with shipping settings and one paid order: (account, form, seller)."""
    settings = {"shipping_sender": SENDER, "default_package": PACKAGE}
    seller, account, offers = await _shop(admin, emulator, db, auto_create_orders=True, **settings)
    form_id = await _buy(emulator, offers[0])
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    return int(account["id"]), form_id, str(seller["id"])


async def _requests(emulator: Emulator) -> dict[str, int]:
    return dict((await emulator.control("GET", "/requests"))["by_path"])


async def _stored(
    db: asyncpg.Pool, account_id: int, form_id: str, command_id: uuid.UUID, sent: bool
) -> None:
    """A parcel row as the consumer stored it, its create command posted before (``sent``: the
    daemon marked it sent, then lost the answer or crashed), and the service woken."""
    await db.execute(
        "INSERT INTO parcels (account_id, checkout_form_id, command_id, request, label_format,"
        " sent_at) VALUES ($1, $2, $3, $4, 'PDF', CASE WHEN $5 THEN now() END)",
        account_id,
        uuid.UUID(form_id),
        command_id,
        command_input(),
        sent,
    )
    await db.execute("SELECT pg_notify('allegro_sync_parcels', '')")


async def test_a_step_that_outlived_its_claim_neither_undoes_a_cancel_nor_publishes_again(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str, daemon: Daemon
) -> None:
    _, form_id, _ = await _order(admin, emulator, db)
    assert daemon.allegro is not None
    erp = Erp(amqp_url)
    await _send(amqp_url, "shipment.requested", {"checkout_form_id": form_id}, "slow-step")
    [created] = await erp.wait_for("shipment.created", timeout=30)
    row_id = await db.fetchval("SELECT id FROM parcels")
    # the claim of a replica whose step (reading the command, the parcel, the label) was slower
    # than its lease: another replica claimed the row after it and made the parcel
    stale = await db.fetchrow(CLAIMED, row_id, "creating")
    # the ERP cancels; before the service sends the cancel, the slow step ends
    await db.execute(
        "UPDATE parcels SET status = 'cancelling', cancel_command_id = $2,"
        " next_attempt_at = now() + interval '1 hour' WHERE id = $1",
        row_id,
        uuid.uuid4(),
    )
    await advance(daemon.allegro, db, stale)
    assert await db.fetchval("SELECT status FROM parcels") == "cancelling"  # the cancel stays
    await db.execute("UPDATE parcels SET status = 'created', cancel_command_id = NULL")
    # and when it ends after the cancel (Allegro then refuses the cancelled parcel's label)
    await _send(amqp_url, "shipment.cancel", {"shipment_id": created["shipment_id"]}, "cancel")
    await erp.wait_for("shipment.cancelled", timeout=30)

    await advance(daemon.allegro, db, stale)  # the slow step ends now
    assert await db.fetchval("SELECT status FROM parcels") == "cancelled"
    await erp.settle()
    assert len(erp.of("shipment.created")) == 1 and erp.of("shipment.failed") == []


async def test_a_create_command_whose_answer_was_lost_is_read_not_left_requested(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str, daemon: Daemon
) -> None:
    account_id, form_id, _ = await _order(admin, emulator, db)
    assert daemon.allegro is not None
    erp = Erp(amqp_url)
    # posted, the daemon marked it sent just before, its answer lost: read, not posted again
    posted = uuid.uuid4()
    await daemon.allegro.request(
        account_id,
        "POST",
        "/shipment-management/shipments/create-commands",
        action="create parcel",
        json={"commandId": str(posted), "input": command_input()},
    )
    await _stored(db, account_id, form_id, posted, sent=True)
    [first] = await erp.wait_for("shipment.created", timeout=30)
    assert (await _requests(emulator)).get(CREATE) == 1
    # marked sent, but the POST never reached Allegro: Allegro does not know it, so it is posted
    lost = uuid.uuid4()
    await _stored(db, account_id, form_id, lost, sent=True)
    both = await erp.wait_for("shipment.created", 2, timeout=30)
    assert (await _requests(emulator)).get(CREATE) == 2
    parcels = (await emulator.control("GET", "/parcels"))["parcels"]
    assert {p["command_id"] for p in parcels} == {str(posted), str(lost)}
    assert {m["shipment_id"] for m in both} == {p["id"] for p in parcels}
    assert first["shipment_id"] != both[1]["shipment_id"]
    statuses = await db.fetch("SELECT status FROM parcels")
    assert [r["status"] for r in statuses] == ["created", "created"]


async def test_failures_no_retry_cures_end_the_parcel_with_the_reason(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str, daemon: Daemon
) -> None:
    account_id, form_id, seller_id = await _order(admin, emulator, db)
    assert daemon.allegro is not None
    erp = Erp(amqp_url)
    # the parcel was made and then cancelled on Allegro (by the seller, in Allegro's pages)
    # before its label was read: Allegro refuses the label for good
    command_id = uuid.uuid4()
    path = "/shipment-management/shipments/create-commands"
    await daemon.allegro.request(
        account_id,
        "POST",
        path,
        action="create parcel",
        json={"commandId": str(command_id), "input": command_input()},
    )

    async def made() -> str | None:
        await emulator.control("POST", "/clock", {"advance_seconds": 1})
        answer = await daemon.allegro.get(account_id, f"{path}/{command_id}", action="follow")
        return answer.get("shipmentId") if answer.get("status") == "SUCCESS" else None

    shipment_id = await eventually(made, timeout=20)
    await daemon.allegro.request(
        account_id,
        "POST",
        "/shipment-management/shipments/cancel-commands",
        action="cancel parcel",
        json={"commandId": str(uuid.uuid4()), "input": {"shipmentId": shipment_id}},
    )
    await db.execute(
        "INSERT INTO parcels (account_id, checkout_form_id, command_id, request, label_format,"
        " status, sent_at) VALUES ($1, $2, $3, $4, 'PDF', 'creating', now())",
        account_id,
        uuid.UUID(form_id),
        command_id,
        command_input(),
    )
    await db.execute("SELECT pg_notify('allegro_sync_parcels', '')")
    [failed] = await erp.wait_for("shipment.failed", timeout=30)
    assert failed["operation"] == "create" and failed["shipment_id"] == shipment_id
    assert "cancelled" in failed["reason"] and failed["trace_id"]
    assert await db.fetchval("SELECT status FROM parcels") == "failed"

    # an account switched off: a new request is dead-lettered, a stored one ends as failed
    await switch(admin, account_id, active=False)
    await _stored(db, account_id, form_id, uuid.uuid4(), sent=False)
    failures = await erp.wait_for("shipment.failed", 2, timeout=30)
    assert failures[1]["errors"][0]["code"] == "allegro_sync.account_inactive"
    assert "switched off" in failures[1]["reason"]
    await _send(amqp_url, "shipment.requested", {"checkout_form_id": form_id}, "switched-off")
    [error] = await _dead_letters(amqp_url, 1)
    assert "switched off" in error
    assert (await _requests(emulator)).get(CREATE) == 1  # only the test's own
    assert seller_id


async def test_dead_credentials_end_the_parcel_with_the_reason(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    account_id, form_id, seller_id = await _order(admin, emulator, db)
    erp = Erp(amqp_url)
    # "log out everywhere": the daemon's tokens no longer work and cannot be refreshed
    await emulator.control("POST", f"/sellers/{seller_id}/revoke-tokens")
    await _stored(db, account_id, form_id, uuid.uuid4(), sent=False)
    [failed] = await erp.wait_for("shipment.failed", timeout=30)
    # whichever saw it first: the parcel service, or the poller that switched the account off
    assert failed["errors"][0]["code"] in (
        "allegro_sync.credentials_dead",
        "allegro_sync.account_inactive",
    ), failed
    assert await db.fetchval("SELECT status FROM parcels") == "failed"


async def test_every_package_is_tracked_and_the_order_marked_sent_until_the_parcel_is_cancelled(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    _, form_id, _ = await _order(admin, emulator, db)
    erp = Erp(amqp_url)
    body = {"checkout_form_id": form_id, "packages": [PACKAGE, {**PACKAGE, "weight": 4}]}
    await _send(amqp_url, "shipment.requested", body, "two-packages")
    [created] = await erp.wait_for("shipment.created", timeout=30)
    [parcel] = (await emulator.control("GET", "/parcels"))["parcels"]
    assert len(parcel["waybills"]) == 2
    assert [w["waybill"] for w in created["waybills"]] == parcel["waybills"]
    assert {w["carrier_id"] for w in created["waybills"]} == {parcel["carrier"]}
    assert created["waybill"] == parcel["waybills"][0]

    status, page = await admin.call("GET", f"/shipments?checkout_form_id={form_id}")
    assert status == 200
    assert sorted(i["waybill"] for i in page["items"]) == sorted(parcel["waybills"])

    async def sent() -> bool:
        form = await emulator.control("GET", f"/checkout-forms/{form_id}")
        return bool(form["fulfillment"]["status"] == "SENT")

    await eventually(sent, timeout=30)  # mark_sent_on_tracking is on by default

    await _send(amqp_url, "shipment.cancel", {"shipment_id": created["shipment_id"]}, "cancel")
    await erp.wait_for("shipment.cancelled", timeout=30)
    done = await db.fetch(
        "SELECT tracking_done FROM shipments WHERE checkout_form_id = $1", uuid.UUID(form_id)
    )
    assert [r["tracking_done"] for r in done] == ["cancelled", "cancelled"]


async def test_a_pickup_still_in_progress_is_resumed_by_its_command_id_not_ordered_again(
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    amqp_url: str,
    daemon: Daemon,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account_id, form_id, _ = await _order(admin, emulator, db)
    assert daemon.allegro is not None
    erp = Erp(amqp_url)
    await _send(amqp_url, "shipment.requested", {"checkout_form_id": form_id}, "to-pick-up")
    [created] = await erp.wait_for("shipment.created", timeout=30)
    ids = [created["shipment_id"]]
    # the caller stops waiting while Allegro is still ordering the courier
    with pytest.raises(PickupPending) as pending:
        await pickup(daemon.allegro, db, account_id, ids, wait_seconds=0)
    command_id = str(pending.value.command_id)
    assert command_id in str(pending.value)

    status, picked = await admin.call(
        "POST", "/shipments/pickup", {"account_id": account_id, "command_id": command_id}
    )
    assert status == 200, picked
    assert picked["command_id"] == command_id and picked["shipment_ids"] == ids
    on_allegro = await emulator.control("GET", "/parcels")
    assert list(on_allegro["pickups"]) == [picked["pickup_id"]]
    assert on_allegro["parcels"][0]["pickup_id"] == picked["pickup_id"]
    # asked again from the CLI: the same pickup, as stored; no second courier
    capsys.readouterr()
    args = build_parser().parse_args(
        ["shipments", "pickup", "--account", str(account_id), "--command-id", command_id]
    )
    assert await run_shipments(args, daemon.settings) == 0
    assert json.loads(capsys.readouterr().out)["pickup_id"] == picked["pickup_id"]
    requests = await _requests(emulator)
    assert requests.get("POST /shipment-management/pickups/create-commands") == 1, requests

    for wrong, field in (
        ({"account_id": account_id, "command_id": "nope"}, "command_id"),
        ({"account_id": account_id, "command_id": command_id, "date": "2026-01-01"}, "date"),
    ):
        status, error = await admin.call("POST", "/shipments/pickup", wrong)
        assert status == 422 and error["field"] == field, error
    unknown = {"account_id": account_id, "command_id": str(uuid.uuid4())}
    status, error = await admin.call("POST", "/shipments/pickup", unknown)
    assert status == 422 and "no pickup command" in error["detail"]
    # stored, but its POST never reached Allegro (a timeout): Allegro's 404 says so
    never = uuid.uuid4()
    await db.execute(
        "INSERT INTO parcel_pickups (command_id, account_id, shipment_ids, slot)"
        " VALUES ($1, $2, $3, $4)",
        never,
        account_id,
        ids,
        {"date": picked["date"]},
    )
    lost = {"account_id": account_id, "command_id": str(never)}
    status, error = await admin.call("POST", "/shipments/pickup", lost)
    assert status == 422 and "never arrived" in error["detail"], error
