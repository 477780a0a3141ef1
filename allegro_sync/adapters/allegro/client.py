"""The Allegro REST API client: one private request method owns media types, tokens, timeouts
and turns every failure into the small error tree of ``errors.py``."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
import structlog

from allegro_sync.adapters.allegro.errors import (
    AllegroAuthError,
    AllegroConflict,
    AllegroError,
    AllegroForbidden,
    AllegroNotFound,
    AllegroRateLimited,
    AllegroRejected,
    AllegroUnavailable,
)
from allegro_sync.adapters.allegro.limits import RequestLimiter, seller_limit
from allegro_sync.adapters.allegro.tokens import TokenManager
from allegro_sync.metrics import Metrics

log = structlog.get_logger(__name__)

MEDIA_TYPE = "application/vnd.allegro.public.v1+json"
Params = Mapping[str, str | int | Sequence[str]]
# (account id, event-log category, action, Allegro's message, trace id)
OnForbidden = Callable[[int, str, str, str, str | None], Awaitable[None]]


@dataclass(frozen=True)
class Response:
    """A successful answer."""

    status: int
    body: Any
    headers: Mapping[str, str]


def answered_at(headers: Mapping[str, str]) -> datetime | None:
    """Allegro's time of an answer (its ``Date`` header); None when missing or unreadable."""
    for name, value in headers.items():
        if name.lower() == "date":
            try:
                moment = parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return None
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return None


def category_of(path: str) -> str:
    """The event-log category a request belongs to."""
    if path.startswith("/order"):
        return "orders"
    if path.startswith("/sale"):
        return "offers"
    return "accounts"


