"""Pure decisions of stock control, prices, renewal and command grouping (issue 7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from allegro_sync.adapters.allegro.client import retry_after_seconds
from allegro_sync.adapters.allegro.limits import ChangeBudgets, RequestLimiter
from allegro_sync.daemon.offer_change_batcher import command_payload, group_changes, keep_holding
from allegro_sync.handlers.prices import decide_price, mirror_may_reprice
from allegro_sync.handlers.renewal import Refusal, RenewalFacts, decide_renewal
from allegro_sync.handlers.stock import (
    StockAction,
    decide_stock,
    effective_quantity,
    mirror_may_raise,
    plan_stock,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("erp", "offer", "raise_allowed", "expected"),
    [
        (4, 10, False, StockAction.SET),  # decreases always propagate
        (0, 10, False, StockAction.END),  # a FIXED quantity below 1 is refused: end instead
        (12, 10, False, StockAction.NONE),  # increases only with the setting
        (12, 10, True, StockAction.SET),
        (10, 10, True, StockAction.NONE),
    ],
)
def test_decide_stock(erp: int, offer: int, raise_allowed: bool, expected: StockAction) -> None:
    got = decide_stock(
        erp_quantity=erp, offer_quantity=offer, live=True, raise_allowed=raise_allowed
    )
    assert got is expected


def test_ended_offers_are_left_to_renewal() -> None:
    assert decide_stock(erp_quantity=5, offer_quantity=0, live=False, raise_allowed=True) is (
        StockAction.NONE
    )


def test_effective_quantity_counts_what_is_on_its_way() -> None:
    assert effective_quantity(10, None, None) == 10
    assert effective_quantity(10, "4", None) == 4
    assert effective_quantity(10, "4", "END") == 0


def test_decide_price() -> None:
    common = {"offer_price": Decimal("19.99"), "pending_price": None}
    assert decide_price(
        new_price=Decimal("24.90"), account_follows=True, offer_follows=True, **common
    )
    assert not decide_price(
        new_price=Decimal("24.90"), account_follows=True, offer_follows=False, **common
    )
    assert not decide_price(
        new_price=Decimal("19.99"), account_follows=True, offer_follows=True, **common
    )


def facts(**changes: object) -> RenewalFacts:
    base: dict[str, object] = {
        "status": "ENDED",
        "format": "BUY_NOW",
        "ended_at": NOW - timedelta(days=59),
        "do_not_renew": False,
        "bound": True,
        "erp_stock": 3,
        "account_active": True,
        "auto_renew": True,
        "stock_control": True,
        "sandbox": False,
    }
    base.update(changes)
    return RenewalFacts(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        ({"ended_at": NOW - timedelta(days=61)}, Refusal.TOO_OLD),
        ({"format": "AUCTION"}, Refusal.NOT_BUY_NOW),
        ({"do_not_renew": True}, Refusal.EXCLUDED),
        ({"erp_stock": 0}, Refusal.NO_STOCK),
        ({"erp_stock": None}, Refusal.NO_STOCK),
        ({"sandbox": True}, Refusal.SANDBOX),
        ({"stock_control": False}, Refusal.STOCK_CONTROL_OFF),
    ],
)
def test_renewal_refusals(changes: dict[str, object], refusal: Refusal) -> None:
    decision = decide_renewal(facts(**changes), NOW)
    assert not decision.renew and decision.refusal is refusal


def test_renewal_at_59_days_and_silence_where_nobody_asked() -> None:
    assert decide_renewal(facts(), NOW).renew
    for quiet in ({"auto_renew": False}, {"bound": False}, {"status": "ACTIVE"}):
        decision = decide_renewal(facts(**quiet), NOW)
        assert not decision.renew and decision.refusal is None


def test_groups_share_a_command_by_target_value_up_to_1000_offers() -> None:
    rows = [
        {"account_id": 1, "kind": "quantity", "value": "5", "currency": None, "offer_id": str(n)}
        for n in range(2500)
    ] + [{"account_id": 1, "kind": "quantity", "value": "6", "currency": None, "offer_id": "x"}]
    groups = group_changes(rows)
    assert [len(g.offer_ids) for g in groups] == [1000, 1000, 500, 1]
    payload = command_payload(groups[-1])
    assert payload["modification"] == {"changeType": "FIXED", "value": 6}
    assert payload["offerCriteria"][0]["offers"] == [{"id": "x"}]


def test_a_group_knows_its_longest_waiting_change() -> None:
    def row(offer_id: str, value: str, seq: int) -> dict[str, object]:
        return {"account_id": 1, "kind": "quantity", "value": value, "currency": None,
                "offer_id": offer_id, "seq": seq}  # fmt: skip

    rows = [row("a", "4", 30), row("b", "4", 12), row("c", "7", 5)]
    by_value = {g.value: g.oldest for g in group_changes(rows)}
    assert by_value == {"4": 12, "7": 5}  # the batcher sends the 7 first, then the 4s


def test_budgets_never_exceed_a_sliding_minute() -> None:
    now = [0.0]
    budgets = ChangeBudgets(clock=lambda: now[0])
    spent = 0
    for _ in range(600):  # one minute in 0.1 s steps, always asking for a full command
        if budgets.try_spend(1, "quantity", 1000) == 0:
            spent += 1000
        now[0] += 0.1
    assert 0 < spent <= 9000


def test_a_429_pauses_and_doubles_while_429s_continue() -> None:
    now = [0.0]
    limiter = RequestLimiter(clock=lambda: now[0])
    assert limiter.note_rate_limited() == 1.0
    assert limiter.blocked_for() == 1.0
    now[0] = 0.5  # a request in flight when the pause began: the pause stays, from now
    assert limiter.note_rate_limited() == 1.0
    assert limiter.blocked_for() == 1.0
    now[0] = 2.0  # 429s go on right after the pause: twice as long
    assert limiter.note_rate_limited() == 2.0
    now[0] = 4.5
    assert limiter.note_rate_limited() == 4.0
    now[0] = 100.0  # long after: a short pause again
    assert limiter.note_rate_limited() == 1.0


def test_a_429_naming_retry_after_pauses_for_just_that_long() -> None:
    now = [0.0]
    limiter = RequestLimiter(clock=lambda: now[0])
    assert limiter.note_rate_limited(7.0) == 7.0
    assert limiter.blocked_for() == 7.0
    now[0] = 7.5  # 429s go on right after the pause: Allegro's word again, not doubled
    assert limiter.note_rate_limited(3.0) == 3.0
    assert limiter.blocked_for() == 3.0
    now[0] = 20.0
    assert limiter.note_rate_limited(3600.0) == 60.0  # never longer than the longest pause


def test_retry_after_is_read_in_seconds_only() -> None:
    assert retry_after_seconds({"Retry-After": "12"}) == 12.0
    assert retry_after_seconds({"retry-after": " 1.5 "}) == 1.5
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None
    assert retry_after_seconds({"Retry-After": "-3"}) is None
    assert retry_after_seconds({"Retry-After": "nan"}) is None


@pytest.mark.parametrize(
    ("mirror", "applied", "expected"),
    [
        (5, 5, True),  # the mirror shows our last command: the ERP's raise was lost
        (5, 6, False),  # below what we set: a purchase the ERP has not booked yet
        (7, None, False),  # never set by us: wait for the ERP's next stock
    ],
)
def test_a_raise_decided_on_the_mirror_only_over_our_own_value(
    mirror: int, applied: int | None, expected: bool
) -> None:
    assert mirror_may_raise(mirror, applied) is expected


def test_mirror_prices_follow_only_over_our_own_value() -> None:
    assert mirror_may_reprice(Decimal("10.00"), Decimal("10.00"))
    assert not mirror_may_reprice(Decimal("11.00"), Decimal("10.00"))
    assert not mirror_may_reprice(Decimal("10.00"), None)


def test_plan_stock_is_the_rule_of_erp_messages_and_reconciliation() -> None:
    row = {
        "erp_quantity": 0,
        "offer_id": "o1",
        "account_id": 1,
        "status": "ACTIVE",
        "stock": 4,
        "raise_allowed": False,
        "auto_renew": True,
        "pending_quantity": "3",
        "pending_publication": None,
    }
    ended = {**row, "offer_id": "o2", "status": "ENDED", "erp_quantity": 2}
    plan = plan_stock([row, ended])
    assert [(c.offer_id, c.kind, c.value) for c in plan.changes] == [("o1", "publication", "END")]
    assert plan.drops == [("o1", "quantity")]
    assert plan.restocked_ended == ["o2"]


def test_a_hold_starts_on_a_deep_backlog_only_and_lasts_while_the_intake_is_busy() -> None:
    """A steady flow a few batches behind (busy, not deep) is never held; a burst (deep) is held
    until its intake is drained, its last batches included, or ``max_hold``."""

    def hold(*, held: bool, waited: float, busy: bool, deep: bool) -> bool:
        return keep_holding(
            held=held, waited=waited, max_hold=30.0, busy=lambda: busy, deep=lambda: deep
        )

    # a steady flow's lag: the intake backlogged now and then, never deeply: sent at once
    assert not hold(held=False, waited=0.25, busy=True, deep=False)
    assert not hold(held=False, waited=5.0, busy=True, deep=False)
    # a burst: held from its start while deep, and on while only busy (its last batches)
    assert hold(held=False, waited=0.25, busy=True, deep=True)
    assert hold(held=True, waited=12.0, busy=True, deep=False)
    # the intake drained, or held for max_hold: sent
    assert not hold(held=True, waited=12.0, busy=False, deep=False)
    assert not hold(held=True, waited=30.0, busy=True, deep=True)
    assert not hold(held=False, waited=0.25, busy=False, deep=True)
