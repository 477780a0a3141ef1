"""The fault suite's checker (bench/faults/checks.py): lost, duplicated, unexpected."""

from __future__ import annotations

from bench.faults.checks import Tally, count_dead_letters, count_orders, count_stock


def test_orders_count_missing_twice_announced_and_unknown_forms() -> None:
    announced = [
        ("order.created:a", "a"),
        ("order.created:a", "a"),  # the same message again: a redelivery, not a duplicate
        ("order.created:b", "b"),
        ("other-id:b", "b"),  # a second announcement of one order under another id
        ("order.created:x", "x"),  # nobody bought x
    ]
    tally = count_orders(["a", "b", "c"], announced)
    assert tally == Tally(lost=1, duplicated=1, unexpected=1, redelivered=1)
    assert not tally.clean
    assert count_orders(["a"], [("order.created:a", "a")]).clean


def test_stock_counts_stale_offers_repeated_changes_and_values_never_sent() -> None:
    sent = {"P1": {1: 101, 2: 102}, "P2": {1: 101}}
    bound = {"o1": "P1", "o2": "P1", "o3": "P2"}
    final = {"o1": 102, "o2": 101, "o3": 101}  # o2 is stale
    commands = [("o1", 101), ("o1", 102), ("o2", 101), ("o2", 101), ("o3", 999), ("o3", 101)]
    assert count_stock(sent, bound, final, commands) == Tally(lost=1, duplicated=1, unexpected=1)
    clean = [("o1", 102), ("o2", 101), ("o2", 102), ("o3", 101)]
    assert count_stock(sent, bound, {"o1": 102, "o2": 102, "o3": 101}, clean).clean


def test_dead_letters_count_poison_missing_twice_and_good_ones() -> None:
    tally = count_dead_letters(["p1", "p2", "p3"], ["p1", "p1", "p2", "stock:P1:1"])
    assert tally == Tally(lost=1, duplicated=1, unexpected=1)
    assert (Tally(lost=1) + Tally(duplicated=2)) == Tally(lost=1, duplicated=2)
