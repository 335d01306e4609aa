"""Scores: POST/DELETE /api/public/scores and the v1, v2 and v3 read endpoints.

Writes go through the ingestion pipeline as score-create events (so upserts merge like batch ingestion), but
unlike ``/ingestion`` the config checks run synchronously here: a score that its config would reject is a 400,
not a silent drop. Deletion is synchronous as well (Langfuse queues it; the 202 answer is kept).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from lightfuse.api.common import (
    ApiError,
    JSONResponse,
    Page,
    Paging,
    ProjectAuth,
    authenticate,
    bad_request,
    not_found,
    page_params,
    paginated,
    parse_time_param,
    read_json,
)
from lightfuse.services.auth.api_keys import ApiAuth
from lightfuse.services.common.rows import SCORE_DATA_TYPES, SCORE_SOURCES
from lightfuse.services.ingestion.events import EventError, ValidEvent, validate_event
from lightfuse.services.ingestion.pipeline import IntakeFull
from lightfuse.services.tracing import scores as svc
from lightfuse.services.tracing.scores import FILTER_COLUMNS, Condition, ScoreQuery

router = APIRouter()
# POST /scores also takes a public key alone (Bearer): browser clients submit user feedback with it
AnyAuth = Annotated[ApiAuth, Depends(authenticate)]

# --- POST /api/public/scores ----------------------------------------------------------------------------------


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _InvalidScore(Exception):
    """A score this route refuses; answered as ``400 {"message"}`` (this route's error shape has no "error")."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _invalid(message: str) -> _InvalidScore:
    return _InvalidScore(message)


def _score_event(body: Any, access_level: str) -> ValidEvent:
    if not isinstance(body, dict):
        raise _invalid("Each score must be a JSON object")
    if body.get("source") == "EVAL":
        raise _invalid("source EVAL is reserved for evaluators; use API or ANNOTATION")
    body = dict(body)
    body["id"] = body.get("id") or str(uuid.uuid4())
    event = {"id": str(uuid.uuid4()), "type": "score-create", "timestamp": _now_iso(), "body": body}
    result = validate_event(event, access_level)
    if isinstance(result, EventError):
        # the detail names fields as "body.<field>"; there is no envelope on this route
        raise _invalid(result.error.removeprefix("body.").removeprefix("body: "))
    if result is None:  # pragma: no cover - only sdk-log events validate to None
        raise _invalid("Invalid score")
    body = result.body
    if (
        body.get("source") == "ANNOTATION"
        and body.get("dataType") != "CORRECTION"
        and not body.get("configId")
    ):
        raise _invalid("ANNOTATION scores require a configId (unless dataType is CORRECTION)")
    return result


@router.post("/api/public/scores")
async def create_scores(request: Request, auth: AnyAuth):
    try:
        return await _create_scores(request, auth)
    except _InvalidScore as exc:
        return JSONResponse({"message": exc.message}, 400)


async def _create_scores(request: Request, auth: ApiAuth) -> JSONResponse:
    services = request.app.state.services
    payload = await read_json(request)
    # The current Python SDK posts an array of scores; older clients post one object.
    many = isinstance(payload, list)
    items = payload if many else [payload]
    if not items:
        raise _invalid("Request body must contain at least one score")
    # One object: any problem is a 400. An array (the 5.x SDK): each score stands alone, as in the ingestion
    # batch - the valid ones are stored, the others reported - and the answer is 202, or 207 with counts.
    accepted: list[tuple[int, Any, ValidEvent]] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            accepted.append((index, item, _score_event(item, auth.access_level)))
        except _InvalidScore as exc:
            if not many:
                raise
            errors.append(_batch_error(index, item, exc.message))
    config_ids = {e.body["configId"] for _, _, e in accepted if e.body.get("configId")}
    if config_ids:
        configs = await run_in_threadpool(svc.get_configs, services.engine, auth.project_id, config_ids)
        checked = []
        for index, item, event in accepted:
            config_id = event.body.get("configId")
            problem = svc.score_config_problem(event.body, configs[config_id]) if config_id else None
            if problem is None:
                checked.append((index, item, event))
            elif not many:
                raise _invalid(problem)
            else:
                errors.append(_batch_error(index, item, problem))
        accepted = checked
    events = [event for _, _, event in accepted]
    if events:
        try:
            failures = await services.pipeline.submit(auth.project_id, events)
        except IntakeFull:
            raise ApiError(503, "Ingestion is busy, retry shortly", headers={"Retry-After": "1"}) from None
        if failures:
            raise ApiError(500, "Internal Server Error", "An unknown error occurred")
    if not many:
        return JSONResponse({"id": events[0].entity_id})
    if not errors:  # the 5.x SDK parses 202 {"message": "Accepted"} or a 207 summary
        return JSONResponse({"message": "Accepted"}, 202)
    return JSONResponse({"accepted": len(events), "rejected": len(errors), "errors": errors}, 207)


def _batch_error(index: int, item: Any, message: str) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "index": index}
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        error["id"] = item["id"]
    return error


