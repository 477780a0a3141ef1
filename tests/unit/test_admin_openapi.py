"""The committed admin OpenAPI document is the one the daemon serves (issue 14)."""

from __future__ import annotations

from scripts import admin_openapi


def test_the_committed_admin_openapi_document_is_generated() -> None:
    assert admin_openapi.DOCUMENT.read_text("utf-8") == admin_openapi.render(), (
        "docs/admin-openapi.json is stale: run python scripts/admin_openapi.py"
    )
