"""How many daemons the limit settings allow (the check a daemon runs at start)."""

from __future__ import annotations

from allegro_sync.daemon.replicas import DAEMON_PREFIX, instance_name, unshared_limits


def test_one_daemon_may_use_the_whole_client_limit_and_budget() -> None:
    assert unshared_limits(daemons=1, requests_per_minute=9000, budget_share=1.0) == []


def test_replicas_must_divide_the_limits() -> None:
    problems = unshared_limits(daemons=3, requests_per_minute=9000, budget_share=1.0)
    assert len(problems) == 2
    assert "at most 3000" in problems[0]
    assert "at most 0.333" in problems[1]
    assert unshared_limits(daemons=3, requests_per_minute=3000, budget_share=1 / 3) == []
    only_budget = unshared_limits(daemons=2, requests_per_minute=4500, budget_share=0.6)
    assert len(only_budget) == 1 and "OFFER_CHANGE_BUDGET_SHARE is 0.6" in only_budget[0]


def test_instance_names_are_distinct_and_fit_postgres() -> None:
    names = {instance_name() for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith(DAEMON_PREFIX) and len(n) <= 63 for n in names)
