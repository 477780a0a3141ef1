"""structlog, configured once: JSON lines off a terminal, readable lines on one.

Redaction is the last step before rendering, after exceptions and stacks are formatted into
text (``exception``, ``stack``), so a token inside an exception's message or a database error's
row values are scrubbed from the traceback as from any other value. The standard library's log
records (aiohttp, asyncio) go through the same scrubbing in their formatter.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = re.compile(
    r"(token|secret|password|authorization|code_verifier|refresh|access|api_key|cookie)", re.I
)
_BEARER = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.I)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
# ``refresh_token=...`` (form bodies, query strings, reprs; an OAuth ``code=`` too) and
# ``"refresh_token": "..."`` (JSON, also escaped inside another JSON string, or a dict's repr;
# not ``"code"``, which Allegro's error bodies use for their error codes).
_SECRET_NAMES = "|".join(
    (
        "refresh_token",
        "access_token",
        "id_token",
        "client_secret",
        "code_verifier",
        "password",
        "secret_key",
        "admin_token",
        "api_key",
        "token",
    )
)
_VALUE = r"""([^\s"'\\&,;})\]]+)"""
_KEY_VALUE = re.compile(
    rf"""(\b(?:{_SECRET_NAMES}|code)\b)(\s*=\s*\\?["']?){_VALUE}"""
    rf"""|(\b(?:{_SECRET_NAMES})\b)(\\?["']\s*:\s*\\?["']?){_VALUE}""",
    re.I,
)
# PostgreSQL's DETAIL (``Key (email)=(...)``, ``Failing row contains (...)``) holds row values;
# asyncpg's own data errors quote the argument that did not fit.
_PG_DETAIL = re.compile(r"^(DETAIL:)[^\n]*", re.M)
_PG_ARGUMENT = re.compile(r"(invalid input for query argument \$\d+:)[^\n]*")
REDACTED = "[redacted]"


def _redact_pair(match: re.Match[str]) -> str:
    key, separator = (match.group(1), match.group(2)) if match.group(1) else match.group(4, 5)
    return key + separator + REDACTED


def redact_text(text: str) -> str:
    """``text`` with bearer credentials, JWTs, secret ``key=value`` pairs and database row
    values replaced by ``[redacted]``."""
    text = _BEARER.sub(r"\1 " + REDACTED, text)
    text = _JWT.sub(REDACTED, text)
    text = _KEY_VALUE.sub(_redact_pair, text)
    text = _PG_DETAIL.sub(r"\1 " + REDACTED, text)
    return _PG_ARGUMENT.sub(r"\1 " + REDACTED, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEYS.search(k) else _redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Drop values of secret-looking keys and scrub bearer headers, JWTs, secret ``key=value``
    pairs and database row values from every string, formatted exceptions included."""
    for key, value in list(event_dict.items()):
        if key not in ("event", "exc_info") and _SECRET_KEYS.search(key):
            event_dict[key] = REDACTED
        elif key != "exc_info":
            event_dict[key] = _redact_value(value)
    return event_dict


class RedactingFormatter(logging.Formatter):
    """The standard library's records, tracebacks included, scrubbed as structlog's are."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def configure_logging(level: str = "INFO", *, json_output: bool | None = None) -> None:
    """Configure structlog and the standard library logging once, at process start."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # one line per event, even into a file
    if json_output is None:
        json_output = not sys.stdout.isatty()
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # exceptions and stacks become text first, so that redaction sees them
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
