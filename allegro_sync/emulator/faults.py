"""Injected faults: a 429 window, a 5xx rate, added latency (on every path or per endpoint) and
dropped connections."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Faults:
    """The active fault settings. ``paths`` are path prefixes; empty means every API path.

    ``endpoint_latency_ms`` maps ``METHOD /route`` (the route templates of ``GET /requests``)
    to a delay added *after* the endpoint computed its answer: the answer shows the state of
    the request's start and arrives that much later, as a slow Allegro's may. It applies
    whatever ``paths`` say.
    """

    status_429_until: float = 0.0
    error_5xx_rate: float = 0.0
    latency_ms: int = 0
    drop_connections_rate: float = 0.0
    paths: list[str] = field(default_factory=list)
    endpoint_latency_ms: dict[str, int] = field(default_factory=dict)
    # the next N covered requests get 200 with a body that is not Allegro's JSON (AA#12097):
    # "html" (a CAPTCHA page), "empty" or "truncated" (JSON cut short)
    not_json_count: int = 0
    not_json_kind: str = "html"

    def applies_to(self, path: str) -> bool:
        """Whether the faults cover this request path."""
        return not self.paths or any(path.startswith(p) for p in self.paths)


class FaultInjector:
    """Holds the faults and a seeded generator so fault patterns repeat with the seed."""

    def __init__(self, seed: int) -> None:
        self.faults = Faults()
        self._rng = random.Random(seed + 7919)

    def clear(self) -> None:
        """Remove every fault."""
        self.faults = Faults()

    def roll(self, rate: float) -> bool:
        """True with probability ``rate``."""
        return rate > 0 and self._rng.random() < rate
