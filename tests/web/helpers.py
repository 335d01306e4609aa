"""Test data and small helpers shared by the in-process and the browser tests of the web UI."""

from __future__ import annotations

import datetime as dt
import re
import uuid

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF field"
    return match.group(1)


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def event(kind: str, body: dict, ts: str) -> dict:
    return {"id": str(uuid.uuid4()), "type": kind, "timestamp": ts, "body": body}


def checkout_trace(trace_id: str, now: dt.datetime) -> list[dict]:
    """One realistic trace: a span with a chat generation under it, a failing tool call and an event."""
    t = lambda ms: iso(now + dt.timedelta(milliseconds=ms))  # noqa: E731 - local shorthand
    chat_in = [
        {"role": "system", "content": "You are a helpful shop assistant."},
        {"role": "user", "content": "Where is my order #1234?"},
    ]
    return [
        event(
            "trace-create",
            {
                "id": trace_id,
                "timestamp": t(0),
                "name": "checkout-flow",
                "userId": "alice",
                "sessionId": "sess-1",
                "tags": ["prod", "checkout"],
                "metadata": {"region": "eu", "plan": "pro"},
                "input": chat_in,
                "output": {"role": "assistant", "content": "It ships tomorrow."},
            },
            t(0),
        ),
        event(
            "span-create",
            {
                "id": f"{trace_id}-root",
                "traceId": trace_id,
                "name": "handle-request",
                "startTime": t(0),
                "endTime": t(2500),
            },
            t(0),
        ),
        event(
            "generation-create",
            {
                "id": f"{trace_id}-llm",
                "traceId": trace_id,
                "parentObservationId": f"{trace_id}-root",
                "name": "answer",
                "model": "gpt-4o",
                "startTime": t(100),
                "endTime": t(1600),
                "input": chat_in,
                "output": {"role": "assistant", "content": "It ships tomorrow. " + "Details. " * 300},
                "usageDetails": {"input": 120, "output": 80},
                "modelParameters": {"temperature": 0.2},
            },
            t(100),
        ),
        event(
            "span-create",
            {
                "id": f"{trace_id}-tool",
                "traceId": trace_id,
                "parentObservationId": f"{trace_id}-root",
                "name": "lookup-order",
                "startTime": t(1700),
                "endTime": t(2400),
                "level": "ERROR",
                "statusMessage": "order service timed out",
                "input": {"orderId": 1234, "nested": {"deep": [1, 2, 3]}},
            },
            t(1700),
        ),
        event(
            "event-create",
            {
                "id": f"{trace_id}-evt",
                "traceId": trace_id,
                "parentObservationId": f"{trace_id}-root",
                "name": "cache-miss",
                "startTime": t(50),
            },
            t(50),
        ),
        event(
            "score-create",
            {"id": f"{trace_id}-score", "traceId": trace_id, "name": "helpfulness", "value": 0.75},
            t(2600),
        ),
    ]


def bulk_traces(count: int, now: dt.datetime) -> list[dict]:
    """``count`` small traces of one user with a tag and metadata, a minute apart (for paging and filters)."""
    out = []
    for i in range(count):
        ts = iso(now - dt.timedelta(minutes=i + 1))
        tid = f"bulk-{i:02d}-{uuid.uuid4().hex[:6]}"
        out.append(
            event(
                "trace-create",
                {
                    "id": tid,
                    "timestamp": ts,
                    "name": f"bulk-job-{i:02d}",
                    "userId": "bob",
                    "tags": ["bulk"],
                    "metadata": {"batch": "yes"},
                    "input": f"job {i}",
                    "output": "ok",
                },
                ts,
            )
        )
        out.append(
            event(
                "generation-create",
                {
                    "id": f"{tid}-gen",
                    "traceId": tid,
                    "name": "summarise",
                    "model": "gpt-4o-mini",
                    "startTime": ts,
                    "endTime": iso(
                        now - dt.timedelta(minutes=i + 1) + dt.timedelta(milliseconds=200 + 10 * i)
                    ),
                    "usageDetails": {"input": 10 + i, "output": 5},
                },
                ts,
            )
        )
    return out
