"""Query-parameter parsing with Allegro-style validation errors."""

from __future__ import annotations

from aiohttp import web

from .errors import validation


def int_param(
    request: web.Request, name: str, default: int, low: int, high: int, status: int = 422
) -> int:
    """An integer query parameter within ``[low, high]``."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation(f"{name} must be an integer", name, status) from None
    if not low <= value <= high:
        raise validation(f"{name} must be between {low} and {high}", name, status)
    return value


def many(request: web.Request, name: str) -> list[str]:
    """A repeatable query parameter."""
    return request.query.getall(name, [])
