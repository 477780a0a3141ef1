"""Signatures on the daemon's own journal messages (issue 14 finding 1).

Everything on ``allegro-sync.journal`` (and on the journal queue's retry and split copies) is
trusted as what Allegro said: an embedded checkout form becomes an order. So the daemon takes
journal messages only from itself: every publisher of the daemon signs what it sends there with
HMAC-SHA256, keyed by a key derived from ``SECRET_KEY`` (HKDF, its own ``info`` label, so it is
not the token cipher's key), and the journal consumer verifies before anything else. Replicas
share ``SECRET_KEY`` and so verify each other's messages; while a key is being rotated
(``SECRET_KEY_PREVIOUS``) messages signed under the previous key still verify.

The signature covers the message id, the routing key the consumer dispatches by and the body, so
a signed body cannot be replayed under another type or id.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SIGNATURE_HEADER = "x-allegro-sync-signature"
# The routing key a copy of a message was first published under (retries and split parts go
# through the default exchange straight to a queue); the consumer dispatches by it.
ORIGINAL_ROUTING_KEY = "x-original-routing-key"
_SCHEME = "v1="
UNSIGNED = "journal message not signed by this installation"


def _derive(secret_key: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"allegro-sync", info=b"journal-signing"
    ).derive(secret_key.encode())


class MessageSigner:
    """Signs with the first key and verifies with any of them."""

    def __init__(self, secret_keys: Sequence[str]) -> None:
        if not secret_keys:
            raise ValueError("a signer needs at least one key")
        self._keys = [_derive(key) for key in secret_keys]

    def sign(self, message_id: str, routing_key: str, body: bytes) -> str:
        """The signature header's value for a message."""
        return _SCHEME + _mac(self._keys[0], message_id, routing_key, body)

    def verify(self, message_id: str, routing_key: str, body: bytes, signature: object) -> bool:
        """Whether ``signature`` (the header's value, any type) was made by one of the keys."""
        if isinstance(signature, bytes):
            signature = signature.decode("ascii", "replace")
        if not isinstance(signature, str) or not signature.startswith(_SCHEME):
            return False
        given = signature[len(_SCHEME) :]
        return any(
            hmac.compare_digest(given, _mac(key, message_id, routing_key, body))
            for key in self._keys
        )


def _mac(key: bytes, message_id: str, routing_key: str, body: bytes) -> str:
    framed = b"%d:%s\n%d:%s\n" % (
        len(message_id.encode()),
        message_id.encode(),
        len(routing_key.encode()),
        routing_key.encode(),
    )
    return hmac.new(key, framed + body, hashlib.sha256).hexdigest()
