"""GET /api/public/experiments and /api/public/experiment-items (api-semantics 7.4), in-process on both backends.

Experiments are dataset runs; their items are the run items, timed by the observation each links. The released
JS SDK's reads of these routes are in tests/e2e/test_js_sdks.py.
"""

from __future__ import annotations

import pytest

FROM = "2026-01-01T00:00:00Z"


def ok(resp, status: int = 200):
    assert resp.status_code == status, resp.text
    return resp.json()


def _span(obs_id: str, trace_id: str, start: str, end: str, **body) -> dict:
    return {
        "id": f"ev-{obs_id}",
        "type": "span-create",
        "timestamp": start,
        "body": {"id": obs_id, "traceId": trace_id, "startTime": start, "endTime": end, **body},
    }


@pytest.fixture
def runs(api):
    """Dataset "qa" (items i1, i2): run "run-a" links i1 twice and i2, run "run-b" links i1; "other" is empty."""
    post = lambda path, body: ok(api.client.post(path, json=body, auth=api.auth))  # noqa: E731
    qa = post("/api/public/v2/datasets", {"name": "qa"})
    other = post("/api/public/v2/datasets", {"name": "other"})
    post(
        "/api/public/dataset-items",
        {"datasetName": "qa", "id": "i1", "input": {"q": 1}, "expectedOutput": "one"},
    )
    post(
        "/api/public/dataset-items",
        {"datasetName": "qa", "id": "i2", "input": {"q": 2}, "metadata": {"k": "v"}},
    )
    ok(
        api.ingest(
            [
                _span(
                    "o1", "t1", "2026-03-01T10:00:00Z", "2026-03-01T10:00:02Z", input={"q": 1}, output="uno"
                ),
                _span("o2", "t2", "2026-03-01T11:00:00Z", "2026-03-01T11:00:05Z", level="ERROR"),
                _span("o3", "t3", "2026-03-02T09:00:00Z", "2026-03-02T09:00:01Z", metadata={"n": "7"}),
            ]
        ),
        207,
    )
    for run, item, trace, obs in (
        ("run-a", "i1", "t1", "o1"),
        ("run-a", "i2", "t2", "o2"),
        ("run-b", "i1", "t3", "o3"),
    ):
        body = {"runName": run, "datasetItemId": item, "traceId": trace, "observationId": obs}
        if run == "run-a":
            body |= {"runDescription": "first", "metadata": {"model": "m1"}}
        post("/api/public/dataset-run-items", body)
    # a link to a trace alone (no observation): timed by its own createdAt
    link = {"runName": "run-a", "datasetItemId": "i1", "traceId": "t9", "createdAt": "2026-02-15T00:00:00Z"}
    run_a = post("/api/public/dataset-run-items", link)
    return {"qa": qa["id"], "other": other["id"], "run-a": run_a["datasetRunId"]}


def get(api, path: str, **params):
    return api.client.get(path, params=params, auth=api.auth)


def test_experiments_list(api, runs):
    body = ok(get(api, "/api/public/experiments", fromStartTime=FROM))
    assert [e["name"] for e in body["data"]] == ["run-b", "run-a"]  # latest activity first
    assert "cursor" not in body["meta"]
    run_a = body["data"][1]
    assert run_a == {
        "id": runs["run-a"],
        "name": "run-a",
        "description": "first",
        "startTime": "2026-02-15T00:00:00.000Z",
        "endTime": "2026-03-01T11:00:05.000Z",
        "itemCount": 3,
        "datasetId": runs["qa"],
    }
    with_meta = ok(
        get(api, "/api/public/experiments", fromStartTime=FROM, fields="core,metadata", id=runs["run-a"])
    )
    assert [e["metadata"] for e in with_meta["data"]] == [{"model": "m1"}]
    # the range counts items, and a start before it is clipped to fromStartTime
    later = ok(get(api, "/api/public/experiments", fromStartTime="2026-03-01T10:30:00Z", name="run-a"))
    (clipped,) = later["data"]
    assert (clipped["itemCount"], clipped["startTime"]) == (1, "2026-03-01T11:00:00.000Z")
    before = ok(get(api, "/api/public/experiments", fromStartTime=FROM, toStartTime="2026-03-02T00:00:00Z"))
    assert [e["name"] for e in before["data"]] == ["run-a"]
    assert ok(get(api, "/api/public/experiments", fromStartTime=FROM, datasetId=runs["other"]))["data"] == []
    json_filter = '[{"column": "name", "operator": "any of", "value": ["run-b"]}]'
    filtered = ok(get(api, "/api/public/experiments", fromStartTime=FROM, filter=json_filter))
    assert [e["name"] for e in filtered["data"]] == ["run-b"]


def test_experiments_cursor_pages(api, runs):
    first = ok(get(api, "/api/public/experiments", fromStartTime=FROM, limit="1"))
    assert [e["name"] for e in first["data"]] == ["run-b"]
    second = ok(
        get(api, "/api/public/experiments", fromStartTime=FROM, limit="1", cursor=first["meta"]["cursor"])
    )
    assert [e["name"] for e in second["data"]] == ["run-a"]
    assert "cursor" not in second["meta"]


