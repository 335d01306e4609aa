"""A fake OpenAI-compatible LLM provider for the tests and the bench (the one allowed fake: an LLM provider).

``POST /v1/chat/completions`` with ``stream: true`` answers Server-Sent Events: a role chunk, the reply one
word per chunk (``token_delay`` seconds apart, so streaming is observable), a finish chunk, then the usage
chunk when ``stream_options.include_usage`` is set, then ``[DONE]``. The reply echoes the last user message
("Echo: ..."); with ``tools`` it calls the first tool with ``{"echo": ...}``; with a ``json_schema`` response
format it answers ``{"echo": ...}`` as JSON text. Requests (headers lower-cased, JSON body) are kept in
``requests`` so tests can check what the server sent. Runs in a thread of the test process.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeLlm:
    api_key: str = "sk-fake-provider-key-1234"
    token_delay: float = 0.15
    first_token_delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeLlm:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(
                    {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
                # OpenAI: Bearer token; Azure OpenAI: api-key header; Anthropic: x-api-key header
                keys = {
                    (self.headers.get("authorization") or "").removeprefix("Bearer "),
                    self.headers.get("api-key"),
                    self.headers.get("x-api-key"),
                }
                if fake.api_key not in keys:
                    return self._json(
                        401, {"error": {"message": "Incorrect API key provided", "type": "auth"}}
                    )
                path = self.path.split("?")[0].rstrip("/")
                fake.requests[-1]["path"] = self.path
                if not path.endswith(("/chat/completions", "/messages")):
                    return self._json(404, {"error": {"message": "not found"}})
                try:
                    if path.endswith("/messages"):
                        fake.answer_anthropic(self, body)
                    else:
                        fake.answer(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client stopped reading (the bench does, after a token)

            def _json(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def answer_anthropic(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        """Anthropic's Messages API, streamed: message_start (input tokens), text deltas, message_delta
        (output tokens, stop reason), message_stop; with ``tools`` a tool_use block with ``{"echo": ...}``."""
        last_user = next(
            (m.get("content") for m in reversed(body.get("messages") or []) if m.get("role") == "user"), ""
        )
        words = f"Echo: {last_user}".split(" ")
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("connection", "close")
        handler.end_headers()

        def send(event: str, payload: dict) -> None:
            handler.wfile.write(
                f"event: {event}\ndata: {json.dumps({'type': event, **payload})}\n\n".encode()
            )
            handler.wfile.flush()

        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": 1},
        }
        send("message_start", {"message": message})
        if body.get("tools"):
            block = {"type": "tool_use", "id": "toolu_1", "name": body["tools"][0]["name"], "input": {}}
            send("content_block_start", {"index": 0, "content_block": block})
            delta = {"type": "input_json_delta", "partial_json": json.dumps({"echo": last_user})}
            send("content_block_delta", {"index": 0, "delta": delta})
            stop = "tool_use"
        else:
            send("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
            for i, word in enumerate(words):
                text = word if i == 0 else " " + word
                send("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": text}})
                if i < len(words) - 1:
                    time.sleep(self.token_delay)
            stop = "end_turn"
        send("content_block_stop", {"index": 0})
        send(
            "message_delta",
            {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": len(words)}},
        )
        send("message_stop", {})
        handler.close_connection = True

    def answer(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        last_user = next(
            (m.get("content") for m in reversed(body.get("messages") or []) if m.get("role") == "user"), ""
        )
        words = f"Echo: {last_user}".split(" ")
        tool_call = None
        fmt = body.get("response_format") or {}
        if body.get("tools"):
            tool_call = {
                "name": body["tools"][0]["function"]["name"],
                "arguments": json.dumps({"echo": last_user}),
            }
            words = []
        elif fmt.get("type") == "json_schema":
            words = [json.dumps({"echo": last_user})]
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model"),
        }
        usage = {
            "prompt_tokens": 12,
            "completion_tokens": max(len(words), 1),
            "total_tokens": 12 + max(len(words), 1),
        }
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": " ".join(words)}
            if tool_call:
                message["tool_calls"] = [{"id": "call_1", "type": "function", "function": tool_call}]
            data = json.dumps(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": usage,
                }
            ).encode()
            handler.send_response(200)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
            return
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("connection", "close")
        handler.end_headers()

        def send(payload: Any) -> None:
            text = payload if isinstance(payload, str) else json.dumps(payload)
            handler.wfile.write(f"data: {text}\n\n".encode())
            handler.wfile.flush()

        def chunk(delta: dict, finish: str | None = None) -> dict:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        if self.first_token_delay:
            time.sleep(self.first_token_delay)
        send(chunk({"role": "assistant", "content": ""}))
        for i, word in enumerate(words):
            send(chunk({"content": word if i == 0 else " " + word}))
            if i < len(words) - 1:
                time.sleep(self.token_delay)
        if tool_call:
            send(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": tool_call["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            send(chunk({"tool_calls": [{"index": 0, "function": {"arguments": tool_call["arguments"]}}]}))
        send(chunk({}, "tool_calls" if tool_call else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            send({**base, "choices": [], "usage": usage})
        send("[DONE]")
        handler.close_connection = True
