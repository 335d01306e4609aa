"""The project home dashboard's numbers against a small hand-computed dataset, on SQLite and Postgres.

Rows are written straight into the tables so every start/end time, token count and cost is known. The window is
[day D 06:00, day D+3 00:00) UTC; the expected values below are worked out by hand from the rows.
"""

from __future__ import annotations

import datetime as dt

import pytest

from lightfuse.services.tracing.dashboard import Dashboard
from lightfuse.store.sql import migrate
from lightfuse.store.sql.database import make_engine
from lightfuse.store.sql.tables import observations, traces
from lightfuse.store.sql.tracing import dashboard as analytics

DAY, HOUR = 86_400_000, 3_600_000
D = (dt.date(2024, 3, 10) - dt.date(1970, 1, 1)).days  # day number of 2024-03-10
T0 = D * DAY
FROM, TO = T0 + 6 * HOUR, T0 + 3 * DAY
PROJECT = "p-dash"
Q = (0.5, 0.95, 0.99)


def _trace(tid: str, ts: int, project: str = PROJECT) -> dict:
    return {
        "project_id": project,
        "id": tid,
        "timestamp": ts,
        "environment": "default",
        "public": False,
        "bookmarked": False,
        "tags": [],
        "metadata": {},
        "created_at": ts,
        "updated_at": ts,
        "last_event_ts": ts,
    }


def _obs(
    oid: str,
    tid: str,
    start: int,
    end: int | None,
    model: str | None = None,
    inp: int = 0,
    out: int = 0,
    total: int = 0,
    cost: float | None = None,
    project: str = PROJECT,
) -> dict:
    return {
        "project_id": project,
        "id": oid,
        "trace_id": tid,
        "type": "GENERATION" if model else "SPAN",
        "start_time": start,
        "end_time": end,
        "provided_model_name": model,
        "metadata": {},
        "level": "DEFAULT",
        "environment": "default",
        "provided_usage_details": {},
        "usage_details": {},
        "provided_cost_details": {},
        "cost_details": {},
        "input_tokens": inp,
        "output_tokens": out,
        "total_tokens": total,
        "total_cost": cost,
        "created_at": start,
        "updated_at": start,
        "last_event_ts": start,
    }


def _rows() -> tuple[list[dict], list[dict]]:
    d0, d1, d2 = T0, T0 + DAY, T0 + 2 * DAY
    trace_rows = [
        _trace("t0", d0 + 1 * HOUR),  # before the window
        _trace("t1", d0 + 7 * HOUR),
        _trace("t2", d1 + 1 * HOUR),
        _trace("t3", d2 + 2 * HOUR),
        _trace("t4", d2 + 3 * HOUR),  # no observations: counted, but no latency
        _trace("t5", T0 + 3 * DAY + HOUR),  # after the window (to is exclusive)
        _trace("x1", d1, project="other"),  # another project
    ]
    a, b, c = d0 + 7 * HOUR, d1 + 1 * HOUR, d2 + 2 * HOUR
    obs_rows = [
        _obs("o0", "t0", d0 + 1 * HOUR, d0 + 1 * HOUR + 10, "gpt-4o", 5, 5, 10, 9.0),  # before the window
        # t1: its first observation starts before the window, so it is outside the usage but inside the latency
        _obs("o10", "t1", d0 + 5 * HOUR, d0 + 5 * HOUR + 100),
        _obs("o1", "t1", a, a + 5000),
        _obs("o2", "t1", a + 100, a + 1100, "gpt-4o", 10, 5, 15, 0.5),
        _obs("o3", "t1", a + 200, a + 3200, "gpt-4o", 20, 10, 30, 1.0),
        # t2: an unfinished generation, and a span whose end lies before its start
        _obs("o4", "t2", b, b + 2000, "gpt-4o", 1, 2, 3, 0.25),
        _obs("o5", "t2", b + 10, None, "claude-3", 100, 0, 100, None),
        _obs("o6", "t2", b + 20, b + 20 - 500),
        _obs("o11", "t2", b + 30, None, "m-open"),  # a model without any finished observation
        # t3: a span with usage but no model (in the totals and days, not in the models)
        _obs("o7", "t3", c, c + 4000, "claude-3", 7, 3, 10, 2.0),
        _obs("o8", "t3", c + 1, c + 6001, "claude-3", 1, 1, 2, None),
        _obs("o9", "t3", c + 5, c + 10, None, 4, 0, 4, 0.1),
        _obs("o12", "t5", T0 + 3 * DAY + HOUR, T0 + 3 * DAY + HOUR + 50, "gpt-4o", 1, 1, 2, 5.0),  # after
        _obs("x1o", "x1", d1, d1 + 10, "gpt-4o", 1, 1, 2, 7.0, project="other"),
    ]
    return trace_rows, obs_rows


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'd.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_database_url")
    )
    eng = make_engine(url)
    migrate.upgrade(eng)
    trace_rows, obs_rows = _rows()
    with eng.begin() as conn:
        conn.execute(traces.insert(), trace_rows)
        conn.execute(observations.insert(), obs_rows)
    yield eng
    eng.dispose()


