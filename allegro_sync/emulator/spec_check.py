"""Request bodies held to Allegro's schema: what the spec refuses gets Allegro's 422.

A peer's stand-in accepted whatever its client sent, so its suite stayed green while every
real stock update failed with 422 (allegro-2026.md 4, OL#1017). The emulator reads each JSON
body it is sent against the operation's ``requestBody`` schema in the vendored spec: wrong
types, missing required fields, values outside an enum or a bound are refused before the
handler's own rules run, one entry per problem, ``path`` naming the field. Properties the
spec does not describe are not refused here (whether Allegro ignores them is not documented);
the e2e contract check reports them instead.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .errors import ApiError, error_entry
from .openapi import Violation, subset

MAX_ENTRIES = 20


class ValidationErrors(ApiError):
    """422 with one ``errors`` entry per violation."""

    def __init__(self, violations: list[Violation]) -> None:
        first = violations[0]
        super().__init__(422, "VALIDATION_ERROR", _message(first), path=first.path or None)
        self.violations = violations[:MAX_ENTRIES]

    def body(self) -> dict[str, Any]:
        """``{"errors": [{code, message, details, path, userMessage, metadata}, …]}``."""
        return {
            "errors": [
                error_entry(
                    "VALIDATION_ERROR",
                    _message(v),
                    v.path or None,
                    "The request contains incorrect data. Contact the author of the application.",
                )
                for v in self.violations
            ]
        }


def _message(violation: Violation) -> str:
    where = violation.path or "body"
    return f"{where}: {violation.message}"


def refuse_off_spec(request: web.Request, body: Any) -> None:
    """Raise Allegro's 422 when ``body`` breaks the operation's request schema."""
    spec = subset()
    found = spec.operation(request.method, request.path)
    if found is None:
        return
    content = (spec.resolve(found[0].request_body) or {}).get("content") or {}
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    media = content.get(ctype)
    if not media or "schema" not in media:
        return
    violations = spec.validate(media["schema"], body, direction="request")
    if violations:
        raise ValidationErrors(violations)


def declared_error_media(request: web.Request, response: web.StreamResponse) -> None:
    """Give an error answer the media type the spec declares for its operation and status
    (``application/json`` for a 400 on /sale/offer-events, the vendor type for a 401 on /me),
    where the spec names one; otherwise the error keeps its own."""
    spec = subset()
    found = spec.operation(request.method, request.path)
    if found is None:
        return
    declared = found[0].responses.get(str(response.status))
    content = (spec.resolve(declared) or {}).get("content") if declared else None
    if content and "*/*" not in content and response.content_type not in content:
        response.content_type = next(iter(content))
