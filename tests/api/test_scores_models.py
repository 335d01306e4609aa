"""Scores (create, v1/v2/v3 reads, delete), score configs and custom models, in-process on SQLite and Postgres."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from lightfuse.api import models as models_api
from lightfuse.api import score_configs as score_configs_api
from lightfuse.api import scores as scores_api
from lightfuse.app import Services, build_services, create_app
from lightfuse.config import InitSettings, load_settings
from lightfuse.store.sql.tracing import writes as tracing_writes

PG_ADMIN_URL = os.environ.get("LIGHTFUSE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ORG_ID = "org-scores-test"


@dataclass
class Env:
    client: TestClient
    services: Services
    backend: str


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def env(request, tmp_path_factory) -> Iterator[Env]:
    """One app per backend for the whole module; every test gets its own project (see ``proj``)."""
    data_dir = tmp_path_factory.mktemp(f"lf-{request.param}") / "data"
    overrides: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": None,
        "init": InitSettings(org_id=ORG_ID, org_name="Scores Test Org"),
    }
    db_name = None
    if request.param == "postgres":
        db_name = f"lf_scores_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{db_name}"')
        admin.dispose()
        overrides.update(
            database_url=PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql+psycopg", "postgresql")
            + "/"
            + db_name,
            salt="test-salt",
            nextauth_secret="test-secret",
        )
    services = build_services(load_settings(**overrides))
    app = create_app(services)
    registered = {getattr(r, "path", None) for r in app.routes}
    for module in (scores_api, score_configs_api, models_api):
        if not {r.path for r in module.router.routes} <= registered:
            app.include_router(module.router)
    try:
        with TestClient(app) as client:
            yield Env(client, services, request.param)
    finally:
        services.engine.dispose()
        if db_name:
            admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            admin.dispose()


class Proj:
    """A fresh project with its key pair, and request helpers authenticated with it."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.client = env.client
        self.project_id = f"proj-{uuid.uuid4().hex[:10]}"
        self.public_key, secret = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
        env.services.accounts.provision(
            InitSettings(
                org_id=ORG_ID,
                org_name="Scores Test Org",
                project_id=self.project_id,
                project_name="p",
                project_public_key=self.public_key,
                project_secret_key=secret,
            )
        )
        token = base64.b64encode(f"{self.public_key}:{secret}".encode()).decode()
        self.basic = {"Authorization": f"Basic {token}"}
        self.bearer = {"Authorization": f"Bearer {self.public_key}"}

    def get(self, path: str, params: Any = None, headers: dict | None = None):
        return self.client.get(path, params=params, headers=self.basic if headers is None else headers)

    def post(self, path: str, body: Any, headers: dict | None = None):
        return self.client.post(
            path,
            content=json.dumps(body),
            headers={**(self.basic if headers is None else headers), "Content-Type": "application/json"},
        )

    def patch(self, path: str, body: Any):
        return self.client.patch(
            path, content=json.dumps(body), headers={**self.basic, "Content-Type": "application/json"}
        )

    def delete(self, path: str):
        return self.client.delete(path, headers=self.basic)

    def score(self, **body: Any) -> str:
        r = self.post("/api/public/scores", body)
        assert r.status_code == 200, r.text
        return r.json()["id"]

    def ingest(self, *events: tuple[str, dict]) -> None:
        now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        batch = [{"id": str(uuid.uuid4()), "type": t, "timestamp": now, "body": b} for t, b in events]
        r = self.post("/api/public/ingestion", {"batch": batch})
        assert r.status_code == 207, r.text
        assert not r.json()["errors"], r.json()

    def config(self, **body: Any) -> dict:
        r = self.post("/api/public/score-configs", body)
        assert r.status_code == 200, r.text
        return r.json()

    def observation(self, obs_id: str) -> dict:
        with self.env.services.engine.connect() as conn:
            return tracing_writes.get_rows(conn, "observation", self.project_id, [obs_id])[obs_id]


