"""Runs of journal events: the inverse of the pollers' ``page_messages``.

A poller publishes a journal page's events in runs (``{"account_id", "events": [...]}``, each
event carrying the extra fields its journal adds, such as the checkout form). When a run fails,
the consumer replaces it by one message per event (``Route.split``): a single-event message
(``{"account_id", "event", **extras}``, the type hand-published events use too) whose id is the
event's own (``<journal>-event:<account>:<event id>``), so that a failing event holds up none
of the others and a part handled once is a no-op the next time.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def run_splitter(
    journal: str, routing_key: str, extras: Collection[str] = ()
) -> Callable[[Any], list[tuple[str, str, Any]]]:
    """The ``Route.split`` of a journal's runs: ``journal`` names the message ids
    (``<journal>-event:<account>:<event id>``), ``routing_key`` is that of a single event and
    ``extras`` are the fields the poller added to each event (they travel beside it)."""

    def split(body: Any) -> list[tuple[str, str, Any]]:
        account_id = body["account_id"]
        parts = []
        for entry in body["events"]:
            event = {k: v for k, v in entry.items() if k not in extras}
            single = {"account_id": account_id, "event": event}
            single.update({k: entry[k] for k in extras if k in entry})
            parts.append((routing_key, f"{journal}-event:{account_id}:{event['id']}", single))
        return parts

    return split


def per_run(results: Sequence[T | Exception], runs: Sequence[int]) -> list[list[T] | Exception]:
    """The results of a batch's runs, prepared event by event as one list, back per run (``runs``
    gives each run's length): a run with a failed event takes that event's failure (and is then
    split by the consumer)."""
    grouped: list[list[T] | Exception] = []
    start = 0
    for length in runs:
        run = results[start : start + length]
        start += length
        failed = [r for r in run if isinstance(r, Exception)]
        grouped.append(failed[0] if failed else [r for r in run if not isinstance(r, Exception)])
    return grouped
