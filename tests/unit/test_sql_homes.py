"""Plumbing SQL has one home per table, ``adapters/postgres/<table>.py``: the admin API, the
pollers and the daemon's services hold none (issue #12)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "allegro_sync"
DAEMON = PACKAGE / "daemon"
# The pollers, and the daemon modules that held SQL of their own before it moved out.
SERVICES = ("app", "cli_offers", "mail_relay", "offer_change_batcher", "outbox_relay", "pollers")
SERVICES += ("offer_updater", "cli_listing_jobs")
SERVICES += ("order_sweeper", "renewal_service", "replicas", "retention", "token_refresher")
SERVICES += ("parcel_service",)
SQL_FREE = sorted([*(DAEMON / "api").glob("*.py"), *(DAEMON / f"{name}.py" for name in SERVICES)])
STATEMENT = re.compile(r"\s*\(?\s*(SELECT|INSERT|UPDATE|DELETE|WITH|MERGE|LOCK|TRUNCATE|COPY)\s")


def sql_literals(source: str) -> list[tuple[int, str]]:
    """(line, start) of every string literal (f-strings included) that opens an SQL statement."""
    found = []
    nodes = list(ast.walk(ast.parse(source)))
    parts = {id(v) for n in nodes if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in nodes:
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts
        ):
            text = node.value
        else:
            continue
        if STATEMENT.match(text):
            found.append((node.lineno, " ".join(text.split())[:60]))
    return found


def test_the_check_finds_sql() -> None:
    planted = (
        'async def f(conn):\n    await conn.execute(\n        """\n UPDATE t SET a = 1"""\n    )'
    )
    assert sql_literals(planted) == [(3, "UPDATE t SET a = 1")]
    assert sql_literals('x = f"SELECT {y} FROM t"') == [(1, "SELECT FROM t")]
    assert sql_literals('"""Select the accounts."""\nlog.info("UPDATE_done")') == []


def test_no_sql_outside_its_table_modules() -> None:
    assert SQL_FREE
    offending = {
        str(path.relative_to(PACKAGE)): hits
        for path in SQL_FREE
        if (hits := sql_literals(path.read_text()))
    }
    assert offending == {}, "move these statements to adapters/postgres/<table>.py"
