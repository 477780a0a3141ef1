"""How the CLI commands report a refusal: one line on stderr and exit code 1."""

from __future__ import annotations

import sys

from allegro_sync.adapters.allegro.errors import AllegroError
from allegro_sync.errors import CredentialsDead
from allegro_sync.handlers.accounts import PatchError


class CliError(Exception):
    """A refusal to print as one line."""


# What a command may refuse with; anything else is a bug and keeps its traceback.
REFUSALS = (CliError, PatchError, CredentialsDead, AllegroError)


def report(exc: BaseException) -> int:
    """Print ``exc`` as the one line an operator reads; the exit code."""
    if isinstance(exc, CredentialsDead):
        line = f"account {exc.account_id} switched off: {exc.reason}"
    elif isinstance(exc, PatchError):
        line = exc.detail if exc.field == "id" else str(exc)
    else:
        line = str(exc)
    print(f"allegro-sync: {line}", file=sys.stderr)
    return 1
