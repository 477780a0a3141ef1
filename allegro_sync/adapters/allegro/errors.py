"""The small error tree every Allegro failure is turned into (one place: the request method)."""

from __future__ import annotations

from typing import Any

from allegro_sync.errors import Refused, TransientError


class AllegroError(Exception):
    """Base of Allegro failures; ``trace_id`` is Allegro's, for support requests."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        trace_id: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.trace_id = trace_id
        # Allegro's error objects ({code, message, path, userMessage, ...}) when it sent some
        self.errors = errors or []


class AllegroUnavailable(AllegroError, TransientError):
    """Connection failure, timeout or 5xx: try again later."""


class AllegroRateLimited(AllegroUnavailable):
    """429: the client id (or the seller) is over a limit; back off."""


class AllegroAuthError(AllegroError):
    """401 even with a fresh token."""


class AllegroForbidden(AllegroError, Refused):
    """403: the account may not do this (missing scope, not its resource)."""


class AllegroNotFound(AllegroError):
    """404."""


class AllegroConflict(AllegroError):
    """409: command id reused, stale revision, edit in progress."""


class AllegroRejected(AllegroError):
    """400 / 422 / 413 and other refusals of the request itself; ``errors``: Allegro's list
    (400 and 422)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        code: str = "",
        trace_id: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, trace_id=trace_id)
        self.errors = errors or []


class OAuthError(AllegroError):
    """The OAuth token endpoint refused (``error`` holds the OAuth error code)."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(f"{error}: {description}", status=status, code=error)
        self.error = error
        self.description = description
