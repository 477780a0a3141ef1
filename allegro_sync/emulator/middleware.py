"""Cross-cutting HTTP behaviour: trace-id, the latency profile, injected faults, media types,
error rendering."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable
from email.utils import format_datetime

from aiohttp import web

from . import context
from .context import Emulator
from .errors import BETA_JSON, VND_JSON, ApiError, OAuthError, rate_limited
from .spec_check import declared_error_media

CONTROL_PREFIX = "/__control__"
# The resources with a per-user limit besides the client id's (allegro-api.md 3: "selected
# resources", e.g. the catalogue, issue #4630), where the parallelism switch applies.
PER_USER_RESOURCES = ("/sale/products",)
# set on a request whose answer is an injected fault, not the emulator's reading of Allegro
FAULT_INJECTED = web.RequestKey("allegro_emulator_fault", bool)
CAPTCHA_PAGE = (
    "<!DOCTYPE html><html><head><title>Allegro</title></head><body>"
    "<h1>Potwierdź, że jesteś człowiekiem</h1><div id='captcha'></div></body></html>"
)
OAUTH_PREFIX = "/auth/oauth"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_api(path: str) -> bool:
    return not path.startswith(CONTROL_PREFIX) and not path.startswith(OAUTH_PREFIX)


def _accepts(header: str) -> bool:
    media = {part.split(";")[0].strip().lower() for part in header.split(",")}
    return VND_JSON in media or BETA_JSON in media


def check_media_types(request: web.Request) -> None:
    """406 without the versioned Accept type; 415 for a body without the versioned
    Content-Type. DELETE is not versioned; the invoice file takes application/pdf."""
    if request.method == "DELETE":
        return
    if not _accepts(request.headers.get("Accept", "")):
        raise ApiError(
            406,
            "NotAcceptableException",
            "Not acceptable representation",
            user_message="Wrong Accept header.",
        )
    if request.method in ("POST", "PUT", "PATCH"):
        expected = "application/pdf" if request.path.endswith("/file") else None
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        ok = ctype == expected if expected else ctype in (VND_JSON, BETA_JSON)
        if request.path == "/sale/images":  # a link as JSON, or the image's bytes
            ok = ctype in (VND_JSON, "image/jpeg", "image/png", "image/webp")
        if not ok:
            raise ApiError(
                415,
                "UnsupportedMediaTypeException",
                f"Content type '{ctype or 'none'}' not supported",
                user_message="Unsupported media type.",
            )


@web.middleware
async def trace_and_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every response carries ``trace-id``; raised Allegro errors become their responses."""
    trace = str(uuid.uuid4())
    try:
        response = await handler(request)
    except ApiError as err:
        response = err.response()
        if _is_api(request.path):
            declared_error_media(request, response)
    except OAuthError as err:  # Allegro's OAuth layer: application/json wherever it answers
        response = err.response()
    except web.HTTPException as exc:
        if not _is_api(request.path) and not exc.status == 404:
            raise
        error = ApiError(
            exc.status, "NotFoundException" if exc.status == 404 else exc.reason, exc.reason
        )
        response = error.response()
    response.headers["trace-id"] = trace
    # the emulated clock's time, as a server's Date tells its own (the pollers read it)
    response.headers["Date"] = format_datetime(context.get(request).clock.now(), usegmt=True)
    return response


@web.middleware
async def faults_and_counting(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count API requests per route, apply the per-user parallelism limit (when switched on)
    and injected faults, then run the real handler."""
    path = request.path
    if path.startswith(CONTROL_PREFIX):
        return await handler(request)
    emulator = context.get(request)
    route = request.match_info.route.resource
    canonical = route.canonical if route is not None else path
    emulator.market.recordings.requests[f"{request.method} {canonical}"] += 1
    if _is_api(path):
        emulator.market.recordings.requests_by_user_agent[
            request.headers.get("User-Agent", "")
        ] += 1
    per_user = emulator.parallel.limit > 0 and path.startswith(PER_USER_RESOURCES)
    user = _user_of(emulator, request) if per_user else None
    if user is not None and not emulator.parallel.enter(user):
        raise rate_limited(None)
    try:
        # the profile's delay (latency.py): half on the request's way, half on the answer's
        travel = emulator.latency.delay(request.method, canonical) / 2
        if travel:
            await asyncio.sleep(travel)
        try:
            response = await _with_faults(emulator, request, handler)
        except (ApiError, OAuthError, web.HTTPException):
            if travel:
                await asyncio.sleep(travel)  # an error answer travels as slowly
            raise
        delay = emulator.faults.faults.endpoint_latency_ms.get(f"{request.method} {canonical}")
        if delay:
            await asyncio.sleep(delay / 1000)  # computed already: the answer travels slowly
        if travel:
            await asyncio.sleep(travel)
        return response
    finally:
        if user is not None:
            emulator.parallel.leave(user)


def not_json_answer(kind: str) -> web.Response:
    """A 200 that is not Allegro's JSON: a CAPTCHA page, nothing, or JSON cut short."""
    if kind == "empty":
        return web.Response(status=200, content_type=VND_JSON)
    if kind == "truncated":
        return web.Response(status=200, text='{"events": [{"id": "1', content_type=VND_JSON)
    return web.Response(status=200, text=CAPTCHA_PAGE, content_type="text/html")


def _user_of(emulator: Emulator, request: web.Request) -> str | None:
    """The seller behind a request's bearer token (no checks: the handler makes them)."""
    if not _is_api(request.path):
        return None
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        return None
    record = emulator.tokens.access.get(header[7:].strip())
    return record.grant.seller_id if record is not None else None


async def _with_faults(
    emulator: Emulator, request: web.Request, handler: Handler
) -> web.StreamResponse:
    path = request.path
    faults = emulator.faults.faults
    if faults.applies_to(path):
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if emulator.faults.roll(faults.drop_connections_rate):
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing is sent on a dropped connection
        left = faults.status_429_until - emulator.clock.timestamp()
        if left > 0:  # Retry-After (the storm's rest) only with the switch: Allegro sends none
            raise rate_limited(
                math.ceil(left) if emulator.config.switches.send_retry_after else None
            )
        if faults.not_json_count > 0 and _is_api(path):
            faults.not_json_count -= 1
            request[FAULT_INJECTED] = True
            return not_json_answer(faults.not_json_kind)
        if emulator.faults.roll(faults.error_5xx_rate):
            raise ApiError(
                503,
                "ServiceUnavailableException",
                "Service temporarily unavailable",
                content_type="application/json",
            )
    if _is_api(path):
        check_media_types(request)
    return await handler(request)
