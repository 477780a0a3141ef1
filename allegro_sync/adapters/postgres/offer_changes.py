"""SQL of desired offer changes and of the batch commands that carry them, in the open
(design.md S1-S5, P1-P2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from allegro_sync.adapters.postgres.pool import affected

# Latest wins per (offer, kind). A row in flight keeps its command; the bumped seq tells the
# batcher that a newer value must follow once the command is done. Rows are written (and
# locked) in (offer, kind) order, the order in which the batcher's report reader locks them too:
# two transactions locking the same rows in different orders can deadlock.
UPSERT_CHANGES = """
INSERT INTO offer_changes (offer_id, kind, account_id, value, currency)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])
           AS u (offer_id, kind, account_id, value, currency)
 ORDER BY offer_id, kind
ON CONFLICT (offer_id, kind) DO UPDATE
   SET value = EXCLUDED.value, currency = EXCLUDED.currency, seq = nextval('offer_change_seq'),
       desired_at = now(), attempts = 0, not_before = now()
 WHERE (offer_changes.value, offer_changes.currency)
       IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.currency)
"""

# Drop desired changes that a newer decision made pointless (a pending END once stock is back,
# a pending quantity once the offer is to end); rows in flight finish their command.
DROP_CHANGES = """
DELETE FROM offer_changes AS c
 USING unnest($1::text[], $2::text[]) AS d (offer_id, kind)
 WHERE c.offer_id = d.offer_id AND c.kind = d.kind AND c.command_id IS NULL
"""


@dataclass(frozen=True)
class Change:
    """A desired value for one offer."""

    offer_id: str
    kind: str  # quantity | price | publication
    account_id: int
    value: str
    currency: str | None = None


async def upsert(conn: asyncpg.Connection, changes: Sequence[Change]) -> None:
    """Store desired values (one statement for all); the batcher is notified on commit."""
    if not changes:
        return
    await conn.execute(
        UPSERT_CHANGES,
        [c.offer_id for c in changes],
        [c.kind for c in changes],
        [c.account_id for c in changes],
        [c.value for c in changes],
        [c.currency for c in changes],
    )


async def drop(conn: asyncpg.Connection, pairs: Sequence[tuple[str, str]]) -> None:
    """Forget pending (not in flight) changes of these (offer, kind) pairs."""
    if pairs:
        await conn.execute(DROP_CHANGES, [p[0] for p in pairs], [p[1] for p in pairs])


async def lock(conn: asyncpg.Connection, offer_ids: Sequence[str]) -> None:
    """Lock the desired changes of these offers now, in (offer, kind) order, ahead of the
    offers themselves: the report reader locks changes, then offers, and a transaction that
    writes the mirror and then changes would take the two the other way round."""
    if offer_ids:
        await conn.execute(
            "SELECT 1 FROM offer_changes WHERE offer_id = ANY($1::text[])"
            " ORDER BY offer_id, kind FOR UPDATE",
            list(offer_ids),
        )


# A change is ready when no command carries it (command_id is set while one does) and its
# backoff is over. An ACTIVATE waits until the offer's quantity and price changes are through:
# a renewal sets them first (an offer needs stock to be activated).
READY = """
c.command_id IS NULL AND c.not_before <= now()
   AND NOT (c.kind = 'publication' AND c.value = 'ACTIVATE' AND EXISTS (
            SELECT 1 FROM offer_changes AS d
             WHERE d.offer_id = c.offer_id AND d.kind <> 'publication'))"""

# The groups of ready changes one command each can carry (account, kind, target value), the
# longest waiting first (by the smallest seq): up to $1 of them, with their changes counted,
# leaving out the (account, kind) pairs of $2, $3 (their budget is spent for now).
READY_GROUPS = f"""
SELECT c.account_id, c.kind, c.value, c.currency, count(*) AS changes
  FROM offer_changes AS c
 WHERE {READY}
   AND (c.account_id, c.kind) NOT IN (SELECT * FROM unnest($2::bigint[], $3::text[]))
 GROUP BY c.account_id, c.kind, c.value, c.currency
 ORDER BY min(c.seq)
 LIMIT $1
