"""Bad command lines (issue 14 finding 17), through the real ``allegro-sync`` entry point in a
subprocess: one line on stderr naming what is wrong, a non-zero exit, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import ADMIN_TOKEN, SECRET_KEY


def _cli(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLEGRO_SYNC_")}
    env.update(
        {
            "ALLEGRO_SYNC_CLIENT_ID": "client",
            "ALLEGRO_SYNC_CLIENT_SECRET": "client-secret",
            "ALLEGRO_SYNC_SECRET_KEY": SECRET_KEY,
            "ALLEGRO_SYNC_ADMIN_TOKEN": ADMIN_TOKEN,
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


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_an_unknown_log_level_is_one_line(tmp_path: Path) -> None:
    result = _cli(["--log-level", "FOO", "migrate"], tmp_path)
    assert result.returncode == 2
    line = _one_line(result)
    assert line.startswith("allegro-sync: argument --log-level: 'FOO' is not one of DEBUG")


def test_a_log_level_in_lower_case_is_taken(tmp_path: Path) -> None:
    result = _cli(["--log-level", "debug", "accounts", "show", "x"], tmp_path)
    assert result.returncode == 2  # refused for the id, not for the level
    assert "argument id: invalid int value: 'x'" in _one_line(result)


def test_an_emulator_port_out_of_range_is_one_line(tmp_path: Path) -> None:
    result = _cli(["emulator", "--port", "99999"], tmp_path)
    assert result.returncode == 2
    line = _one_line(result)
    assert line.startswith("allegro-sync emulator: argument --port: 99999 is not a port")


def test_a_token_for_an_account_that_does_not_exist(tmp_path: Path, database_url: str) -> None:
    result = _cli(["accounts", "token", "999"], tmp_path, ALLEGRO_SYNC_DATABASE_URL=database_url)
    assert result.returncode == 1
    assert _one_line(result) == "allegro-sync: account 999 does not exist"
