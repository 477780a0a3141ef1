"""``allegro-sync secrets rotate``: every encrypted column re-encrypted under the current key.

The cipher is built with the new ``SECRET_KEY`` and the old key as a previous one, so it reads
both; rows are walked in key order, a batch per transaction with its rows locked (a token
refresh meanwhile waits, then writes under the new key anyway), and a value is re-encrypted only
when the current key does not already open it. Running it again is a no-op; an interrupted run
is simply run again. A dry run changes nothing and counts what a run would change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from cryptography.exceptions import InvalidTag

from allegro_sync.adapters.allegro.crypto import TokenCipher
from allegro_sync.adapters.postgres import account_tokens, oauth_states


@dataclass
class RotationCount:
    """What one table's walk found."""

    table: str
    total: int = 0  # rows when the walk started
    seen: int = 0
    rotated: int = 0  # rows re-encrypted (in a dry run: that would be)
    current: int = 0  # rows already under the current key
    unreadable: int = 0  # rows no key opens, left as they are


Progress = Callable[[RotationCount], None]


UNREADABLE = (InvalidTag, ValueError)  # no key opens it, or not our format


def _reseal(cipher: TokenCipher, blob: bytes, context: str) -> bytes | None:
    """The value encrypted under the current key; None when it already is. Raises one of
    ``UNREADABLE`` when no key opens it."""
    plaintext, current = cipher.open(blob, context)
    return None if current else cipher.encrypt(plaintext, context)


async def _tokens(
    pool: asyncpg.Pool, cipher: TokenCipher, dry_run: bool, batch: int, progress: Progress
) -> RotationCount:
    count = RotationCount("account_tokens", total=await account_tokens.count(pool))
    after = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await account_tokens.batch_after(conn, after, batch)
            changed: list[tuple[int, bytes, bytes]] = []
            for row in rows:
                account_id = int(row["account_id"])
                try:
                    access = _reseal(
                        cipher, row["access_token_enc"], f"account:{account_id}:access"
                    )
                    refresh = _reseal(
                        cipher, row["refresh_token_enc"], f"account:{account_id}:refresh"
                    )
                except UNREADABLE:
                    count.unreadable += 1
                    continue
                if access is None and refresh is None:
                    count.current += 1
                else:
                    count.rotated += 1
                    changed.append(
                        (
                            account_id,
                            access or row["access_token_enc"],
                            refresh or row["refresh_token_enc"],
                        )
                    )
            if changed and not dry_run:
                await account_tokens.reencrypt(conn, changed)
        if not rows:
            return count
        count.seen += len(rows)
        after = int(rows[-1]["account_id"])
        progress(count)


async def _states(
    pool: asyncpg.Pool, cipher: TokenCipher, dry_run: bool, batch: int, progress: Progress
) -> RotationCount:
    count = RotationCount("oauth_states", total=await oauth_states.count(pool))
    after = ""
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await oauth_states.batch_after(conn, after, batch)
            changed: list[tuple[str, bytes]] = []
            for row in rows:
                state = str(row["state_hash"])
                try:
                    sealed = _reseal(cipher, row["code_verifier_enc"], f"oauth_state:{state}")
                except UNREADABLE:
                    count.unreadable += 1
                    continue
                if sealed is None:
                    count.current += 1
                else:
                    count.rotated += 1
                    changed.append((state, sealed))
            if changed and not dry_run:
                await oauth_states.reencrypt(conn, changed)
        if not rows:
            return count
        count.seen += len(rows)
        after = str(rows[-1]["state_hash"])
        progress(count)


async def rotate_secrets(
    pool: asyncpg.Pool,
    cipher: TokenCipher,
    *,
    dry_run: bool = False,
    batch_size: int = 100,
    progress: Progress | None = None,
) -> list[RotationCount]:
    """Re-encrypt every encrypted column under ``cipher``'s current key; the counts per table."""
    report = progress or (lambda _count: None)
    return [
        await _tokens(pool, cipher, dry_run, batch_size, report),
        await _states(pool, cipher, dry_run, batch_size, report),
    ]
