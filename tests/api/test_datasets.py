"""Datasets, versioned dataset items, runs and run items over HTTP, in-process on SQLite and Postgres."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import pytest


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def tick() -> str:
    """An instant strictly between the writes before and after it (versions are ms-precise)."""
    time.sleep(0.01)
    instant = now_iso()
    time.sleep(0.01)
    return instant


def ok(resp, status: int = 200):
    assert resp.status_code == status, resp.text
    return resp.json()


@pytest.fixture
def c(api):
    class Client:
        def post(self, path, body, **kw):
            return api.client.post(path, json=body, auth=kw.pop("auth", api.auth), **kw)

        def get(self, path, **params):
            auth = params.pop("auth", api.auth)
            return api.client.get(path, params=params, auth=auth)

        def delete(self, path):
            return api.client.delete(path, auth=api.auth)

    return Client()


def make_dataset(c, name: str, **extra) -> dict:
    return ok(c.post("/api/public/v2/datasets", {"name": name, **extra}))


def make_item(c, dataset: str, **fields) -> dict:
    return ok(c.post("/api/public/dataset-items", {"datasetName": dataset, **fields}))


def test_dataset_upsert_by_name_and_reads(c, api):
    first = make_dataset(c, "folder/qa", description="v1", metadata={"team": "a"})
    assert first["name"] == "folder/qa" and first["projectId"] == api.project_id
    assert first["inputSchema"] is None and first["expectedOutputSchema"] is None
    again = make_dataset(c, "folder/qa", description="v2")
    assert again["id"] == first["id"] and again["description"] == "v2"
    assert again["metadata"] == {"team": "a"}, "fields absent from the upsert keep their values"

    assert ok(c.get("/api/public/v2/datasets/folder%2Fqa"))["id"] == first["id"]
    missing = c.get("/api/public/v2/datasets/nope")
    assert missing.status_code == 404 and missing.json()["message"] == "Dataset not found"

    make_dataset(c, "second")
    listed = ok(c.get("/api/public/v2/datasets", limit=1))
    assert listed["meta"] == {"page": 1, "limit": 1, "totalItems": 2, "totalPages": 2}
    assert listed["data"][0]["name"] == "second", "newest first"
    assert c.get("/api/public/v2/datasets", limit=101).status_code == 400

    other_project, other_auth = api.new_project_key()
    assert c.get("/api/public/v2/datasets/second", auth=other_auth).status_code == 404


def test_item_upserts_merge_and_versions(c):
    make_dataset(c, "versions")
    created = make_item(
        c, "versions", id="item-1", input={"q": "2+2"}, expectedOutput="4", metadata={"src": "manual"}
    )
    assert created["status"] == "ACTIVE" and created["datasetName"] == "versions"
    assert created["mediaReferences"] == [] and created["sourceTraceId"] is None
    v1 = tick()
    # an SDK sends unset arguments as null: they keep the stored values, like omitted ones
    updated = make_item(c, "versions", id="item-1", expectedOutput="four", input=None, sourceTraceId=None)
    assert updated["input"] == {"q": "2+2"} and updated["expectedOutput"] == "four"
    assert updated["metadata"] == {"src": "manual"} and updated["createdAt"] == created["createdAt"]
    v2 = tick()
    make_item(c, "versions", id="item-1", status="ARCHIVED")
    make_item(c, "versions", id="item-2", input="later")

    def listed(**params):
        return {
            i["id"]: i
            for i in ok(c.get("/api/public/dataset-items", datasetName="versions", **params))["data"]
        }

    assert set(listed()) == {"item-2"}, "archived items are not listed"
    assert ok(c.get("/api/public/dataset-items/item-1"))["status"] == "ARCHIVED", "but can be fetched by id"
    assert listed(version=v1)["item-1"]["expectedOutput"] == "4"
    assert listed(version=v2)["item-1"]["expectedOutput"] == "four"
    assert set(listed(version=v2)) == {"item-1"}
    bad = c.get("/api/public/dataset-items", version=v1)
    assert bad.status_code == 400 and "datasetName" in bad.json()["message"]
    assert (
        c.get("/api/public/dataset-items", datasetName="versions", version="2024-01-01T00:00:00").status_code
        == 400
    )

    v3 = tick()
    assert ok(c.delete("/api/public/dataset-items/item-2")) == {
        "message": "Dataset item successfully deleted"
    }
    assert c.get("/api/public/dataset-items/item-2").status_code == 404
    assert c.delete("/api/public/dataset-items/item-2").status_code == 404
    assert listed() == {}
    assert set(listed(version=v3)) == {"item-2"}, "history before the delete stays readable"
    # the id can be used again after a delete, and starts a fresh item
    assert make_item(c, "versions", id="item-2")["input"] is None


def test_item_rules(c, api):
    make_dataset(c, "a")
    make_dataset(c, "b")
    generated = make_item(c, "a", input=1)
    uuid.UUID(generated["id"])
    make_item(c, "a", id="shared")
    clash = c.post("/api/public/dataset-items", {"datasetName": "b", "id": "shared"})
    assert clash.status_code == 409, clash.text
    assert (
        c.post("/api/public/dataset-items", {"datasetName": "nope"}).json()["message"] == "Dataset not found"
    )
    assert c.post("/api/public/dataset-items", {"datasetName": "a", "status": "GONE"}).status_code == 400
    assert c.post("/api/public/dataset-items", {"datasetName": "a", "id": "x" * 256}).status_code == 400
    cleaned = make_item(c, "a", input={"text": "a\u0000b\u0007c\nd"})
    assert cleaned["input"] == {"text": "abc\nd"}, "control characters are stripped"
    by_trace = make_item(c, "a", sourceTraceId="trace-7", sourceObservationId="obs-7")
    found = ok(c.get("/api/public/dataset-items", sourceTraceId="trace-7"))["data"]
    assert [i["id"] for i in found] == [by_trace["id"]]
    assert [i["id"] for i in ok(c.get("/api/public/dataset-items", sourceObservationId="obs-7"))["data"]] == [
        by_trace["id"]
    ]

    big = {"datasetName": "a", "input": "x" * (5 * 1024 * 1024)}
    assert c.post("/api/public/dataset-items", big).status_code == 413
    fits = {"datasetName": "a", "input": "x" * (4 * 1024 * 1024)}
    assert c.post("/api/public/dataset-items", fits).status_code == 200


def test_schemas_validate_items(c):
    schema = {
        "type": "object",
        "properties": {"q": {"type": "string", "minLength": 1}},
        "required": ["q"],
        "additionalProperties": False,
    }
    make_dataset(c, "typed", inputSchema=schema, expectedOutputSchema={"type": "string"})
    make_item(c, "typed", id="good", input={"q": "hi"}, expectedOutput="ok")
    for body in ({"input": {"q": ""}}, {"input": {"x": 1}}, {"input": "text"}, {"expectedOutput": 3}):
        resp = c.post("/api/public/dataset-items", {"datasetName": "typed", **body})
        assert resp.status_code == 400, body
        assert resp.json()["message"].startswith("Dataset item validation failed")
    # an update is validated as merged: input stays valid, a bad expectedOutput is refused
    assert (
        c.post(
            "/api/public/dataset-items", {"datasetName": "typed", "id": "good", "expectedOutput": 5}
        ).status_code
        == 400
    )
    # setting a schema that an existing item violates is refused
    make_dataset(c, "loose")
    make_item(c, "loose", input={"n": "not a number"})
    resp = c.post(
        "/api/public/v2/datasets",
        {"name": "loose", "inputSchema": {"type": "object", "properties": {"n": {"type": "number"}}}},
    )
    assert resp.status_code == 400 and "validation failed" in resp.json()["message"]
    assert (
        c.post(
            "/api/public/v2/datasets", {"name": "bad-schema", "inputSchema": {"type": "thing"}}
        ).status_code
        == 400
    )


def test_runs_and_run_items(c, api):
    dataset = make_dataset(c, "evals")
    make_item(c, "evals", id="i1", input="a")
    make_item(c, "evals", id="i2", input="b")
    make_item(c, "evals", id="archived", status="ARCHIVED")

    first = ok(
        c.post(
            "/api/public/dataset-run-items",
            {
                "runName": "run/1",
                "runDescription": "first run",
                "metadata": {"model": "m"},
                "datasetItemId": "i1",
                "traceId": "t1",
            },
        )
    )
    assert first["datasetRunName"] == "run/1" and first["traceId"] == "t1" and first["observationId"] is None
    uuid.UUID(first["id"])
    second = ok(
        c.post(
            "/api/public/dataset-run-items",
            {
                "runName": "run/1",
                "datasetItemId": "i2",
                "traceId": "t2",
                "observationId": "o2",
                "createdAt": "2024-05-01T00:00:00Z",
            },
        )
    )
    assert second["datasetRunId"] == first["datasetRunId"], "the run is fetched by (dataset, name)"
    assert second["createdAt"] == "2024-05-01T00:00:00.000Z"

    assert (
        c.post(
            "/api/public/dataset-run-items",
            {"runName": "r", "datasetItemId": "i1", "traceId": "t", "id": "mine"},
        ).status_code
        == 400
    )
    assert c.post("/api/public/dataset-run-items", {"runName": "r", "datasetItemId": "i1"}).status_code == 400
    assert (
        c.post(
            "/api/public/dataset-run-items", {"runName": "r", "datasetItemId": "archived", "traceId": "t"}
        ).status_code
        == 404
    )
    assert c.post(
        "/api/public/dataset-run-items", {"runName": "r", "datasetItemId": "i1", "observationId": "missing"}
    ).json()["message"] == ("Observation not found")
    # only an observation id: its trace is looked up
    ingest = api.ingest(
        [
            {
                "id": str(uuid.uuid4()),
                "type": "span-create",
                "timestamp": now_iso(),
                "body": {"id": "obs-9", "traceId": "trace-9", "startTime": now_iso()},
            }
        ]
    )
    assert ingest.status_code == 207 and not ingest.json()["errors"]
    linked = ok(
        c.post(
            "/api/public/dataset-run-items",
            {"runName": "run-2", "datasetItemId": "i1", "observationId": "obs-9"},
        )
    )
    assert linked["traceId"] == "trace-9"

    runs = ok(c.get("/api/public/datasets/evals/runs"))
    assert [r["name"] for r in runs["data"]] == ["run-2", "run/1"]
    run = ok(c.get("/api/public/datasets/evals/runs/run%2F1"))
    assert run["description"] == "first run" and run["metadata"] == {"model": "m"}
    assert run["datasetName"] == "evals" and run["datasetId"] == dataset["id"]
    assert {i["datasetItemId"] for i in run["datasetRunItems"]} == {"i1", "i2"}
    page = ok(c.get("/api/public/dataset-run-items", datasetId=dataset["id"], runName="run/1", limit=1))
    assert page["meta"]["totalItems"] == 2 and len(page["data"]) == 1
    assert c.get("/api/public/dataset-run-items", datasetId=dataset["id"], runName="nope").status_code == 404
    assert c.get("/api/public/dataset-run-items", datasetId=dataset["id"]).status_code == 400

    legacy = ok(c.get("/api/public/datasets/evals"))
    assert {i["id"] for i in legacy["items"]} == {"i1", "i2"} and set(legacy["runs"]) == {"run/1", "run-2"}
    legacy_list = ok(c.get("/api/public/datasets"))["data"]
    assert set(legacy_list[0]["items"]) == {"i1", "i2"}

    # deleting an item removes its run items
    ok(c.delete("/api/public/dataset-items/i2"))
    assert [
        i["datasetItemId"] for i in ok(c.get("/api/public/datasets/evals/runs/run%2F1"))["datasetRunItems"]
    ] == ["i1"]
    assert ok(c.delete("/api/public/datasets/evals/runs/run%2F1")) == {
        "message": "Dataset run successfully deleted"
    }
    assert c.get("/api/public/datasets/evals/runs/run%2F1").status_code == 404
    assert c.delete("/api/public/datasets/evals/runs/run%2F1").status_code == 404
    assert c.get("/api/public/datasets/nope/runs").status_code == 404


def test_run_id_matches_the_sdk_experiment_id(c, api):
    import hashlib
    import json

    dataset = make_dataset(c, "exp")
    make_item(c, "exp", id="e1")
    item = ok(
        c.post("/api/public/dataset-run-items", {"runName": "nightly", "datasetItemId": "e1", "traceId": "t"})
    )
    payload = json.dumps(
        ["langfuse-experiment-v1", api.project_id, dataset["id"], "nightly"], separators=(",", ":")
    )
    assert item["datasetRunId"] == hashlib.sha256(payload.encode()).hexdigest()[:16]


def test_version_run_item_and_run_metadata(c):
    make_dataset(c, "pinned")
    make_item(c, "pinned", id="p1", input="old")
    before = tick()
    make_item(c, "pinned", id="p1", status="ARCHIVED")
    # archived now, but active at the pinned version
    item = ok(
        c.post(
            "/api/public/dataset-run-items",
            {"runName": "pinned-run", "datasetItemId": "p1", "traceId": "t", "datasetVersion": before},
        )
    )
    run = ok(c.get("/api/public/datasets/pinned/runs/pinned-run"))
    assert run["id"] == item["datasetRunId"] and "dataset_version" in run["metadata"]
