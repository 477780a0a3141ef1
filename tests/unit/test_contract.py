"""The message contract: the committed AsyncAPI document matches the models, the registry routes
by them, and a run's events are the messages its split publishes."""

from __future__ import annotations

import json

from allegro_sync import contract
from allegro_sync.adapters.broker.topology import ERP_QUEUE, JOURNAL_QUEUE
from allegro_sync.handlers.registry import build_routes
from scripts import asyncapi


def test_the_committed_asyncapi_document_is_generated_from_the_contract() -> None:
    assert asyncapi.DOCUMENT.read_text("utf-8") == asyncapi.render(), (
        "docs/asyncapi.json is stale: run python scripts/asyncapi.py"
    )


def test_the_consumers_route_exactly_the_contract_messages() -> None:
    routes = build_routes(allegro=None, pool=None)  # type: ignore[arg-type]
    assert {key: r.model for key, r in routes[ERP_QUEUE].items()} == contract.ERP_MESSAGES
    assert {key: r.model for key, r in routes[JOURNAL_QUEUE].items()} == contract.JOURNAL_MESSAGES


def test_a_runs_events_are_the_single_event_messages_its_split_publishes() -> None:
    events = [
        {
            "id": str(n),
            "occurredAt": "2026-11-20T10:00:00.000Z",
            "type": "READY_FOR_PROCESSING",
            "order": {"checkoutForm": {"id": f"7c6e5e1e-0000-4000-8000-00000000000{n}"}},
            **({"form": {"id": "f"}, "form_read_at": "2026-11-20T10:00:01Z"} if n % 2 else {}),
            **({"coalesced_event_ids": ["0"]} if n == 2 else {}),
        }
        for n in range(1, 4)
    ]
    body = {"account_id": 7, "events": events}
    run = contract.OrderEventsMessage.model_validate_json(json.dumps(body))
    split = contract.run_splitter("order", contract.ORDER_EVENT, contract.RUN_EXTRAS)
    parts = [contract.OrderEventMessage.model_validate(part) for _, _, part in split(body)]

    def seen(m: contract.OrderEventMessage) -> tuple[object, ...]:
        event = m.event
        return (m.account_id, event.id, event.occurred_at, event.order, m.form, m.form_read_at)

    assert [seen(m) for m in run.singles()] == [seen(m) for m in parts]
    assert [m.coalesced_event_ids for m in run.singles()] == [[], ["0"], []]

    offers = {
        "account_id": 7,
        "events": [
            {"id": "9", "occurredAt": "2026-11-20T10:00:00Z", "type": "X", "offer": {"id": "1"}}
        ],
    }
    offer_run = contract.OfferEventsMessage.model_validate(offers)
    [(_, _, single)] = contract.run_splitter("offer", contract.OFFER_EVENT)(offers)
    assert offer_run.singles() == [contract.OfferEventMessage.model_validate(single)]
