"""Internal row shapes shared by ingestion, merge, enrichment and the stores.

These are the contracts between layers: the merge functions produce them, the stores persist them and the read
services turn them into API objects. Conventions:

* times are UTC epoch **milliseconds** (int); the API layer converts to and from ISO-8601;
* JSON-valued fields (input, output, metadata, model_parameters, usage/cost maps, tags) hold Python values
  (dict/list/str/number/bool/None), never pre-serialised text;
* usage maps are ``dict[str, int]``; cost maps are ``dict[str, float]`` in USD.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, TypedDict

import orjson

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds -> ``2024-01-01T00:00:00.000Z``, the one format every API date is written in.

    Built field by field: ``strftime("%Y")`` leaves years before 1000 unpadded on glibc (``87-02-01``), which is
    not ISO 8601. Integer arithmetic through timedelta, so no float rounding of the milliseconds.
    """
    if ms is None:
        return None
    t = _EPOCH + dt.timedelta(milliseconds=int(ms))
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond // 1000:03d}Z"
    )


EntityKind = Literal["trace", "observation", "score"]

OBSERVATION_TYPES = (
    "SPAN",
    "GENERATION",
    "EVENT",
    "AGENT",
    "TOOL",
    "CHAIN",
    "RETRIEVER",
    "EVALUATOR",
    "EMBEDDING",
    "GUARDRAIL",
)
LEVELS = ("DEBUG", "DEFAULT", "WARNING", "ERROR")
SCORE_DATA_TYPES = ("NUMERIC", "CATEGORICAL", "BOOLEAN", "CORRECTION", "TEXT")
SCORE_SOURCES = ("API", "EVAL", "ANNOTATION")


class TraceRow(TypedDict, total=False):
    project_id: str
    id: str
    timestamp: int
    name: str | None
    user_id: str | None
    session_id: str | None
    release: str | None
    version: str | None
    environment: str
    public: bool
    bookmarked: bool
    tags: list[str]
    metadata: dict[str, Any]
    input: Any
    output: Any
    input_event_ts: int | None
    output_event_ts: int | None
    created_at: int
    updated_at: int
    # envelope timestamp (ms) of the newest event folded into this row; an older event arriving later makes
    # the pipeline replay the entity's whole event log instead of folding onto the row.
    last_event_ts: int


class ObservationRow(TypedDict, total=False):
    project_id: str
    id: str
    trace_id: str
    type: str
    parent_observation_id: str | None
    start_time: int
    end_time: int | None
    completion_start_time: int | None
    name: str | None
    metadata: dict[str, Any]
    level: str
    status_message: str | None
    version: str | None
    environment: str
    input: Any
    output: Any
    input_event_ts: int | None
    output_event_ts: int | None
    provided_model_name: str | None
    internal_model_id: str | None
    model_parameters: dict[str, Any] | None
    provided_usage_details: dict[str, int]
    usage_details: dict[str, int]
    provided_cost_details: dict[str, float]
    cost_details: dict[str, float]
    total_cost: float | None
    prompt_id: str | None
    prompt_name: str | None
    prompt_version: int | None
    usage_pricing_tier_id: str | None
    usage_pricing_tier_name: str | None
    created_at: int
    updated_at: int
    last_event_ts: int


class ScoreRow(TypedDict, total=False):
    project_id: str
    id: str
    timestamp: int
    name: str
    value: float | None
    string_value: str | None
    data_type: str
    source: str
    comment: str | None
    metadata: dict[str, Any]
    author_user_id: str | None
    config_id: str | None
    queue_id: str | None
    execution_trace_id: str | None
    trace_id: str | None
    observation_id: str | None
    session_id: str | None
    dataset_run_id: str | None
    environment: str
    created_at: int
    updated_at: int
    last_event_ts: int


# The first characters a JSON text can start with (after whitespace): a string value starting with anything else
# is returned as it is without a parse attempt, which keeps the common case ("gold", "acme") cheap.
_JSON_STARTS = frozenset('{["-0123456789tfn \t\r\n"')


def read_metadata(metadata: Any) -> dict[str, Any]:
    """Stored metadata -> the value every read API returns (api-semantics 2.4, "on every read").

    Langfuse keeps each top-level value as a string and parses it as JSON when it reads it back, so a value sent
    as the string "0" reads as 0, '["yo"]' as a list, '{"a":1}' as an object, and "hello" stays "hello". OTLP
    metadata attributes always arrive as strings, so this is what SDK users see. Values nested inside are left
    alone; non-string values (the batch API's numbers, lists, objects) are what Langfuse would parse back anyway.
    Every read service sends metadata through here, for traces, observations and scores alike.
    """
    if not isinstance(metadata, dict):
        return metadata or {}
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, str) and value and value[0] in _JSON_STARTS:
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
        out[key] = value
    return out