@pytest.fixture
def proj(env) -> Proj:
    return Proj(env)


def ids(response) -> set[str]:
    assert response.status_code == 200, response.text
    return {s["id"] for s in response.json()["data"]}


# --- score create ----------------------------------------------------------------------------------------------


def test_backend_is_the_one_parametrised(env):
    assert env.services.engine.dialect.name == {"sqlite": "sqlite", "postgres": "postgresql"}[env.backend]


def test_create_single_and_array(proj):
    single = proj.score(traceId="t1", name="quality", value=0.8, comment="ok", metadata={"k": "v"})
    r = proj.post(
        "/api/public/scores",
        [
            {"traceId": "t1", "name": "a", "value": 1},
            {"id": "my-own-id", "sessionId": "s1", "name": "b", "value": "x", "dataType": "CATEGORICAL"},
        ],
    )
    assert r.status_code == 202, r.text
    assert r.json() == {"message": "Accepted"}

    got = proj.get(f"/api/public/v2/scores/{single}").json()
    assert got["name"] == "quality" and got["value"] == 0.8 and got["dataType"] == "NUMERIC"
    assert got["source"] == "API" and got["comment"] == "ok" and got["metadata"] == {"k": "v"}
    assert got["traceId"] == "t1" and got["environment"] == "default" and got["projectId"] == proj.project_id
    assert "stringValue" not in got and "trace" not in got
    assert got["timestamp"].endswith("Z")

    # same id again = upsert (merge), not a second score
    proj.score(id="my-own-id", sessionId="s1", name="b", value="y", dataType="CATEGORICAL")
    assert proj.get("/api/public/v2/scores/my-own-id").json()["stringValue"] == "y"
    assert proj.get("/api/public/v2/scores").json()["meta"]["totalItems"] == 3


def test_public_key_bearer_may_only_create(proj):
    r = proj.post("/api/public/scores", {"traceId": "t", "name": "feedback", "value": 1}, headers=proj.bearer)
    assert r.status_code == 200, r.text
    score_id = r.json()["id"]
    assert proj.get("/api/public/v2/scores", headers=proj.bearer).status_code == 403
    assert proj.get(f"/api/public/v2/scores/{score_id}", headers=proj.bearer).status_code == 403
    assert proj.client.delete(f"/api/public/scores/{score_id}", headers=proj.bearer).status_code == 403
    assert proj.get(f"/api/public/v2/scores/{score_id}").status_code == 200
    assert (
        proj.post("/api/public/scores", {"traceId": "t", "name": "n", "value": 1}, headers={}).status_code
        == 401
    )


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"traceId": "t", "name": "n", "value": 1, "source": "EVAL"}, "EVAL"),
        ({"traceId": "t", "value": 1}, "name"),
        ({"traceId": "t", "name": "n"}, "value"),
        ({"traceId": "t", "sessionId": "s", "name": "n", "value": 1}, "exactly one"),
        ({"observationId": "o", "name": "n", "value": 1}, "exactly one"),
        ({"traceId": "t", "name": "n", "value": "x", "dataType": "NUMERIC"}, "NUMERIC"),
        ({"traceId": "t", "name": "n", "value": 2, "dataType": "BOOLEAN"}, "BOOLEAN"),
        ({"traceId": "t", "name": "n", "value": "x" * 501, "dataType": "TEXT"}, "TEXT"),
        ({"traceId": "t", "name": "n", "value": 1, "source": "ANNOTATION"}, "configId"),
        ({"traceId": "t", "name": "n", "value": 1, "configId": "nope"}, "not found"),
        ("not an object", "object"),
    ],
)
def test_create_rejects(proj, body, fragment):
    r = proj.post("/api/public/scores", body)
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"message"} and fragment in r.json()["message"]