"""

# Claim the ready changes of those groups (up to $5 rows); replicas skip each other's.
CLAIM_GROUPS = f"""
SELECT c.offer_id, c.kind, c.account_id, c.value, c.currency, c.seq
  FROM offer_changes AS c
  JOIN unnest($1::bigint[], $2::text[], $3::text[], $4::text[])
       AS g (account_id, kind, value, currency)
    ON c.account_id = g.account_id AND c.kind = g.kind AND c.value = g.value
   AND c.currency IS NOT DISTINCT FROM g.currency
 WHERE {READY}
 ORDER BY c.account_id, c.kind, c.value, c.currency, c.offer_id
 LIMIT $5
   FOR UPDATE OF c SKIP LOCKED
"""

# Whether some group already fills a command (then the window need not run out).
FULL_GROUP = """
SELECT EXISTS (
    SELECT 1 FROM offer_changes
     WHERE command_id IS NULL AND not_before <= now()
     GROUP BY account_id, kind, value, currency
    HAVING count(*) >= $1)
"""

# When the next delayed change becomes ready (a retry's backoff).
NEXT_READY = """
SELECT min(not_before) - now() FROM offer_changes WHERE command_id IS NULL AND not_before > now()
"""

INSERT_COMMANDS = """
INSERT INTO offer_commands (id, account_id, kind, payload, offers)
SELECT c.id, c.account_id, c.kind, c.payload, ARRAY(SELECT jsonb_array_elements_text(c.offers))
  FROM jsonb_to_recordset($1::jsonb)
       AS c (id uuid, account_id bigint, kind text, payload jsonb, offers jsonb)
"""

ASSIGN_COMMANDS = """
UPDATE offer_changes AS c
   SET command_id = a.command_id, sent_seq = c.seq
  FROM unnest($1::text[], $2::text[], $3::uuid[]) AS a (offer_id, kind, command_id)
 WHERE c.offer_id = a.offer_id AND c.kind = a.kind
"""

# Commands in one state ('pending': to send, 'sent': to follow) whose time has come, leaving
# out those a pipeline has in flight ($3).
DUE_COMMANDS_EXCEPT = """
SELECT id, account_id, kind, payload, offers, state, attempts
  FROM offer_commands
 WHERE state = $1 AND next_check_at <= now() AND id <> ALL($3::uuid[])
 ORDER BY next_check_at
 LIMIT $2
"""
# When the next of them (not in flight) is due.
NEXT_COMMAND_CHECK_EXCEPT = """
SELECT min(next_check_at) - now() FROM offer_commands WHERE state = $1 AND id <> ALL($2::uuid[])
"""
# Allegro does not know the command (a PUT lost on the way): send it again.
RESEND = "UPDATE offer_commands SET state = 'pending' WHERE id = $1"
# A command's changes, locked in (offer, kind) order like every writer of offer_changes.
LOCK_COMMAND_CHANGES = """
SELECT offer_id, attempts FROM offer_changes WHERE command_id = $1
 ORDER BY offer_id, kind FOR UPDATE
