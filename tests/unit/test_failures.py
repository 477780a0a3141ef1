"""Service loops wait longer after each consecutive failure and log only the first."""

from __future__ import annotations

import structlog

from allegro_sync.adapters.postgres.notifications import Failures


def test_pauses_double_up_to_ten_seconds_and_reset_after_a_success() -> None:
    failures = Failures("relay_failing")
    with structlog.testing.capture_logs() as logs:
        pauses = [failures.pause(OSError("refused")) for _ in range(8)]
        failures.succeeded()
        again = failures.pause(OSError("refused"))
    assert pauses == [0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0]
    assert again == 0.4
    assert [(e["event"], e["error"]) for e in logs] == [
        ("relay_failing", "OSError: refused"),
        ("relay_failing", "OSError: refused"),  # once per run of failures
    ]
