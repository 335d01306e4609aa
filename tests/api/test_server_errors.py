"""What a real server process does on a client that vanishes mid-body and on an unexpected error: one log line
at most, no traceback reported as unhandled, a Langfuse-shaped 500, and the keep-alive connection stays open."""

from __future__ import annotations

import socket
import time

import sqlalchemy as sa

UNHANDLED = "Exception in ASGI application"  # what uvicorn logs when an exception escapes the app


def _connect(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _request(path: str, server, method: str = "GET") -> bytes:
    auth = server.basic_header["Authorization"]
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\n\r\n".encode()


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body (every route here answers with one)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed; got {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed mid-body")
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _wait_for_log(server, needle: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = server.log_path.read_text(errors="replace")
        if needle in text:
            break
        time.sleep(0.1)
    return text


def test_client_gone_mid_body_is_not_an_unhandled_error(server):
    for path in ("/api/public/ingestion", "/api/public/scores", "/api/public/otel/v1/traces"):
        sock = _connect(server)
        auth = server.basic_header["Authorization"]
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\n"
            'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"batch": ['.encode()
        )
        time.sleep(0.3)
        sock.close()
    # the server is still there and answers; its log holds no traceback for the vanished clients
    sock = _connect(server)
    sock.sendall(_request("/api/public/health", server))
    assert _read_response(sock)[0] == 200
    sock.close()
    time.sleep(0.5)
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log and UNHANDLED not in log, log[-3000:]


def _break_the_comments_table(server) -> None:
    """A real fault below the app: the table behind GET /api/public/comments disappears."""
    url = server.env.get("DATABASE_URL")
    if url:
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        url = f"sqlite:///{server.data_dir / 'lightfuse.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE comments")
    engine.dispose()


def test_a_500_is_logged_once_in_langfuse_shape_and_keeps_the_connection(server):
    _break_the_comments_table(server)
    sock = _connect(server)
    sock.sendall(_request("/api/public/comments", server))
    status, headers, body = _read_response(sock)
    assert status == 500
    assert body == b'{"message":"Internal Server Error","error":"An unknown error occurred"}'
    assert headers.get("connection", "").lower() != "close"
    # the same connection serves the next request (uvicorn closes it when an exception escapes the app)
    sock.sendall(_request("/api/public/projects", server))
    status, _headers, _body = _read_response(sock)
    assert status == 200
    sock.close()
    log = _wait_for_log(server, "unhandled error")
    assert log.count("unhandled error in GET /api/public/comments") == 1, log[-3000:]
    assert log.count(" ERROR ") == 1 and UNHANDLED not in log, log[-3000:]
    # neither the credentials nor the statement's bound values (the project id here) reach the log
    assert server.secret_key not in log and server.public_key not in log and server.project_id not in log


def test_4xx_answers_keep_the_connection(server):
    sock = _connect(server)
    auth = server.basic_header["Authorization"]
    requests = [
        (b"GET /api/public/traces HTTP/1.1\r\nHost: t\r\n\r\n", 401),
        (f"GET /api/public/traces?page=0 HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\n\r\n".encode(), 400),
        (f"GET /api/public/traces/nope HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\n\r\n".encode(), 404),
        (f"GET /api/public/no-such-route HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\n\r\n".encode(), 404),
        (
            f"PUT /api/public/projects HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\nContent-Length: 2\r\n\r\n{{}}".encode(),
            405,
        ),
        (
            f"POST /api/public/scores HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\n"
            "Content-Type: application/json\r\nContent-Length: 5\r\n\r\n{oops".encode(),
            400,
        ),
        (_request("/api/public/projects", server), 200),
    ]
    for raw, expected in requests:
        sock.sendall(raw)
        status, headers, _body = _read_response(sock)
        assert status == expected, (raw[:60], status)
        assert headers.get("connection", "").lower() != "close", raw[:60]
    sock.close()