"""


async def insert_commands(
    conn: asyncpg.Connection,
    commands: Sequence[dict[str, Any]],
    assigned: Sequence[tuple[str, str, UUID]],
) -> None:
    """Persist new commands and mark their (offer, kind) changes as carried by them."""
    await conn.execute(INSERT_COMMANDS, list(commands))  # jsonb codec encodes
    await conn.execute(
        ASSIGN_COMMANDS,
        [a[0] for a in assigned],
        [a[1] for a in assigned],
        [a[2] for a in assigned],
    )


async def mark_sent(conn: asyncpg.Connection | asyncpg.Pool, command_id: UUID) -> None:
    """Allegro has the command; follow its tasks from now on."""
    await conn.execute(
        """
        UPDATE offer_commands
           SET state = 'sent', sent_at = coalesce(sent_at, now()),
               next_check_at = now() + interval '50 milliseconds'
         WHERE id = $1 AND state = 'pending'
        """,
        command_id,
    )


async def postpone(
    conn: asyncpg.Connection | asyncpg.Pool, command_id: UUID, seconds: float
) -> None:
    """Look at the command again after ``seconds`` (a re-send or a re-read of its tasks)."""
    await conn.execute(
        """
        UPDATE offer_commands
           SET attempts = attempts + 1, next_check_at = now() + make_interval(secs => $2)
         WHERE id = $1
        """,
        command_id,
        seconds,
    )


async def finish(
    conn: asyncpg.Connection,
    command_id: UUID,
    *,
    retry: Sequence[tuple[str, float]],
    trace_id: str | None,
) -> None:
    """Close a command: its succeeded and given-up changes are gone unless a newer value came
    meanwhile; ``retry`` (offer, delay) are released to be sent again later."""
    if retry:
        await conn.execute(
            """
            UPDATE offer_changes AS c
               SET command_id = NULL, sent_seq = NULL, attempts = c.attempts + 1,
                   not_before = now() + make_interval(secs => r.delay)
              FROM unnest($2::text[], $3::float8[]) AS r (offer_id, delay)
             WHERE c.command_id = $1 AND c.offer_id = r.offer_id AND c.seq = c.sent_seq
            """,
            command_id,
            [r[0] for r in retry],
            [r[1] for r in retry],
        )
    # Done (succeeded or given up) where no newer value arrived; the rest goes out again.
    await conn.execute(
        "DELETE FROM offer_changes WHERE command_id = $1 AND seq = sent_seq", command_id
    )
    await conn.execute(
        "UPDATE offer_changes SET command_id = NULL, sent_seq = NULL WHERE command_id = $1",
        command_id,
    )
    await conn.execute(
        """
        UPDATE offer_commands SET state = 'done', done_at = now(), trace_id = $2 WHERE id = $1
        """,
        command_id,
        trace_id,
    )


# Offers are locked in id order, as the mirror refresh writes them (INSERT ... SELECT DISTINCT ON
# (id)): the report reader and the offer-event consumer once deadlocked on a plain ``= ANY``.
_LOCKED_IN_ORDER = "(SELECT id FROM offers WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE)"


async def mirror_applied(
    conn: asyncpg.Connection,
    kind: str,
    payload: dict[str, Any],
    offer_ids: Sequence[str],
    applied_at: datetime | None = None,
) -> None:
    """Reflect values Allegro applied in the mirror now, so that the next stock decision
    compares with them and not with a listing read from before (the journal confirms later).

    ``applied_at`` (by default now, on the daemon's clock like a listing's read time) moves the
    offer's version clock for that value: a listing read before it can no longer bring the value
    from before the command back (issue 19)."""
    if not offer_ids:
        return
    when = applied_at or datetime.now(UTC)
    if kind == "quantity":
        await conn.execute(
            "UPDATE offers SET stock = $2, applied_stock = $2, stock_applied_at = $3,"
            " updated_at = now() WHERE id IN " + _LOCKED_IN_ORDER,
            list(offer_ids),
            int(payload["modification"]["value"]),
            when,
        )
    elif kind == "price":
        await conn.execute(
            "UPDATE offers SET price = $2::numeric, applied_price = $2::numeric,"
            " price_applied_at = $3, updated_at = now() WHERE id IN " + _LOCKED_IN_ORDER,
            list(offer_ids),
            str(payload["modification"]["price"]["amount"]),
            when,
        )


# Retention (daemon/retention.py): batch commands whose report was settled more than ``$1``
# seconds ago, ``$2`` at most (index ``offer_commands_done_at``); open commands stay.
PRUNE_COMMANDS = """
DELETE FROM offer_commands
 WHERE ctid = ANY(ARRAY(
       SELECT ctid FROM offer_commands
        WHERE state = 'done' AND done_at < now() - make_interval(secs => $1)
        ORDER BY done_at
        LIMIT $2))
"""


async def prune_commands(
    conn: asyncpg.Connection | asyncpg.Pool, older_than: float, limit: int
) -> int:
    """Delete at most ``limit`` done commands older than ``older_than`` seconds; how many."""
    return affected(await conn.execute(PRUNE_COMMANDS, older_than, limit))
