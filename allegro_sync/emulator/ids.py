"""Deterministic identifiers: the same seed gives the same ids in the same order."""

from __future__ import annotations

import base64
import random
import string
import uuid


class IdFactory:
    """Produces every id the emulator hands out from one seeded generator."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._next_offer = 7_600_000_000 + seed % 1000 * 1_000_000
        self._next_user = 40_000_000 + seed % 1000 * 10_000

    @property
    def rng(self) -> random.Random:
        """The seeded generator, for data that is not an id (names, buyers)."""
        return self._rng

    def uuid(self) -> str:
        """A version-4 UUID string."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def offer_id(self) -> str:
        """The next numeric offer id (a string, as Allegro sends it)."""
        self._next_offer += 1
        return str(self._next_offer)

    def user_id(self) -> str:
        """The next numeric user id (a string)."""
        self._next_user += 1
        return str(self._next_user)

    def token_bytes(self, n: int) -> str:
        """``n`` random bytes, base64url without padding."""
        raw = self._rng.getrandbits(8 * n).to_bytes(n, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def code(self, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        """A random string of ``n`` characters from ``alphabet``."""
        return "".join(self._rng.choice(alphabet) for _ in range(n))

    def hex(self, n: int) -> str:
        """``n`` lowercase hex digits."""
        return "".join(self._rng.choice("0123456789abcdef") for _ in range(n))


def offer_event_id(seq: int) -> str:
    """Offer journal ids look like base64 of a decimal number (``MTEzMjQzODU3NA``)."""
    return base64.b64encode(str(seq).encode()).decode().rstrip("=")


def parse_offer_event_id(text: str) -> int | None:
    """The sequence number inside an offer journal id, or None when it is not one of ours."""
    try:
        padded = text + "=" * (-len(text) % 4)
        return int(base64.b64decode(padded, validate=True).decode())
    except ValueError:
        return None
