"""Which answers are not Allegro's JSON (AA#12097): those are "Allegro unavailable"."""

from __future__ import annotations

import orjson
import pytest

from allegro_sync.adapters.allegro.client import not_allegro_json


def _why(method: str, status: int, raw: bytes) -> str | None:
    try:
        payload = orjson.loads(raw) if raw.strip() else None
    except ValueError:
        payload = None
    return not_allegro_json(method, status, raw, payload)


@pytest.mark.parametrize(
    ("method", "status", "raw"),
    [
        ("GET", 200, b"<!DOCTYPE html><html><body>captcha</body></html>"),
        ("GET", 200, b""),
        ("GET", 200, b'{"events": [{"id": "1'),
        ("GET", 200, b"null"),
        ("GET", 403, b"<html>Access denied</html>"),
        ("PUT", 201, b"<html></html>"),
    ],
)
def test_pages_empty_and_cut_bodies_are_not_allegros(method: str, status: int, raw: bytes) -> None:
    assert _why(method, status, raw) is not None


@pytest.mark.parametrize(
    ("method", "status", "raw"),
    [
        ("GET", 200, b'{"events": []}'),
        ("GET", 200, b"[]"),
        ("PUT", 200, b""),  # the invoice file upload answers a bare 200
        ("GET", 404, b""),
        ("GET", 400, b'{"errors": [{"code": "VALIDATION_ERROR"}]}'),
        ("GET", 401, b'{"error": "invalid_token"}'),
    ],
)
def test_allegros_own_answers_pass(method: str, status: int, raw: bytes) -> None:
    assert _why(method, status, raw) is None