# by hand, window [D 06:00, D+3):
#   day D:   traces t1;     observations o1 o2 o3:      in 30,  out 15, total 45,  cost 1.5
#   day D+1: traces t2;     observations o4 o5 o6 o11:  in 101, out 2,  total 103, cost 0.25
#   day D+2: traces t3 t4;  observations o7 o8 o9:      in 12,  out 4,  total 16,  cost 2.1
EXPECTED_DAYS = [
    {"day": D, "traces": 1, "observations": 3, "totalTokens": 45, "totalCost": 1.5},
    {"day": D + 1, "traces": 1, "observations": 4, "totalTokens": 103, "totalCost": 0.25},
    {"day": D + 2, "traces": 2, "observations": 3, "totalTokens": 16, "totalCost": 2.1},
]
EXPECTED_TOTALS = {
    "traces": 4,
    "observations": 10,
    "inputTokens": 143,
    "outputTokens": 21,
    "totalTokens": 164,
    "totalCost": 3.85,
}
# models, most expensive first: claude-3 o5 o7 o8 (cost 2.0), gpt-4o o2 o3 o4 (1.75), m-open o11 (0)
EXPECTED_MODELS = [
    {
        "model": "claude-3",
        "observations": 3,
        "inputTokens": 108,
        "outputTokens": 4,
        "totalTokens": 112,
        "totalCost": 2.0,
    },
    {
        "model": "gpt-4o",
        "observations": 3,
        "inputTokens": 31,
        "outputTokens": 17,
        "totalTokens": 48,
        "totalCost": 1.75,
    },
    {
        "model": "m-open",
        "observations": 1,
        "inputTokens": 0,
        "outputTokens": 0,
        "totalTokens": 0,
        "totalCost": 0.0,
    },
]
# durations of finished observations, continuous percentiles (position q * (n - 1), linear between neighbours):
#   gpt-4o [1.0, 2.0, 3.0]:  p50 at 1 -> 2.0; p95 at 1.9 -> 2 + 0.9 * 1 = 2.9; p99 at 1.98 -> 2.98
#   claude-3 [4.0, 6.0] (o5 unfinished): p50 at 0.5 -> 5.0; p95 -> 4 + 0.95 * 2 = 5.9; p99 -> 5.98
EXPECTED_MODEL_LATENCY = {
    "claude-3": {"p50": 5.0, "p95": 5.9, "p99": 5.98},
    "gpt-4o": {"p50": 2.0, "p95": 2.9, "p99": 2.98},
    "m-open": {"p50": None, "p95": None, "p99": None},
}
# trace latency, earliest start/end to latest end/start of all the trace's observations:
#   t1: o10 starts at 05:00, o1 ends at 07:00 + 5 s -> 7205 s; t2: o6 ends 480 ms before o4 starts, o4 lasts 2 s
#   -> 2.48 s; t3: c .. c + 6001 ms -> 6.001 s; t4 has no observations. Sorted [2.48, 6.001, 7205]:
EXPECTED_TRACE_LATENCY = {
    "p50": 6.001,
    "p95": 6.001 + 0.9 * (7205 - 6.001),
    "p99": 6.001 + 0.98 * (7205 - 6.001),
}


