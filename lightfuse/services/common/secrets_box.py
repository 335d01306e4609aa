"""Secrets at rest (integration credentials): AES-256-GCM under ``ENCRYPTION_KEY`` (64 hex characters).

``encrypt(key_hex, plaintext)`` -> ``v1.<base64url(nonce || ciphertext+tag)>`` with a fresh 96-bit nonce per
call; ``decrypt(key_hex, token)`` reverses it and raises ``ValueError`` on a wrong key, a malformed or a
tampered token (GCM's tag authenticates it). Plaintexts and keys are never logged.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"
_NONCE_BYTES = 12


def _key(key_hex: str) -> AESGCM:
    try:
        key = bytes.fromhex(key_hex)
    except (TypeError, ValueError):
        raise ValueError("the encryption key must be 64 hexadecimal characters") from None
    if len(key) != 32:
        raise ValueError("the encryption key must be 64 hexadecimal characters (256 bits)")
    return AESGCM(key)


def encrypt(key_hex: str, plaintext: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _key(key_hex).encrypt(nonce, plaintext.encode("utf-8"), None)
    return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def decrypt(key_hex: str, token: str) -> str:
    aes = _key(key_hex)
    version, _, body = token.partition(".")
    if version != _VERSION or not body:
        raise ValueError("not an encrypted secret of this version")
    try:
        raw = base64.urlsafe_b64decode(body.encode())
    except (binascii.Error, ValueError):
        raise ValueError("malformed encrypted secret") from None
    if len(raw) <= _NONCE_BYTES:
        raise ValueError("malformed encrypted secret")
    try:
        return aes.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None).decode("utf-8")
    except InvalidTag:
        raise ValueError("the secret does not decrypt with this key (wrong key or altered)") from None
