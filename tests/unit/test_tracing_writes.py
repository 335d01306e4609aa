"""The writer's driver-level row store: what upsert_rows writes, get_rows reads back unchanged (both backends)."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from lightfuse.services.ingestion.events import validate_event
from lightfuse.services.ingestion.merge import merge_observation, merge_score, merge_trace
from lightfuse.services.pricing.price_book import PriceBook, enrich_observation
from lightfuse.store.sql import migrate
from lightfuse.store.sql.database import make_engine
from lightfuse.store.sql.tables import traces
from lightfuse.store.sql.tracing import writes as tracing_writes


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'w.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_database_url")
    )
    eng = make_engine(url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def _event(event_type: str, body: dict) -> object:
    ev = validate_event(
        {"id": f"e-{body['id']}", "type": event_type, "timestamp": "2026-01-02T03:04:05.678Z", "body": body},
        "project",
    )
    assert not hasattr(ev, "status"), ev
    return ev


def test_rows_round_trip_with_json_booleans_io_and_nulls(engine):
    trace = merge_trace(
        None,
        [
            _event(
                "trace-create",
                {
                    "id": "t1",
                    "name": "chat",
                    "public": True,
                    "tags": ["a", "b"],
                    "metadata": {"k": {"n": [1, 2.5, None]}},
                    "input": {"q": "hi"},
                    "output": "plain text",
                    "userId": None,
                },
            )
        ],
        "p",
        1000,
    )
    obs = enrich_observation(
        merge_observation(
            None,
            [
                _event(
                    "generation-create",
                    {
                        "id": "o1",
                        "traceId": "t1",
                        "startTime": "2026-01-02T03:04:05.000Z",
                        "model": "gpt-4o",
                        "modelParameters": {"temperature": 0.2},
                        "usageDetails": {"input": 10, "output": 5},
                        "input": [{"role": "user", "content": "hi"}],
                        "output": None,
                    },
                )
            ],
            "p",
            1000,
            lambda: "x",
        ),
        PriceBook([]),
    )
    score = merge_score(
        None,
        [
            _event(
                "score-create",
                {"id": "s1", "traceId": "t1", "name": "q", "value": 0.5, "metadata": {"by": "test"}},
            )
        ],
        "p",
        1000,
        lambda _id: None,
    )
    with engine.begin() as conn:
        for kind, row in (("trace", trace), ("observation", obs), ("score", score)):
            tracing_writes.upsert_rows(conn, kind, [row])
    with engine.connect() as conn:
        for kind, row in (("trace", trace), ("observation", obs), ("score", score)):
            got = tracing_writes.get_rows(conn, kind, "p", [row["id"], "missing"])
            assert list(got) == [row["id"]]
            stored = got[row["id"]]
            assert {k: stored[k] for k in row} == row, kind
            # the types the merge relies on, not just equal values
            if kind == "trace":
                assert stored["public"] is True and stored["bookmarked"] is False
        assert tracing_writes.get_rows(conn, "trace", "other-project", ["t1"]) == {}


def test_get_rows_reads_long_id_lists_in_chunks(engine):
    rows = [merge_trace(None, [_event("trace-create", {"id": f"t{i}"})], "p", 1000) for i in range(1203)]
    with engine.begin() as conn:
        tracing_writes.upsert_rows(conn, "trace", rows)
    with engine.connect() as conn:
        got = tracing_writes.get_rows(conn, "trace", "p", [r["id"] for r in rows])
        assert len(got) == 1203
        assert conn.execute(sa.text("select count(*) from traces")).scalar() == 1203


def _observation(**fields):
    """A complete observation row as the writer builds it (every column set)."""
    row = {
        "project_id": "p",
        "id": "o1",
        "trace_id": "t1",
        "type": "GENERATION",
        "parent_observation_id": "root",
        "start_time": 1000,
        "end_time": 2000,
        "completion_start_time": 1500,
        "name": "gen",
        "metadata": {"k": [1, {"n": None}]},
        "level": "WARNING",
        "status_message": "slow",
        "version": "v1",
        "environment": "default",
        "input": {"q": 1},
        "output": "plain",
        "input_event_ts": 10,
        "output_event_ts": 11,
        "provided_model_name": "gpt-4o",
        "internal_model_id": "m1",
        "model_parameters": {"temperature": 0.5},
        "provided_usage_details": {"input": 3},
        "usage_details": {"input": 3, "output_cached": 2, "total": 5},
        "provided_cost_details": {},
        "cost_details": {"total": 0.25},
        "total_cost": 0.25,
        "prompt_id": "pr1",
        "prompt_name": "prompt",
        "prompt_version": 2,
        "usage_pricing_tier_id": "tier",
        "usage_pricing_tier_name": "T",
        "created_at": 1000,
        "updated_at": 1000,
        "last_event_ts": 11,
    }
    row.update(fields)
    return row


_NULLABLE_OBSERVATION_COLUMNS = (
    "parent_observation_id",
    "end_time",
    "completion_start_time",
    "name",
    "status_message",
    "version",
    "input",
    "output",
    "input_event_ts",
    "output_event_ts",
    "provided_model_name",
    "internal_model_id",
    "model_parameters",
    "total_cost",
    "prompt_id",
    "prompt_name",
    "prompt_version",
    "usage_pricing_tier_id",
    "usage_pricing_tier_name",
)


def _stored_tokens(conn, observation_id):
    return tuple(
        conn.execute(
            sa.text("select input_tokens, output_tokens, total_tokens from observations where id = :id"),
            {"id": observation_id},
        ).one()
    )


def test_upsert_replaces_values_with_nulls_and_back(engine):
    """NULLs are bound as NULL on insert and on the conflict update (SQLite binds None through an adapter)."""
    full = _observation()
    nulls = _observation(**dict.fromkeys(_NULLABLE_OBSERVATION_COLUMNS), updated_at=2000)
    for row in (full, nulls, full):
        with engine.begin() as conn:
            tracing_writes.upsert_rows(conn, "observation", [row])
        with engine.connect() as conn:
            assert tracing_writes.get_rows(conn, "observation", "p", ["o1"])["o1"] == row
            assert _stored_tokens(conn, "o1") == (3, 2, 5)
    with engine.connect() as conn:
        null_count = " + ".join(
            f'(CASE WHEN "{c}" IS NULL THEN 1 ELSE 0 END)' for c in _NULLABLE_OBSERVATION_COLUMNS
        )
        assert conn.execute(sa.text(f"select {null_count} from observations")).scalar() == 0
    with engine.begin() as conn:
        tracing_writes.upsert_rows(conn, "observation", [nulls])
    with engine.connect() as conn:
        assert conn.execute(sa.text(f"select {null_count} from observations")).scalar() == len(
            _NULLABLE_OBSERVATION_COLUMNS
        )


def test_upsert_writes_missing_columns_as_null(engine):
    partial = {k: v for k, v in _observation(id="o2").items() if k not in ("version", "prompt_id", "input")}
    mixed = [
        _observation(id="o3"),
        partial,
        _observation(id="o4", input=None),
    ]  # complete rows around a partial one
    with engine.begin() as conn:
        tracing_writes.upsert_rows(conn, "observation", mixed)
    with engine.connect() as conn:
        got = tracing_writes.get_rows(conn, "observation", "p", ["o2", "o3", "o4"])
    assert got["o2"] == {**partial, "version": None, "prompt_id": None, "input": None}
    assert got["o3"] == mixed[0] and got["o4"] == mixed[2]


def test_io_strings_are_stored_raw_and_other_values_as_json(engine):
    rows = [
        _observation(id=f"io{i}", input=value, output=None)
        for i, value in enumerate(["text", '{"looks": "like json"}', {"a": 1}, [1, "x"], 0, False, ""])
    ]
    with engine.begin() as conn:
        tracing_writes.upsert_rows(conn, "observation", rows)
        stored = dict(conn.execute(sa.text("select id, input from observations order by id")).all())
    assert stored == {
        "io0": "text",
        "io1": '{"looks": "like json"}',
        "io2": '{"a":1}',
        "io3": '[1,"x"]',
        "io4": "0",
        "io5": "false",
        "io6": "",
    }


def test_token_columns_follow_usage_details(engine):
    rows = [
        _observation(id="t-none", usage_details={}),
        _observation(id="t-sums", usage_details={"input": 4, "input_cached": 6, "output": 1, "total": 11}),
        _observation(id="t-odd", usage_details={"input": 2.5, "total": "7", "output": 3}),
    ]
    with engine.begin() as conn:
        tracing_writes.upsert_rows(conn, "observation", rows)
    with engine.connect() as conn:
        assert [_stored_tokens(conn, r["id"]) for r in rows] == [(0, 0, 0), (10, 1, 11), (0, 3, 0)]


def test_sessions_are_inserted_once_and_never_overwritten(engine):
    def session(sid, environment, created_at):
        return {
            "project_id": "p",
            "id": sid,
            "environment": environment,
            "bookmarked": False,
            "public": False,
            "created_at": created_at,
        }

    with engine.begin() as conn:
        tracing_writes.ensure_sessions(conn, [session("s1", "prod", 1)])
        conn.execute(sa.text("update trace_sessions set bookmarked = :t where id = 's1'"), {"t": True})
    with engine.begin() as conn:
        tracing_writes.ensure_sessions(conn, [session("s1", "dev", 2), session("s2", "dev", 2)])
        tracing_writes.ensure_sessions(conn, [])
    with engine.connect() as conn:
        got = conn.execute(
            sa.text("select id, environment, bookmarked, public, created_at from trace_sessions order by id")
        ).all()
    assert [tuple(r) for r in got] == [("s1", "prod", True, False, 1), ("s2", "dev", False, False, 2)]


def test_event_log_round_trip(engine):
    events = [
        {
            "project_id": "p",
            "entity_kind": "observation",
            "entity_created_at": 5,
            "entity_id": "o1",
            "event_id": f"e{i}",
            "event_type": "span-update",
            "event_ts": i,
            "body": {"id": "o1", "n": i, "z": None},
            "received_at": 9,
        }
        for i in range(3)
    ]
    with engine.begin() as conn:
        tracing_writes.insert_events(conn, events)
        tracing_writes.insert_events(
            conn, [{**events[0], "event_ts": 42}]
        )  # a re-sent event replaces its copy
    with engine.connect() as conn:
        got = tracing_writes.list_entity_events(conn, "p", "observation", [(5, "o1")])["o1"]
    assert sorted((e["event_id"], e["event_ts"], e["body"]["n"]) for e in got) == [
        ("e0", 42, 0),
        ("e1", 1, 1),
        ("e2", 2, 2),
    ]
    assert got[0]["body"]["z"] is None


def test_fast_adapters_bind_what_sqlite3_bound_before(tmp_path):
    """The None and bool adapters make_engine registers are process-wide: any sqlite3 connection still binds
    NULL for None and 1/0 for True/False."""
    import sqlite3

    make_engine(f"sqlite:///{tmp_path / 'a.db'}").dispose()
    assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)] is not None
    conn = sqlite3.connect(":memory:")
    try:
        assert conn.execute("select ? is null, typeof(?), ? = ?", (None, None, None, 1)).fetchone() == (
            1,
            "null",
            None,
        )
        assert conn.execute("select ?, typeof(?), ?, ? = 1", (True, True, False, True)).fetchone() == (
            1,
            "integer",
            0,
            1,
        )
        conn.execute("create table t (a, b not null)")
        conn.executemany("insert into t values (?, ?)", [(None, 1), (2, 3)])
        assert conn.execute("select count(*) from t where a is null").fetchone() == (1,)
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("insert into t values (1, ?)", (None,))
    finally:
        conn.close()


@pytest.mark.parametrize("count", [1, 2, 3, 7, 256, 257, 600])
def test_upserts_of_any_size_write_every_row(engine, count, monkeypatch):
    """On SQLite rows go in multi-row statements of power-of-two blocks; here also with a library that binds
    few variables per statement (blocks of two rows)."""
    rows = [
        merge_trace(None, [_event("trace-create", {"id": f"t{i}", "name": f"n{i}"})], "p", 1000)
        for i in range(count)
    ]
    with engine.begin() as conn:
        tracing_writes.upsert_rows(conn, "trace", rows[: count // 2])
        monkeypatch.setattr(tracing_writes, "_sqlite_variable_limit", 2 * len(traces.columns) + 1)
        tracing_writes.upsert_rows(conn, "trace", rows[count // 2 :])
    with engine.connect() as conn:
        got = tracing_writes.get_rows(conn, "trace", "p", [r["id"] for r in rows])
        assert [got[r["id"]]["name"] for r in rows] == [r["name"] for r in rows]
        assert conn.execute(sa.text("select count(*) from traces")).scalar() == count


def test_the_later_of_two_rows_with_one_key_wins(engine):
    """A re-sent event in the same commit, or a row given twice: written in order, within one statement too."""
    event = {
        "project_id": "p",
        "entity_kind": "trace",
        "entity_created_at": 1,
        "entity_id": "t1",
        "event_id": "e1",
        "event_type": "trace-create",
        "event_ts": 1,
        "body": {"v": 1},
        "received_at": 1,
    }
    rows = [
        merge_trace(None, [_event("trace-create", {"id": "t1", "name": name})], "p", 1000)
        for name in ("first", "second")
    ]
    with engine.begin() as conn:
        # four rows: one statement on SQLite
        tracing_writes.insert_events(
            conn,
            [event, {**event, "event_id": "e2"}, {**event, "body": {"v": 2}}, {**event, "event_id": "e3"}],
        )
        tracing_writes.upsert_rows(conn, "trace", rows)
    with engine.connect() as conn:
        logged = tracing_writes.list_entity_events(conn, "p", "trace", [(1, "t1")])["t1"]
        assert sorted((e["event_id"], e["body"]["v"]) for e in logged) == [("e1", 2), ("e2", 1), ("e3", 1)]
        assert tracing_writes.get_rows(conn, "trace", "p", ["t1"])["t1"]["name"] == "second"


def test_get_rows_with_id_lists_of_any_length(engine):
    rows = [merge_trace(None, [_event("trace-create", {"id": f"t{i}"})], "p", 1000) for i in range(5)]
    with engine.begin() as conn:
        tracing_writes.upsert_rows(conn, "trace", rows)
    with engine.connect() as conn:
        for ids in (["t0"], ["t0", "t1", "t2"], ["t4", "missing", "t4", "t3", "t2"], ["missing"]):
            got = tracing_writes.get_rows(conn, "trace", "p", ids)
            assert sorted(got) == sorted({i for i in ids if i != "missing"})


def test_json_with_non_string_keys_is_stored_with_the_keys_as_strings(engine):
    row = _observation(
        metadata={"a": {1: "one", 2.5: None}}, input={3: [1]}, provided_usage_details={"input": 1}
    )
    with engine.begin() as conn:
        tracing_writes.upsert_rows(conn, "observation", [row])
    with engine.connect() as conn:
        stored = tracing_writes.get_rows(conn, "observation", "p", ["o1"])["o1"]
    assert stored["metadata"] == {"a": {"1": "one", "2.5": None}} and stored["input"] == {"3": [1]}
    with engine.begin() as conn, pytest.raises(TypeError):  # what JSON cannot hold still fails the write
        tracing_writes.upsert_rows(conn, "observation", [_observation(id="o2", metadata={"big": 2**70})])


def _await_a_lock_wait(engine) -> None:
    """Until another session of the database waits for a lock (bounded: about 10 s)."""
    with engine.connect() as conn:
        for _ in range(200):
            waiting = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).scalar()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("no session waited for the row lock")


def test_two_writers_of_one_entity_on_postgres_take_turns(pg_database_url):
    """Two processes' writers: the second's read of a row the first has read waits for the first's commit and
    sees its result; its insert of a row the first created meanwhile writes nothing and hands the id back."""
    engine = make_engine(pg_database_url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        tracing_writes.upsert_rows(
            conn, "trace", [merge_trace(None, [_event("trace-create", {"id": "t-old"})], "p", 1000)]
        )
    first = engine.connect()
    first_tx = first.begin()
    stored = tracing_writes.get_rows(first, "trace", "p", ["t-old", "t-new"])
    assert list(stored) == ["t-old"]
    new = merge_trace(None, [_event("trace-create", {"id": "t-new", "name": "by first"})], "p", 1000)
    rows = [dict(stored["t-old"], name="by first"), new]
    assert tracing_writes.write_entity_rows(first, "trace", rows, {"t-new"}) == set()

    seen: dict = {}

    def second_writer() -> None:
        with engine.connect() as second, second.begin():
            seen["old"] = tracing_writes.get_rows(second, "trace", "p", ["t-old"])["t-old"]["name"]
            mine = merge_trace(
                None, [_event("trace-create", {"id": "t-new", "name": "by second"})], "p", 1000
            )
            seen["again"] = tracing_writes.write_entity_rows(second, "trace", [mine], {"t-new"})

    thread = threading.Thread(target=second_writer)
    thread.start()
    try:
        _await_a_lock_wait(engine)
    finally:
        first_tx.commit()
        first.close()
        thread.join(timeout=30)
    assert seen == {"old": "by first", "again": {"t-new"}}
    with engine.connect() as conn:
        assert tracing_writes.get_rows(conn, "trace", "p", ["t-new"])["t-new"]["name"] == "by first"
    engine.dispose()