def _approx(value):
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_approx(v) for v in value]
    return pytest.approx(value, rel=1e-12, abs=1e-9) if isinstance(value, float) else value


def test_summary_matches_hand_computed_numbers(engine):
    summary = Dashboard(engine).summary(PROJECT, FROM, TO)
    assert summary["totals"] == _approx(EXPECTED_TOTALS)
    days = [{k: v for k, v in d.items() if k != "date"} for d in summary["byDay"]]
    assert days == _approx(EXPECTED_DAYS)
    assert [d["date"] for d in summary["byDay"]] == ["2024-03-10", "2024-03-11", "2024-03-12"]
    models = [{k: v for k, v in m.items() if k != "latency"} for m in summary["byModel"]]
    assert models == _approx(EXPECTED_MODELS)
    assert {m["model"]: m["latency"] for m in summary["byModel"]} == _approx(EXPECTED_MODEL_LATENCY)
    assert summary["traceLatency"] == _approx(EXPECTED_TRACE_LATENCY)


def test_long_windows_group_in_one_statement_with_the_same_numbers(engine, monkeypatch):
    # more days than MAX_DAY_QUERIES: one GROUP BY (day, model) statement instead of statements per day
    with engine.connect() as conn:
        per_day = analytics.window_usage(conn, PROJECT, FROM, TO, Q)
        monkeypatch.setattr(analytics, "MAX_DAY_QUERIES", 2)
        grouped = analytics.window_usage(conn, PROJECT, FROM, TO, Q)
    assert grouped.days == _approx(per_day.days)
    assert grouped.totals == _approx(per_day.totals)
    assert grouped.models == _approx(per_day.models)
    assert grouped.model_latency == _approx(per_day.model_latency)


def test_open_windows_and_empty_projects(engine):
    with engine.connect() as conn:
        everything = analytics.window_usage(conn, PROJECT, None, None, Q)
        assert everything.totals["traces"] == 6 and everything.totals["observations"] == 13
        assert everything.totals["totalCost"] == pytest.approx(3.85 + 9.0 + 5.0)
        # all of gpt-4o: o0 10 ms, o2 1 s, o3 3 s, o4 2 s, o12 50 ms -> sorted [0.01, 0.05, 1, 2, 3]
        assert everything.model_latency["gpt-4o"] == _approx({0.5: 1.0, 0.95: 2.8, 0.99: 2.96})
        from_only = analytics.window_usage(conn, PROJECT, T0 + 2 * DAY, None, Q)
        assert [d["day"] for d in from_only.days] == [D + 2, D + 3]
        assert from_only.totals["observations"] == 4
        assert analytics.trace_latency_percentiles(conn, PROJECT, T0 + 2 * DAY, None, Q)[
            0.5
        ] == pytest.approx((6.001 + 0.05) / 2)  # t3 and t5 (t4 has none)
        empty = analytics.window_usage(conn, "nobody", None, None, Q)
        assert (empty.days, empty.models, empty.model_latency) == ([], [], {})
        assert empty.totals == {
            "traces": 0,
            "observations": 0,
            "inputTokens": 0,
            "outputTokens": 0,
            "totalTokens": 0,
            "totalCost": 0.0,
        }
        assert analytics.trace_latency_percentiles(conn, "nobody", None, None, Q) == dict.fromkeys(Q)


def _percentile_cont(sorted_values: list[float], q: float) -> float:
    """The definition (Postgres' percentile_cont): linear interpolation between the neighbouring ranks."""
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def test_order_statistics_match_sorting():
    values = [5, 3, 3, 9, -2, 3, 7, 7, 0]
    ordered = sorted(values)
    positions = list(range(len(values)))
    assert analytics._order_statistics(values, positions) == dict(enumerate(ordered))
    for q in (0.0, 0.1, 0.5, 0.95, 0.99, 1.0):
        expected = _percentile_cont([v / 1000.0 for v in ordered], q)
        assert analytics._seconds_percentiles(values, (q,))[q] == expected
