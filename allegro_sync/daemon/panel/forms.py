"""Reading the panel's forms: switches, optional texts, numbers, Warsaw date-times."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from allegro_sync.daemon.panel.render import WARSAW


def switches(form: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, bool]:
    """Checkboxes: a name present is on, absent is off."""
    return {name: name in form for name in names}


def text(form: Mapping[str, Any], name: str) -> str | None:
    """A text field, None when left empty."""
    value = str(form.get(name, "")).strip()
    return value or None


def number(form: Mapping[str, Any], name: str) -> float | str | None:
    """A number field (a decimal comma too), None when left empty; the raw text when it is no
    number, for the handler's validation to name."""
    raw = str(form.get(name, "")).strip()
    if not raw:
        return None
    try:
        return float(raw.replace(",", "."))
    except ValueError:
        return raw


def warsaw_datetime(raw: str) -> datetime | str:
    """An ``<input type=datetime-local>`` value read as Warsaw time (the raw text when it is not
    one, for the handler's validation to name)."""
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    return value.replace(tzinfo=WARSAW) if value.tzinfo is None else value


def positive_int(query: Mapping[str, str], name: str) -> int | None:
    """A query parameter that must be a whole number from 1; anything else is a 404."""
    raw = query.get(name, "")
    if raw == "":
        return None
    if not raw.isdigit() or len(raw) > 18 or int(raw) < 1:
        raise web.HTTPNotFound()
    return int(raw)
