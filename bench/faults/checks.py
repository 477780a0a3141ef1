"""The checker: what was sent and acknowledged against what ended up on Allegro and at the ERP,
counted the way RabbitMQ's Jepsen checker counts a queue.

- **lost**: acknowledged on the way in (a purchase Allegro made, a ``stock.changed`` the broker
  confirmed) and never in the final state (no ``order.created``; an offer not at its product's
  newest quantity; a poison message not dead-lettered);
- **duplicated**: one input with two effects (an order announced under two message ids; an offer
  given the same change twice in a row by Allegro commands);
- **unexpected**: an effect no input asked for (an ``order.created`` of a form nobody bought; an
  offer set to a quantity its product was never sent; a good message dead-lettered).

Copies of one message under the same id (an outbox row re-published after a crash, a delivery
the ERP consumer saw twice) are at-least-once delivery, absorbed by the ERP's deduplication by
message id: counted apart, as ``redelivered``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise


@dataclass(frozen=True)
class Tally:
    """The three counts of one check, and the same-id copies seen."""

    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    redelivered: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.lost + other.lost,
            self.duplicated + other.duplicated,
            self.unexpected + other.unexpected,
            self.redelivered + other.redelivered,
        )

    @property
    def clean(self) -> bool:
        return self.lost == self.duplicated == self.unexpected == 0


def count_orders(bought: Iterable[str], announced: Iterable[tuple[str, str]]) -> Tally:
    """``bought``: checkout form ids; ``announced``: (message id, checkout form id) of every
    ``order.created`` delivery the ERP received."""
    expected = set(bought)
    deliveries = list(announced)
    ids_per_form: dict[str, set[str]] = defaultdict(set)
    for message_id, form in deliveries:
        ids_per_form[form].add(message_id)
    distinct = {(m, f) for m, f in deliveries}
    return Tally(
        lost=len(expected - set(ids_per_form)),
        duplicated=sum(len(ids) - 1 for ids in ids_per_form.values()),
        unexpected=len(set(ids_per_form) - expected),
        redelivered=len(deliveries) - len(distinct),
    )


def count_stock(
    sent: Mapping[str, Mapping[int, int]],
    bound: Mapping[str, str],
    final: Mapping[str, int],
    commands: Iterable[tuple[str, int]],
) -> Tally:
    """``sent``: product -> version -> quantity of every confirmed ``stock.changed``;
    ``bound``: offer -> product; ``final``: offer -> its stock on Allegro at the end;
    ``commands``: (offer, quantity) of every stock change Allegro received, in order."""
    newest = {p: versions[max(versions)] for p, versions in sent.items() if versions}
    lost = sum(1 for offer, product in bound.items() if final.get(offer) != newest.get(product))
    history: dict[str, list[int]] = defaultdict(list)
    for offer, quantity in commands:
        history[offer].append(quantity)
    duplicated = sum(1 for values in history.values() for a, b in pairwise(values) if a == b)
    unexpected = sum(
        1
        for offer, values in history.items()
        for value in values
        if offer not in bound or value not in set(sent.get(bound[offer], {}).values())
    )
    return Tally(lost=lost, duplicated=duplicated, unexpected=unexpected)


def count_dead_letters(poison: Iterable[str], dead: Iterable[str]) -> Tally:
    """``poison``: ids of the bad messages sent; ``dead``: ids found in the dead-letter queue."""
    expected, seen = set(poison), Counter(dead)
    return Tally(
        lost=len(expected - set(seen)),
        duplicated=sum(n - 1 for m, n in seen.items() if m in expected and n > 1),
        unexpected=len(set(seen) - expected),
    )
