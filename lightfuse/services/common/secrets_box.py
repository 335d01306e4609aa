"""Secrets stored encrypted: AES-256-GCM under ``ENCRYPTION_KEY`` (64 hex characters, as in Langfuse).

``encrypt(key_hex, plaintext) -> token`` and ``decrypt(key_hex, token) -> plaintext``. The token is
``v1:<base64url(12-byte nonce + ciphertext + 16-byte tag)>``: a fresh random nonce per call (never reused
under one key), and the tag makes a tampered or wrongly keyed token fail with ``ValueError`` instead of
decrypting to garbage. The version prefix leaves room for a later key rotation scheme.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_PREFIX = "v1:"


def _aes(key_hex: str) -> AESGCM:
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        raise ValueError("the encryption key must be 64 hexadecimal characters") from None
    if len(key) != 32:
        raise ValueError("the encryption key must be 64 hexadecimal characters")
    return AESGCM(key)


def encrypt(key_hex: str, plaintext: str) -> str:
    nonce = os.urandom(12)
    sealed = _aes(key_hex).encrypt(nonce, plaintext.encode("utf-8"), None)
    return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def decrypt(key_hex: str, token: str) -> str:
    if not token.startswith(_PREFIX):
        raise ValueError("not an encrypted secret")
    try:
        raw = base64.urlsafe_b64decode(token[len(_PREFIX) :].encode("ascii"))
        return _aes(key_hex).decrypt(raw[:12], raw[12:], None).decode("utf-8")
    except (InvalidTag, ValueError, UnicodeError):
        raise ValueError(
            "the secret could not be decrypted (wrong ENCRYPTION_KEY or damaged value)"
        ) from None
