"""Playground runs: one streamed chat call on a project's LLM connection, recorded as a trace + generation.

``run`` validates the request, fills ``{{variables}}`` into the messages, streams the provider's events (see
``providers.py``) and, whatever the outcome, submits a ``trace-create`` and a ``generation-create`` to the
ingestion pipeline: the generation carries the model, parameters, usage (from the stream's usage chunk) and
the prompt it came from, so its cost is computed from the price table like any other generation's. A failed
call is recorded too, at level ERROR with the provider's message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from lightfuse.services.common.outbound import OutboundRefused
from lightfuse.services.common.resources import bad
from lightfuse.services.ingestion.events import ValidEvent, validate_event
from lightfuse.services.ingestion.pipeline import IngestionPipeline
from lightfuse.services.llm.connections import LlmConnections
from lightfuse.services.llm.providers import ChatRequest, ProviderError, stream_chat

ROLES = ("system", "developer", "user", "assistant")
# the model parameters the playground passes on, with their checks
_NUMBER_PARAMS = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "frequency_penalty": (-2.0, 2.0),
    "presence_penalty": (-2.0, 2.0),
}
_INT_PARAMS = {"max_tokens": (1, 1_000_000), "seed": (-(2**31), 2**31 - 1)}
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
MAX_MESSAGES = 200


def fill_variables(text: str, variables: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), text)


def _params(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise bad("params must be an object")
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None or value == "":
            continue
        if name in _NUMBER_PARAMS:
            lo, hi = _NUMBER_PARAMS[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise bad(f"params.{name} must be a number from {lo} to {hi}")
            out[name] = float(value)
        elif name in _INT_PARAMS:
            lo, hi = _INT_PARAMS[name]
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise bad(f"params.{name} must be an integer from {lo} to {hi}")
            out[name] = value
        elif name == "stop":
            stops = [value] if isinstance(value, str) else value
            if (
                not isinstance(stops, list)
                or len(stops) > 4
                or not all(isinstance(s, str) and s for s in stops)
            ):
                raise bad("params.stop must be a string or a list of at most 4 strings")
            out[name] = stops
        else:
            raise bad(f"params.{name} is not a supported model parameter")
    return out


def validate_run(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad("Request body must be a JSON object")
    connection_id, model = body.get("connectionId"), body.get("model")
    if not isinstance(connection_id, str) or not connection_id:
        raise bad("connectionId is required")
    if not isinstance(model, str) or not model.strip() or len(model) > 255:
        raise bad("model is required")
    variables = body.get("variables") or {}
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        raise bad("variables must map names to strings")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) > MAX_MESSAGES:
        raise bad(f"messages must be a list of 1 to {MAX_MESSAGES} messages")
    filled = []
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise bad(f"each message needs a role ({', '.join(ROLES)}) and a text content")
        filled.append({"role": m["role"], "content": fill_variables(m["content"], variables)})
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or len(tools) > 64:
            raise bad("tools must be a list of function definitions")
        for t in tools:
            fn = t.get("function") if isinstance(t, dict) else None
            if t.get("type") != "function" or not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise bad(
                    'each tool must be {"type": "function", "function": {"name": ..., "parameters": {...}}}'
                )
    schema = body.get("jsonSchema")
    response_format = None
    if schema is not None:
        if not isinstance(schema, dict):
            raise bad("jsonSchema must be a JSON schema object")
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": str(body.get("jsonSchemaName") or "output"), "schema": schema},
        }
    prompt_name, prompt_version = body.get("promptName"), body.get("promptVersion")
    if prompt_name is not None and (not isinstance(prompt_name, str) or not isinstance(prompt_version, int)):
        raise bad("promptName and promptVersion must be given together")
    return {
        "connection_id": connection_id,
        "request": ChatRequest(
            model=model.strip(),
            messages=filled,
            params=_params(body.get("params")),
            tools=tools or None,
            response_format=response_format,
        ),
        "prompt": (prompt_name, prompt_version) if prompt_name else None,
    }


def _iso(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Playground:
    def __init__(self, connections: LlmConnections, pipeline: IngestionPipeline, timeout_s: float) -> None:
        self.connections = connections
        self.pipeline = pipeline
        self.timeout_s = timeout_s

    def prepare(self, project_id: str, body: Any) -> dict[str, Any]:
        """Validate and open the connection (blocking: run it in a thread); raises RequestError."""
        run = validate_run(body)
        run["connection"] = self.connections.for_call(project_id, run.pop("connection_id"))
        return run

    async def test_connection(self, project_id: str, connection_id: str) -> str:
        """A one-word completion on the connection's first model (not traced); raises RequestError."""
        conn = await asyncio.to_thread(self.connections.for_call, project_id, connection_id)
        if not conn.models:
            raise bad("the connection has no models: add custom models or enable the default ones")
        request = ChatRequest(
            model=conn.models[0],
            messages=[{"role": "user", "content": "Reply with the single word OK."}],
            params={"max_tokens": 5},
        )
        text: list[str] = []
        try:
            async for event in stream_chat(conn, request, self.connections.policy):
                if event["type"] == "delta":
                    text.append(event["text"])
        except (OutboundRefused, ProviderError) as exc:
            raise bad(str(exc)) from None
        return "".join(text)[:200]

    async def stream(self, project_id: str, user_id: str | None, run: dict[str, Any]) -> AsyncIterator[dict]:
        """The events for the browser, ending with ``done`` (trace id, usage) or ``error``."""
        conn, request = run["connection"], run["request"]
        started = time.time()
        first_token: float | None = None
        text: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        usage: dict[str, int] | None = None
        error: str | None = None
        try:
            async for event in stream_chat(conn, request, self.connections.policy):
                if event["type"] == "delta":
                    first_token = first_token or time.time()
                    text.append(event["text"])
                    yield event
                elif event["type"] == "tool_call":
                    first_token = first_token or time.time()
                    call = calls.setdefault(event["index"], {"id": None, "name": None, "arguments": ""})
                    call["id"] = call["id"] or event["id"]
                    call["name"] = call["name"] or event["name"]
                    call["arguments"] += event["arguments"]
                    yield event
                elif event["type"] == "usage":
                    usage = {"input": event["input"], "output": event["output"]}
        except OutboundRefused as exc:
            error = f"connection refused: {exc}"
        except ProviderError as exc:
            error = str(exc)
        ended = time.time()
        output: Any = "".join(text)
        if calls:
            output = {"role": "assistant", "content": output, "tool_calls": list(calls.values())}
        trace_id = await self._record(
            project_id, user_id, run, output, usage, error, started, first_token, ended
        )
        if error is not None:
            yield {"type": "error", "message": error, "traceId": trace_id}
        else:
            yield {"type": "done", "traceId": trace_id, "usage": usage}

    async def _record(
        self,
        project_id: str,
        user_id: str | None,
        run: dict[str, Any],
        output: Any,
        usage: dict[str, int] | None,
        error: str | None,
        started: float,
        first_token: float | None,
        ended: float,
    ) -> str:
        request: ChatRequest = run["request"]
        trace_id, generation_id = str(uuid.uuid4()), str(uuid.uuid4())
        model_parameters = {
            k: (orjson.dumps(v).decode() if isinstance(v, list) else v) for k, v in request.params.items()
        }
        generation: dict[str, Any] = {
            "id": generation_id,
            "traceId": trace_id,
            "name": "playground-generation",
            "startTime": _iso(started),
            "endTime": _iso(ended),
            "model": request.model,
            "modelParameters": model_parameters,
            "input": {"messages": request.messages, "tools": request.tools}
            if request.tools
            else request.messages,
            "output": output if error is None else None,
            "metadata": {"connection": run["connection"].provider, "adapter": run["connection"].adapter},
        }
        if first_token is not None:
            generation["completionStartTime"] = _iso(first_token)
        if usage is not None:
            generation["usageDetails"] = usage
        if error is not None:
            generation.update(level="ERROR", statusMessage=error[:1000])
        if run["prompt"]:
            generation["promptName"], generation["promptVersion"] = run["prompt"]
        trace = {
            "id": trace_id,
            "timestamp": _iso(started),
            "name": "playground",
            "userId": user_id,
            "tags": ["playground"],
            "input": request.messages,
            "output": output if error is None else None,
        }
        now = _iso(time.time())
        events: list[ValidEvent] = []
        for kind, body in (("trace-create", trace), ("generation-create", generation)):
            valid = validate_event(
                {"id": str(uuid.uuid4()), "type": kind, "timestamp": now, "body": body}, "project"
            )
            if isinstance(valid, ValidEvent):
                events.append(valid)
        await self.pipeline.submit(project_id, events)
        return trace_id


def prompt_body(
    name: Any, messages: Any, model: Any, params: Any, commit_message: Any = None
) -> dict[str, Any]:
    """The create-prompt body for "save as new prompt version": a chat prompt whose config holds the model
    and its parameters (the prompts service validates everything further)."""
    if not isinstance(messages, list) or not messages:
        raise bad("messages must be a non-empty list")
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise bad("each message needs a role and a text content")
    config: dict[str, Any] = {"model": model} if isinstance(model, str) and model else {}
    config.update(_params(params))
    body: dict[str, Any] = {
        "name": name,
        "type": "chat",
        "prompt": [{"role": m["role"], "content": m["content"]} for m in messages],
        "config": config,
        "labels": [],
    }
    if isinstance(commit_message, str) and commit_message.strip():
        body["commitMessage"] = commit_message.strip()
    return body
