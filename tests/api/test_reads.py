"""Trace, observation, session and daily-metrics read APIs, in-process on SQLite and Postgres.

One app per backend for the module; the data set is ingested once through POST /api/public/ingestion and the
tests only read it (the delete tests ingest and remove their own traces).
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from lightfuse.api import metrics as metrics_api
from lightfuse.api import observations as observations_api
from lightfuse.api import sessions as sessions_api
from lightfuse.api import traces as traces_api
from lightfuse.app import Services, build_services, create_app
from lightfuse.config import InitSettings, load_settings

PG_ADMIN_URL = os.environ.get("LIGHTFUSE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PROJECT = "proj-reads"
GPT4O_INPUT, GPT4O_OUTPUT = 2.5e-06, 1e-05  # built-in default-tier prices per token


@dataclass
class Env:
    client: TestClient
    services: Services
    auth: tuple[str, str]
    other_project: str
    other_auth: tuple[str, str]

    def get(self, path: str, auth: tuple[str, str] | None = None, **params: Any):
        return self.client.get(path, params=params, auth=auth or self.auth)

    def ok(self, path: str, **params: Any) -> Any:
        resp = self.get(path, **params)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def ids(self, path: str, **params: Any) -> list[str]:
        return [item["id"] for item in self.ok(path, **params)["data"]]

    def ingest(self, events: list[dict], auth: tuple[str, str] | None = None) -> None:
        resp = self.client.post("/api/public/ingestion", json={"batch": events}, auth=auth or self.auth)
        assert resp.status_code == 207, resp.text
        assert resp.json()["errors"] == [], resp.text


def ev(type_: str, body: dict, ts: str = "2024-01-01T00:00:00.000Z") -> dict:
    return {"id": str(uuid.uuid4()), "type": type_, "timestamp": ts, "body": body}


DATASET = [
    ev(
        "trace-create",
        {
            "id": "t1",
            "timestamp": "2024-01-01T10:00:00.000Z",
            "name": "chat",
            "userId": "u1",
            "sessionId": "s1",
            "release": "r1",
            "version": "v1",
            "tags": ["a", "b"],
            "environment": "production",
            "metadata": {"tier": "gold"},
            "input": {"q": "hi"},
            "output": "hello",
            "public": True,
        },
    ),
    ev(
        "span-create",
        {
            "id": "sp1",
            "traceId": "t1",
            "name": "root",
            "startTime": "2024-01-01T10:00:00.000Z",
            "endTime": "2024-01-01T10:00:03.000Z",
            "environment": "production",
        },
    ),
    ev(
        "generation-create",
        {
            "id": "g1",
            "traceId": "t1",
            "parentObservationId": "sp1",
            "name": "llm",
            "startTime": "2024-01-01T10:00:00.500Z",
            "completionStartTime": "2024-01-01T10:00:01.000Z",
            "endTime": "2024-01-01T10:00:02.500Z",
            "model": "gpt-4o",
            "modelParameters": {"temperature": 0.5},
            "usageDetails": {"input": 1000, "output": 200},
            "metadata": {"long": "x" * 300, "short": "s"},
            "input": [{"role": "user", "content": "hi"}],
            "output": "hello there",
            "environment": "production",
        },
    ),
    ev(
        "score-create",
        {
            "id": "sc1",
            "traceId": "t1",
            "name": "quality",
            "value": 0.9,
            "dataType": "NUMERIC",
            "environment": "production",
        },
    ),
    ev(
        "score-create",
        {
            "id": "sc2",
            "traceId": "t1",
            "name": "ok",
            "value": 1,
            "dataType": "BOOLEAN",
            "environment": "production",
        },
    ),
    ev(
        "trace-create",
        {
            "id": "t2",
            "timestamp": "2024-01-02T12:00:00.000Z",
            "name": "search",
            "userId": "u2",
            "sessionId": "s1",
            "tags": ["b"],
        },
    ),
    ev(
        "event-create",
        {
            "id": "ev1",
            "traceId": "t2",
            "name": "oops",
            "startTime": "2024-01-02T12:00:01.000Z",
            "level": "ERROR",
            "statusMessage": "boom",
        },
    ),
    ev("trace-create", {"id": "t3", "timestamp": "2024-01-03T00:00:00.000Z", "name": "chat", "userId": "u1"}),
]
G1_COST = 1000 * GPT4O_INPUT + 200 * GPT4O_OUTPUT


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def env(request, tmp_path_factory) -> Iterator[Env]:
    data_dir = tmp_path_factory.mktemp(f"reads-{request.param}") / "data"
    public_key, secret_key = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
    init = InitSettings(
        org_id="org-reads", project_id=PROJECT, project_public_key=public_key, project_secret_key=secret_key
    )
    overrides: dict[str, Any] = {"data_dir": data_dir, "database_url": None, "init": init}
    db_name = None
    if request.param == "postgres":
        db_name = f"lf_reads_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{db_name}"')
        admin.dispose()
        base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql+psycopg://", "postgresql://")
        overrides.update(database_url=f"{base}/{db_name}", salt="test-salt", nextauth_secret="test-secret")
    services = build_services(load_settings(**overrides))
    app = create_app(services)
    registered = {getattr(r, "path", None) for r in app.routes}
    for module in (traces_api, observations_api, sessions_api, metrics_api):
        if not {r.path for r in module.router.routes} <= registered:
            app.include_router(module.router)
    other_org = services.accounts.create_organization("Other Org")
    other_project = services.accounts.create_project(other_org, "Other")
    other_key = services.keys.create_key(other_project)
    try:
        with TestClient(app) as client:
            e = Env(
                client,
                services,
                (public_key, secret_key),
                other_project,
                (other_key.public_key, other_key.secret_key),
            )
            e.ingest(DATASET)
            e.ingest(
                [
                    ev(
                        "trace-create",
                        {"id": "p2-trace", "timestamp": "2024-01-01T00:00:00.000Z", "sessionId": "s-other"},
                    )
                ],
                auth=e.other_auth,
            )
            yield e
    finally:
        services.engine.dispose()
        if db_name:
            admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            admin.dispose()


# --- traces -------------------------------------------------------------------------------------------------


def test_trace_list_shape(env):
    body = env.ok("/api/public/traces")
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 3, "totalPages": 1}
    assert [t["id"] for t in body["data"]] == ["t3", "t2", "t1"]
    t1 = body["data"][2]
    assert t1["timestamp"] == "2024-01-01T10:00:00.000Z"
    assert t1["htmlPath"] == f"/project/{PROJECT}/traces/t1"
    assert t1["projectId"] == PROJECT
    assert (t1["name"], t1["userId"], t1["sessionId"], t1["release"], t1["version"]) == (
        "chat",
        "u1",
        "s1",
        "r1",
        "v1",
    )
    assert t1["input"] == {"q": "hi"} and t1["output"] == "hello"
    assert t1["metadata"] == {"tier": "gold"}
    assert t1["tags"] == ["a", "b"] and t1["public"] is True and t1["environment"] == "production"
    assert t1["latency"] == pytest.approx(3.0)
    assert t1["totalCost"] == pytest.approx(G1_COST)
    assert sorted(t1["observations"]) == ["g1", "sp1"]
    assert sorted(t1["scores"]) == ["sc1", "sc2"]
    assert {"bookmarked", "createdAt", "updatedAt", "externalId"} <= set(t1)
    t3 = body["data"][0]
    assert (t3["latency"], t3["totalCost"], t3["observations"], t3["scores"]) == (0, 0, [], [])
    assert t3["sessionId"] is None and t3["tags"] == [] and t3["environment"] == "default"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"userId": "u1"}, ["t3", "t1"]),
        ({"name": "search"}, ["t2"]),
        ({"sessionId": "s1"}, ["t2", "t1"]),
        ({"release": "r1"}, ["t1"]),
        ({"version": "v1"}, ["t1"]),
        ({"tags": "a,b"}, ["t1"]),
        ({"tags": ["b", "a"]}, ["t1"]),
        ({"tags": "b"}, ["t2", "t1"]),
        ({"environment": "production"}, ["t1"]),
        ({"environment": "production,default"}, ["t3", "t2", "t1"]),
        ({"environment": ["default", "nope"]}, ["t3", "t2"]),
        ({"fromTimestamp": "2024-01-02T12:00:00Z"}, ["t3", "t2"]),
        ({"toTimestamp": "2024-01-02T12:00:00.000Z"}, ["t1"]),
        ({"fromTimestamp": "2024-01-01T11:00:00+01:00", "toTimestamp": "2024-01-03T00:00:00Z"}, ["t2", "t1"]),
        ({"orderBy": "timestamp.asc"}, ["t1", "t2", "t3"]),
        ({"orderBy": "name.asc"}, ["t1", "t3", "t2"]),
        ({"orderBy": "name.desc"}, ["t2", "t3", "t1"]),
        ({"orderBy": "sessionId.asc"}, ["t1", "t2", "t3"]),
        (
            {
                "filter": json.dumps(
                    [{"type": "number", "column": "totalCost", "operator": ">", "value": 0.001}]
                )
            },
            ["t1"],
        ),
        (
            {
                "filter": json.dumps(
                    [{"type": "string", "column": "level", "operator": "=", "value": "ERROR"}]
                )
            },
            ["t2"],
        ),
        (
            {
                "filter": json.dumps(
                    [
                        {
                            "type": "stringObject",
                            "column": "metadata",
                            "key": "tier",
                            "operator": "=",
                            "value": "gold",
                        }
                    ]
                )
            },
            ["t1"],
        ),
        (
            {
                "filter": json.dumps(
                    [
                        {
                            "type": "numberObject",
                            "column": "scores_avg",
                            "key": "quality",
                            "operator": ">=",
                            "value": 0.5,
                        }
                    ]
                )
            },
            ["t1"],
        ),
        # the advanced filter on the same column replaces the simple parameter; other columns still apply
        (
            {
                "name": "search",
                "filter": json.dumps(
                    [{"type": "string", "column": "name", "operator": "=", "value": "chat"}]
                ),
            },
            ["t3", "t1"],
        ),
        (
            {
                "userId": "u1",
                "filter": json.dumps(
                    [{"type": "string", "column": "name", "operator": "=", "value": "search"}]
                ),
            },
            [],
        ),
    ],
)
def test_trace_list_filters_and_order(env, params, expected):
    assert env.ids("/api/public/traces", **params) == expected


def test_trace_list_pagination(env):
    first = env.ok("/api/public/traces", limit=2)
    assert [t["id"] for t in first["data"]] == ["t3", "t2"]
    assert first["meta"] == {"page": 1, "limit": 2, "totalItems": 3, "totalPages": 2}
    assert env.ids("/api/public/traces", limit=2, page=2) == ["t1"]
    assert env.ids("/api/public/traces", limit=2, page=3) == []
    assert env.ids("/api/public/traces", page="", limit="") == ["t3", "t2", "t1"]
    assert env.get("/api/public/traces", limit=101).status_code == 400
    assert env.get("/api/public/traces", page=0).status_code == 400


def test_trace_list_fields_sentinels(env):
    core = {t["id"]: t for t in env.ok("/api/public/traces", fields="core")["data"]}["t1"]
    assert core["latency"] == -1 and core["totalCost"] == -1
    assert core["observations"] == [] and core["scores"] == []
    assert core["input"] is None and core["output"] is None and core["metadata"] == {}
    assert core["name"] == "chat" and core["htmlPath"].endswith("/traces/t1")
    some = {t["id"]: t for t in env.ok("/api/public/traces", fields="metrics, scores,bogus")["data"]}["t1"]
    assert some["latency"] == pytest.approx(3.0) and sorted(some["scores"]) == ["sc1", "sc2"]
    assert some["observations"] == [] and some["input"] is None
    io = {t["id"]: t for t in env.ok("/api/public/traces", fields="io")["data"]}["t1"]
    assert io["input"] == {"q": "hi"} and io["metadata"] == {"tier": "gold"} and io["latency"] == -1


def test_trace_list_metrics_window_with_from_timestamp(env):
    # observations starting more than an hour before fromTimestamp are left out of the metrics
    t1 = env.ok("/api/public/traces", fromTimestamp="2024-01-01T11:00:00.600Z", userId="u1")["data"]
    assert [t["id"] for t in t1] == ["t3"]
    t1 = env.ok(
        "/api/public/traces",
        fromTimestamp="2024-01-01T10:00:00.000Z",
        name="chat",
        toTimestamp="2024-01-01T10:00:00.001Z",
    )["data"][0]
    assert t1["latency"] == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"filter": "[{oops"}, "Invalid JSON in filter parameter"),
        (
            {"filter": json.dumps([{"type": "string", "column": "nope", "operator": "=", "value": "x"}])},
            "Invalid filter column 'nope'",
        ),
        (
            {"filter": json.dumps([{"type": "string", "column": "name", "operator": "~", "value": "x"}])},
            "Invalid operator",
        ),
        ({"orderBy": "cost.desc"}, "Invalid orderBy field 'cost'"),
        ({"orderBy": "timestamp"}, "Invalid orderBy"),
        ({"fromTimestamp": "2024-01-01T00:00:00"}, "timezone"),
    ],
)
def test_trace_list_bad_requests(env, params, message):
    resp = env.get("/api/public/traces", **params)
    assert resp.status_code == 400
    body = resp.json()
    assert message in body["message"] and body["error"] == "InvalidRequestError"


def test_trace_detail(env):
    t1 = env.ok("/api/public/traces/t1")
    assert t1["id"] == "t1" and t1["htmlPath"] == f"/project/{PROJECT}/traces/t1"
    assert t1["latency"] == pytest.approx(3.0)
    assert t1["totalCost"] == pytest.approx(G1_COST)
    obs = {o["id"]: o for o in t1["observations"]}
    assert set(obs) == {"sp1", "g1"}
    assert obs["g1"]["inputPrice"] == pytest.approx(GPT4O_INPUT) and obs["g1"]["totalPrice"] == 0
    assert obs["sp1"]["inputPrice"] == 0 and obs["sp1"]["modelId"] is None  # 0, not null, in the detail
    scores = {s["id"]: s for s in t1["scores"]}
    assert scores["sc1"]["value"] == pytest.approx(0.9) and scores["sc1"]["dataType"] == "NUMERIC"
    assert scores["sc1"]["stringValue"] is None  # numeric: Langfuse sends the key as null (issue #15)
    assert scores["sc2"]["stringValue"] == "True" and scores["sc2"]["value"] == 1
    assert scores["sc1"]["traceId"] == "t1" and scores["sc1"]["timestamp"].endswith("Z")

    core = env.ok("/api/public/traces/t1", fields="core")
    assert (core["latency"], core["totalCost"], core["observations"], core["scores"]) == (-1, -1, [], [])
    assert core["input"] is None and core["metadata"] == {}

    # no end times and a single observation: latency 0
    assert env.ok("/api/public/traces/t2")["latency"] == 0


def test_trace_not_found_and_project_isolation(env):
    resp = env.get("/api/public/traces/nope")
    assert resp.status_code == 404
    assert resp.json() == {
        "message": "Trace nope not found within authorized project",
        "error": "LangfuseNotFoundError",
    }
    assert env.get("/api/public/traces/t1", auth=env.other_auth).status_code == 404
    assert env.get("/api/public/traces/p2-trace").status_code == 404
    other = env.get("/api/public/traces", auth=env.other_auth).json()
    assert [t["id"] for t in other["data"]] == ["p2-trace"]
    assert other["data"][0]["htmlPath"] == f"/project/{env.other_project}/traces/p2-trace"
    assert env.get("/api/public/observations/g1", auth=env.other_auth).status_code == 404
    assert env.get("/api/public/observations", auth=env.other_auth).json()["data"] == []
    assert env.get("/api/public/v2/observations", auth=env.other_auth).json()["data"] == []
    assert [s["id"] for s in env.get("/api/public/sessions", auth=env.other_auth).json()["data"]] == [
        "s-other"
    ]
    assert env.get("/api/public/sessions/s1", auth=env.other_auth).status_code == 404
    # deleting through another project's key leaves the trace alone
    assert env.client.delete("/api/public/traces/t1", auth=env.other_auth).status_code == 200
    assert env.get("/api/public/traces/t1").status_code == 200


def test_unauthenticated(env):
    for path in (
        "/api/public/traces",
        "/api/public/observations",
        "/api/public/v2/observations",
        "/api/public/sessions",
        "/api/public/metrics/daily",
        "/api/public/traces/t1",
    ):
        assert env.client.get(path).status_code == 401, path


def test_delete_traces(env):
    def make(trace_id: str) -> list[dict]:
        return [
            ev("trace-create", {"id": trace_id, "timestamp": "2023-06-01T00:00:00.000Z", "name": "doomed"}),
            ev(
                "span-create",
                {"id": f"{trace_id}-span", "traceId": trace_id, "startTime": "2023-06-01T00:00:00.000Z"},
            ),
            ev("score-create", {"id": f"{trace_id}-score", "traceId": trace_id, "name": "q", "value": 1}),
        ]

    env.ingest(make("del-1") + make("del-2") + make("del-3"))
    assert env.ids("/api/public/traces", name="doomed", orderBy="id.asc") == ["del-1", "del-2", "del-3"]

    resp = env.client.delete("/api/public/traces/del-1", auth=env.auth)
    assert resp.status_code == 200 and resp.json() == {"message": "Trace deleted successfully"}
    assert env.get("/api/public/traces/del-1").status_code == 404
    assert env.get("/api/public/observations/del-1-span").status_code == 404

    for bad in (
        {"traceIds": []},
        {"traceIds": "del-2"},
        {"traceIds": ["del-2"], "extra": 1},
        {"traceIds": [str(i) for i in range(1001)]},
        [1],
    ):
        assert env.client.request("DELETE", "/api/public/traces", json=bad, auth=env.auth).status_code == 400
    resp = env.client.request(
        "DELETE", "/api/public/traces", json={"traceIds": ["del-2", "del-3", "ghost"]}, auth=env.auth
    )
    assert resp.status_code == 200 and resp.json() == {"message": "Traces deleted successfully"}
    assert env.ids("/api/public/traces", name="doomed") == []
    assert env.ok("/api/public/traces")["meta"]["totalItems"] == 3


# --- observations -------------------------------------------------------------------------------------------


def test_observation_list_v1(env):
    body = env.ok("/api/public/observations")
    assert [o["id"] for o in body["data"]] == ["ev1", "g1", "sp1"]
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 3, "totalPages": 1}
    for params, expected in [
        ({"traceId": "t1"}, ["g1", "sp1"]),
        ({"type": "GENERATION"}, ["g1"]),
        ({"name": "oops"}, ["ev1"]),
        ({"userId": "u2"}, ["ev1"]),
        ({"level": "ERROR"}, ["ev1"]),
        ({"parentObservationId": "sp1"}, ["g1"]),
        ({"environment": "production"}, ["g1", "sp1"]),
        ({"fromStartTime": "2024-01-01T10:00:00.500Z"}, ["ev1", "g1"]),
        ({"toStartTime": "2024-01-01T10:00:00.500Z"}, ["sp1"]),
        ({"limit": 1, "page": 2}, ["g1"]),
        (
            {"filter": json.dumps([{"type": "number", "column": "latency", "operator": ">", "value": 2.5}])},
            ["sp1"],
        ),
        (
            {
                "filter": json.dumps(
                    [{"type": "arrayOptions", "column": "traceTags", "operator": "any of", "value": ["a"]}]
                )
            },
            ["g1", "sp1"],
        ),
        (
            {
                "type": "SPAN",
                "filter": json.dumps(
                    [{"type": "string", "column": "type", "operator": "=", "value": "EVENT"}]
                ),
            },
            ["ev1"],
        ),
    ]:
        assert env.ids("/api/public/observations", **params) == expected, params
    assert env.get("/api/public/observations", filter="nope").status_code == 400


def test_observation_view_v1(env):
    g1 = env.ok("/api/public/observations/g1")
    assert g1["traceId"] == "t1" and g1["parentObservationId"] == "sp1" and g1["type"] == "GENERATION"
    assert g1["startTime"] == "2024-01-01T10:00:00.500Z" and g1["endTime"] == "2024-01-01T10:00:02.500Z"
    assert g1["completionStartTime"] == "2024-01-01T10:00:01.000Z"
    assert g1["latency"] == pytest.approx(2.0) and g1["timeToFirstToken"] == pytest.approx(0.5)
    assert g1["model"] == "gpt-4o" and g1["modelId"] and g1["modelParameters"] == {"temperature": 0.5}
    assert g1["usageDetails"] == {"input": 1000, "output": 200, "total": 1200}
    # the legacy usage object sends its nullable cost keys too (issue #15: no key Langfuse sends may be missing)
    assert g1["usage"] == {
        "unit": "TOKENS",
        "input": 1000,
        "output": 200,
        "total": 1200,
        "inputCost": pytest.approx(1000 * GPT4O_INPUT),
        "outputCost": pytest.approx(200 * GPT4O_OUTPUT),
        "totalCost": pytest.approx(G1_COST),
    }
    assert (g1["unit"], g1["promptTokens"], g1["completionTokens"], g1["totalTokens"]) == (
        "TOKENS",
        1000,
        200,
        1200,
    )
    assert g1["inputPrice"] == pytest.approx(GPT4O_INPUT) and g1["outputPrice"] == pytest.approx(GPT4O_OUTPUT)
    assert g1["totalPrice"] is None
    assert g1["calculatedInputCost"] == pytest.approx(1000 * GPT4O_INPUT)
    assert g1["calculatedOutputCost"] == pytest.approx(200 * GPT4O_OUTPUT)
    assert g1["calculatedTotalCost"] == pytest.approx(G1_COST)
    assert g1["input"] == [{"role": "user", "content": "hi"}] and g1["output"] == "hello there"
    assert g1["metadata"]["short"] == "s" and len(g1["metadata"]["long"]) == 300
    assert g1["level"] == "DEFAULT" and g1["environment"] == "production"

    sp1 = env.ok("/api/public/observations/sp1")
    assert sp1["calculatedInputCost"] is None and sp1["calculatedTotalCost"] == 0
    assert sp1["usage"] == {
        "unit": "TOKENS",
        "input": 0,
        "output": 0,
        "total": 0,
        "inputCost": None,
        "outputCost": None,
        "totalCost": None,
    }
    assert sp1["inputPrice"] is None and sp1["timeToFirstToken"] is None

    resp = env.get("/api/public/observations/nope")
    assert resp.status_code == 404 and resp.json()["error"] == "LangfuseNotFoundError"


def test_observations_v2_default_fields(env):
    body = env.ok("/api/public/v2/observations")
    assert [o["id"] for o in body["data"]] == ["ev1", "g1", "sp1"]
    assert body["meta"] == {}
    g1 = body["data"][1]
    assert set(g1) == {
        "id",
        "traceId",
        "startTime",
        "endTime",
        "projectId",
        "parentObservationId",
        "type",
        "name",
        "level",
        "statusMessage",
        "version",
        "environment",
        "bookmarked",
        "public",
        "userId",
        "sessionId",
        "isRootObservation",
        "modelId",
        "inputPrice",
        "outputPrice",
        "totalPrice",
    }
    assert g1["userId"] == "u1" and g1["sessionId"] == "s1" and g1["public"] is True
    assert g1["isRootObservation"] is False and body["data"][2]["isRootObservation"] is True
    assert (g1["modelId"], g1["inputPrice"], g1["outputPrice"], g1["totalPrice"]) == (None, None, None, None)


def test_observations_v2_field_groups(env):
    fields = "core,basic,time,io,metadata,model,usage,prompt,metrics,trace_context"
    data = {o["id"]: o for o in env.ok("/api/public/v2/observations", fields=fields)["data"]}
    g1 = data["g1"]
    assert g1["input"] == '[{"role":"user","content":"hi"}]'  # raw text, never parsed
    assert g1["output"] == "hello there"
    assert g1["metadata"]["long"] == "x" * 200 and g1["metadata"]["short"] == "s"
    assert g1["providedModelName"] == "gpt-4o" and g1["internalModelId"] == g1["modelId"]
    assert g1["inputPrice"] == "0.0000025" and g1["outputPrice"] == "0.00001" and g1["totalPrice"] is None
    assert g1["usageDetails"]["total"] == 1200 and g1["totalCost"] == pytest.approx(G1_COST)
    assert g1["latency"] == pytest.approx(2.0) and g1["timeToFirstToken"] == pytest.approx(0.5)
    assert g1["traceName"] == "chat" and g1["tags"] == ["a", "b"] and g1["release"] == "r1"
    assert g1["completionStartTime"] == "2024-01-01T10:00:01.000Z" and g1["createdAt"].endswith("Z")
    assert {"promptId", "promptName", "promptVersion"} <= set(g1)
    assert data["ev1"]["input"] is None and data["ev1"]["modelId"] is None

    expanded = env.ok("/api/public/v2/observations", fields="metadata", expandMetadata="long", traceId="t1")
    assert {o["id"]: o for o in expanded["data"]}["g1"]["metadata"]["long"] == "x" * 300
    assert "name" not in expanded["data"][0]  # core only when basic is not asked for


def test_observations_v2_cursor(env):
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        body = env.ok("/api/public/v2/observations", **params)
        seen += [o["id"] for o in body["data"]]
        pages += 1
        cursor = body["meta"].get("cursor")
        if not cursor:
            break
    assert seen == ["ev1", "g1", "sp1"] and pages == 3
    decoded = json.loads(base64.b64decode(env.ok("/api/public/v2/observations", limit=1)["meta"]["cursor"]))
    assert decoded == {"lastStartTimeTo": "2024-01-02T12:00:01.000Z", "lastTraceId": "t2", "lastId": "ev1"}
    assert env.ok("/api/public/v2/observations", limit=2)["meta"]["cursor"]
    assert env.ok("/api/public/v2/observations", limit=3)["meta"] == {}
    assert env.ok("/api/public/v2/observations", limit=0)["data"] == []
    for bad in (
        "not base64!",
        base64.b64encode(b"[1]").decode(),
        base64.b64encode(b'{"lastId": 1}').decode(),
    ):
        resp = env.get("/api/public/v2/observations", cursor=bad)
        assert resp.status_code == 400 and resp.json()["message"] == "Invalid cursor format"
    assert env.get("/api/public/v2/observations", limit=1001).status_code == 400


def test_observations_v2_filters(env):
    for params, expected in [
        ({"parentObservationId": ""}, ["ev1", "sp1"]),
        ({"parentObservationId": "sp1"}, ["g1"]),
        ({"isRootObservation": "false"}, ["g1"]),
        ({"isRootObservation": "true"}, ["ev1", "sp1"]),
        ({"sessionId": "s1", "type": "EVENT"}, ["ev1"]),
        ({"userId": "u1", "level": "DEFAULT"}, ["g1", "sp1"]),
        ({"environment": "default"}, ["ev1"]),
        (
            {
                "filter": json.dumps(
                    [{"type": "string", "column": "input", "operator": "matches", "value": "ROLE"}]
                )
            },
            ["g1"],
        ),
        (
            {
                "filter": json.dumps(
                    [
                        {"type": "string", "column": "output", "operator": "matches", "value": "there"},
                        {"type": "string", "column": "output", "operator": "contains", "value": "hello"},
                    ]
                )
            },
            ["g1"],
        ),
    ]:
        assert env.ids("/api/public/v2/observations", **params) == expected, params
    lone = json.dumps([{"type": "string", "column": "input", "operator": "contains", "value": "hi"}])
    assert env.get("/api/public/v2/observations", filter=lone).status_code == 400
    resp = env.get("/api/public/v2/observations", parseIoAsJson="true")
    assert resp.status_code == 400 and "parseIoAsJson" in resp.json()["message"]
    assert env.get("/api/public/v2/observations", parseIoAsJson="false").status_code == 200


# --- sessions and metrics -----------------------------------------------------------------------------------


def test_sessions(env):
    body = env.ok("/api/public/sessions")
    assert body["meta"]["totalItems"] == 1
    (s1,) = body["data"]
    assert set(s1) == {"id", "createdAt", "projectId", "environment"}
    assert s1["id"] == "s1" and s1["projectId"] == PROJECT and s1["createdAt"].endswith("Z")
    assert env.ids("/api/public/sessions", environment="nope") == []
    assert env.ids("/api/public/sessions", fromTimestamp="2000-01-01T00:00:00Z") == ["s1"]
    assert env.ids("/api/public/sessions", toTimestamp="2000-01-01T00:00:00Z") == []

    detail = env.ok("/api/public/sessions/s1")
    assert detail["id"] == "s1" and [t["id"] for t in detail["traces"]] == ["t1", "t2"]
    assert detail["traces"][0]["input"] == {"q": "hi"} and "htmlPath" not in detail["traces"][0]
    resp = env.get("/api/public/sessions/nope")
    assert resp.status_code == 404 and resp.json()["message"] == "Session not found within authorized project"


def test_daily_metrics(env):
    body = env.ok("/api/public/metrics/daily")
    assert body["meta"] == {"page": 1, "limit": 50, "totalItems": 3, "totalPages": 1}
    days = {d["date"]: d for d in body["data"]}
    assert [d["date"] for d in body["data"]] == ["2024-01-03", "2024-01-02", "2024-01-01"]
    assert days["2024-01-03"] == {
        "date": "2024-01-03",
        "countTraces": 1,
        "countObservations": 0,
        "totalCost": 0,
        "usage": [],
    }
    jan1 = days["2024-01-01"]
    assert (jan1["countTraces"], jan1["countObservations"]) == (1, 2)
    assert jan1["totalCost"] == pytest.approx(G1_COST)
    usage = {u["model"]: u for u in jan1["usage"]}
    assert usage["gpt-4o"] == {
        "model": "gpt-4o",
        "inputUsage": 1000,
        "outputUsage": 200,
        "totalUsage": 1200,
        "countObservations": 1,
        "countTraces": 1,
        "totalCost": pytest.approx(G1_COST),
    }
    assert usage[None]["countObservations"] == 1 and usage[None]["totalUsage"] == 0
    assert days["2024-01-02"]["countObservations"] == 1

    def dates(**params):
        return [d["date"] for d in env.ok("/api/public/metrics/daily", **params)["data"]]

    assert dates(traceName="chat") == ["2024-01-03", "2024-01-01"]
    assert dates(userId="u2") == ["2024-01-02"]
    assert dates(tags="a,b") == ["2024-01-01"]
    assert dates(environment="production") == ["2024-01-01"]
    assert dates(fromTimestamp="2024-01-02T00:00:00Z", toTimestamp="2024-01-03T00:00:00Z") == ["2024-01-02"]
    page = env.ok("/api/public/metrics/daily", limit=1, page=2)
    assert [d["date"] for d in page["data"]] == ["2024-01-02"] and page["meta"]["totalPages"] == 3
