"""The structured filter compiled against real SQLite and Postgres databases, with the same expectations."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from lightfuse.store.sql import migrate
from lightfuse.store.sql.database import make_engine
from lightfuse.store.sql.filters import Condition, QueryError, columns_used, parse_filter
from lightfuse.store.sql.tables import observations, scores, traces
from lightfuse.store.sql.tracing.observations import ObservationQuery, list_observations_after
from lightfuse.store.sql.tracing.traces import TraceQuery, count_traces, list_traces, trace_filter_columns

PG_ADMIN_URL = os.environ.get("LIGHTFUSE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
P = "proj-filters"
OTHER = "proj-other"


def _admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _trace(id_: str, **kw) -> dict:
    row = dict(
        project_id=P,
        id=id_,
        timestamp=1_700_000_000_000,
        name=None,
        user_id=None,
        session_id=None,
        release=None,
        version=None,
        environment="default",
        public=False,
        bookmarked=False,
        tags=[],
        metadata={},
        input=None,
        output=None,
        created_at=0,
        updated_at=0,
        last_event_ts=0,
    )
    row.update(kw)
    return row


def _obs(id_: str, trace_id: str, **kw) -> dict:
    row = dict(
        project_id=P,
        id=id_,
        trace_id=trace_id,
        type="SPAN",
        parent_observation_id=None,
        start_time=1_700_000_000_000,
        end_time=None,
        completion_start_time=None,
        name=None,
        metadata={},
        level="DEFAULT",
        status_message=None,
        version=None,
        environment="default",
        input=None,
        output=None,
        provided_model_name=None,
        internal_model_id=None,
        model_parameters=None,
        provided_usage_details={},
        usage_details={},
        provided_cost_details={},
        cost_details={},
        total_cost=None,
        input_tokens=0,
        output_tokens=0,
        total_tokens=0,
        created_at=0,
        updated_at=0,
        last_event_ts=0,
    )
    row.update(kw)
    return row


def _score(id_: str, trace_id: str, name: str, data_type: str, value=None, string_value=None) -> dict:
    return dict(
        project_id=P,
        id=id_,
        trace_id=trace_id,
        timestamp=0,
        name=name,
        value=value,
        string_value=string_value,
        data_type=data_type,
        source="API",
        metadata={},
        environment="default",
        created_at=0,
        updated_at=0,
        last_event_ts=0,
    )


T0 = 1_700_000_000_000
TRACES = [
    _trace(
        "t1",
        name="Alpha chat",
        user_id="u1",
        tags=["a", "b"],
        environment="production",
        bookmarked=True,
        metadata={"tier": "gold", "n": 5, "flag": True, 'we"ird.key': "yes", "nested": {"x": 1}},
        timestamp=T0,
        release="r1",
    ),
    _trace(
        "t2",
        name="beta",
        user_id="u2",
        tags=["b"],
        metadata={"tier": "silver", "n": "7.5"},
        timestamp=T0 + 1000,
        session_id="s1",
    ),
    _trace("t3", name=None, tags=[], metadata={"n": "not a number"}, timestamp=T0 + 2000, user_id=""),
    # same ids in another project must never show up
    dict(_trace("t1", name="Alpha chat", tags=["a", "b"]), project_id=OTHER),
]
OBSERVATIONS = [
    _obs(
        "o1",
        "t1",
        type="GENERATION",
        start_time=T0,
        end_time=T0 + 2000,
        level="ERROR",
        cost_details={"input": 1.0, "input_cached": 0.25, "output": 2.0, "total": 3.25},
        total_cost=3.25,
        input_tokens=10,
        output_tokens=5,
        total_tokens=15,
        input='{"q":"Hello World"}',
        output='"fine"',
        completion_start_time=T0 + 500,
        provided_model_name="gpt-4o",
    ),
    _obs(
        "o2",
        "t1",
        parent_observation_id="o1",
        start_time=T0 + 500,
        end_time=None,
        level="WARNING",
        metadata={"k": "v"},
    ),
    _obs(
        "o3",
        "t2",
        start_time=T0 + 1000,
        end_time=T0 + 1500,
        cost_details={"output": 0.5, "total": 0.5},
        total_cost=0.5,
        output_tokens=7,
        total_tokens=7,
        level="DEBUG",
    ),
]
SCORES = [
    _score("s1", "t1", "quality", "NUMERIC", value=0.9),
    _score("s2", "t1", "quality", "NUMERIC", value=0.5),
    _score("s3", "t2", "quality", "NUMERIC", value=0.1),
    _score("s4", "t1", "label", "CATEGORICAL", value=0, string_value="good"),
    _score("s5", "t2", "label", "CATEGORICAL", value=0, string_value="bad"),
    _score("s6", "t1", "ok", "BOOLEAN", value=1, string_value="True"),
    _score("s7", "t2", "ok", "BOOLEAN", value=0, string_value="False"),
]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def engine(request, tmp_path_factory) -> Iterator[sa.Engine]:
    db_name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('filters') / 'filters.db'}"
    else:
        db_name = f"lf_filters_{uuid.uuid4().hex[:10]}"
        with _admin().connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{db_name}"')
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + db_name
    eng = make_engine(url)
    try:
        migrate.upgrade(eng)
        with eng.begin() as conn:
            conn.execute(traces.insert(), TRACES)
            conn.execute(observations.insert(), OBSERVATIONS)
            conn.execute(scores.insert(), SCORES)
        yield eng
    finally:
        eng.dispose()
        if db_name:
            admin = _admin()
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            admin.dispose()


def trace_ids(engine: sa.Engine, conditions: list[dict], simple: list[Condition] | None = None) -> list[str]:
    q = TraceQuery(P, simple=simple or [], advanced=parse_filter(json.dumps(conditions)), order_desc=False)
    with engine.connect() as conn:
        ids = [r["id"] for r in list_traces(conn, q)]
        assert count_traces(conn, q) == len(ids)
    return ids


def f(type_: str, column: str, operator: str, value=None, key: str | None = None) -> dict:
    cond = {"type": type_, "column": column, "operator": operator, "value": value}
    if key is not None:
        cond["key"] = key
    return cond


CASES = [
    # strings are case-sensitive; NULL names never match a comparison
    (f("string", "name", "=", "beta"), ["t2"]),
    (f("string", "name", "contains", "chat"), ["t1"]),
    (f("string", "name", "contains", "CHAT"), []),
    (f("string", "name", "does not contain", "chat"), ["t2"]),
    (f("string", "name", "starts with", "Alp"), ["t1"]),
    (f("string", "name", "ends with", "eta"), ["t2"]),
    (f("string", "name", "ends with", "x" * 20), []),
    (f("stringOptions", "name", "any of", ["beta", "zzz"]), ["t2"]),
    (f("stringOptions", "name", "none of", ["beta"]), ["t1"]),
    (f("null", "name", "is null", ""), ["t3"]),
    (f("null", "userId", "is null", ""), ["t3"]),  # '' counts as no value
    (f("null", "sessionId", "is not null", ""), ["t2"]),
    (f("datetime", "timestamp", ">=", "2023-11-14T22:13:21.000Z"), ["t2", "t3"]),
    (f("datetime", "timestamp", "<", "2023-11-14T23:13:21+01:00"), ["t1"]),
    (f("boolean", "bookmarked", "=", True), ["t1"]),
    (f("boolean", "bookmarked", "<>", True), ["t2", "t3"]),
    (f("arrayOptions", "tags", "any of", ["a", "zzz"]), ["t1"]),
    (f("arrayOptions", "tags", "all of", ["a", "b"]), ["t1"]),
    (f("arrayOptions", "tags", "all of", ["b"]), ["t1", "t2"]),
    (f("arrayOptions", "tags", "all of", []), ["t1", "t2", "t3"]),
    (f("arrayOptions", "tags", "none of", ["a"]), ["t2", "t3"]),
    # metadata: absent keys read as ""
    (f("stringObject", "metadata", "=", "gold", key="tier"), ["t1"]),
    (f("stringObject", "metadata", "contains", "il", key="tier"), ["t2"]),
    (f("stringObject", "metadata", "does not contain", "gold", key="tier"), ["t2", "t3"]),
    (f("stringObject", "metadata", "=", "yes", key='we"ird.key'), ["t1"]),
    (f("stringObject", "metadata", "=", "true", key="flag"), ["t1"]),
    (f("stringObject", "metadata", "contains", '"x"', key="nested"), ["t1"]),
    (f("numberObject", "metadata", ">", 6, key="n"), ["t2"]),
    (f("numberObject", "metadata", ">=", 5, key="n"), ["t1", "t2"]),
    (f("numberObject", "metadata", "<", 100, key="n"), ["t1", "t2"]),  # "not a number" never compares
    (f("booleanObject", "metadata", "=", True, key="flag"), ["t1"]),
    (f("booleanObject", "metadata", "<>", True, key="flag"), ["t2", "t3"]),
    (f("categoryOptions", "metadata", "any of", ["gold", "silver"], key="tier"), ["t1", "t2"]),
    (f("categoryOptions", "metadata", "none of", ["gold"], key="tier"), ["t2", "t3"]),
    (f("null", "metadata", "is null", "", key="tier"), ["t3"]),
    # aggregates over observations (traces without observations count as 0)
    (f("number", "latency", ">", 1.5), ["t1"]),
    (f("number", "latency", "=", 0), ["t3"]),
    (f("number", "totalCost", ">=", 0.5), ["t1", "t2"]),
    (f("number", "inputCost", "=", 1.25), ["t1"]),
    (f("number", "outputCost", ">", 1), ["t1"]),
    (f("number", "totalTokens", "=", 0), ["t3"]),
    (f("number", "tokens", ">", 10), ["t1"]),
    (f("number", "outputTokens", ">=", 5), ["t1", "t2"]),
    (f("string", "level", "=", "ERROR"), ["t1"]),
    (f("stringOptions", "level", "any of", ["DEBUG", "WARNING"]), ["t2"]),
    (f("number", "warningCount", "=", 1), ["t1"]),
    (f("number", "errorCount", "=", 0), ["t2", "t3"]),
    # scores
    (f("numberObject", "scores_avg", ">", 0.6, key="quality"), ["t1"]),
    (f("numberObject", "scores", "<", 0.6, key="quality"), ["t2"]),
    (f("categoryOptions", "score_categories", "any of", ["good"], key="label"), ["t1"]),
    (f("categoryOptions", "score_categories", "none of", ["good"], key="label"), ["t2", "t3"]),
    (f("booleanObject", "score_booleans", "=", True, key="ok"), ["t1"]),
    (f("booleanObject", "score_booleans", "<>", True, key="ok"), ["t2", "t3"]),
    # display names are accepted too
    (f("string", "User ID", "=", "u1"), ["t1"]),
]


@pytest.mark.parametrize(
    ("condition", "expected"), CASES, ids=[f"{c['column']} {c['operator']} {c['value']}" for c, _ in CASES]
)
def test_trace_filter(engine, condition, expected):
    assert trace_ids(engine, [condition]) == expected


def test_conditions_are_and_ed(engine):
    assert trace_ids(
        engine, [f("arrayOptions", "tags", "any of", ["b"]), f("number", "totalCost", "<", 1)]
    ) == ["t2"]


def test_advanced_filter_wins_over_simple_param_on_same_column(engine):
    simple = [Condition("name", "string", "=", "beta")]
    assert trace_ids(engine, [], simple) == ["t2"]
    assert trace_ids(engine, [f("string", "name", "contains", "chat")], simple) == ["t1"]
    # different columns combine
    assert trace_ids(
        engine, [f("string", "userId", "=", "u2")], [Condition("tags", "arrayOptions", "all of", ["b"])]
    ) == ["t2"]


def test_observation_v2_columns(engine):
    def ids(conds: list[dict]) -> list[str]:
        q = ObservationQuery(P, advanced=parse_filter(json.dumps(conds)), limit=100)
        with engine.connect() as conn:
            return sorted(r["id"] for r in list_observations_after(conn, q, None))

    assert ids([f("string", "input", "matches", "hello world")]) == ["o1"]  # case-insensitive
    assert ids([f("stringObject", "metadata", "matches", "V", key="k")]) == []  # case-sensitive
    assert ids([f("stringObject", "metadata", "matches", "v", key="k")]) == ["o2"]
    assert ids([f("boolean", "isRootObservation", "=", True)]) == ["o1", "o3"]
    assert ids([f("boolean", "isRootObservation", "<>", True)]) == ["o2"]
    assert ids([f("number", "latency", ">=", 2)]) == ["o1"]
    assert ids([f("number", "timeToFirstToken", "=", 0.5)]) == ["o1"]
    assert ids([f("number", "tokensPerSecond", ">", 10)]) == ["o3"]
    assert ids([f("number", "inputCost", "=", 1.25)]) == ["o1"]
    assert ids([f("string", "traceName", "=", "beta")]) == ["o3"]
    assert ids([f("arrayOptions", "traceTags", "all of", ["a"])]) == ["o1", "o2"]
    assert ids([f("string", "userId", "=", "u1")]) == ["o1", "o2"]
    assert ids([f("string", "model", "=", "gpt-4o")]) == ["o1"]


# --- validation (no database) -------------------------------------------------------------------------------


def _columns():
    return trace_filter_columns(P, "sqlite")[0]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "Invalid JSON in filter parameter"),
        ('{"a": 1}', "expected a JSON array"),
        ('[{"type": "strin", "column": "name", "operator": "=", "value": "x"}]', "Invalid filter type"),
        ('[{"type": "string", "column": "name", "operator": "like", "value": "x"}]', "Invalid operator"),
        ('[{"type": "string", "column": "name", "operator": "=", "value": 3}]', "must be a string"),
        ('[{"type": "number", "column": "latency", "operator": ">", "value": "fast"}]', "must be a number"),
        (
            '[{"type": "datetime", "column": "timestamp", "operator": ">", "value": "2024-01-01T00:00:00"}]',
            "timezone",
        ),
        ('[{"type": "datetime", "column": "timestamp", "operator": ">", "value": "yesterday"}]', "ISO-8601"),
        (
            '[{"type": "stringOptions", "column": "name", "operator": "any of", "value": []}]',
            "must not be empty",
        ),
        (
            '[{"type": "arrayOptions", "column": "tags", "operator": "any of", "value": []}]',
            "must not be empty",
        ),
        (
            '[{"type": "stringObject", "column": "metadata", "operator": "=", "value": "x"}]',
            "'key' is required",
        ),
        ('[{"type": "boolean", "column": "bookmarked", "operator": "=", "value": "maybe"}]', "boolean"),
        ('[{"type": "string", "column": "name", "operator": "="}]', "'value' is required"),
    ],
)
def test_parse_errors(raw, message):
    with pytest.raises(QueryError, match=message):
        parse_filter(raw)


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        (f("string", "nope", "=", "x"), "Invalid filter column 'nope'"),
        (f("number", "name", "=", 1), "not supported on column 'name'"),
        (f("string", "name", "matches", "x"), "'matches' is not supported"),
        (f("arrayOptions", "metadata", "any of", ["x"]), "not supported on column 'metadata'"),
    ],
)
def test_column_errors(cond, message):
    with pytest.raises(QueryError, match=message):
        columns_used([], parse_filter(json.dumps([cond])), _columns())


def test_empty_filter_and_value_normalisation():
    assert parse_filter(None) == [] and parse_filter("") == [] and parse_filter("null") == []
    (cond,) = parse_filter(json.dumps([f("datetime", "timestamp", ">=", "2024-01-01T00:00:00.123456789Z")]))
    assert cond.value == 1704067200123
    (cond,) = parse_filter(json.dumps([f("number", "latency", ">", "1.5")]))
    assert cond.value == 1.5
    (cond,) = parse_filter(json.dumps([f("null", "name", "is null")]))
    assert cond.value is None
