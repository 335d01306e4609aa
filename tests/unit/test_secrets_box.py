"""services/common/secrets_box: AES-256-GCM under ENCRYPTION_KEY - round trip, fresh nonces, tamper/wrong key."""

from __future__ import annotations

import pytest

from lightfuse.services.common import secrets_box

KEY = "00112233445566778899aabbccddeeff" * 2


def test_round_trip_with_a_fresh_nonce_each_time():
    a, b = secrets_box.encrypt(KEY, "lf-whsec_abc"), secrets_box.encrypt(KEY, "lf-whsec_abc")
    assert a != b and "lf-whsec_abc" not in a
    assert secrets_box.decrypt(KEY, a) == secrets_box.decrypt(KEY, b) == "lf-whsec_abc"
    assert secrets_box.decrypt(KEY, secrets_box.encrypt(KEY, "")) == ""


def test_wrong_key_tampering_and_bad_keys_fail_cleanly():
    token = secrets_box.encrypt(KEY, "secret")
    with pytest.raises(ValueError):
        secrets_box.decrypt("ff" * 32, token)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (flipped, token[:10], "v1:!!!", "plain"):
        with pytest.raises(ValueError):
            secrets_box.decrypt(KEY, bad)
    for key in ("", "abc", "zz" * 32, "00" * 16):
        with pytest.raises(ValueError):
            secrets_box.encrypt(key, "x")
