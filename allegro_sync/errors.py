"""The error classes that decide a message's fate (style.md convention 5).

Handlers and adapters raise these; the consumer wrapper alone turns them into ack, delayed
retry or dead-letter.
"""

from __future__ import annotations


class BadInput(Exception):
    """The message can never succeed (invalid JSON, schema mismatch, unknown type): dead-letter.

    The consumer treats the database's data errors (asyncpg ``DataError``: a number out of range,
    a NUL, a value too long) the same way, without their texts' quoted values."""


class TransientError(Exception):
    """Worth trying again later (Allegro 5xx / 429, a timeout): bounded delayed retry."""


class CredentialsDead(Exception):
    """The account's tokens cannot be refreshed or the seller is blocked: disable the account."""

    def __init__(self, account_id: int, reason: str) -> None:
        super().__init__(f"account {account_id}: {reason}")
        self.account_id = account_id
        self.reason = reason


class Refused(Exception):
    """The other side refused for good (e.g. Allegro 403 for this account and action).

    Already written to the account's event log where it happened; retrying cannot help, so the
    message is acked.
    """
