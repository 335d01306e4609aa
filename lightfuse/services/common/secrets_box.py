"""AES-256-GCM for secrets stored in the database (LLM provider keys, extra headers, later webhook secrets).

The key is ``ENCRYPTION_KEY`` (64 hex characters; embedded mode generates one in the data directory). Every
value gets a fresh random 96-bit nonce, so equal secrets never produce equal ciphertexts. The stored text is
Langfuse's layout, ``hex(nonce):hex(ciphertext):hex(tag)``: three hex fields, so a future format can be told
apart by its field count (or a prefix) and a database written by Langfuse stays readable with the same key.
The GCM tag authenticates the value: a tampered or foreign-key ciphertext raises ``SecretsBoxError`` rather
than decrypting to garbage.
"""

from __future__ import annotations

import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_NONCE_BYTES = 12
_TAG_BYTES = 16


class SecretsBoxError(Exception):
    """No usable key, or a stored value that does not decrypt (never carries the value itself)."""


class SecretsBox:
    def __init__(self, hex_key: str | None) -> None:
        if not hex_key or not _HEX64.match(hex_key):
            raise SecretsBoxError(
                "ENCRYPTION_KEY must be set to 64 hexadecimal characters to store secrets "
                "(generate one with `openssl rand -hex 32`)"
            )
        self._aead = AESGCM(bytes.fromhex(hex_key))

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), None)
        # cryptography appends the tag to the ciphertext; the stored layout keeps it as its own field
        return f"{nonce.hex()}:{sealed[:-_TAG_BYTES].hex()}:{sealed[-_TAG_BYTES:].hex()}"

    def open(self, stored: str) -> str:
        parts = stored.split(":")
        if len(parts) != 3:
            raise SecretsBoxError("stored secret is not in the nonce:ciphertext:tag layout")
        try:
            nonce, body, tag = (bytes.fromhex(p) for p in parts)
        except ValueError:
            raise SecretsBoxError("stored secret is not hex") from None
        if len(nonce) != _NONCE_BYTES or len(tag) != _TAG_BYTES:
            raise SecretsBoxError("stored secret has a wrong nonce or tag length")
        try:
            return self._aead.decrypt(nonce, body + tag, None).decode("utf-8")
        except InvalidTag:
            raise SecretsBoxError("stored secret does not decrypt with this ENCRYPTION_KEY") from None


def mask_secret(secret: str) -> str:
    """What the UI and API show of a key: its last four characters at most, never more than a quarter."""
    tail = secret[-4:] if len(secret) >= 16 else ""
    return f"...{tail}"
