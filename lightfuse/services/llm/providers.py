"""Provider adapters: one streaming chat call per adapter, through the providers' own SDKs.

Every call goes through ``pinned_async_client`` (services/common/outbound.py): the connection's host is
resolved, checked against ``LANGFUSE_LLM_CONNECTION_WHITELISTED_*`` and dialled at the checked address, with
``LANGFUSE_FETCH_LLM_COMPLETION_TIMEOUT_MS`` as the timeout and no SDK retries (a playground user sees the
failure at once). Each adapter yields the same events:

- ``{"type": "delta", "text": ...}`` as text arrives,
- ``{"type": "tool_call", "index", "id", "name", "arguments"}`` (fragments; arguments concatenate),
- ``{"type": "usage", "input": n, "output": n}`` once the provider reports it,
- ``{"type": "finish", "reason": ...}``.

Done: ``openai`` (also any OpenAI-compatible base URL such as a LiteLLM proxy), ``azure`` (AzureOpenAI client,
base URL = the resource endpoint, model = the deployment name), ``google-ai-studio`` (Google's
OpenAI-compatible endpoint), ``anthropic`` (Messages API; structured output is not offered there).
Not done: ``bedrock``, ``google-vertex-ai`` (stored by the API, refused by the playground).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from lightfuse.services.common.outbound import OutboundPolicy, pinned_async_client
from lightfuse.services.llm.connections import CallableConnection

GOOGLE_AI_STUDIO_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"
AZURE_API_VERSION = "2024-10-21"


class ProviderError(Exception):
    """The provider refused or failed; the message is safe to show (it never holds the key)."""


@dataclass
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None


def _safe_message(exc: Exception, secret: str) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if secret:
        text = text.replace(secret, "***")
    return text[:500]


async def stream_chat(
    conn: CallableConnection, request: ChatRequest, policy: OutboundPolicy
) -> AsyncIterator[dict[str, Any]]:
    try:
        if conn.adapter == "anthropic":
            async for event in _anthropic(conn, request, policy):
                yield event
        else:
            async for event in _openai(conn, request, policy):
                yield event
    except ProviderError:
        raise
    except Exception as exc:  # noqa: BLE001 - any SDK/transport failure becomes a message for the user
        raise ProviderError(_safe_message(exc, conn.secret_key)) from None


_CLIENTS: OrderedDict[tuple, Any] = OrderedDict()
_MAX_CLIENTS = 64


def _cached_client(conn: CallableConnection, policy: OutboundPolicy, make: Callable[[], Any]) -> Any:
    """One SDK client per connection version and event loop, so runs reuse its kept-alive connections (a TLS
    handshake with the provider is most of what a new client would add to the time to first token). The key
    holds a digest of the secret, so a changed key or header makes a new client."""
    loop = asyncio.get_running_loop()
    secret = hashlib.sha256(
        orjson.dumps(
            [conn.secret_key, conn.base_url, conn.extra_headers, conn.adapter], option=orjson.OPT_SORT_KEYS
        )
    ).hexdigest()
    key = (id(loop), conn.id, secret, id(policy))
    client = _CLIENTS.get(key)
    if client is None:
        client = _CLIENTS[key] = make()
        while len(_CLIENTS) > _MAX_CLIENTS:
            _key, old = _CLIENTS.popitem(last=False)
            if _key[0] == id(loop):
                loop.create_task(old.close())
    _CLIENTS.move_to_end(key)
    return client


def _openai_client(conn: CallableConnection, policy: OutboundPolicy) -> Any:
    return _cached_client(conn, policy, lambda: _new_openai_client(conn, policy))


def _new_openai_client(conn: CallableConnection, policy: OutboundPolicy) -> Any:
    import openai  # loaded on the first playground call, not at server start

    common: dict[str, Any] = {
        "api_key": conn.secret_key,
        "default_headers": conn.extra_headers or None,
        "max_retries": 0,
        "timeout": policy.timeout_s,
        "http_client": pinned_async_client(policy, openai.DefaultAsyncHttpxClient),
    }
    if conn.adapter == "azure":
        return openai.AsyncAzureOpenAI(
            azure_endpoint=conn.base_url or "", api_version=AZURE_API_VERSION, **common
        )
    base_url = conn.base_url or (GOOGLE_AI_STUDIO_URL if conn.adapter == "google-ai-studio" else None)
    return openai.AsyncOpenAI(base_url=base_url, **common)


async def _openai(
    conn: CallableConnection, request: ChatRequest, policy: OutboundPolicy
) -> AsyncIterator[dict[str, Any]]:
    client = _openai_client(conn, policy)
    kwargs: dict[str, Any] = {k: v for k, v in request.params.items() if v is not None}
    if request.tools:
        kwargs["tools"] = request.tools
    if request.response_format:
        kwargs["response_format"] = request.response_format
    stream: Any = await client.chat.completions.create(
        model=request.model,
        messages=request.messages,
        stream=True,
        stream_options={"include_usage": True},
        **kwargs,
    )
    async with stream:
        async for chunk in stream:
            if chunk.usage is not None:
                yield {
                    "type": "usage",
                    "input": chunk.usage.prompt_tokens or 0,
                    "output": chunk.usage.completion_tokens or 0,
                }
            for choice in chunk.choices or []:
                delta = choice.delta
                if delta is not None and delta.content:
                    yield {"type": "delta", "text": delta.content}
                for call in (delta.tool_calls if delta is not None else None) or []:
                    yield {
                        "type": "tool_call",
                        "index": call.index,
                        "id": call.id,
                        "name": call.function.name if call.function else None,
                        "arguments": (call.function.arguments if call.function else None) or "",
                    }
                if choice.finish_reason:
                    yield {"type": "finish", "reason": choice.finish_reason}


def _anthropic_messages(messages: list[dict[str, Any]]) -> tuple[str | None, list[dict[str, Any]]]:
    system = [str(m.get("content") or "") for m in messages if m.get("role") == "system"]
    rest = [
        {"role": "assistant" if m.get("role") == "assistant" else "user", "content": m.get("content") or ""}
        for m in messages
        if m.get("role") != "system"
    ]
    return ("\n\n".join(system) or None), rest


async def _anthropic(
    conn: CallableConnection, request: ChatRequest, policy: OutboundPolicy
) -> AsyncIterator[dict[str, Any]]:
    import anthropic

    if request.response_format:
        raise ProviderError("structured output (JSON schema) is not available for Anthropic connections")
    client = _cached_client(
        conn,
        policy,
        lambda: anthropic.AsyncAnthropic(
            api_key=conn.secret_key,
            base_url=conn.base_url,
            default_headers=conn.extra_headers or None,
            max_retries=0,
            timeout=policy.timeout_s,
            http_client=pinned_async_client(policy, anthropic.DefaultAsyncHttpxClient),
        ),
    )
    system, messages = _anthropic_messages(request.messages)
    create: Any = client.messages.create
    params = request.params
    kwargs: dict[str, Any] = {"max_tokens": params.get("max_tokens") or 1024}
    # sent as extra body fields: newer SDK releases dropped these keywords, the API still takes them
    sampling = {k: params[k] for k in ("temperature", "top_p") if params.get(k) is not None}
    if sampling:
        kwargs["extra_body"] = sampling
    if params.get("stop"):
        kwargs["stop_sequences"] = params["stop"] if isinstance(params["stop"], list) else [params["stop"]]
    if system:
        kwargs["system"] = system
    if request.tools:
        kwargs["tools"] = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "input_schema": t["function"].get("parameters") or {"type": "object"},
            }
            for t in request.tools
        ]
    usage_in = 0
    stream: Any = await create(model=request.model, messages=messages, stream=True, **kwargs)
    async with stream:
        async for event in stream:
            kind = event.type
            if kind == "message_start":
                usage_in = event.message.usage.input_tokens or 0
            elif kind == "content_block_start" and event.content_block.type == "tool_use":
                block = event.content_block
                yield {
                    "type": "tool_call",
                    "index": event.index,
                    "id": block.id,
                    "name": block.name,
                    "arguments": "",
                }
            elif kind == "content_block_delta":
                if event.delta.type == "text_delta":
                    yield {"type": "delta", "text": event.delta.text}
                elif event.delta.type == "input_json_delta":
                    yield {
                        "type": "tool_call",
                        "index": event.index,
                        "id": None,
                        "name": None,
                        "arguments": event.delta.partial_json,
                    }
            elif kind == "message_delta":
                yield {"type": "usage", "input": usage_in, "output": event.usage.output_tokens or 0}
                if event.delta.stop_reason:
                    yield {"type": "finish", "reason": event.delta.stop_reason}
