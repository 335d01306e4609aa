"""AES-256-GCM secrets box: fresh nonce per value, Langfuse's stored layout, tampering and wrong keys detected."""

from __future__ import annotations

import pytest

from lightfuse.services.common.secrets_box import SecretsBox, SecretsBoxError, mask_secret

KEY = "0123456789abcdef" * 4


def test_round_trip_with_a_fresh_nonce_each_time():
    box = SecretsBox(KEY)
    a, b = box.seal("sk-secret-value"), box.seal("sk-secret-value")
    assert a != b and "sk-secret" not in a
    nonce, body, tag = a.split(":")
    assert len(bytes.fromhex(nonce)) == 12 and len(bytes.fromhex(tag)) == 16
    assert len(bytes.fromhex(body)) == len("sk-secret-value")
    assert box.open(a) == box.open(b) == "sk-secret-value"


def test_tampering_and_a_wrong_key_are_refused():
    sealed = SecretsBox(KEY).seal("value")
    nonce, body, tag = sealed.split(":")
    flipped = f"{nonce}:{(int(body, 16) ^ 1):0{len(body)}x}:{tag}"
    with pytest.raises(SecretsBoxError):
        SecretsBox(KEY).open(flipped)
    with pytest.raises(SecretsBoxError):
        SecretsBox("f" * 64).open(sealed)
    for bad in ("", "a:b", "zz:zz:zz", "00:00:00"):
        with pytest.raises(SecretsBoxError):
            SecretsBox(KEY).open(bad)


def test_a_missing_or_malformed_key_is_an_error():
    for key in (None, "", "abc", "g" * 64):
        with pytest.raises(SecretsBoxError, match="ENCRYPTION_KEY"):
            SecretsBox(key)


def test_mask_shows_at_most_the_last_four_characters():
    assert mask_secret("sk-1234567890abcdef") == "...cdef"
    assert mask_secret("short") == "..."
