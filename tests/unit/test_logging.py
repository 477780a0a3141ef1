"""The log redaction processor drops tokens, secrets and Authorization values."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import asyncpg
import pytest
import structlog

from allegro_sync.daemon.logging import (
    REDACTED,
    RedactingFormatter,
    configure_logging,
    redact_secrets,
)

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


def _configured(
    capsys: pytest.CaptureFixture[str], json_output: bool
) -> structlog.typing.FilteringBoundLogger:
    configure_logging("DEBUG", json_output=json_output)
    capsys.readouterr()
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger("test")
    return logger


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.mark.parametrize("json_output", [True, False])
def test_a_token_inside_an_exception_is_redacted_in_the_traceback(
    capsys: pytest.CaptureFixture[str], json_output: bool
) -> None:
    log = _configured(capsys, json_output)
    try:
        raise RuntimeError(f"Allegro refused Authorization: Bearer {JWT} refresh_token=r3fr3sh")
    except RuntimeError:
        log.exception("handler_failed", message_id="m-1")
    out = capsys.readouterr().out
    assert "handler_failed" in out and "Traceback" in out and "RuntimeError" in out
    assert JWT not in out and "eyJ" not in out
    assert "r3fr3sh" not in out
    assert "refresh_token=[redacted]" in out


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("POST /auth/oauth/token body grant_type=refresh_token&refresh_token=r3fr3sh", "r3fr3sh"),
        ("access_token=acc355&expires_in=43199", "acc355"),
        ("client_secret=c1i3nt", "c1i3nt"),
        ("GET /oauth/callback?code=c0d3x&state=s", "c0d3x"),
        ('{"access_token": "acc355", "token_type": "bearer"}', "acc355"),
        ('{"refresh_token":"r3fr3sh"}', "r3fr3sh"),
        ('"body": "{\\"client_secret\\": \\"c1i3nt\\"}"', "c1i3nt"),
        ("{'refresh_token': 'r3fr3sh', 'n': 1}", "r3fr3sh"),
        ("TokenSet(access_token='acc355', refresh_token='r3fr3sh')", "acc355"),
        ("TokenSet(access_token='acc355', refresh_token='r3fr3sh')", "r3fr3sh"),
    ],
)
def test_secret_key_value_pairs_inside_strings_are_scrubbed(text: str, secret: str) -> None:
    event = redact_secrets(None, "info", {"event": "x", "error": text})
    assert secret not in event["error"]
    assert REDACTED in event["error"]


def test_nested_values_are_scrubbed() -> None:
    event = redact_secrets(
        None,
        "info",
        {"event": "x", "details": {"response": "refresh_token=r3fr3sh", "token": "t0k3n"}},
    )
    assert "r3fr3sh" not in str(event) and "t0k3n" not in str(event)


def _unique_violation() -> asyncpg.UniqueViolationError:
    return asyncpg.UniqueViolationError.new(
        {
            "S": "ERROR",
            "C": "23505",
            "M": 'duplicate key value violates unique constraint "customers_email_key"',
            "D": "Key (email)=(jan.kowalski@example.pl) already exists.",
        }
    )


@pytest.mark.parametrize("json_output", [True, False])
def test_database_row_values_are_not_logged(
    capsys: pytest.CaptureFixture[str], json_output: bool
) -> None:
    log = _configured(capsys, json_output)
    error = _unique_violation()
    try:
        raise error
    except asyncpg.UniqueViolationError as exc:
        log.exception("handler_failed")
        log.warning("message_retry_scheduled", error=f"{type(exc).__name__}: {exc}")
        log.warning("row_failed", exc=exc)
    log.warning(
        "prepare_failed",
        error="invalid input for query argument $2: 'Jan Kowalski' (expected int)",
    )
    out = capsys.readouterr().out
    assert "kowalski" not in out.lower()
    assert out.count("duplicate key value violates unique constraint") == 3
    assert "DETAIL: [redacted]" in out


def test_standard_library_records_are_scrubbed() -> None:
    formatter = RedactingFormatter("%(name)s: %(message)s")
    try:
        raise ValueError(f"refresh_token=r3fr3sh Bearer {JWT}")
    except ValueError:
        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request", (), None
        )
        record.exc_info = sys.exc_info()
    text = formatter.format(record)
    assert "Traceback" in text and "ValueError" in text
    assert "r3fr3sh" not in text and JWT not in text


def test_allegros_error_codes_stay_readable() -> None:
    text = '{"errors": [{"code": "VALIDATION_ERROR", "message": "bad"}]}'
    assert redact_secrets(None, "info", {"event": "x", "error": text})["error"] == text
