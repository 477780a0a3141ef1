"""JSON errors for the admin API: ``{"error", "detail"}`` with a fitting status, never a trace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from allegro_sync.adapters.allegro.errors import AllegroError, AllegroUnavailable
from allegro_sync.errors import CredentialsDead

log = structlog.get_logger(__name__)


class ApiError(Exception):
    """An error with its HTTP status, a short code and a human detail."""

    def __init__(self, status: int, error: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.extra = extra


def error_response(status: int, error: str, detail: str, **extra: Any) -> web.Response:
    """The JSON body every error answers with."""
    return web.json_response({"error": error, "detail": detail, **extra}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into a JSON error: the catch-all of the admin API, so an unexpected
    exception is a JSON 500 that names nothing of the code or the database."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.error, exc.detail, **exc.extra)
    except CredentialsDead as exc:
        return error_response(409, "credentials_dead", exc.reason, account_id=exc.account_id)
    except AllegroUnavailable as exc:
        return error_response(503, "allegro_unavailable", str(exc), trace_id=exc.trace_id)
    except AllegroError as exc:
        return error_response(409, "allegro_refused", str(exc), trace_id=exc.trace_id)
    except asyncpg.DataError:
        # A value the checks before let through and PostgreSQL refuses (a NUL in a text, a
        # number beyond its column): the request's fault, and no database text goes back.
        log.info("http_input_refused_by_database", path=request.path, method=request.method)
        return error_response(
            400, "invalid_input", "a value is out of range or holds characters not allowed"
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or "")
    except Exception:
        log.exception("http_handler_failed", path=request.path, method=request.method)
        return error_response(500, "internal_error", "the request failed; see the daemon log")