def test_array_with_bad_scores_stores_the_good_ones(proj):
    """An array is a batch (the 5.x SDK's CreateScoreBatchResults): bad scores fail alone, with a 207."""
    r = proj.post(
        "/api/public/scores",
        [
            {"id": "good", "traceId": "t", "name": "n", "value": 1},
            {"id": "no-name", "traceId": "t", "value": 1},
            "not an object",
            {"id": "bad-config", "traceId": "t", "name": "n", "value": 1, "configId": "nope"},
        ],
    )
    assert r.status_code == 207, r.text
    body = r.json()
    assert body["accepted"] == 1 and body["rejected"] == 3
    assert [(e.get("id"), e["index"]) for e in body["errors"]] == [
        ("no-name", 1),
        (None, 2),
        ("bad-config", 3),
    ]
    assert "name" in body["errors"][0]["message"] and "not found" in body["errors"][2]["message"]
    assert [s["id"] for s in proj.get("/api/public/v2/scores").json()["data"]] == ["good"]

    r = proj.post("/api/public/scores", [{"traceId": "t", "value": 1}])
    assert r.status_code == 207 and r.json()["accepted"] == 0
    assert proj.get("/api/public/v2/scores").json()["meta"]["totalItems"] == 1


def test_config_bound_scores(proj):
    numeric = proj.config(name="accuracy", dataType="NUMERIC", minValue=0, maxValue=1)
    categorical = proj.config(
        name="tone",
        dataType="CATEGORICAL",
        categories=[{"label": "good", "value": 2}, {"label": "bad", "value": 0}],
    )
    boolean = proj.config(name="correct", dataType="BOOLEAN")

    s1 = proj.score(traceId="t", name="whatever", value=0.5, configId=numeric["id"])
    got = proj.get(f"/api/public/v2/scores/{s1}").json()
    assert got["name"] == "accuracy" and got["configId"] == numeric["id"] and got["value"] == 0.5

    s2 = proj.score(traceId="t", name="x", value="good", configId=categorical["id"])
    got = proj.get(f"/api/public/v2/scores/{s2}").json()
    assert (got["name"], got["dataType"], got["value"], got["stringValue"]) == (
        "tone",
        "CATEGORICAL",
        2,
        "good",
    )

    s3 = proj.score(traceId="t", name="x", value=0, configId=boolean["id"], source="ANNOTATION")
    got = proj.get(f"/api/public/v2/scores/{s3}").json()
    assert (got["dataType"], got["value"], got["stringValue"], got["source"]) == (
        "BOOLEAN",
        0,
        "False",
        "ANNOTATION",
    )

    for bad, fragment in [
        ({"value": 1.5, "configId": numeric["id"]}, "maxValue"),
        ({"value": -1, "configId": numeric["id"]}, "minValue"),
        ({"value": "meh", "configId": categorical["id"]}, "category"),
        ({"value": 1, "configId": numeric["id"], "dataType": "BOOLEAN"}, "dataType"),
    ]:
        r = proj.post("/api/public/scores", {"traceId": "t", "name": "x", **bad})
        assert r.status_code == 400 and fragment in r.json()["message"], r.text

    proj.patch(f"/api/public/score-configs/{numeric['id']}", {"isArchived": True})
    r = proj.post(
        "/api/public/scores", {"traceId": "t", "name": "x", "value": 0.5, "configId": numeric["id"]}
    )
    assert r.status_code == 400 and "archived" in r.json()["message"]
    assert proj.get("/api/public/v2/scores").json()["meta"]["totalItems"] == 3


# --- reads by type and version ---------------------------------------------------------------------------------


