"""The HTTP side's database settings (issue 14 item 5): defaults, and exports that would take
every connection of its pool refused at start."""

from __future__ import annotations

import pytest

from allegro_sync.config.settings import Settings, SettingsError, load_settings
from tests.helpers import ADMIN_TOKEN, SECRET_KEY

REQUIRED = {
    "client_id": "client",
    "client_secret": "client-secret",
    "secret_key": SECRET_KEY,
    "admin_token": ADMIN_TOKEN,
}


def test_defaults() -> None:
    settings = load_settings(Settings, **REQUIRED)
    assert settings.http_db_pool_size == 4
    assert settings.http_statement_timeout == 30
    assert settings.http_idle_in_transaction_timeout == 60
    assert settings.export_max_concurrent == 2
    assert settings.export_statement_timeout == 600


def test_exports_must_leave_connections_for_the_rest() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(Settings, **REQUIRED, http_db_pool_size=3, export_max_concurrent=3)
    assert str(refused.value) == (
        "EXPORT_MAX_CONCURRENT must be below HTTP_DB_POOL_SIZE (exports would take every"
        " connection of the HTTP side)"
    )
    with pytest.raises(SettingsError, match="ALLEGRO_SYNC_HTTP_DB_POOL_SIZE"):
        load_settings(Settings, **REQUIRED, http_db_pool_size=1)