@router.delete("/api/public/scores/{score_id}")
def delete_score(score_id: str, request: Request, auth: ProjectAuth):
    svc.delete_score(request.app.state.services.engine, auth.project_id, score_id)
    return JSONResponse({"message": "Score deletion queued successfully"}, 202)


# --- query parsing -----------------------------------------------------------------------------------------------


def _csv(value: str | None) -> list[str]:
    if not value:
        return []
    return [part.strip() for part in value.split(",") if part.strip()]


def _multi(request: Request, name: str) -> list[str]:
    """A parameter that may be repeated and/or comma separated."""
    out: list[str] = []
    for value in request.query_params.getlist(name):
        out.extend(_csv(value))
    return out


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise bad_request(f"{name} must be a number") from None
    if not math.isfinite(number):
        raise bad_request(f"{name} must be a finite number")
    return number


_STRING_OPS = ("=", "contains", "does not contain", "starts with", "ends with")
_NUMBER_OPS = ("=", ">", "<", ">=", "<=")
_FILTER_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # filter type -> (operators, column kinds it applies to)
    "datetime": ((">", "<", ">=", "<="), ("datetime",)),
    "string": (_STRING_OPS, ("string",)),
    "number": (_NUMBER_OPS, ("number",)),
    "stringOptions": (("any of", "none of"), ("string",)),
    "arrayOptions": (("any of", "none of", "all of"), ("array",)),
    "stringObject": (_STRING_OPS, ("object",)),
    "null": (("is null", "is not null"), ("string", "number", "datetime", "object", "array")),
}
_COLUMN_ALIASES = {name.lower(): name for name in FILTER_COLUMNS} | {"tracetags": "tags", "scoreid": "id"}


