"""The pure decisions of offer binding and the offer mirror (design.md O3, O4, P2, S3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from allegro_sync.handlers.offers import (
    BindSettings,
    Outcome,
    binding_flags,
    decide_binding,
    ean_of,
    entry_from_listing,
    event_may_bind,
    offer_bound_message,
)

SWITCHED_ON = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def settings(**changes: object) -> BindSettings:
    base: dict[str, object] = {
        "bind_by_ean": True,
        "bind_since": SWITCHED_ON,
        "sync_prices": False,
        "sync_prices_since": None,
        "do_not_renew_default": True,
    }
    base.update(changes)
    return BindSettings(**base)  # type: ignore[arg-type]


def test_only_events_after_the_switch_on_may_bind_an_unbound_offer() -> None:
    after = SWITCHED_ON + timedelta(seconds=1)
    assert event_may_bind(settings(), after, bound=False)
    assert not event_may_bind(settings(), SWITCHED_ON - timedelta(seconds=1), bound=False)
    assert not event_may_bind(settings(), SWITCHED_ON, bound=False)
    assert not event_may_bind(settings(), after, bound=True)
    assert not event_may_bind(settings(bind_by_ean=False), after, bound=False)
    assert not event_may_bind(settings(bind_since=None), after, bound=False)


def test_exactly_one_product_with_the_ean_binds() -> None:
    assert decide_binding(bound=False, ean="5901234123457", product_ids=["P1"]) is Outcome.BOUND
    assert (
        decide_binding(bound=False, ean="5901234123457", product_ids=["P1", "P2"])
        is Outcome.AMBIGUOUS
    )
    assert decide_binding(bound=False, ean="5901234123457", product_ids=[]) is Outcome.NO_PRODUCT
    assert decide_binding(bound=False, ean=None, product_ids=[]) is Outcome.NO_EAN
    assert decide_binding(bound=True, ean="5901234123457", product_ids=["P1"]) is (
        Outcome.ALREADY_BOUND
    )


def test_flags_follow_the_price_setting_time_and_the_renew_default() -> None:
    now = SWITCHED_ON + timedelta(hours=1)
    assert binding_flags(settings(), now).sync_price is False
    on_before = settings(sync_prices=True, sync_prices_since=SWITCHED_ON)
    assert binding_flags(on_before, now).sync_price is True
    on_after = settings(sync_prices=True, sync_prices_since=now + timedelta(minutes=1))
    assert binding_flags(on_after, now).sync_price is False
    assert binding_flags(settings(do_not_renew_default=False), now).do_not_renew is False
    assert binding_flags(settings(), now).do_not_renew is True


def test_the_ean_is_product_parameter_225693() -> None:
    product_offer = {
        "parameters": [{"id": "11323", "values": ["Nowy"]}],
        "productSet": [
            {
                "product": {
                    "id": "abc",
                    "parameters": [
                        {"id": "224017", "values": ["X"]},
                        {"id": "225693", "name": "EAN (GTIN)", "values": ["5901234123457"]},
                    ],
                }
            }
        ],
    }
    assert ean_of(product_offer) == "5901234123457"
    assert ean_of({"productSet": [{"product": {"id": "abc", "parameters": []}}]}) is None
    assert ean_of({}) is None


def test_a_listing_entry_becomes_a_mirror_row() -> None:
    entry = entry_from_listing(
        {
            "id": "7001",
            "name": "Kubek",
            "primaryImage": {"url": "https://img/1.jpg"},
            "sellingMode": {"format": "BUY_NOW", "price": {"amount": "12.50", "currency": "PLN"}},
            "stock": {"available": 3, "sold": 0},
            "publication": {"status": "ENDED", "endedAt": "2025-03-01T10:00:00.000Z"},
            "external": {"id": "SKU-1"},
        }
    )
    assert entry.id == "7001" and entry.name == "Kubek" and entry.format == "BUY_NOW"
    assert entry.status == "ENDED"
    assert entry.ended_at == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert entry.stock == 3 and entry.price == Decimal("12.50") and entry.currency == "PLN"
    assert entry.image_url == "https://img/1.jpg" and entry.external_id == "SKU-1"
    bare = entry_from_listing({"id": 7002, "name": "X", "primaryImage": None, "external": None})
    assert bare.image_url is None and bare.external_id is None and bare.price is None


def test_offer_bound_is_announced_under_an_id_from_the_fact() -> None:
    message = offer_bound_message(3, "7001", "P1", "5901234123457")
    assert message.message_id == "offer.bound:7001:P1"
    assert message.routing_key == "offer.bound"
    assert message.payload == {
        "account_id": 3,
        "offer_id": "7001",
        "product_id": "P1",
        "ean": "5901234123457",
    }
