"""The contract check: every request to the emulator and every answer it gives, held to
Allegro's OpenAPI spec (path, method, parameters, media types, bodies, declared statuses).

``install(app)`` adds an outermost middleware that records each disagreement in
``app[CONTRACT_KEY]``; the e2e suite installs it on every emulator and fails a test that saw
one. The control API and the OAuth endpoints (not in Allegro's spec) are not checked.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .middleware import FAULT_INJECTED
from .openapi import Operation, Spec, Violation, subset

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SKIPPED_PREFIXES = ("/__control__", "/auth/oauth")
# Statuses Allegro may give on any resource, documented once for the whole API rather than
# per operation (allegro-api.md 1, 2.8, 3, 4): authentication, a missing scope, media types,
# limits, outages. Their bodies must still be one of Allegro's two error formats.
UNIVERSAL_STATUSES = frozenset({401, 403, 406, 415, 429, 500, 502, 503, 504})
JSON_TYPES = ("application/json", "application/vnd.allegro.public.v1+json")
# Required on REST calls since the end of June 2026 (allegro-2026.md 1): AppName/version (+url)
USER_AGENT = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9.+_-]* \(\+https?://[^\s()]+\)$"
)


# Where the spec cannot be what Allegro does, one case at a time, with the reason:
# (operation as "METHOD template" glob, "<status> <violation>" regex, why).
ERRATA: tuple[tuple[str, str, str], ...] = (
    (
        "* *",
        r"^401 header Content-Type: 'application/json' is not one of",
        "401s come from Allegro's OAuth layer in its own format as application/json "
        "(allegro-api.md 1 and 4), whatever media type an operation declares",
    ),
    (
        "GET /order/checkout-forms",
        r"^200 (count|totalCount): 0 is below the minimum 1$",
        "the spec gives count and totalCount minimum 1, but a page of no forms counts 0",
    ),
    (
        "POST /shipment-management/*-commands",
        r"^409 .*status 409 is not declared",
        "a command id sent again: 409 'Command id was already used' as Allegro's other command "
        "resources answer (allegro-api.md 2); the spec names no answer for it here",
    ),
    (
        "GET /after-sales-service-conditions/*",
        r"^422 .*status 422 is not declared",
        "limit/offset outside 1-60 / 0-59 (the spec's own bounds) need an answer the spec "
        "does not name; 422 VALIDATION_ERROR as on Allegro's other resources",
    ),
)


def _erratum(op: Operation, status: int, violation: Violation) -> bool:
    name = f"{op.method} {op.template}"
    return any(
        fnmatch.fnmatchcase(name, pattern) and re.search(text, f"{status} {violation}")
        for pattern, text, _ in ERRATA
    )


@dataclass(frozen=True)
class Finding:
    """A violation seen on one exchange."""

    side: str  # "request" or "response"
    method: str
    path: str
    status: int | None
    violation: Violation

    def __str__(self) -> str:
        status = f" -> {self.status}" if self.status is not None else ""
        return f"{self.side} {self.method} {self.path}{status}: {self.violation}"


@dataclass
class ContractLog:
    """What the middleware saw: exchanges checked and violations found."""

    exchanges: int = 0
    findings: list[Finding] = field(default_factory=list)
    on_finding: Callable[[Finding], None] | None = None

    def add(self, finding: Finding) -> None:
        """Record one finding (and tell ``on_finding``)."""
        self.findings.append(finding)
        if self.on_finding is not None:
            self.on_finding(finding)

    def report(self) -> str:
        """One line per finding."""
        return "\n".join(str(f) for f in self.findings)


CONTRACT_KEY = web.AppKey("contract", ContractLog)


def install(
    app: web.Application, spec: Spec | None = None, *, requests: bool = True
) -> ContractLog:
    """Add the checking middleware (outermost) to an app not yet started. ``requests=False``
    checks the answers only (for tests that send bad requests on purpose)."""
    log = ContractLog()
    app[CONTRACT_KEY] = log
    app.middlewares.insert(0, middleware(log, spec or subset(), requests=requests))
    return log


def middleware(log: ContractLog, spec: Spec, *, requests: bool = True) -> Any:
    """The aiohttp middleware recording into ``log``."""

    @web.middleware
    async def contract_check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(SKIPPED_PREFIXES):
            return await handler(request)
        raw = await request.read()
        found = spec.operation(request.method, request.path)
        request_findings = check_request(spec, found, request, raw) if requests else []
        response = await handler(request)
        if request.get(FAULT_INJECTED, False):
            return response  # a fault a test asked for, not the emulator's reading of Allegro
        log.exchanges += 1
        for violation in request_findings:
            log.add(Finding("request", request.method, request.path, None, violation))
        if found is not None and isinstance(response, web.Response):
            body = response.body if isinstance(response.body, bytes) else b""
            for violation in check_response(
                spec, found[0], response.status, response.content_type, body
            ):
                if _erratum(found[0], response.status, violation):
                    continue
                log.add(
                    Finding("response", request.method, request.path, response.status, violation)
                )
        return response

    return contract_check


def check_request(
    spec: Spec,
    found: tuple[Operation, dict[str, str]] | None,
    request: web.Request,
    raw: bytes,
) -> list[Violation]:
    """Violations of one request: operation, parameters, Accept, Content-Type, body."""
    if found is None:
        what = "method not in the spec" if spec.path_known(request.path) else "path not in spec"
        return [Violation("", f"{request.method} {request.path}: {what}")]
    op, path_params = found
    out: list[Violation] = []
    agent = request.headers.get("User-Agent", "")
    if not USER_AGENT.match(agent):
        out.append(Violation("header User-Agent", f"{agent!r} is not AppName/version (+url)"))
    declared = {(p["name"], p["in"]): p for p in op.parameters}
    for name, value in path_params.items():
        param = declared.get((name, "path"))
        if param is not None:
            out += _param(spec, param, [value], f"path {name}")
    for name in set(request.query.keys()):
        param = declared.get((name, "query"))
        if param is None:
            out.append(Violation(f"query {name}", "parameter not in the spec"))
            continue
        out += _param(spec, param, request.query.getall(name), f"query {name}")
    for (name, where), param in declared.items():
        if not param.get("required"):
            continue
        if where == "query" and name not in request.query:
            out.append(Violation(f"query {name}", "required parameter missing"))
        if where == "header" and name not in request.headers:
            out.append(Violation(f"header {name}", "required header missing"))
    media = op.response_media_types()
    if media and request.method != "DELETE":
        accepted = {
            p.split(";")[0].strip().lower() for p in request.headers.get("Accept", "").split(",")
        }
        if not accepted & (media | {"*/*"}):
            out.append(Violation("header Accept", f"none of {sorted(media)}"))
    body_spec = spec.resolve(op.request_body)  # a body may be a shared requestBodies entry
    if body_spec is None:
        if raw:
            out.append(Violation("", "a body where the spec declares none"))
        return out
    if not raw:
        if body_spec.get("required"):
            out.append(Violation("", "required body missing"))
        return out
    content = body_spec.get("content") or {}
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype not in content:
        out.append(Violation("header Content-Type", f"{ctype!r} is not one of {sorted(content)}"))
        return out
    schema = (content[ctype] or {}).get("schema")
    if ctype.endswith("json") and schema is not None:
        try:
            value = json.loads(raw)
        except ValueError:
            return [*out, Violation("", "body is not JSON")]
        out += spec.validate(schema, value, strict=True, direction="request")
    return out


def check_response(
    spec: Spec, op: Operation, status: int, content_type: str, body: bytes
) -> list[Violation]:
    """Violations of one answer: a declared status, its media type and its body."""
    responses = op.responses
    declared = responses.get(str(status)) or responses.get("default")
    if declared is None:
        if status not in UNIVERSAL_STATUSES:
            return [Violation("", f"status {status} is not declared for {op.method} {op.template}")]
        return _error_body(spec, body, content_type)
    declared = spec.resolve(declared)
    content = declared.get("content") or {}
    if not content:
        if status >= 400:
            return _error_body(spec, body, content_type)
        if body:
            return [Violation("", f"a body on {status}, where the spec declares none")]
        return []
    ctype = content_type.lower()
    if ctype not in content and "*/*" not in content:
        return [Violation("header Content-Type", f"{ctype!r} is not one of {sorted(content)}")]
    schema = (content.get(ctype) or content.get("*/*") or {}).get("schema")
    if schema is None or not ctype.endswith("json"):
        return []
    try:
        value = json.loads(body)
    except ValueError:
        return [Violation("", "body is not JSON")]
    return spec.validate(schema, value, strict=True, direction="response")


def _error_body(spec: Spec, body: bytes, content_type: str) -> list[Violation]:
    """An error answer the spec gives no schema for: one of Allegro's two error formats."""
    if content_type.lower() not in JSON_TYPES:
        return [Violation("header Content-Type", f"{content_type!r} for an error answer")]
    try:
        value = json.loads(body)
    except ValueError:
        return [Violation("", "error body is not JSON")]
    holder = {"$ref": "#/components/schemas/ErrorsHolder"}
    auth = {"$ref": "#/components/schemas/AuthError"}
    if isinstance(value, dict) and "errors" in value:
        return spec.validate(holder, value, strict=True)
    return spec.validate(auth, value, strict=True)


def _param(spec: Spec, param: dict[str, Any], values: list[str], where: str) -> list[Violation]:
    schema = spec.resolve(param.get("schema") or {})
    if schema.get("type") == "array":
        items = spec.resolve(schema.get("items") or {})
        out: list[Violation] = []
        for value in values:
            out += _scalar(spec, items, value, where)
        return out
    if len(values) > 1:
        return [Violation(where, "repeated, but the spec takes one value")]
    return _scalar(spec, schema, values[0], where)


def _scalar(spec: Spec, schema: dict[str, Any], raw: str, where: str) -> list[Violation]:
    kind = schema.get("type")
    value: Any = raw
    try:
        if kind == "integer":
            value = int(raw)
        elif kind == "number":
            value = float(raw)
        elif kind == "boolean":
            if raw not in ("true", "false"):
                raise ValueError(raw)
            value = raw == "true"
    except ValueError:
        return [Violation(where, f"{raw!r} is not a {kind}")]
    return [Violation(where, v.message) for v in spec.validate(schema, value)]
