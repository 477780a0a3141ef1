"""The User-Agent Allegro requires on REST calls since the end of June 2026.

Format ``AppName/version (+url)`` (allegro-2026.md 1, AA#13126, AA#13527): the name of the
application as registered with Allegro, without spaces; apps that do not comply risk having
their IP blocked. Not required on the OAuth endpoints, but harmless there.
"""

from __future__ import annotations

import re
from importlib import metadata

PROJECT_URL = "https://github.com/allegro-sync/allegro-sync"
USER_AGENT_FORM = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9.+_-]* \(\+https?://[^\s()]+\)$"
)


def package_version() -> str:
    """The installed version of allegro-sync."""
    try:
        return metadata.version("allegro-sync")
    except metadata.PackageNotFoundError:  # running from a source tree without install
        return "0.0.0"


def default_user_agent() -> str:
    """``allegro-sync/<version> (+<project URL>)``."""
    return f"allegro-sync/{package_version()} (+{PROJECT_URL})"


def check_user_agent(value: str) -> str:
    """``value`` when it has Allegro's form; ValueError naming the form otherwise."""
    if not USER_AGENT_FORM.match(value):
        raise ValueError(
            "must have the form AppName/version (+url), e.g. "
            f"'my-shop-sync/1.2 (+https://shop.example/contact)'; got {value!r}"
        )
    return value