def test_types_in_v1_v2_v3(proj):
    b = proj.score(traceId="t", name="b", value=1, dataType="BOOLEAN")
    c = proj.score(traceId="t", name="c", value="yes")  # string without dataType -> CATEGORICAL
    t = proj.score(traceId="t", observationId="o", name="t", value="free text", dataType="TEXT")
    corr = proj.score(traceId="t", name="ignored", value="the right answer", dataType="CORRECTION")
    n = proj.score(traceId="t", name="n", value=3)
    sess = proj.score(sessionId="s", name="n", value=2)

    v2 = {s["id"]: s for s in proj.get("/api/public/v2/scores").json()["data"]}
    assert set(v2) == {b, c, t, corr, n, sess}
    assert (v2[b]["value"], v2[b]["stringValue"], v2[b]["dataType"]) == (1, "True", "BOOLEAN")
    assert (v2[c]["value"], v2[c]["stringValue"], v2[c]["dataType"]) == (0, "yes", "CATEGORICAL")
    assert "value" not in v2[t] and v2[t]["stringValue"] == "free text" and v2[t]["dataType"] == "TEXT"
    assert (v2[corr]["name"], v2[corr]["value"], v2[corr]["stringValue"]) == ("output", 0, "the right answer")
    assert v2[sess]["sessionId"] == "s" and v2[sess]["traceId"] is None

    v1 = {s["id"]: s for s in proj.get("/api/public/scores").json()["data"]}
    assert set(v1) == {b, c, t, n}  # no CORRECTION, no session score
    assert "sessionId" not in v1[b] and v1[b]["stringValue"] == "True"
    assert proj.get(f"/api/public/scores/{b}").json()["id"] == b
    assert proj.get(f"/api/public/scores/{corr}").status_code == 404
    assert proj.get(f"/api/public/scores/{sess}").status_code == 404
    r = proj.get("/api/public/v2/scores/does-not-exist")
    assert r.status_code == 404 and r.json()["message"] == "Score not found"

    v3 = {
        s["id"]: s
        for s in proj.get("/api/public/v3/scores", {"fields": "subject,details,annotation"}).json()["data"]
    }
    assert v3[b]["value"] is True and v3[n]["value"] == 3 and v3[c]["value"] == "yes"
    assert v3[t]["value"] == "free text" and v3[corr]["value"] == "the right answer"
    assert v3[t]["subject"] == {"kind": "observation", "id": "o", "traceId": "t"}
    assert v3[b]["subject"] == {"kind": "trace", "id": "t"}
    assert v3[sess]["subject"] == {"kind": "session", "id": "s"}
    assert v3[b]["comment"] is None and v3[b]["metadata"] == {} and v3[b]["queueId"] is None
    core = proj.get("/api/public/v3/scores").json()["data"][0]
    assert not {"subject", "comment", "authorUserId"} & set(core)


# --- filters and pagination ------------------------------------------------------------------------------------


