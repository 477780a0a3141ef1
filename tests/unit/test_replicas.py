"""How a daemon names itself so that the others on its database can count it."""

from __future__ import annotations

from allegro_sync.daemon.replicas import DAEMON_PREFIX, instance_name


def test_instance_names_are_distinct_and_fit_postgres() -> None:
    names = {instance_name() for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith(DAEMON_PREFIX) and len(n) <= 63 for n in names)
