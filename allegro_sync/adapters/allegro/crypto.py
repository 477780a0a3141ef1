"""Tokens encrypted at rest with AES-256-GCM under a key derived from SECRET_KEY.

The row's identity (e.g. ``account:7:refresh``) is the associated data, so a ciphertext copied to
another row or column does not decrypt.

Key rotation (``allegro-sync secrets rotate``): the cipher is built with the current key and any
previous ones; it encrypts with the current key and decrypts with whichever key fits, so the
daemon keeps working while the rows are re-encrypted.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"


def _aead(secret_key: str) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"allegro-sync", info=b"token-encryption"
    ).derive(secret_key.encode())
    return AESGCM(key)


class TokenCipher:
    """Encrypts short secrets under ``secret_key``; decrypts under it or ``previous_keys``."""

    def __init__(self, secret_key: str, *previous_keys: str) -> None:
        self._aead = _aead(secret_key)
        self._previous = [_aead(key) for key in previous_keys]

    def encrypt(self, plaintext: str, context: str) -> bytes:
        """Version byte + nonce + ciphertext."""
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def decrypt(self, blob: bytes, context: str) -> str:
        """The plaintext; raises ``cryptography.exceptions.InvalidTag`` on a wrong key or row."""
        return self.open(blob, context)[0]

    def open(self, blob: bytes, context: str) -> tuple[str, bool]:
        """The plaintext and whether it was encrypted under the current key; raises
        ``InvalidTag`` when no key fits."""
        if blob[:1] != _VERSION:
            raise ValueError("unknown token encryption version")
        nonce, ciphertext = blob[1:13], blob[13:]
        try:
            return self._aead.decrypt(nonce, ciphertext, context.encode()).decode(), True
        except InvalidTag:
            for aead in self._previous:
                try:
                    return aead.decrypt(nonce, ciphertext, context.encode()).decode(), False
                except InvalidTag:
                    continue
            raise
