"""AES-256-GCM secrets at rest: round trip, fresh nonces, and refusal of a wrong key or an altered token."""

from __future__ import annotations

import secrets

import pytest

from lightfuse.services.common import secrets_box


def test_round_trip_with_fresh_nonces():
    key = secrets.token_hex(32)
    a, b = secrets_box.encrypt(key, "s3cret"), secrets_box.encrypt(key, "s3cret")
    assert a != b and "s3cret" not in a
    assert secrets_box.decrypt(key, a) == secrets_box.decrypt(key, b) == "s3cret"
    assert secrets_box.decrypt(key, secrets_box.encrypt(key, "")) == ""


def test_wrong_key_altered_or_malformed_tokens_are_refused():
    key = secrets.token_hex(32)
    token = secrets_box.encrypt(key, "s3cret")
    with pytest.raises(ValueError):
        secrets_box.decrypt(secrets.token_hex(32), token)
    body = token.split(".", 1)[1]
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    for bad in ("v1." + flipped, "v2." + body, "v1.", "v1.!!!", "nodot", "v1.AAAA"):
        with pytest.raises(ValueError):
            secrets_box.decrypt(key, bad)
    for bad_key in ("", "zz" * 32, "ab" * 16):
        with pytest.raises(ValueError):
            secrets_box.encrypt(bad_key, "x")
