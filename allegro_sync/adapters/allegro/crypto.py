"""Tokens encrypted at rest with AES-256-GCM under a key derived from SECRET_KEY.

The row's identity (e.g. ``account:7:refresh``) is the associated data, so a ciphertext copied to
another row or column does not decrypt.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"


class TokenCipher:
    """Encrypts and decrypts short secrets."""

    def __init__(self, secret_key: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"allegro-sync", info=b"token-encryption"
        ).derive(secret_key.encode())
        self._aead = AESGCM(key)

    def encrypt(self, plaintext: str, context: str) -> bytes:
        """Version byte + nonce + ciphertext."""
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def decrypt(self, blob: bytes, context: str) -> str:
        """The plaintext; raises ``cryptography.exceptions.InvalidTag`` on a wrong key or row."""
        if blob[:1] != _VERSION:
            raise ValueError("unknown token encryption version")
        nonce, ciphertext = blob[1:13], blob[13:]
        return self._aead.decrypt(nonce, ciphertext, context.encode()).decode()
