"""What the order sweep hands to order handling: the forms the journal did not deliver."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from allegro_sync.contract import ORDER_BACKFILL, OrderBackfillMessage
from allegro_sync.handlers.order_sweep import sweep_message, undelivered

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def form(updated: datetime | None, revision: str = "r1") -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "revision": revision,
        "updatedAt": updated.isoformat().replace("+00:00", "Z") if updated else None,
    }


def test_a_form_never_stored_or_stored_as_of_an_older_buyer_action_is_undelivered() -> None:
    unseen, older, same, newer = form(NOW), form(NOW), form(NOW), form(NOW)
    stored = {
        uuid.UUID(str(older["id"])): NOW - timedelta(seconds=30),  # READY never journalled
        uuid.UUID(str(same["id"])): NOW,  # the journal delivered this change
        uuid.UUID(str(newer["id"])): NOW + timedelta(seconds=1),  # a newer read is stored
    }
    assert undelivered([unseen, older, same, newer], stored) == [unseen, older]


def test_a_stored_form_without_a_stored_change_time_is_undelivered() -> None:
    stale = form(NOW)
    assert undelivered([stale], {uuid.UUID(str(stale["id"])): None}) == [stale]


def test_the_sweep_message_is_the_backfill_message_with_the_form_and_a_stable_id() -> None:
    found = form(NOW, revision="abc")
    message = sweep_message(7, found, NOW)
    assert message.routing_key == ORDER_BACKFILL
    assert message.message_id == f"order-sweep:{found['id']}:abc"
    parsed = OrderBackfillMessage.model_validate(message.payload)
    assert parsed.account_id == 7 and str(parsed.checkout_form_id) == found["id"]
    assert parsed.form == found and parsed.form_read_at == NOW
    assert sweep_message(7, found, NOW + timedelta(minutes=10)).message_id == message.message_id