def test_v2_filters(proj):
    proj.ingest(
        ("trace-create", {"id": "ta", "userId": "alice", "tags": ["prod", "x"]}),
        ("trace-create", {"id": "tb", "userId": "bob", "tags": ["prod"]}),
    )
    a1 = proj.score(traceId="ta", name="q", value=0.9, metadata={"team": "red"}, environment="staging")
    a2 = proj.score(traceId="ta", observationId="oa", name="helpful", value=1, dataType="BOOLEAN")
    b1 = proj.score(traceId="tb", name="q", value=0.2, metadata={"team": "blue"})
    s1 = proj.score(sessionId="sess", name="q", value=0.5, source="API")

    def q(**params):
        return ids(proj.get("/api/public/v2/scores", params))

    assert q(userId="alice") == {a1, a2}
    assert q(traceTags=["prod", "x"]) == {a1, a2}
    assert q(traceTags="prod") == {a1, a2, b1}
    assert q(name="q") == {a1, b1, s1}
    assert q(name="q", operator=">=", value="0.5") == {a1, s1}
    assert q(operator="!=", value="0.5", name="q") == {a1, b1}
    assert q(dataType="BOOLEAN") == {a2}
    assert q(scoreIds=f"{a1},{b1}") == {a1, b1}
    assert q(environment="staging") == {a1}
    assert q(environment=["staging", "default"]) == {a1, a2, b1, s1}
    assert q(traceId="tb") == {b1}
    assert q(observationId="oa,zz") == {a2}
    assert q(sessionId="sess") == {s1}
    assert q(source="API") == {a1, a2, b1, s1}
    assert q(fromTimestamp="2000-01-01T00:00:00Z", toTimestamp="2100-01-01T00:00:00+00:00") == {
        a1,
        a2,
        b1,
        s1,
    }
    assert q(toTimestamp="2000-01-01T00:00:00Z") == set()
    meta_filter = [
        {"type": "stringObject", "column": "metadata", "key": "team", "operator": "=", "value": "blue"}
    ]
    assert q(filter=json.dumps(meta_filter)) == {b1}
    contains = [{"type": "string", "column": "name", "operator": "starts with", "value": "HELP"}]
    assert q(filter=json.dumps(contains)) == {a2}
    # an advanced filter on a column overrides the simple parameter for it
    override = [{"type": "stringOptions", "column": "name", "operator": "any of", "value": ["helpful"]}]
    assert q(name="q", filter=json.dumps(override)) == {a2}
    # trace tag arrays (the dialect-specific SQL) through the structured filter
    for op, expected in (("any of", {a1, a2}), ("all of", {a1, a2}), ("none of", {b1, s1})):
        tag_filter = [
            {
                "type": "arrayOptions",
                "column": "tags",
                "operator": op,
                "value": ["x", "prod"][: 1 if op != "all of" else 2],
            }
        ]
        assert q(filter=json.dumps(tag_filter)) == expected, op
    meta_contains = [
        {"type": "stringObject", "column": "metadata", "key": "team", "operator": "contains", "value": "E"}
    ]
    assert q(filter=json.dumps(meta_contains)) == {a1, b1}  # case-insensitive on both backends
    assert ids(proj.get("/api/public/scores", {"userId": "alice"})) == {a1, a2}
    assert ids(proj.get("/api/public/scores", {"dataType": "NUMERIC"})) == {a1, b1}  # v1: no session score

    rows = {s["id"]: s for s in proj.get("/api/public/v2/scores").json()["data"]}
    assert rows[a1]["trace"] == {
        "userId": "alice",
        "tags": ["prod", "x"],
        "environment": "default",
        "sessionId": None,
    }
    assert rows[s1]["trace"] is None
    assert "trace" not in proj.get("/api/public/v2/scores", {"fields": "score"}).json()["data"][0]

    for bad in (
        {"userId": "alice", "fields": "score"},
        {"filter": "{nope"},
        {"operator": ">"},
        {"dataType": "FLOAT"},
        {"limit": 101},
        {"fromTimestamp": "2024-01-01T00:00:00"},
        {"filter": json.dumps([{"type": "string", "column": "bogus", "operator": "=", "value": "x"}])},
    ):
        assert proj.get("/api/public/v2/scores", bad).status_code == 400, bad


def test_v2_pagination_and_order(proj):
    created = [proj.score(traceId="t", name=f"s{i}", value=i) for i in range(5)]
    pages = [proj.get("/api/public/v2/scores", {"page": p, "limit": 2}).json() for p in (1, 2, 3, 4)]
    assert pages[0]["meta"] == {"page": 1, "limit": 2, "totalItems": 5, "totalPages": 3}
    seen = [s["id"] for page in pages for s in page["data"]]
    assert sorted(seen) == sorted(created) and pages[3]["data"] == []
    stamps = [s["timestamp"] for page in pages for s in page["data"]]
    assert stamps == sorted(stamps, reverse=True)


