"""A real SMTP server for tests (aiosmtpd on a free loopback port) that keeps every message it receives."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

from tests.conftest import free_port

LINK_RE = re.compile(r"https?://\S+")


@dataclass
class Sink:
    port: int
    messages: list = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's handler name
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.cond:
            self.messages.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "msg": msg,
                    "subject": str(msg["Subject"]),
                    "body": msg.get_content(),
                }
            )
            self.cond.notify_all()
        return "250 OK"

    def wait_for(self, to: str, count: int = 1, timeout: float = 20.0) -> dict:
        """The ``count``-th message to ``to`` (bounded wait)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                mine = [m for m in self.messages if to in m["to"]]
                if len(mine) >= count:
                    return mine[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no email #{count} to {to}; got {[m['to'] for m in self.messages]}")
                self.cond.wait(left)

    def link(self, to: str, count: int = 1) -> str:
        body = self.wait_for(to, count)["body"]
        match = LINK_RE.search(body)
        assert match, body
        return match.group(0)


@contextmanager
def smtp_sink() -> Iterator[Sink]:
    sink = Sink(port=free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