class AllegroRestClient:
    """Requests on behalf of connected accounts."""

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession,
        tokens: TokenManager,
        api_url: Callable[[bool], str],
        metrics: Metrics,
        on_forbidden: OnForbidden,
        timeout: float = 30.0,
        get_attempts: int = 3,
        limiter: RequestLimiter | None = None,
    ) -> None:
        self._session = session
        self._tokens = tokens
        self._api_url = api_url
        self._metrics = metrics
        self._on_forbidden = on_forbidden
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._get_attempts = get_attempts
        # Every request of the process passes the client-wide limiter (allegro-api.md 3).
        self._limiter = limiter

    @property
    def limiter(self) -> RequestLimiter | None:
        """The client-wide limiter every request passes."""
        return self._limiter

    async def me_with_token(self, *, sandbox: bool, access_token: str) -> dict[str, Any]:
        """``GET /me`` with a token not yet stored (while connecting an account)."""
        return await self.get_with_token(
            sandbox=sandbox, access_token=access_token, path="/me", action="read account"
        )

    async def get_with_token(
        self, *, sandbox: bool, access_token: str, path: str, action: str
    ) -> dict[str, Any]:
        """A GET with a token not yet stored (while connecting an account): the JSON object,
        else AllegroUnavailable (unreachable, a 5xx, or an answer that is not Allegro's JSON:
        an HTML page, an empty or cut body), retried briefly as ``get`` does, or
        AllegroRejected (any other answer)."""
        response = await self.get_with_token_response(
            sandbox=sandbox, access_token=access_token, path=path, action=action
        )
        body: dict[str, Any] = response.body
        return body

    async def get_with_token_response(
        self, *, sandbox: bool, access_token: str, path: str, action: str
    ) -> Response:
        """``get_with_token`` with the whole answer (its headers too: ``answered_at``)."""
        for attempt in range(self._get_attempts):
            try:
                return await self._get_with_token_once(
                    sandbox=sandbox, access_token=access_token, path=path, action=action
                )
            except AllegroUnavailable:
                if attempt + 1 == self._get_attempts:
                    raise
                await asyncio.sleep(random.uniform(0, 0.2 * 2**attempt))
        raise AssertionError("unreachable")

    async def _get_with_token_once(
        self, *, sandbox: bool, access_token: str, path: str, action: str
    ) -> Response:
        if self._limiter is not None:  # an account being connected: order traffic, not bulk
            await self._limiter.acquire(bulk=False)
        try:
            async with self._session.get(
                self._api_url(sandbox) + path,
                headers={"Authorization": f"Bearer {access_token}", "Accept": MEDIA_TYPE},
                timeout=self._timeout,
            ) as http:
                raw = await http.read()
                status, trace_id = http.status, http.headers.get("trace-id")
                headers = dict(http.headers)
                retry_after = retry_after_seconds(http.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._metrics.allegro_requests.labels(action, "error").inc()
            raise AllegroUnavailable(
                f"read {path}: Allegro unreachable ({type(exc).__name__})"
            ) from exc
        payload = _decode(raw)
        garbled = not_allegro_json("GET", status, raw, payload)
        if garbled is not None:  # a CAPTCHA page, an empty or cut body: not Allegro's answer
            self._metrics.allegro_requests.labels(action, "error").inc()
            raise AllegroUnavailable(
                f"read {path}: Allegro answered {status} with {garbled}",
                status=status,
                trace_id=trace_id,
            )
        self._metrics.allegro_requests.labels(action, f"{status // 100}xx").inc()
        self._note_limit(status, action, None, retry_after)
        code, message = _describe(payload)
        text = f"read {path}: Allegro answered {status} {code}: {message}"
        if status >= 500:
            raise AllegroUnavailable(text, status=status, code=code, trace_id=trace_id)
        if status != 200 or not isinstance(payload, dict):
            raise AllegroRejected(text, status=status, code=code, trace_id=trace_id)
        return Response(status, payload, headers)

    async def get(
        self,
        account_id: int,
        path: str,
        *,
        action: str,
        params: Params | None = None,
        bulk: bool = False,
    ) -> Any:
        """GET and return the JSON body; retried briefly on connection errors and 5xx."""
        response = await self.get_response(
            account_id, path, action=action, params=params, bulk=bulk
        )
        return response.body

    async def get_response(
        self,
        account_id: int,
        path: str,
        *,
        action: str,
        params: Params | None = None,
        bulk: bool = False,
    ) -> Response:
        """``get`` with the whole answer (its headers too: ``answered_at``)."""
        for attempt in range(self._get_attempts):
            try:
                return await self.request(
                    account_id, "GET", path, action=action, params=params, bulk=bulk
                )
            except AllegroRateLimited:
                raise
            except AllegroUnavailable:
                if attempt + 1 == self._get_attempts:
                    raise
                await asyncio.sleep(random.uniform(0, 0.2 * 2**attempt))
        raise AssertionError("unreachable")

    async def request(
        self,
        account_id: int,
        method: str,
        path: str,
        *,
        action: str,
        params: Params | None = None,
        json: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        bulk: bool = False,
        upload_host: bool = False,
        follow_redirects: bool = True,
        accept: str | None = None,
    ) -> Response:
        """One request; a 401 triggers one token refresh and one retry. ``bulk`` marks traffic
        that yields to orders under the client-wide limit (batch commands and their reports);
        ``upload_host`` sends it to Allegro's upload host (image uploads);
        ``follow_redirects=False`` returns a 3xx as it is (an operation's 303 when done);
        ``accept``: a file's media type (a label, a protocol): a success's body is then its
        bytes, as they came; errors are still Allegro's JSON."""
        auth = await self._tokens.current(account_id)
        family = seller_limit(method, path)
        seller = (account_id, family) if family is not None else None
        for retry_after_refresh in (True, False):
            if self._limiter is not None:
                await self._limiter.acquire(bulk=bulk, seller=seller)
            base = self._api_url(auth.sandbox)
            if upload_host:
                base = upload_base(base)
            headers = {
                "Authorization": f"Bearer {auth.access_token}",
                "Accept": f"{accept}, {MEDIA_TYPE}" if accept else MEDIA_TYPE,
            }
            body: bytes | None = data
            if json is not None:
                body = _encode(json)
                headers["Content-Type"] = MEDIA_TYPE
            elif data is not None and content_type:
                headers["Content-Type"] = content_type
            try:
                async with self._session.request(
                    method,
                    base + path,
                    params=_query(params),
                    data=body,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=follow_redirects,
                ) as http:
                    status = http.status
                    trace_id = http.headers.get("trace-id")
                    payload: Any = None
                    garbled: str | None = None
                    if status != 204:
                        raw = await http.read()
                        if accept and status < 300 and not _is_json(http.content_type):
                            payload = raw
                        else:
                            payload = _decode(raw)
                            garbled = not_allegro_json(method, status, raw, payload)
                    response_headers = dict(http.headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self._metrics.allegro_requests.labels(action, "error").inc()
                raise AllegroUnavailable(
                    f"{action}: Allegro unreachable ({type(exc).__name__})"
                ) from exc
            if garbled is not None:  # a CAPTCHA page, an empty or cut body: not Allegro's answer
                self._metrics.allegro_requests.labels(action, "error").inc()
                raise AllegroUnavailable(
                    f"{action}: Allegro answered {status} with {garbled}",
                    status=status,
                    trace_id=trace_id,
                )
            self._metrics.allegro_requests.labels(action, f"{status // 100}xx").inc()
            self._note_limit(status, action, seller, retry_after_seconds(response_headers))
            if status == 401 and retry_after_refresh:
                auth = await self._tokens.refresh(account_id, seen_generation=auth.generation)
                continue
            if status < 400:
                return Response(status, payload, response_headers)
            raise await self._error(account_id, path, action, status, payload, trace_id)
        raise AssertionError("unreachable")

    def _note_limit(
        self,
        status: int,
        action: str,
        seller: tuple[int, str] | None,
        retry_after: float | None,
    ) -> None:
        """Tell the limiter how Allegro answered: a 429 pauses every request of the client,
        or, on an endpoint with a per-seller limit (``seller``: account id, family), that
        seller's requests of the family; for its ``Retry-After`` when it names one."""
        if self._limiter is None or status != 429:
            return
        if seller is None:
            pause = self._limiter.note_rate_limited(retry_after)
            log.warning("allegro_rate_limited", action=action, limit="client", pause_seconds=pause)
        else:
            pause = self._limiter.note_seller_limited(*seller, retry_after=retry_after)
            log.warning(
                "allegro_rate_limited",
                action=action,
                limit=seller[1],
                account_id=seller[0],
                pause_seconds=pause,
            )

    async def _error(
        self,
        account_id: int,
        path: str,
        action: str,
        status: int,
        payload: Any,
        trace_id: str | None,
    ) -> AllegroError:
        code, message = _describe(payload)
        text = f"{action}: Allegro answered {status} {code}: {message}".rstrip(": ")
        if status in (400, 422):
            return AllegroRejected(
                text, status=status, code=code, trace_id=trace_id, errors=_errors(payload)
            )
        if status == 429:
            return AllegroRateLimited(text, status=status, code=code, trace_id=trace_id)
        if status >= 500:
            return AllegroUnavailable(text, status=status, code=code, trace_id=trace_id)
        if status == 401:
            return AllegroAuthError(text, status=status, code=code, trace_id=trace_id)
        if status == 403:
            await self._on_forbidden(account_id, category_of(path), action, message, trace_id)
            return AllegroForbidden(text, status=status, code=code, trace_id=trace_id)
        if status == 404:
            return AllegroNotFound(text, status=status, code=code, trace_id=trace_id)
        if status == 409:
            return AllegroConflict(text, status=status, code=code, trace_id=trace_id)
        return AllegroRejected(
            text, status=status, code=code, trace_id=trace_id, errors=error_objects(payload)
        )


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """An answer's ``Retry-After`` in seconds (the delta-seconds form); None when it names
    none or a value that is not a number of seconds (an HTTP date is not trusted: clocks)."""
    raw = next((value for name, value in headers.items() if name.lower() == "retry-after"), None)
    if raw is None:
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None


def error_objects(payload: Any) -> list[dict[str, Any]]:
    """Allegro's error objects of an ``{"errors": [...]}`` answer, the fields it documents."""
    errors = payload.get("errors") if isinstance(payload, dict) else None
    keep = ("code", "message", "details", "path", "userMessage")
    return [
        {key: e.get(key) for key in keep}
        for e in (errors if isinstance(errors, list) else [])
        if isinstance(e, dict)
    ][:50]


def upload_base(api_base: str) -> str:
    """Allegro's upload host beside an API base (``POST /sale/images`` is served there:
    ``https://upload.allegro.pl``, ``https://upload.allegro.pl.allegrosandbox.pl``); a base
    that is not Allegro's (the emulator) serves both."""
    return api_base.replace("://api.allegro.pl", "://upload.allegro.pl", 1)


def _describe(payload: Any) -> tuple[str, str]:
    """Allegro's error code and the most useful message, from either error format."""
    if isinstance(payload, dict):
        errors = payload.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            message = first.get("userMessage") or first.get("message") or ""
            return str(first.get("code") or ""), str(message)
        if "error" in payload:  # OAuth format; the description may quote the token
            description = str(payload.get("error_description") or "").partition(": ")[0]
            return str(payload["error"]), description
    return "", ""


def _errors(payload: Any) -> list[dict[str, Any]]:
    """Allegro's error list (``{"errors": [...]}``), each entry an object; [] when none."""
    if isinstance(payload, dict) and isinstance(payload.get("errors"), list):
        return [e for e in payload["errors"] if isinstance(e, dict)]
    return []


def not_allegro_json(method: str, status: int, raw: bytes, payload: Any) -> str | None:
    """Why an answer is not one of Allegro's (None when it is one).

    Allegro answers JSON: a success of a GET carries an object (or a list), an error one of its
    two error formats. An HTML page (a CAPTCHA or a proxy's error, AA#12097), an empty body
    where a GET needs one, or a cut one come from something in between and mean "Allegro
    unavailable", to be retried, never "no events". A write may succeed with an empty body
    (the invoice file upload answers a bare 200).
    """
    if raw.strip() and payload is None:
        return "a body that is not JSON"
    if not raw.strip():
        if method == "GET" and 200 <= status < 300:
            return "an empty body"
        return None
    if not isinstance(payload, (dict, list)):
        return "JSON that is not an object"
    return None


def _query(params: Params | None) -> list[tuple[str, str]] | None:
    if params is None:
        return None
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if isinstance(value, (list, tuple)):
            pairs.extend((key, str(v)) for v in value)
        else:
            pairs.append((key, str(value)))
    return pairs


def _is_json(content_type: str) -> bool:
    return content_type.endswith("json")


def _encode(body: Any) -> bytes:
    return orjson.dumps(body)


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except ValueError:
        return None
