"""``python -m bench.faults [SCENARIO ...] [--quick]`` (``make faults``): the fault suite.

Starts a PostgreSQL instance and a RabbitMQ node of its own (and a three-node cluster for the
cluster scenarios) under a temporary directory, runs each scenario against them, prints one
line per scenario as it ends and the table at the end: the machine's load, lost, duplicated,
unexpected (``checks.py``), same-id redeliveries, time to recover after the fault, and whether
anything needed a hand. Exit 1 unless every scenario is clean and recovered alone.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from bench.faults.checks import Tally
from bench.faults.scenarios import SCENARIOS, Scale, Services
from bench.faults.services import BrokerCluster, Postgres
from bench.faults.stack import load_average
from bench.faults.workloads import Outcome

QUICK = Scale(
    purchases=400,
    order_sellers=2,
    products=100,
    versions=6,
    stock_sellers=2,
    order_kills=2,
    stock_kills=2,
    hang_seconds=75,
)


@dataclass
class Row:
    name: str
    load_before: float
    load_after: float
    seconds: float
    outcome: Outcome


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def table(rows: list[Row]) -> str:
    """The results as a Markdown table (the README carries it)."""
    lines = [
        "| scenario | load | machine load | lost | duplicated | unexpected | redelivered"
        " | recovered in s | hand needed | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r.outcome.tally
        lines.append(
            f"| {r.name} | {r.outcome.load} | {r.load_before:.1f}-{r.load_after:.1f}"
            f" | {t.lost} | {t.duplicated} | {t.unexpected} | {t.redelivered}"
            f" | {_cell(r.outcome.recover_seconds)} | {r.outcome.hand}"
            f" | {'; '.join(r.outcome.notes)} |"
        )
    return "\n".join(lines)


async def run(names: list[str], scale: Scale, base: Path) -> list[Row]:
    postgres = Postgres(base / "postgres")
    broker = BrokerCluster(base / "broker", 1)
    await asyncio.to_thread(postgres.start)
    await asyncio.to_thread(broker.start)
    services = Services(base, postgres, broker)
    print(
        f"faults: PostgreSQL {postgres.version} on :{postgres.port}, RabbitMQ node on"
        f" :{broker.nodes[0].port}, under {base}",
        flush=True,
    )
    rows = []
    try:
        for name in names:
            before, started = load_average(), time.monotonic()
            try:
                outcome = await SCENARIOS[name](services, scale)
            except Exception as err:  # a scenario that broke is a result too
                traceback.print_exc()
                outcome = Outcome("-", Tally(), None, f"scenario failed: {err!r}"[:120])
            row = Row(name, before, load_average(), time.monotonic() - started, outcome)
            rows.append(row)
            t = outcome.tally
            print(
                f"{name}: {outcome.load}; lost {t.lost}, duplicated {t.duplicated},"
                f" unexpected {t.unexpected}, redelivered {t.redelivered}; recovered in"
                f" {_cell(outcome.recover_seconds)} s; hand: {outcome.hand};"
                f" {'; '.join(outcome.notes)} ({row.seconds:.0f} s, load"
                f" {before:.1f}-{row.load_after:.1f})",
                flush=True,
            )
    finally:
        if services.cluster is not None:
            await asyncio.to_thread(services.cluster.stop)
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(postgres.stop)
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults")
    parser.add_argument("scenarios", nargs="*", help=", ".join(SCENARIOS))
    parser.add_argument("--quick", action="store_true", help="small bursts (the slow tests')")
    parser.add_argument("--keep", action="store_true", help="keep the services' directory")
    args = parser.parse_args(argv)
    names = args.scenarios or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="allegro-sync-faults-"))
    base.chmod(0o755)
    try:
        rows = asyncio.run(run(names, QUICK if args.quick else Scale(), base))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    print(table(rows))
    ok = all(r.outcome.tally.clean and r.outcome.hand == "no" for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
