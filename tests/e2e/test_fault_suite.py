"""A short subset of the fault suite (``make faults``, bench/faults) at its quick sizes, on a
PostgreSQL instance and a RabbitMQ node of its own (never the shared ones): a daemon SIGKILLed
in a stock burst, the broker and the database restarted mid-burst. Nothing lost, duplicated or
unexpected, and the daemon recovers alone."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.faults.__main__ import QUICK
from bench.faults.scenarios import SCENARIOS, Services
from bench.faults.services import BrokerCluster, Postgres

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    if shutil.which("rabbitmqctl") is None or not list(Path("/usr/lib/postgresql").glob("*/bin")):
        pytest.skip("needs RabbitMQ's and PostgreSQL's server binaries")
    base = Path(tempfile.mkdtemp(prefix="allegro-sync-faults-test-"))
    base.chmod(0o755)
    postgres = Postgres(base / "postgres")
    broker = BrokerCluster(base / "broker", 1, "faults-test")
    try:
        postgres.start()
        broker.start()
        yield Services(base, postgres, broker)
    finally:
        broker.stop()
        postgres.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", ["sigkill-stock", "broker-restart", "postgres-restart"])
async def test_nothing_is_lost_duplicated_or_unexpected(services: Services, name: str) -> None:
    outcome = await SCENARIOS[name](services, QUICK)
    assert outcome.tally.clean, outcome
    assert outcome.hand == "no" and outcome.recover_seconds is not None, outcome
