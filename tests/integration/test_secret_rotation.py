"""``allegro-sync secrets rotate`` (issue 14 finding 16) against the real database, through the
real command line: tokens written under key A are re-encrypted under key B while A still opens
them; afterwards a daemon with only B reads them. A dry run changes nothing; a second run, or the
rest of an interrupted one, re-encrypts only what is still under A."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.exceptions import InvalidTag

from allegro_sync.adapters.allegro.crypto import TokenCipher
from allegro_sync.adapters.allegro.oauth import TokenSet
from allegro_sync.adapters.allegro.tokens import TokenManager, store_tokens
from allegro_sync.adapters.postgres import oauth_states
from allegro_sync.handlers.accounts import connect_account
from tests.helpers import ADMIN_TOKEN

KEY_A = "rotation-key-A-0123456789abcdef0123456789"
KEY_B = "rotation-key-B-0123456789abcdef0123456789"


def _cli(args: list[str], cwd: Path, database_url: str, **extra: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLEGRO_SYNC_")}
    env.update(
        {
            "ALLEGRO_SYNC_DATABASE_URL": database_url,
            "ALLEGRO_SYNC_CLIENT_ID": "client",
            "ALLEGRO_SYNC_CLIENT_SECRET": "client-secret",
            "ALLEGRO_SYNC_ADMIN_TOKEN": ADMIN_TOKEN,
            "ALLEGRO_SYNC_SECRET_KEY": KEY_B,
            **extra,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "allegro_sync.daemon.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _snapshot(db: asyncpg.Pool) -> list[tuple[Any, ...]]:
    tokens = await db.fetch(
        "SELECT account_id, access_token_enc, refresh_token_enc, generation"
        " FROM account_tokens ORDER BY account_id"
    )
    states = await db.fetch("SELECT state_hash, code_verifier_enc FROM oauth_states")
    return [tuple(r) for r in tokens] + [tuple(r) for r in states]


@pytest.fixture
async def under_a(db: asyncpg.Pool) -> list[int]:
    """Three accounts and a pending OAuth state, encrypted under key A."""
    cipher = TokenCipher(KEY_A)
    ids = []
    async with db.acquire() as conn:
        for n in range(3):
            account_id, _ = await connect_account(
                conn,
                cipher,
                allegro_user_id=f"user-{n}",
                login=f"seller-{n}",
                sandbox=False,
                tokens=TokenSet(f"access-{n}", f"refresh-{n}", 43200),
            )
            ids.append(account_id)
    until = datetime.now(UTC) + timedelta(minutes=10)
    await oauth_states.add(db, "h1", cipher.encrypt("verifier", "oauth_state:h1"), False, until)
    return ids


def _tokens_with_only(db: asyncpg.Pool, key: str) -> TokenManager:
    async def dead(account_id: int, reason: str) -> None:
        raise AssertionError(f"account {account_id} declared dead: {reason}")

    def no_oauth(sandbox: bool) -> Any:
        raise AssertionError("no refresh expected")

    return TokenManager(pool=db, cipher=TokenCipher(key), oauth=no_oauth, on_credentials_dead=dead)


async def test_rotate_re_encrypts_everything_under_the_new_key(
    db: asyncpg.Pool, database_url: str, under_a: list[int], tmp_path: Path
) -> None:
    before = await _snapshot(db)
    with pytest.raises(InvalidTag):  # a daemon with only B cannot read them yet
        await _tokens_with_only(db, KEY_B).current(under_a[0])

    dry = _cli(
        ["secrets", "rotate", "--dry-run", "--batch-size", "2"],
        tmp_path,
        database_url,
        ALLEGRO_SYNC_SECRET_KEY_PREVIOUS=KEY_A,
    )
    assert dry.returncode == 0, dry.stderr
    assert (
        "account_tokens: 3/3 rows, would re-encrypt 3, already under the current key 0 (done)"
        in (dry.stdout)
    )
    assert "oauth_states: 1/1 rows, would re-encrypt 1" in dry.stdout
    assert await _snapshot(db) == before  # a dry run changes nothing

    run = _cli(
        ["secrets", "rotate", "--batch-size", "2"],
        tmp_path,
        database_url,
        ALLEGRO_SYNC_SECRET_KEY_PREVIOUS=KEY_A,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    # progress after each batch of two, then the totals
    assert lines[0] == "account_tokens: 2/3 rows, re-encrypted 2, already under the current key 0"
    assert lines[1] == "account_tokens: 3/3 rows, re-encrypted 3, already under the current key 0"
    assert "oauth_states: 1/1 rows, re-encrypted 1, already under the current key 0 (done)" in lines

    # a daemon with only B reads every token; generations did not move (same tokens)
    only_b = _tokens_with_only(db, KEY_B)
    for n, account_id in enumerate(under_a):
        auth = await only_b.current(account_id)
        assert auth.access_token == f"access-{n}"
        row = await db.fetchrow(
            "SELECT refresh_token_enc, generation FROM account_tokens WHERE account_id = $1",
            account_id,
        )
        assert TokenCipher(KEY_B).decrypt(row["refresh_token_enc"], f"account:{account_id}:refresh")
        assert row["generation"] == 1
    state = await oauth_states.take(db, "h1")
    assert state is not None
    assert TokenCipher(KEY_B).decrypt(state["code_verifier_enc"], "oauth_state:h1") == "verifier"

    again = _cli(
        ["secrets", "rotate"], tmp_path, database_url, ALLEGRO_SYNC_SECRET_KEY_PREVIOUS=KEY_A
    )
    assert again.returncode == 0
    assert "account_tokens: 3/3 rows, re-encrypted 0, already under the current key 3 (done)" in (
        again.stdout
    )


async def test_an_interrupted_rotation_finishes_when_run_again(
    db: asyncpg.Pool, database_url: str, under_a: list[int], tmp_path: Path
) -> None:
    """As after a run stopped after its first batch: that account is under B already."""
    async with db.acquire() as conn:
        await store_tokens(conn, TokenCipher(KEY_B), under_a[0], TokenSet("a", "r", 43200))
    old_key = tmp_path / "old_key"
    old_key.write_text(KEY_A + "\n")
    run = _cli(["secrets", "rotate", "--old-key-file", str(old_key)], tmp_path, database_url)
    assert run.returncode == 0, run.stderr
    assert "account_tokens: 3/3 rows, re-encrypted 2, already under the current key 1 (done)" in (
        run.stdout
    )
    only_b = _tokens_with_only(db, KEY_B)
    assert [(await only_b.current(i)).access_token for i in under_a] == [
        "a",
        "access-1",
        "access-2",
    ]


async def test_rotate_without_a_previous_key_is_refused(
    db: asyncpg.Pool, database_url: str, under_a: list[int], tmp_path: Path
) -> None:
    before = await _snapshot(db)
    result = _cli(["secrets", "rotate"], tmp_path, database_url)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "allegro-sync: no previous key: set ALLEGRO_SYNC_SECRET_KEY_PREVIOUS or give --old-key-file"
    ]
    wrong = _cli(
        ["secrets", "rotate"],
        tmp_path,
        database_url,
        ALLEGRO_SYNC_SECRET_KEY_PREVIOUS="not-the-old-key-0123456789abcdef0123",
    )
    assert wrong.returncode == 1
    assert "4 rows open under neither key" in wrong.stderr
    assert await _snapshot(db) == before