def test_v3_cursor_and_filters(proj):
    created = {proj.score(traceId="t", name="num", value=i) for i in range(5)}
    cat = proj.score(traceId="t2", name="cat", value="good", dataType="CATEGORICAL")
    flag = proj.score(sessionId="s", name="flag", value=0, dataType="BOOLEAN")

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": 3, "name": "num,cat"} | ({"cursor": cursor} if cursor else {})
        body = proj.get("/api/public/v3/scores", params).json()
        seen += [s["id"] for s in body["data"]]
        cursor = body["meta"].get("cursor")
        assert body["meta"]["limit"] == 3
        if not cursor:
            break
    assert len(seen) == 6 and set(seen) == created | {cat}

    def q(**params):
        return ids(proj.get("/api/public/v3/scores", params))

    assert q(dataType="numeric", valueMin=1, valueMax=3) == q(dataType="NUMERIC", value="1,2,3")
    assert len(q(dataType="NUMERIC", valueMin=1, valueMax=3)) == 3
    assert q(dataType="boolean", value="false") == {flag}
    assert q(dataType="CATEGORICAL", value="good") == {cat}
    assert q(sessionId="s") == {flag}
    assert q(traceId="t2") == {cat}
    assert q(source="api", name="flag") == {flag}

    for bad in (
        {"fields": "bogus"},
        {"value": "1"},
        {"dataType": "TEXT", "value": "x"},
        {"dataType": "NUMERIC,BOOLEAN", "valueMin": 1},
        {"observationId": "o"},
        {"traceId": "t", "sessionId": "s"},
        {"userId": "u"},
        {"cursor": "not-a-cursor"},
        {"limit": 0},
        {"dataType": "BOOLEAN", "value": "maybe"},
    ):
        assert proj.get("/api/public/v3/scores", bad).status_code == 400, bad


def test_delete_score(proj):
    score_id = proj.score(traceId="t", name="n", value=1)
    r = proj.delete(f"/api/public/scores/{score_id}")
    assert r.status_code == 202 and r.json() == {"message": "Score deletion queued successfully"}
    assert proj.get(f"/api/public/v2/scores/{score_id}").status_code == 404
    assert proj.delete("/api/public/scores/unknown").status_code == 202  # no existence check


def test_scores_are_project_scoped(env, proj):
    score_id = proj.score(traceId="t", name="n", value=1)
    other = Proj(env)
    assert other.get(f"/api/public/v2/scores/{score_id}").status_code == 404
    assert other.get("/api/public/v2/scores").json()["data"] == []
    other.delete(f"/api/public/scores/{score_id}")
    assert proj.get(f"/api/public/v2/scores/{score_id}").status_code == 200


# --- score configs ---------------------------------------------------------------------------------------------


def test_score_config_crud(proj):
    numeric = proj.config(
        name="Accuracy (v2).x-y_z", dataType="NUMERIC", minValue=0, maxValue=10, description="how right"
    )
    assert numeric["isArchived"] is False and numeric["projectId"] == proj.project_id
    assert (numeric["minValue"], numeric["maxValue"], numeric["categories"]) == (0, 10, None)
    boolean = proj.config(name="ok", dataType="BOOLEAN")
    assert boolean["categories"] == [{"label": "True", "value": 1}, {"label": "False", "value": 0}]
    text = proj.config(name="notes", dataType="TEXT")

    assert proj.get(f"/api/public/score-configs/{numeric['id']}").json() == numeric
    assert proj.get("/api/public/score-configs/nope").status_code == 404
    listing = proj.get("/api/public/score-configs", {"limit": 2}).json()
    assert listing["meta"] == {"page": 1, "limit": 2, "totalItems": 3, "totalPages": 2}
    page2 = proj.get("/api/public/score-configs", {"limit": 2, "page": 2}).json()["data"]
    assert {c["id"] for c in listing["data"] + page2} == {numeric["id"], boolean["id"], text["id"]}

    r = proj.patch(f"/api/public/score-configs/{numeric['id']}", {"isArchived": True, "maxValue": 5})
    assert r.status_code == 200 and r.json()["isArchived"] is True and r.json()["maxValue"] == 5
    assert proj.get(f"/api/public/score-configs/{numeric['id']}").json()["maxValue"] == 5
    r = proj.patch(f"/api/public/score-configs/{numeric['id']}", {"minValue": None, "description": None})
    assert r.status_code == 200 and r.json()["minValue"] is None and r.json()["description"] is None
    assert proj.patch("/api/public/score-configs/nope", {"name": "x"}).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "dataType": "NUMERIC"},
        {"name": "x" * 36, "dataType": "NUMERIC"},
        {"name": "bad/name", "dataType": "NUMERIC"},
        {"name": "n", "dataType": "CORRECTION"},
        {"name": "n"},
        {"name": "n", "dataType": "BOOLEAN", "categories": [{"label": "a", "value": 1}]},
        {"name": "n", "dataType": "CATEGORICAL"},
        {
            "name": "n",
            "dataType": "CATEGORICAL",
            "categories": [{"label": "a", "value": 1}, {"label": "a", "value": 2}],
        },
        {
            "name": "n",
            "dataType": "CATEGORICAL",
            "categories": [{"label": "a", "value": 1}, {"label": "b", "value": 1}],
        },
        {"name": "n", "dataType": "CATEGORICAL", "categories": [{"label": "a"}]},
        {"name": "n", "dataType": "NUMERIC", "categories": [{"label": "a", "value": 1}]},
        {"name": "n", "dataType": "NUMERIC", "minValue": 2, "maxValue": 1},
        {"name": "n", "dataType": "TEXT", "maxValue": 1},
        {"name": "n", "dataType": "NUMERIC", "minValue": "0"},
    ],
)
def test_score_config_create_validation(proj, body):
    r = proj.post("/api/public/score-configs", body)
    assert r.status_code == 400, r.text
    assert r.json()["message"]


