"""A movable clock: real time plus an offset that tests and the control API can advance."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock time that can be moved forward (never back).

    Every time-dependent rule of the emulator (code and token expiry, the 24-hour offer journal,
    the 60-day archive, rate-limit windows) reads this clock, so tests move it instead of sleeping.
    A frozen clock only moves through :meth:`advance`, which makes timing tests exact.
    """

    def __init__(self, start: datetime | None = None, *, frozen: bool = False) -> None:
        self._origin = (start or datetime.now(UTC)).astimezone(UTC)
        self._mono_origin = time.monotonic()
        self._offset = 0.0
        self._frozen = frozen

    def now(self) -> datetime:
        """The current emulated time (timezone-aware, UTC)."""
        elapsed = 0.0 if self._frozen else time.monotonic() - self._mono_origin
        return self._origin + timedelta(seconds=elapsed + self._offset)

    def timestamp(self) -> float:
        """The current emulated time as POSIX seconds."""
        return self.now().timestamp()

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds`` and return the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds
        return self.now()


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 in UTC with milliseconds and a ``Z``, the way Allegro writes dates."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 date (``Z`` or offset) into an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
