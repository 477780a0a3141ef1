"""A journal page becomes one message per subject (checkout form, offer): its last event."""

from __future__ import annotations

from typing import Any

from allegro_sync.adapters.allegro.offer_journal import OfferJournal
from allegro_sync.adapters.allegro.order_journal import OrderJournal
from allegro_sync.contract import RUN_EXTRAS, run_splitter
from allegro_sync.daemon.pollers import coalesce, page_messages


def order_event(event_id: str, form_id: str | None, kind: str) -> dict[str, Any]:
    order = {"checkoutForm": {"id": form_id}} if form_id else {}
    return {"id": event_id, "type": kind, "order": order}


def offer_event(event_id: str, offer_id: str, kind: str) -> dict[str, Any]:
    return {"id": event_id, "type": kind, "offer": {"id": offer_id}}


async def _nothing(_: int) -> None:
    return None


async def _no_gap(*_: object) -> None:
    return None


def test_order_events_of_one_form_become_its_last_event_with_the_earlier_ids() -> None:
    journal = OrderJournal(allegro=None, backfill=_nothing)  # type: ignore[arg-type]
    page = [
        order_event("1", "form-a", "BOUGHT"),
        order_event("2", "form-b", "BOUGHT"),
        order_event("3", "form-a", "FILLED_IN"),
        order_event("4", None, "ODD"),
        order_event("5", "form-a", "READY_FOR_PROCESSING"),
    ]
    kept = coalesce(journal, page)
    assert [(event["id"], event["type"], earlier) for event, earlier in kept] == [
        ("2", "BOUGHT", []),
        ("4", "ODD", []),  # no subject: stands alone
        ("5", "READY_FOR_PROCESSING", ["1", "3"]),
    ]


def test_offer_events_of_one_offer_become_one() -> None:
    journal = OfferJournal(allegro=None, recover=_no_gap)  # type: ignore[arg-type]
    page = [offer_event(str(n), "offer-1", "OFFER_STOCK_CHANGED") for n in range(1, 1001)]
    page.append(offer_event("1001", "offer-2", "OFFER_ENDED"))
    kept = coalesce(journal, page)
    assert [event["id"] for event, _ in kept] == ["1000", "1001"]
    assert kept[0][1] == [str(n) for n in range(1, 1000)]
    assert coalesce(journal, []) == []


def test_journal_events_travel_in_runs_of_100() -> None:
    offers = OfferJournal(allegro=None, recover=_no_gap)  # type: ignore[arg-type]
    page = [(offer_event(str(n), f"offer-{n}", "OFFER_STOCK_CHANGED"), {}) for n in range(250)]
    page[3] = (page[3][0], {"coalesced_event_ids": ["x"]})
    runs = page_messages(offers, 7, page)
    assert [len(m.payload["events"]) for m in runs] == [100, 100, 50]
    assert [m.message_id for m in runs] == [
        "offer-events:7:0:99",
        "offer-events:7:100:199",
        "offer-events:7:200:249",
    ]
    assert {m.routing_key for m in runs} == {"allegro.offer_events"}
    assert runs[0].payload["events"][3]["coalesced_event_ids"] == ["x"]
    assert page_messages(offers, 7, page) == runs  # the same page, the same ids

    orders = OrderJournal(allegro=None, backfill=_nothing)  # type: ignore[arg-type]
    events = [
        (order_event(str(n), f"form-{n}", "READY_FOR_PROCESSING"), {"form": {"id": f"form-{n}"}})
        for n in range(150)
    ]
    runs = page_messages(orders, 7, events)
    assert [m.message_id for m in runs] == ["order-events:7:0:99", "order-events:7:100:149"]
    assert {m.routing_key for m in runs} == {"allegro.order_events"}
    assert runs[1].payload["events"][0] == {**events[100][0], "form": {"id": "form-100"}}


def test_a_split_run_gives_the_messages_of_its_single_events() -> None:
    """The consumer splits a failing run; each part is a single-event message
    (``allegro.order_event``: the event, its extra fields beside it) with the event's own id."""
    orders = OrderJournal(allegro=None, backfill=_nothing)  # type: ignore[arg-type]
    events = [
        (order_event("1", "form-a", "BOUGHT"), {"form": {"id": "form-a"}, "form_read_at": "t"}),
        (order_event("2", "form-b", "READY_FOR_PROCESSING"), {"coalesced_event_ids": ["0"]}),
        (order_event("3", "form-c", "BOUGHT"), {}),
    ]
    [run] = page_messages(orders, 7, events)
    split = run_splitter("order", "allegro.order_event", RUN_EXTRAS)
    singles = [
        (f"order-event:7:{event['id']}", {"account_id": 7, "event": event, **extra})
        for event, extra in events
    ]
    assert split(run.payload) == [("allegro.order_event", i, p) for i, p in singles]
    assert singles[0][0] == "order-event:7:1"

    offers = OfferJournal(allegro=None, recover=_no_gap)  # type: ignore[arg-type]
    offer_page = [(offer_event(str(n), f"offer-{n}", "OFFER_ENDED"), {}) for n in range(3)]
    [offer_run] = page_messages(offers, 7, offer_page)
    assert run_splitter("offer", "allegro.offer_event")(offer_run.payload) == [
        ("allegro.offer_event", f"offer-event:7:{n}", {"account_id": 7, "event": offer_page[n][0]})
        for n in range(3)
    ]
