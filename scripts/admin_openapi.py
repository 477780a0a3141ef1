"""The admin API's OpenAPI 3.1 document, generated: `python scripts/admin_openapi.py`.

Made by ``allegro_sync/daemon/api/openapi.py`` (which the daemon also serves at
``GET /openapi.json``) and written to ``docs/admin-openapi.json``; ``--check`` only compares and
exits 1 when the committed file is stale (``tests/unit/test_admin_openapi.py`` does the same).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from allegro_sync.daemon.api.openapi import admin_openapi

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "admin-openapi.json"


def render() -> str:
    """The document as it is committed."""
    return json.dumps(admin_openapi(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Write the document, or with ``--check`` say whether the committed one is current."""
    text = render()
    if "--check" in sys.argv[1:]:
        if DOCUMENT.exists() and DOCUMENT.read_text("utf-8") == text:
            return 0
        print(f"{DOCUMENT} is stale: run python scripts/admin_openapi.py", file=sys.stderr)
        return 1
    DOCUMENT.write_text(text, "utf-8")
    print(f"wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