def parse_filter(text: str | None) -> list[Condition]:
    """The structured ``filter`` parameter (a JSON array of conditions) for score columns."""
    try:
        items = svc.filter_items(text)  # the shape and field types, checked where every filter parser does
    except svc.QueryError as exc:
        raise bad_request(str(exc)) from None
    out: list[Condition] = []
    for item in items:
        ftype, column, op, value = (
            item.get("type"),
            item.get("column"),
            item.get("operator"),
            item.get("value"),
        )
        name = _COLUMN_ALIASES.get(str(column).lower()) if isinstance(column, str) else None
        if name is None:
            raise bad_request(f"Unsupported filter column: {column}")
        if ftype not in _FILTER_TYPES:
            raise bad_request(f"Unsupported filter type for scores: {ftype}")
        ops, kinds = _FILTER_TYPES[ftype]
        if FILTER_COLUMNS[name][1] not in kinds:
            raise bad_request(f"Filter type {ftype} does not apply to column {column}")
        if op not in ops:
            raise bad_request(f"Invalid operator {op!r} for filter type {ftype}")
        key = item.get("key")
        if ftype == "datetime":
            value = parse_time_param(value if isinstance(value, str) else None, f"filter {column}")
            if value is None:
                raise bad_request(f"filter {column}: value must be an ISO-8601 timestamp")
        elif ftype == "number":
            value = _number(value, f"filter {column}")
        elif ftype in ("string", "stringObject"):
            if not isinstance(value, str):
                raise bad_request(f"filter {column}: value must be a string")
            if ftype == "stringObject" and (not isinstance(key, str) or not key):
                raise bad_request(f"filter {column}: stringObject filters need a key")
        elif ftype in ("stringOptions", "arrayOptions"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad_request(f"filter {column}: value must be an array of strings")
            if ftype == "stringOptions" and not value:
                raise bad_request(f"filter {column}: value must not be empty")
        out.append(Condition(name, op, value, key if isinstance(key, str) else None))
    return out


_V2_OPERATORS = ("<", ">", "<=", ">=", "!=", "=")
# simple parameter -> the filter column that overrides it when both are given
_PARAM_COLUMNS = {
    "userId": "userId",
    "name": "name",
    "source": "source",
    "dataType": "dataType",
    "environment": "environment",
    "fromTimestamp": "timestamp",
    "toTimestamp": "timestamp",
    "value": "value",
    "scoreIds": "id",
    "configId": "configId",
    "queueId": "queueId",
    "sessionId": "sessionId",
    "datasetRunId": "datasetRunId",
    "traceId": "traceId",
    "observationId": "observationId",
    "traceTags": "tags",
}


def _page_query(request: Request) -> tuple[ScoreQuery, bool]:
    """Parameters shared by the v1 and v2 lists -> (query, trace data requested)."""
    p = request.query_params
    conditions = parse_filter(p.get("filter"))
    overridden = {c.column for c in conditions}

    def param(name: str) -> str | None:
        # an advanced filter on the same column wins over the simple parameter
        if _PARAM_COLUMNS.get(name) in overridden:
            return None
        return p.get(name) or None

    fields = set(_csv(p.get("fields"))) or {"score", "trace"}
    if fields - {"score", "trace"}:
        raise bad_request("fields may only contain: score, trace")
    with_trace = "trace" in fields
    q = ScoreQuery(conditions=conditions, join_trace=with_trace)
    q.user_id = param("userId")
    q.trace_tags = [] if "tags" in overridden else _multi(request, "traceTags")
    if (q.user_id is not None or q.trace_tags) and not with_trace:
        raise bad_request("Filtering by userId or traceTags requires the 'trace' field group")
    if (name := param("name")) is not None:
        q.names = [name]
    if (source := param("source")) is not None:
        if source not in SCORE_SOURCES:
            raise bad_request(f"source must be one of {', '.join(SCORE_SOURCES)}")
        q.sources = [source]
    if (data_type := param("dataType")) is not None:
        if data_type not in SCORE_DATA_TYPES:
            raise bad_request(f"dataType must be one of {', '.join(SCORE_DATA_TYPES)}")
        q.data_types = [data_type]
    if "environment" not in overridden:
        q.environments = _multi(request, "environment")
    q.from_ts = parse_time_param(param("fromTimestamp"), "fromTimestamp")
    q.to_ts = parse_time_param(param("toTimestamp"), "toTimestamp")
    operator, value = p.get("operator") or None, param("value")
    if (operator is None) != (value is None) and "value" not in overridden:
        raise bad_request("operator and value must be given together")
    if operator is not None and value is not None:
        if operator not in _V2_OPERATORS:
            raise bad_request(f"operator must be one of {' '.join(_V2_OPERATORS)}")
        q.value_op = (operator, _number(value, "value"))
    if "id" not in overridden:
        q.ids = _csv(p.get("scoreIds"))
    for name, attr in (
        ("configId", "config_ids"),
        ("queueId", "queue_ids"),
        ("sessionId", "session_ids"),
        ("datasetRunId", "dataset_run_ids"),
        ("traceId", "trace_ids"),
    ):
        if (v := param(name)) is not None:
            setattr(q, attr, [v])
    if "observationId" not in overridden:
        q.observation_ids = _csv(p.get("observationId"))
    return q, with_trace


def _list_page(request: Request, auth: ApiAuth, pg: Page, q: ScoreQuery, render) -> JSONResponse:
    page, limit = pg.page, pg.limit
    try:
        rows, total = svc.list_scores_page(
            request.app.state.services.engine, auth.project_id, q, limit, (page - 1) * limit
        )
    except svc.ScoreRequestError as exc:
        raise bad_request(exc.message) from None
    return JSONResponse(paginated([render(r) for r in rows], page, limit, total))


# --- v1 -------------------------------------------------------------------------------------------------------


@router.get("/api/public/scores")
def list_scores_v1(request: Request, auth: ProjectAuth, pg: Paging):
    q, with_trace = _page_query(request)
    # v1 only knows trace-level scores of the listable types
    q.trace_scoped_only = True
    q.allowed_types = list(svc.LISTABLE_TYPES)
    return _list_page(request, auth, pg, q, lambda r: svc.score_v1(r, with_trace=with_trace))


@router.get("/api/public/scores/{score_id}")
def get_score_v1(score_id: str, request: Request, auth: ProjectAuth):
    row = svc.get_score(request.app.state.services.engine, auth.project_id, score_id)
    if row is None or not row.get("trace_id") or row["data_type"] not in svc.LISTABLE_TYPES:
        raise not_found("Score not found")
    return JSONResponse(svc.score_v1(row))


# --- v2 -------------------------------------------------------------------------------------------------------


@router.get("/api/public/v2/scores")
def list_scores_v2(request: Request, auth: ProjectAuth, pg: Paging):
    q, with_trace = _page_query(request)
    return _list_page(request, auth, pg, q, lambda r: svc.score_v2(r, with_trace=with_trace))


@router.get("/api/public/v2/scores/{score_id}")
def get_score_v2(score_id: str, request: Request, auth: ProjectAuth):
    row = svc.get_score(request.app.state.services.engine, auth.project_id, score_id)
    if row is None:
        raise not_found("Score not found")
    return JSONResponse(svc.score_v2(row))


# --- v3 -------------------------------------------------------------------------------------------------------


def _v3_query(request: Request) -> ScoreQuery:
    p = request.query_params
    for unsupported in ("userId", "traceTags"):
        if p.get(unsupported):
            raise bad_request(f"{unsupported} is not supported by the v3 scores API")
    q = ScoreQuery(
        ids=_csv(p.get("id")),
        names=_csv(p.get("name")),
        environments=_csv(p.get("environment")),
        config_ids=_csv(p.get("configId")),
        queue_ids=_csv(p.get("queueId")),
        author_user_ids=_csv(p.get("authorUserId")),
        trace_ids=_csv(p.get("traceId")),
        session_ids=_csv(p.get("sessionId")),
        observation_ids=_csv(p.get("observationId")),
        dataset_run_ids=_csv(p.get("experimentId")),
        from_ts=parse_time_param(p.get("fromTimestamp"), "fromTimestamp"),
        to_ts=parse_time_param(p.get("toTimestamp"), "toTimestamp"),
    )
    q.sources = [s.upper() for s in _csv(p.get("source"))]
    if any(s not in SCORE_SOURCES for s in q.sources):
        raise bad_request(f"source must be a comma list of {', '.join(SCORE_SOURCES)}")
    q.data_types = [t.upper() for t in _csv(p.get("dataType"))]
    if any(t not in SCORE_DATA_TYPES for t in q.data_types):
        raise bad_request(f"dataType must be a comma list of {', '.join(SCORE_DATA_TYPES)}")
    subjects = [
        n
        for n, v in (
            ("traceId", q.trace_ids),
            ("sessionId", q.session_ids),
            ("experimentId", q.dataset_run_ids),
        )
        if v
    ]
    if len(subjects) > 1:
        raise bad_request(f"{' and '.join(subjects)} cannot be combined")
    if q.observation_ids and not q.trace_ids:
        raise bad_request("observationId requires traceId")

    single_type = q.data_types[0] if len(q.data_types) == 1 else None
    values = _csv(p.get("value"))
    if values:
        if single_type not in ("NUMERIC", "BOOLEAN", "CATEGORICAL"):
            raise bad_request("value requires exactly one dataType of NUMERIC, BOOLEAN or CATEGORICAL")
        if single_type == "NUMERIC":
            q.numeric_values = [_number(v, "value") for v in values]
        elif single_type == "BOOLEAN":
            if any(v.lower() not in ("true", "false") for v in values):
                raise bad_request("BOOLEAN values must be true or false")
            q.numeric_values = [1.0 if v.lower() == "true" else 0.0 for v in values]
        else:
            q.string_values = values
    for name in ("valueMin", "valueMax"):
        raw = p.get(name)
        if raw:
            if single_type != "NUMERIC":
                raise bad_request(f"{name} requires dataType=NUMERIC")
            setattr(q, "value_min" if name == "valueMin" else "value_max", _number(raw, name))
    return q


@router.get("/api/public/v3/scores")
def list_scores_v3(request: Request, auth: ProjectAuth):
    p = request.query_params
    _page, limit = page_params(None, p.get("limit"))
    groups = set(_csv(p.get("fields")))
    unknown = groups - set(svc.V3_FIELD_GROUPS)
    if unknown:
        raise bad_request(
            f"Unknown field group(s): {', '.join(sorted(unknown))}; allowed: {', '.join(svc.V3_FIELD_GROUPS)}"
        )
    q = _v3_query(request)
    try:
        body = svc.list_scores_v3(
            request.app.state.services.engine, auth.project_id, q, limit, p.get("cursor") or None, groups
        )
    except svc.ScoreRequestError as exc:
        raise bad_request(exc.message) from None
    return JSONResponse(body)
