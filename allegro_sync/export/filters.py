"""Customer filters from text (query parameters, command-line options), judged once for both.

Dates: ``created_from`` / ``created_to`` take an ISO 8601 date or date-time, both inclusive; a
bare date is that whole day; a time without an offset is UTC. ``ids`` is a comma-separated list.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time

from allegro_sync.adapters.postgres.customer_queries import CustomerFilter
from allegro_sync.contract import CUSTOMER_TYPES, CustomerType

FILTER_FIELDS = ("account_id", "type", "has_nip", "q", "created_from", "created_to", "ids")
MAX_IDS = 10_000
MAX_Q = 200
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
# Postgres keeps microseconds: the last one of a day is the inclusive end of that day.
_END_OF_DAY = time(23, 59, 59, 999_999)


class FilterError(ValueError):
    """A filter value that cannot be used; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def parse_positive_int(field: str, text: str) -> int:
    """A whole number of at least 1 that fits a bigint."""
    try:
        # ASCII digits only: int() would also read "١" (an Arabic-Indic one) as 1.
        if not text.strip().isascii():
            raise ValueError(text)
        value = int(text.strip())
    except ValueError:
        raise FilterError(field, f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 2**63 - 1:
        raise FilterError(field, f"expected a number from 1, got {text!r}")
    return value


def parse_ids(text: str) -> tuple[int, ...]:
    """``"1,2,3"`` as ids, duplicates dropped, order kept."""
    parts = [p for p in (part.strip() for part in text.split(",")) if p]
    if not parts:
        raise FilterError("ids", "give at least one id, e.g. ids=1,2,3")
    if len(parts) > MAX_IDS:
        raise FilterError("ids", f"at most {MAX_IDS} ids at once; export a filter instead")
    return tuple(dict.fromkeys(parse_positive_int("ids", p) for p in parts))


def parse_bool(field: str, text: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``)."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise FilterError(field, f"expected true or false, got {text!r}")


def parse_timestamp(field: str, text: str, *, end_of_day: bool) -> datetime:
    """An ISO date or date-time as an aware datetime; a bare date starts or ends its day."""
    value = text.strip()
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, _END_OF_DAY if end_of_day else time(), tzinfo=UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FilterError(
            field, f"expected an ISO date or date-time, e.g. 2026-03-01, got {text!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_customer_type(text: str) -> CustomerType:
    """One of the customer types."""
    value = text.strip()
    if value not in CUSTOMER_TYPES:
        raise FilterError("type", f"expected one of {', '.join(CUSTOMER_TYPES)}, got {text!r}")
    return value


def parse_customer_filter(values: Mapping[str, str]) -> CustomerFilter:
    """The filter named by ``values`` (keys from ``FILTER_FIELDS``; others are not read).

    Raises ``FilterError`` naming the first field that is wrong.
    """

    def given(name: str) -> str | None:
        value = values.get(name)
        return value if value is not None and value.strip() != "" else None

    account_id = given("account_id")
    kind = given("type")
    has_nip = given("has_nip")
    q = given("q")
    created_from = given("created_from")
    created_to = given("created_to")
    ids = values.get("ids")
    if q is not None and len(q.strip()) > MAX_Q:
        raise FilterError("q", f"at most {MAX_Q} characters")
    result = CustomerFilter(
        account_id=parse_positive_int("account_id", account_id) if account_id else None,
        type=parse_customer_type(kind) if kind else None,
        has_nip=parse_bool("has_nip", has_nip) if has_nip else None,
        q=q.strip() if q else None,
        created_from=(
            parse_timestamp("created_from", created_from, end_of_day=False)
            if created_from
            else None
        ),
        created_to=(
            parse_timestamp("created_to", created_to, end_of_day=True) if created_to else None
        ),
        # ids= present but empty is a mistake (an empty selection), not "no filter".
        ids=parse_ids(ids) if ids is not None else None,
    )
    if (
        result.created_from is not None
        and result.created_to is not None
        and result.created_from > result.created_to
    ):
        raise FilterError("created_to", "must not be before created_from")
    return result
