"""Outgoing email over SMTP (``SMTP_CONNECTION_URL`` + ``EMAIL_FROM_ADDRESS``, Langfuse's names).

``smtp://user:pass@host:port`` speaks plain SMTP and upgrades with STARTTLS when the server offers it;
``smtps://`` is SMTP over TLS from the first byte (port 465 by default). Without both settings nothing is sent
and the callers show the link to copy instead. ``send`` runs the blocking ``smtplib`` exchange in a worker
thread with a timeout and never raises: the caller gets a ``MailResult`` and shows a failure next to the link
(mail is sent after the invitation or token is committed, so a dead mail server loses nothing).
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class MailResult:
    sent: bool
    error: str | None = None


class MailConfigError(ValueError):
    pass


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    tls: bool  # TLS from the start (smtps://)
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("smtp", "smtps"):
            raise MailConfigError("SMTP_CONNECTION_URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise MailConfigError("SMTP_CONNECTION_URL has no host")
        tls = parts.scheme == "smtps"
        try:
            port = parts.port or (465 if tls else 587)
        except ValueError:
            raise MailConfigError("SMTP_CONNECTION_URL has an invalid port") from None
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class Mailer:
    def __init__(
        self, connection_url: str | None, from_address: str | None, timeout_s: float = SEND_TIMEOUT_S
    ) -> None:
        self.from_address = (from_address or "").strip() or None
        self.target = SmtpTarget.parse(connection_url) if connection_url and connection_url.strip() else None
        self.timeout_s = timeout_s

    @property
    def configured(self) -> bool:
        return self.target is not None and self.from_address is not None

    @staticmethod
    def _message(sender: str, to: str, subject: str, text: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = formataddr(("Lightfuse", sender)) if "<" not in sender else sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Message-ID"] = make_msgid(domain="lightfuse.local")
        msg.set_content(text)
        return msg

    def send_blocking(self, to: str, subject: str, text: str) -> MailResult:
        t, sender = self.target, self.from_address
        if t is None or sender is None:  # not configured
            return MailResult(False, "Email is not configured on this instance.")
        msg = self._message(sender, to, subject, text)
        client: smtplib.SMTP  # SMTP_SSL is one
        try:
            if t.tls:
                client = smtplib.SMTP_SSL(
                    t.host, t.port, timeout=self.timeout_s, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(t.host, t.port, timeout=self.timeout_s)
            with client:
                client.ehlo()
                if not t.tls and client.has_extn("starttls"):
                    client.starttls(context=ssl.create_default_context())
                    client.ehlo()
                if t.username:
                    client.login(t.username, t.password or "")
                client.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            # the address is logged, never the message (it carries a token)
            log.warning("email to %s failed: %s", to, type(exc).__name__)
            return MailResult(False, f"The email could not be sent ({type(exc).__name__}).")
        return MailResult(True)

    async def send(self, to: str, subject: str, text: str) -> MailResult:
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self.send_blocking, to, subject, text), self.timeout_s * 2
            )
        except TimeoutError:
            return MailResult(False, "The email could not be sent (timed out).")
