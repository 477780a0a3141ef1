"""A one-line progress bar for long CLI commands, on a terminal only."""

from __future__ import annotations

import time
from typing import TextIO

PROGRESS_DELAY = 0.5  # seconds before a bar is worth drawing
PROGRESS_INTERVAL = 0.1  # seconds between redraws
BAR_WIDTH = 30


class Progress:
    """A one-line progress bar on a terminal, drawn only once the work outlasts ``delay``."""

    def __init__(
        self, total: int, stream: TextIO, *, label: str = "", delay: float = PROGRESS_DELAY
    ) -> None:
        self.total = total
        self.stream = stream
        self.label = label
        self.enabled = stream.isatty()
        self.started = time.monotonic()
        self.delay = delay
        self.drawn_at: float | None = None

    def update(self, done: int, total: int | None = None) -> None:
        """Redraw for ``done`` items (and a total learnt late), at most every interval."""
        if total is not None:
            self.total = total
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.started < self.delay:
            return
        if self.drawn_at is not None and now - self.drawn_at < PROGRESS_INTERVAL:
            return
        self.drawn_at = now
        self._draw(done)

    def finish(self, done: int) -> None:
        """Draw the final state and end the line, if a bar was ever shown."""
        if self.drawn_at is not None:
            self._draw(done)
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, done: int) -> None:
        share = min(done / self.total, 1.0) if self.total else 1.0
        filled = int(share * BAR_WIDTH)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        prefix = f"{self.label} " if self.label else ""
        self.stream.write(f"\r{prefix}[{bar}] {share:4.0%} {done}/{self.total}")
        self.stream.flush()
