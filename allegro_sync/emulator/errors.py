"""Allegro's two error formats, raised as exceptions by handlers and rendered by a middleware."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

VND_JSON = "application/vnd.allegro.public.v1+json"
BETA_JSON = "application/vnd.allegro.beta.v1+json"


def dumps(data: Any) -> str:
    """JSON exactly as sent: nulls kept, no NaN."""
    return json.dumps(data, ensure_ascii=False, allow_nan=False)


def json_response(
    data: Any,
    status: int = 200,
    content_type: str = VND_JSON,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A JSON response with Allegro's versioned content type (by default)."""
    return web.Response(text=dumps(data), status=status, content_type=content_type, headers=headers)


class ApiError(Exception):
    """An error in the ``{"errors": [...]}`` format."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        path: str | None = None,
        user_message: str | None = None,
        details: str | None = None,
        content_type: str = VND_JSON,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.path = path
        self.user_message = user_message if user_message is not None else message
        self.details = details
        self.content_type = content_type
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        return {
            "errors": [
                error_entry(self.code, self.message, self.path, self.user_message, self.details)
            ]
        }

    def response(self) -> web.Response:
        """The HTTP response."""
        return json_response(self.body(), self.status, self.content_type, self.headers)


def error_entry(
    code: str,
    message: str,
    path: str | None = None,
    user_message: str | None = None,
    details: str | None = None,
) -> dict[str, Any]:
    """One entry of an ``errors`` list (also used inside batch-command task reports)."""
    return {
        "code": code,
        "message": message,
        "details": details,
        "path": path,
        "userMessage": user_message if user_message is not None else message,
        "metadata": {},
    }


class OAuthError(Exception):
    """An error in the OAuth format ``{"error", "error_description"}`` (401s and /auth/oauth)."""

    def __init__(self, status: int, error: str, description: str | None = None) -> None:
        super().__init__(description or error)
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> web.Response:
        """The HTTP response (plain application/json, as Allegro sends these)."""
        body: dict[str, Any] = {"error": self.error}
        if self.description is not None:
            body["error_description"] = self.description
        return json_response(body, self.status, "application/json")


def not_found(message: str = "Not found") -> ApiError:
    """Allegro's generic 404."""
    return ApiError(404, "NotFoundException", message)


def access_denied() -> ApiError:
    """403 for a missing scope or somebody else's resource."""
    return ApiError(
        403, "AccessDenied", "Access is denied", user_message="No access to the specified resource."
    )


def validation(message: str, path: str | None = None, status: int = 422) -> ApiError:
    """422 (or 400) ``VALIDATION_ERROR``."""
    return ApiError(status, "VALIDATION_ERROR", message, path=path, user_message=None)


def rate_limited(retry_after: int | None) -> ApiError:
    """429 as seen in issue #4630 (application/json, no Retry-After unless switched on)."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return ApiError(
        429,
        "RateLimitExceedException",
        "An error has occurred",
        user_message="Przekroczony limit zapytań.",
        content_type="application/json",
        headers=headers,
    )
