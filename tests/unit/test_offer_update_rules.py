"""What a product's change sends to the offers that follow it (issue 17 item 4)."""

from __future__ import annotations

from typing import Any

from allegro_sync.adapters.allegro.limits import ChangeBudgets
from allegro_sync.daemon.offer_updater import backoff, operation_path
from allegro_sync.handlers.offer_updates import patch_body, sent_fields

PRODUCT: dict[str, Any] = {
    "id": "P1",
    "ean": "5901234123457",
    "name": "Kubek ceramiczny biały 300 ml",
    "image_url": "https://img.example/1.jpg",
    "images": ["https://img.example/1.jpg", "https://img.example/2.jpg"],
    "description": {"sections": [{"items": [{"type": "TEXT", "content": "<p>Kubek</p>"}]}]},
    "parameters": [
        {"id": "224017", "values": ["KUB-300"]},
        {"id": None, "name": "Kolor", "values": ["biały"]},
    ],
}


def test_only_the_changed_fields_are_sent() -> None:
    assert patch_body(PRODUCT, {"name"}) == {"name": PRODUCT["name"]}
    assert patch_body(PRODUCT, {"images"}) == {"images": PRODUCT["images"]}
    assert patch_body(PRODUCT, {"description"}) == {"description": PRODUCT["description"]}
    assert patch_body(PRODUCT, {"parameters"}) == {
        "parameters": [
            {"id": "224017", "values": ["KUB-300"]},
            {"name": "Kolor", "values": ["biały"]},
        ]
    }
    assert patch_body({**PRODUCT, "name": "x" * 80}, {"name"}) == {"name": "x" * 75}
    everything = patch_body(PRODUCT, {"name", "description", "images", "parameters"})
    assert sent_fields(everything) == ["description", "images", "name", "parameters"]
    assert "stock" not in everything and "sellingMode" not in everything


def test_cleared_fields_are_not_sent_and_one_image_is_a_gallery() -> None:
    cleared = {**PRODUCT, "description": None, "parameters": None, "images": None}
    assert patch_body(cleared, {"description", "parameters"}) == {}
    assert patch_body(cleared, {"images"}) == {"images": ["https://img.example/1.jpg"]}
    assert patch_body({**cleared, "image_url": None}, {"images"}) == {}
    nameless = {**PRODUCT, "parameters": [{"id": None, "name": None, "values": ["a"]}]}
    assert patch_body(nameless, {"parameters"}) == {}


def test_operation_paths_come_only_from_the_offers_own_operations() -> None:
    url = "https://api.allegro.pl/sale/product-offers/123/operations/abc"
    assert operation_path(url, "123") == "/sale/product-offers/123/operations/abc"
    assert operation_path(url, "124") is None
    assert operation_path("https://evil.example/steal", "123") is None
    assert operation_path(None, "123") is None


def test_backoff_grows_and_is_bounded() -> None:
    assert backoff(1) == 2 and backoff(2) == 4
    assert backoff(50) == 300


def test_the_listing_budget_keeps_close_to_but_within_every_sliding_window() -> None:
    now = [0.0]
    budgets = ChangeBudgets(clock=lambda: now[0])
    spent_at: list[float] = []
    while now[0] < 600:  # ten minutes of writes as fast as the budget allows
        if budgets.try_spend(1, "listing", 1) == 0:
            spent_at.append(now[0])
        else:
            now[0] += 0.01
    per_minute = [sum(1 for t in spent_at if start <= t < start + 60) for start in range(0, 541)]
    assert max(per_minute) <= 2490
    assert min(per_minute) >= 0.9 * 2490  # steady, not a burst and then a trickle
