"""Query-parameter parsing for the admin API: a bad value is a 422 that names the parameter."""

from __future__ import annotations

import re
from datetime import datetime

from aiohttp import web

from allegro_sync.daemon.api.errors import ApiError, Handler

# PostgreSQL's bigint: every id of the database fits it, and nothing beyond it is one.
BIGINT_MAX = 2**63 - 1
# ASCII digits only: Python's int() also takes "²", "١" and "1_0", which no id is written as.
_ID = re.compile(r"[0-9]{1,19}")
_INTEGER = re.compile(r"-?[0-9]{1,19}")


def invalid(field: str, detail: str) -> ApiError:
    """422 naming the field."""
    return ApiError(422, "validation_error", f"{field}: {detail}", field=field)


def int_param(
    request: web.Request, name: str, default: int | None = None, *, low: int = 0, high: int = 2**62
) -> int | None:
    """An integer query parameter within [low, high]."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if _INTEGER.fullmatch(raw) is None:
        raise invalid(name, "must be an integer")
    value = int(raw)
    if not low <= value <= high:
        raise invalid(name, f"must be between {low} and {high}")
    return value


def bool_param(request: web.Request, name: str) -> bool | None:
    """``true`` / ``false`` (also 1 / 0)."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise invalid(name, "must be true or false")


def datetime_param(request: web.Request, name: str) -> datetime | None:
    """An ISO-8601 date-time with a zone."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(name, "must be an ISO-8601 date-time") from None
    if value.tzinfo is None:
        raise invalid(name, "must carry a time zone (e.g. Z)")
    return value


def choice_param(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    """One of ``choices``."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise invalid(name, f"must be one of {', '.join(choices)}")
    return raw


async def json_body(request: web.Request) -> object:
    """The request's JSON body, or a 400 (a body over the size limit is a 413 of aiohttp's)."""
    try:
        return await request.json()
    except RecursionError:
        raise ApiError(400, "invalid_json", "the body is nested too deeply") from None
    except (ValueError, LookupError):
        # LookupError: a charset in Content-Type that Python does not know.
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None


def path_id(request: web.Request, name: str = "id") -> int:
    """A numeric id from the path (ASCII digits, within bigint), or 404."""
    raw = request.match_info[name]
    if _ID.fullmatch(raw) is None or int(raw) > BIGINT_MAX:
        raise ApiError(404, "not_found", f"no such {name}")
    return int(raw)


@web.middleware
async def no_nul_in_query(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A NUL in any query parameter is a 422 naming it: PostgreSQL's text cannot hold one, and
    no value of this API has one. The panel (HTML) and the OAuth callback (a page for the
    seller; it only hashes its ``state``) judge their own parameters."""
    if not request.path.startswith(("/panel/", "/oauth/")):
        for name, value in request.query.items():
            if "\x00" in name or "\x00" in value:
                raise invalid(name.replace("\x00", ""), "may not hold a NUL character")
    return await handler(request)
