"""The log redaction processor drops tokens, secrets and Authorization values."""

from __future__ import annotations

from allegro_sync.daemon.logging import REDACTED, redact_secrets

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJ1c2VyX25hbWUiOiIxMjMifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def test_secret_keys_are_redacted() -> None:
    event = redact_secrets(
        None,
        "info",
        {
            "event": "token_refreshed",
            "access_token": "abc",
            "refresh_token": "def",
            "client_secret": "s",
            "Authorization": "Bearer xyz",
            "account_id": 7,
        },
    )
    assert event["access_token"] == REDACTED
    assert event["refresh_token"] == REDACTED
    assert event["client_secret"] == REDACTED
    assert event["Authorization"] == REDACTED
    assert event["account_id"] == 7
    assert event["event"] == "token_refreshed"


def test_tokens_inside_strings_are_scrubbed() -> None:
    event = redact_secrets(
        None,
        "info",
        {
            "event": "http_failed",
            "error": f"401 for Bearer {JWT} and {JWT}",
            "detail": "Basic Zm9vOmJhcg==",
        },
    )
    assert JWT not in event["error"]
    assert "Zm9vOmJhcg" not in event["detail"]
