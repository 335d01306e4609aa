"""SMTP_CONNECTION_URL parsing and the settings check; sending is tested against a real server in tests/web."""

from __future__ import annotations

import pytest

from lightfuse.config import ConfigError, load_settings
from lightfuse.services.accounts.mailer import MailConfigError, Mailer, SmtpTarget


def test_smtp_urls():
    t = SmtpTarget.parse("smtp://user%40x:p%3Ass@mail.example.com:2525")
    assert (t.host, t.port, t.tls, t.username, t.password) == (
        "mail.example.com",
        2525,
        False,
        "user@x",
        "p:ss",
    )
    t = SmtpTarget.parse("smtps://mail.example.com")
    assert (t.port, t.tls, t.username) == (465, True, None)
    assert SmtpTarget.parse("smtp://mail.example.com").port == 587
    for bad in ("ses://eu-west-1", "http://x", "smtp://", "smtp://host:notaport"):
        with pytest.raises(MailConfigError):
            SmtpTarget.parse(bad)


def test_mailer_needs_both_settings():
    assert not Mailer(None, "a@example.com").configured
    assert not Mailer("smtp://localhost:25", None).configured
    assert Mailer("smtp://localhost:25", "a@example.com").configured
    result = Mailer(None, None).send_blocking("x@example.com", "s", "t")
    assert not result.sent and "not configured" in result.error


def test_settings_refuse_an_unusable_smtp_url(tmp_path, monkeypatch):
    monkeypatch.setenv("SMTP_CONNECTION_URL", "ses://eu-west-1")
    with pytest.raises(ConfigError, match="SMTP_CONNECTION_URL"):
        load_settings(data_dir=tmp_path / "d")
    monkeypatch.setenv("SMTP_CONNECTION_URL", "smtp://user:pw-xyzzy@mail.example.com:25")
    settings = load_settings(data_dir=tmp_path / "d")
    # the password never shows in a settings dump
    assert "pw-xyzzy" not in repr(settings)