def test_score_config_update_validation(proj):
    numeric = proj.config(name="n", dataType="NUMERIC", minValue=0, maxValue=10)
    cat = proj.config(name="c", dataType="CATEGORICAL", categories=[{"label": "a", "value": 1}])
    boolean = proj.config(name="b", dataType="BOOLEAN")
    for config_id, body in [
        (numeric["id"], {}),
        (numeric["id"], {"minValue": 11}),
        (numeric["id"], {"categories": [{"label": "a", "value": 1}]}),
        (numeric["id"], {"name": "bad/name"}),
        (numeric["id"], {"isArchived": "yes"}),
        (cat["id"], {"categories": [{"label": "a", "value": 1}, {"label": "a", "value": 2}]}),
        (cat["id"], {"maxValue": 3}),
        (boolean["id"], {"categories": [{"label": "x", "value": 1}]}),
    ]:
        r = proj.patch(f"/api/public/score-configs/{config_id}", body)
        assert r.status_code == 400, (body, r.text)
    r = proj.patch(
        f"/api/public/score-configs/{cat['id']}",
        {"categories": [{"label": "a", "value": 1}, {"label": "b", "value": 2}], "name": "renamed"},
    )
    assert r.status_code == 200 and len(r.json()["categories"]) == 2 and r.json()["name"] == "renamed"


# --- models ----------------------------------------------------------------------------------------------------


