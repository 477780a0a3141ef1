"""The pure parts of the delivery-status reads: which statuses of a history are changes."""

from __future__ import annotations

from datetime import UTC, datetime

from allegro_sync.handlers.shipment_tracking import Change, groups, read_history


def _at(hour: int) -> datetime:
    return datetime(2026, 12, 1, hour, tzinfo=UTC)


def _details(*statuses: tuple[int, str]) -> dict[str, object]:
    return {
        "statuses": [
            {"occurredAt": _at(h).isoformat().replace("+00:00", "Z"), "code": c}
            for h, c in statuses
        ],
        "createdAt": "2026-12-01T00:00:00.000Z",
        "updatedAt": "2026-12-01T00:00:00.000Z",
    }


def test_every_new_status_is_a_change_and_a_repeated_code_is_none() -> None:
    history = _details((0, "PENDING"), (6, "IN_TRANSIT"), (9, "IN_TRANSIT"), (12, "DELIVERED"))
    reading = read_history(history, None, None)
    assert reading.changes == [
        Change("PENDING", _at(0)),
        Change("IN_TRANSIT", _at(6)),
        Change("DELIVERED", _at(12)),
    ]
    assert reading.last == Change("DELIVERED", _at(12)) and reading.done == "delivered"


def test_what_was_seen_is_not_a_change_again() -> None:
    history = _details((0, "PENDING"), (6, "IN_TRANSIT"), (9, "IN_TRANSIT"))
    reading = read_history(history, "IN_TRANSIT", _at(6))
    assert reading.changes == [] and reading.last == Change("IN_TRANSIT", _at(6))
    assert reading.done is None
    later = _details((0, "PENDING"), (6, "IN_TRANSIT"), (10, "RETURNED"))
    reading = read_history(later, "IN_TRANSIT", _at(6))
    assert reading.changes == [Change("RETURNED", _at(10))] and reading.done == "returned"


def test_no_details_and_a_terminal_flag() -> None:
    assert read_history(None, None, None).changes == []
    assert read_history(None, "PENDING", _at(0)).last == Change("PENDING", _at(0))
    terminal = {"statuses": [{"occurredAt": "2026-12-01T05:00:00Z", "code": "ISSUE"}]}
    terminal["statuses"][0]["terminal"] = True  # type: ignore[index]
    assert read_history(terminal, None, None).done == "ended"


def test_groups_are_per_account_and_carrier_at_most_20() -> None:
    rows = [{"account_id": 1, "carrier_id": "DPD", "n": n} for n in range(45)]
    rows += [{"account_id": 2, "carrier_id": "DPD", "n": 0}]
    sizes = [len(g) for g in groups(rows)]  # type: ignore[arg-type]
    assert sizes == [20, 20, 5, 1]


async def test_the_reads_keep_to_their_share_of_the_client_budget() -> None:
    import time

    from allegro_sync.daemon.shipment_tracker import ShipmentTracker
    from allegro_sync.metrics import Metrics

    tracker = ShipmentTracker(
        dsn="postgresql://unused",
        pool=None,  # type: ignore[arg-type]
        allegro=None,  # type: ignore[arg-type]
        metrics=Metrics(),
        requests_per_minute=1200,
        budget_share=0.1,  # 120 a minute: 2 a second
    )
    started = time.monotonic()
    for _ in range(6):
        await tracker._pace()
    # a burst of 2, then 2 a second: 6 reads take 2 s
    assert 1.8 <= time.monotonic() - started < 4.0
