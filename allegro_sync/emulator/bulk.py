"""Garbage-collector handling for bulk creation (100 000 offers in one control call).

Creating that many long-lived objects triggers repeated full collections that walk all of
them, and every later collection walks them again. The emulator's state lives as long as the
app, so bulk-created objects are moved out of the collector's sight (``gc.freeze``) and
handed back when the app closes (``gc.unfreeze``).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived_allocation() -> Iterator[None]:
    """Allocate without collections, then freeze what exists (the new state included)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.freeze()


def release() -> None:
    """Let the collector see frozen objects again (called when an emulator closes)."""
    gc.unfreeze()
