"""A real HTTP webhook receiver for tests: http.server in a thread, scripted answers, every request recorded.

``statuses`` is the answer script (one status per request, the last one repeats). ``secret`` (settable later,
once the UI has shown it) makes each recorded request carry ``verified``: its ``x-langfuse-signature`` was
checked here, independently of the server's code (HMAC-SHA256 over ``"<t>.<raw body>"``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def check_signature(secret: str, body: bytes, header: str) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts or abs(time.time() - int(parts["t"])) > 300:
        return False
    mac = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts["v1"])


@dataclass
class Receiver:
    url: str
    statuses: list[int]
    secret: str | None = None
    delay_s: float = 0.0  # wait this long before answering (timeouts)
    requests: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            n = len(self.requests)
            status = self.statuses[min(n, len(self.statuses) - 1)]
            self.requests.append(
                {
                    "headers": headers,
                    "body": body,
                    "json": json.loads(body),
                    "verified": self.secret is not None
                    and check_signature(self.secret, body, headers.get("x-langfuse-signature", "")),
                    "status": status,
                }
            )
            return status

    def wait_for(self, count: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} webhook requests, got {len(self.requests)}")


@contextmanager
def webhook_receiver(statuses: list[int] | None = None) -> Iterator[Receiver]:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            status = holder["r"].record({k.lower(): v for k, v in self.headers.items()}, body)
            time.sleep(holder["r"].delay_s)
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = Receiver(f"http://127.0.0.1:{httpd.server_address[1]}/hook", statuses or [200])
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder["r"]
    finally:
        httpd.shutdown()
        httpd.server_close()
