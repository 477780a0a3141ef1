"""SQL for mail_outbox (e-mails to send, written in the transaction that decided them)."""

from __future__ import annotations

from allegro_sync.adapters.postgres.pool import Db, affected

# Queue a mail under its dedupe key (``$2``), from ``$6`` (NULL: ``MAIL_FROM``); nothing (no
# row) when that key was queued already.
QUEUE = """
INSERT INTO mail_outbox (account_id, dedupe_key, recipients, subject, body, sender)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (dedupe_key) DO NOTHING
RETURNING true
"""
# Claim due rows and lease them for ``$2`` seconds (the longest a send may take).
CLAIM = """
UPDATE mail_outbox m
   SET next_attempt_at = now() + make_interval(secs => $2), attempts = m.attempts + 1
  FROM (SELECT id FROM mail_outbox
         WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
         ORDER BY next_attempt_at
         LIMIT $1
           FOR UPDATE SKIP LOCKED) due
 WHERE m.id = due.id
RETURNING m.id, m.account_id, m.dedupe_key, m.recipients, m.subject, m.body, m.attempts,
          m.sender
"""
# Sent (``$2``: the addresses refused, when some were).
MARK_SENT = "UPDATE mail_outbox SET sent_at = now(), last_error = $2 WHERE id = $1"
# Try again in ``$2`` seconds after error ``$3``.
RETRY_LATER = """
UPDATE mail_outbox SET next_attempt_at = now() + make_interval(secs => $2), last_error = $3
 WHERE id = $1
"""
# Given up after error ``$2``.
MARK_FAILED = "UPDATE mail_outbox SET failed_at = now(), last_error = $2 WHERE id = $1"


# Retention (daemon/retention.py): mails sent or given up more than ``$1`` seconds ago, ``$2`` at
# most (index ``mail_outbox_finished``); a mail still to send is never pruned.
PRUNE = """
DELETE FROM mail_outbox
 WHERE ctid = ANY(ARRAY(
       SELECT ctid FROM mail_outbox
        WHERE (sent_at IS NOT NULL OR failed_at IS NOT NULL)
          AND COALESCE(sent_at, failed_at) < now() - make_interval(secs => $1)
        ORDER BY COALESCE(sent_at, failed_at)
        LIMIT $2))
"""


async def prune(conn: Db, older_than: float, limit: int) -> int:
    """Delete at most ``limit`` finished mails older than ``older_than`` seconds; how many."""
    return affected(await conn.execute(PRUNE, older_than, limit))