def test_models_crud(proj):
    listing = proj.get("/api/public/models", {"limit": 100}).json()
    builtin_total = listing["meta"]["totalItems"]
    assert builtin_total > 100 and all(m["isLangfuseManaged"] for m in listing["data"])
    builtin = listing["data"][0]

    r = proj.post(
        "/api/public/models",
        {
            "modelName": "aaa-my-model",
            "matchPattern": "(?i)^(aaa-my-model)$",
            "unit": "TOKENS",
            "inputPrice": 0.001,
            "outputPrice": 0.002,
        },
    )
    assert r.status_code == 200, r.text
    model = r.json()
    assert model["isLangfuseManaged"] is False and model["inputPrice"] == 0.001
    assert model["prices"] == {"input": {"price": 0.001}, "output": {"price": 0.002}}
    assert model["pricingTiers"][0]["id"] == f"{model['id']}_tier_default"
    assert proj.get(f"/api/public/models/{model['id']}").json() == model
    assert proj.get(f"/api/public/models/{builtin['id']}").json()["isLangfuseManaged"] is True

    everything = []
    for page in range(1, 10):
        data = proj.get("/api/public/models", {"page": page, "limit": 50}).json()["data"]
        everything += data
        if not data:
            break
    assert len(everything) == builtin_total + 1
    names = [m["modelName"] for m in everything]
    assert names == sorted(names) and everything[0]["id"] == model["id"]

    dup = proj.post("/api/public/models", {"modelName": "aaa-my-model", "matchPattern": "x", "totalPrice": 1})
    assert dup.status_code == 400
    for bad in (
        {"modelName": "m", "matchPattern": "(unclosed", "inputPrice": 1},
        {"modelName": "m", "matchPattern": "m"},
        {"modelName": "m", "matchPattern": "m", "inputPrice": 1, "totalPrice": 1},
    ):
        assert proj.post("/api/public/models", bad).status_code == 400, bad

    r = proj.delete(f"/api/public/models/{builtin['id']}")
    assert r.status_code == 404 and "built-in" in r.json()["message"]
    assert proj.delete("/api/public/models/nope").json()["message"] == "No model with this id found."
    r = proj.delete(f"/api/public/models/{model['id']}")
    assert r.status_code == 200 and r.json() == {"message": "Model successfully deleted"}
    assert proj.get(f"/api/public/models/{model['id']}").status_code == 404
    # a model belongs to its project
    other_model = proj.post(
        "/api/public/models", {"modelName": "mine", "matchPattern": "mine", "totalPrice": 1}
    )
    assert Proj(proj.env).get(f"/api/public/models/{other_model.json()['id']}").status_code == 404


def _generation(proj: Proj, model: str, usage: dict) -> str:
    obs_id = str(uuid.uuid4())
    proj.ingest(("generation-create", {"id": obs_id, "traceId": "t", "model": model, "usageDetails": usage}))
    return obs_id


def test_custom_model_prices_new_generations(proj):
    before = proj.observation(_generation(proj, "acme-llm-7", {"input": 100, "output": 50}))
    assert before["internal_model_id"] is None and before["total_cost"] is None

    r = proj.post(
        "/api/public/models",
        {
            "modelName": "acme-llm",
            "matchPattern": "(?i)^acme-llm-\\d+$",
            "inputPrice": 0.001,
            "outputPrice": 0.002,
        },
    )
    model_id = r.json()["id"]
    after = proj.observation(_generation(proj, "acme-llm-7", {"input": 100, "output": 50}))
    assert after["internal_model_id"] == model_id
    assert after["cost_details"]["input"] == pytest.approx(0.1)
    assert after["cost_details"]["output"] == pytest.approx(0.1)
    assert after["total_cost"] == pytest.approx(0.2)

    proj.delete(f"/api/public/models/{model_id}")
    gone = proj.observation(_generation(proj, "acme-llm-7", {"input": 100, "output": 50}))
    assert gone["internal_model_id"] is None


def test_project_model_takes_precedence_over_builtin(proj):
    builtin = proj.observation(_generation(proj, "gpt-4o", {"input": 10}))
    assert builtin["internal_model_id"] is not None
    builtin_ids = {m["id"] for m in proj.get("/api/public/models", {"limit": 100}).json()["data"]}

    r = proj.post(
        "/api/public/models",
        {"modelName": "gpt-4o", "matchPattern": "(?i)^(openai/)?(gpt-4o)$", "inputPrice": 1.5},
    )
    assert r.status_code == 200, r.text
    custom = proj.observation(_generation(proj, "gpt-4o", {"input": 10}))
    assert custom["internal_model_id"] == r.json()["id"] not in builtin_ids
    assert custom["total_cost"] == pytest.approx(15.0)
    # another project still uses the built-in price
    other = Proj(proj.env)
    assert (
        other.observation(_generation(other, "gpt-4o", {"input": 10}))["internal_model_id"]
        == builtin["internal_model_id"]
    )