def test_experiment_items(api, runs):
    body = ok(get(api, "/api/public/experiment-items", fromStartTime=FROM, experimentName="run-a"))
    assert [(i["id"], i["traceId"], i["experimentItemId"]) for i in body["data"]][:2] == [
        ("o2", "t2", "i2"),
        ("o1", "t1", "i1"),
    ]
    errored = body["data"][0]
    assert errored == {
        "id": "o2",
        "traceId": "t2",
        "startTime": "2026-03-01T11:00:00.000Z",
        "endTime": "2026-03-01T11:00:05.000Z",
        "level": "ERROR",
        "environment": "default",
        "experimentId": runs["run-a"],
        "experimentName": "run-a",
        "experimentItemId": "i2",
        "experimentDatasetId": runs["qa"],  # the default groups are core and dataset
        "experimentItemVersion": None,
    }
    full = ok(
        get(
            api,
            "/api/public/experiment-items",
            fromStartTime=FROM,
            experimentId=runs["run-a"],
            experimentItemId="i1",
            fields="io,metadata,itemMetadata,experimentMetadata",
        )
    )
    linked = next(i for i in full["data"] if i["id"] == "o1")
    assert (linked["input"], linked["output"], linked["expectedOutput"]) == ({"q": 1}, "uno", "one")
    assert (linked["experimentMetadata"], linked["experimentDescription"]) == ({"model": "m1"}, "first")
    assert "experimentDatasetId" not in linked
    meta = ok(
        get(
            api, "/api/public/experiment-items", fromStartTime=FROM, experimentName="run-b", fields="metadata"
        )
    )
    assert meta["data"][0]["metadata"] == {"n": 7}  # read back by the metadata rule (api-semantics 2.4)
    item_meta = ok(
        get(
            api,
            "/api/public/experiment-items",
            fromStartTime=FROM,
            experimentItemId="i2",
            fields="itemMetadata",
        )
    )
    assert item_meta["data"][0]["experimentItemMetadata"] == {"k": "v"}
    paged = ok(get(api, "/api/public/experiment-items", fromStartTime=FROM, limit="2"))
    rest = ok(
        get(
            api, "/api/public/experiment-items", fromStartTime=FROM, limit="2", cursor=paged["meta"]["cursor"]
        )
    )
    assert len(paged["data"]) == 2 and len(rest["data"]) == 2 and "cursor" not in rest["meta"]
    assert {i["traceId"] for i in paged["data"] + rest["data"]} == {"t1", "t2", "t3", "t9"}
    trace_only = next(i for i in paged["data"] + rest["data"] if i["traceId"] == "t9")
    assert (trace_only["startTime"], trace_only["endTime"], trace_only["level"]) == (
        "2026-02-15T00:00:00.000Z",
        None,
        "DEFAULT",
    )


BAD_PARAMETERS = [
    ({}, "fromStartTime is required"),
    ({"fromStartTime": "2026-01-01T00:00:00"}, "timezone"),
    ({"fromStartTime": FROM, "limit": "101"}, "limit must be between 1 and 100"),
    ({"fromStartTime": FROM, "limit": "x"}, "limit must be an integer"),
    ({"fromStartTime": FROM, "scoreLimit": "51"}, "scoreLimit must be between 1 and 50"),
    ({"fromStartTime": FROM, "cursor": "not-a-cursor"}, "Invalid cursor"),
    ({"fromStartTime": FROM, "fields": "core,nope"}, "Unknown field group"),
    ({"fromStartTime": FROM, "fields": "scores"}, "fields=scores is not supported"),
    (
        {"fromStartTime": FROM, "cursor": "eyJ2IjoxLCJvZmZzZXQiOjEwMDAwMDAwMDAwMDAwMDAwMDAwfQ"},
        "Invalid cursor",
    ),
    ({"fromStartTime": FROM, "name": "a\x00b"}, "NUL"),
]
BAD_FILTERS = [
    "{",
    '{"column": "id"}',
    '[{"column": "trace", "operator": "=", "value": "x"}]',
    '[{"column": "id", "operator": ">", "value": "x"}]',
    '[{"column": "id", "operator": "any of", "value": [1]}]',
]


def test_bad_parameters_are_400(api):
    cases = [
        (path, params, message)
        for path in ("/api/public/experiments", "/api/public/experiment-items")
        for params, message in BAD_PARAMETERS
    ]
    cases += [
        ("/api/public/experiments", {"fromStartTime": FROM, "filter": f}, "filter") for f in BAD_FILTERS
    ]
    for path, params, message in cases:
        resp = get(api, path, **params)
        assert resp.status_code == 400, (path, params, resp.text)
        body = resp.json()
        assert message in body["message"] and body["error"], (path, params, body)


def test_experiments_need_auth_and_stay_in_project(api, runs):
    assert api.client.get("/api/public/experiments", params={"fromStartTime": FROM}).status_code == 401
    _other, other_auth = api.new_project_key()
    for path in ("/api/public/experiments", "/api/public/experiment-items"):
        resp = api.client.get(path, params={"fromStartTime": FROM}, auth=other_auth)
        assert ok(resp) == {"data": [], "meta": {}}
