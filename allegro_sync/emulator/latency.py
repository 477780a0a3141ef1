"""Latency as a profile: how long the emulated Allegro takes to answer, per endpoint group.

Unlike an injected fault (``faults.py``), a profile describes an ordinary day: every request of
a group waits a delay drawn from a log-normal distribution fitted to the group's median and
99th percentile (``sigma = ln(p99 / median) / 2.326``), from a generator seeded per group, so
that a run repeats with the seed however the groups interleave. Half of the delay passes before
the endpoint runs (the request on its way) and half after (the answer on its way), with
``asyncio.sleep``: the emulator's loop serves other requests meanwhile.

``none`` (the default, so tests stay fast) adds nothing. ``realistic`` is an assumption, not a
measurement: Allegro publishes no response times (allegro-api.md says only that a user above
the per-user limit gets *slower* answers), so it takes what a REST API across the internet
commonly shows: reads (journals, listings, single reads, command reports) 80 ms median and
400 ms p99, writes (commands and other changes) 150 ms and 800 ms, OAuth 100 ms and 500 ms.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any

GROUPS = ("journals", "listings", "reads", "commands", "reports", "writes", "oauth")
Z_99 = 2.3263  # the standard normal's 99th percentile
MAX_DELAY_MS = 60_000.0
RECENT = 100  # drawn delays kept per group, for GET /__control__/latency

JOURNALS = frozenset({"/order/events", "/order/event-stats", "/sale/offer-events"})
LISTINGS = frozenset(
    {
        "/sale/offers",
        "/order/checkout-forms",
        "/sale/shipping-rates",
        "/sale/categories",
        "/order/checkout-forms/{id}/invoices",
    }
)


@dataclass(frozen=True)
class Distribution:
    """A group's delay: log-normal with this median and 99th percentile, in milliseconds
    (``p99 == median``: always exactly that)."""

    median_ms: float
    p99_ms: float

    def __post_init__(self) -> None:
        if not 0 <= self.median_ms <= self.p99_ms <= MAX_DELAY_MS:
            raise ValueError(f"need 0 <= median_ms <= p99_ms <= {MAX_DELAY_MS:g}")

    def draw(self, rng: random.Random) -> float:
        """One delay in milliseconds."""
        if self.median_ms <= 0:
            return 0.0
        sigma = math.log(self.p99_ms / self.median_ms) / Z_99
        value = (
            self.median_ms if sigma == 0 else rng.lognormvariate(math.log(self.median_ms), sigma)
        )
        return min(value, MAX_DELAY_MS)


READS = Distribution(80, 400)
WRITES = Distribution(150, 800)
PROFILES: dict[str, dict[str, Distribution]] = {
    "none": {},
    "realistic": {
        "journals": READS,
        "listings": READS,
        "reads": READS,
        "reports": READS,
        "commands": WRITES,
        "writes": WRITES,
        "oauth": Distribution(100, 500),
    },
}


def group_of(method: str, route: str) -> str:
    """The endpoint group of ``METHOD /route`` (a route template, as ``GET /requests`` shows)."""
    if route.startswith("/auth/oauth"):
        return "oauth"
    if method == "GET" and route in JOURNALS:
        return "journals"
    if "{command_id}" in route or "-commands/" in route:
        return "commands" if method == "PUT" else "reports"
    if method == "GET" and "/operations/" in route:
        return "reports"  # the state of an asynchronous product-offer edit
    if method == "GET":
        listing = route in LISTINGS or (
            route.startswith("/after-sales") and not route.endswith("{id}")
        )
        return "listings" if listing else "reads"
    return "writes"


class LatencyProfile:
    """The active profile and one seeded generator per group."""

    def __init__(self, seed: int, name: str = "none") -> None:
        self._seed = seed
        self.name = "none"
        self.groups: dict[str, Distribution] = {}
        self._rngs: dict[str, random.Random] = {}
        self.recent: dict[str, deque[float]] = {}
        self.set(name)

    def set(
        self, name: str, groups: dict[str, Distribution] | None = None, seed: int | None = None
    ) -> None:
        """Switch to the named profile, or (``groups`` given) a custom one; the generators
        start again from the seed."""
        if groups is None:
            if name not in PROFILES:
                raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
            groups = PROFILES[name]
        unknown = set(groups) - set(GROUPS)
        if unknown:
            raise ValueError(f"unknown groups: {', '.join(sorted(unknown))}")
        if seed is not None:
            self._seed = seed
        self.name = name
        self.groups = dict(groups)
        self._rngs = {
            g: random.Random(self._seed * 1_000_003 + zlib.crc32(g.encode())) for g in GROUPS
        }
        self.recent = {g: deque(maxlen=RECENT) for g in GROUPS}

    def delay(self, method: str, route: str) -> float:
        """Seconds this request waits (0 when its group has no distribution)."""
        group = group_of(method, route)
        distribution = self.groups.get(group)
        if distribution is None:
            return 0.0
        value = distribution.draw(self._rngs[group])
        self.recent[group].append(round(value, 3))
        return value / 1000

    def describe(self) -> dict[str, Any]:
        """The profile as the control API shows it."""
        return {
            "profile": self.name,
            "seed": self._seed,
            "groups": {
                g: {"median_ms": d.median_ms, "p99_ms": d.p99_ms} for g, d in self.groups.items()
            },
            "recent_ms": {g: list(v) for g, v in self.recent.items() if v},
        }


def parse_groups(body: Any) -> dict[str, Distribution]:
    """``{group: {median_ms, p99_ms?}}`` from the control API; ValueError names the bad part."""
    if not isinstance(body, dict):
        raise ValueError('groups must be an object {"reads": {"median_ms": 80, "p99_ms": 400}}')
    result = {}
    for group, spec in body.items():
        if group not in GROUPS:
            raise ValueError(f"unknown group {group!r}; groups: {', '.join(GROUPS)}")
        if not isinstance(spec, dict) or set(spec) - {"median_ms", "p99_ms"}:
            raise ValueError(f"groups[{group!r}] must be {{median_ms, p99_ms?}}")
        median = spec.get("median_ms")
        p99 = spec.get("p99_ms", median)
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in (median, p99)):
            raise ValueError(f"groups[{group!r}]: median_ms and p99_ms must be numbers")
        try:
            result[group] = Distribution(float(median), float(p99))  # type: ignore[arg-type]
        except ValueError as err:
            raise ValueError(f"groups[{group!r}]: {err}") from None
    return result
