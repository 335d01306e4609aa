"""The experiments read API (/api/public/experiments, /experiment-items) over dataset runs, both backends."""

from __future__ import annotations

import json
import uuid

FROM = "2024-01-01T00:00:00Z"


def ok(resp, status: int = 200):
    assert resp.status_code == status, resp.text
    return resp.json()


def setup_runs(api) -> None:
    c = api.client
    ok(c.post("/api/public/v2/datasets", json={"name": "qa"}, auth=api.auth))
    for i in range(3):
        ok(
            c.post(
                "/api/public/dataset-items",
                json={
                    "datasetName": "qa",
                    "id": f"item-{i}",
                    "input": {"q": i},
                    "expectedOutput": f"a{i}",
                    "metadata": {"n": i},
                },
                auth=api.auth,
            )
        )
    events = []
    for i in range(3):
        start = f"2024-06-0{i + 1}T10:00:00.000Z"
        events.append(
            {
                "id": str(uuid.uuid4()),
                "type": "span-create",
                "timestamp": start,
                "body": {
                    "id": f"obs-{i}",
                    "traceId": f"trace-{i}",
                    "startTime": start,
                    "endTime": f"2024-06-0{i + 1}T10:00:02.000Z",
                    "input": {"q": i},
                    "output": f"out{i}",
                    "metadata": {"k": "v"},
                    "level": "WARNING" if i == 2 else "DEFAULT",
                },
            }
        )
    r = api.ingest(events)
    assert r.status_code == 207 and not r.json()["errors"], r.text
    for i in range(3):
        run = "run-a" if i < 2 else "run-b"
        ok(
            c.post(
                "/api/public/dataset-run-items",
                json={
                    "runName": run,
                    "runDescription": f"{run} desc",
                    "metadata": {"model": run},
                    "datasetItemId": f"item-{i}",
                    "traceId": f"trace-{i}",
                    "observationId": f"obs-{i}",
                },
                auth=api.auth,
            )
        )


def test_experiments_list_with_ranges_filters_and_cursor(api):
    setup_runs(api)
    c = api.client
    get = lambda **p: c.get("/api/public/experiments", params=p, auth=api.auth)  # noqa: E731
    data = ok(get(fromStartTime=FROM))["data"]
    assert [e["name"] for e in data] == ["run-b", "run-a"], "latest activity first"
    a = data[1]
    assert a["itemCount"] == 2 and a["description"] == "run-a desc" and a["datasetId"]
    assert a["startTime"] == "2024-06-01T10:00:00.000Z" and a["endTime"] == "2024-06-02T10:00:02.000Z"
    assert "metadata" not in a
    # clipped to fromStartTime, only items in range counted
    a2 = ok(get(fromStartTime="2024-06-02T00:00:00Z", name="run-a", fields="core,metadata"))["data"]
    assert len(a2) == 1 and a2[0]["itemCount"] == 1 and a2[0]["metadata"] == {"model": "run-a"}
    assert a2[0]["startTime"] == "2024-06-02T10:00:00.000Z"
    assert ok(get(fromStartTime=FROM, toStartTime="2024-06-01T10:00:00Z"))["data"] == [], "to is exclusive"
    flt = json.dumps([{"type": "stringOptions", "column": "name", "operator": "any of", "value": ["run-b"]}])
    assert [e["name"] for e in ok(get(fromStartTime=FROM, filter=flt))["data"]] == ["run-b"]
    assert [e["name"] for e in ok(get(fromStartTime=FROM, id=a["id"]))["data"]] == ["run-a"]

    page1 = ok(get(fromStartTime=FROM, limit=1))
    assert len(page1["data"]) == 1 and page1["meta"]["cursor"]
    page2 = ok(get(fromStartTime=FROM, limit=1, cursor=page1["meta"]["cursor"]))
    assert [e["name"] for e in page2["data"]] == ["run-a"]
    page3 = ok(get(fromStartTime=FROM, limit=1, cursor=page2["meta"]["cursor"]))
    assert page3 == {"data": [], "meta": {}}

    for params in (
        {},
        {"fromStartTime": "yesterday"},
        {"fromStartTime": "2024-01-01T00:00:00"},
        {"fromStartTime": FROM, "limit": "101"},
        {"fromStartTime": FROM, "limit": "0"},
        {"fromStartTime": FROM, "cursor": "!!"},
        {"fromStartTime": FROM, "cursor": "e30"},
        {"fromStartTime": FROM, "fields": "core,bogus"},
        {"fromStartTime": FROM, "filter": "[{"},
        {"fromStartTime": FROM, "filter": '[{"column":"traceId","operator":"=","value":"x"}]'},
        {"fromStartTime": FROM, "scoreLimit": "51"},
    ):
        r = get(**params)
        assert r.status_code == 400 and r.json()["error"] == "InvalidRequestError", (params, r.text)

    other, other_auth = api.new_project_key()
    assert ok(c.get("/api/public/experiments", params={"fromStartTime": FROM}, auth=other_auth))["data"] == []


def test_experiment_items_fields_and_pages(api):
    setup_runs(api)
    c = api.client
    get = lambda **p: c.get("/api/public/experiment-items", params=p, auth=api.auth)  # noqa: E731
    items = ok(get(fromStartTime=FROM))["data"]
    assert [i["traceId"] for i in items] == ["trace-2", "trace-1", "trace-0"], "newest first"
    first = items[2]
    assert first["experimentName"] == "run-a" and first["experimentItemId"] == "item-0"
    assert first["startTime"] == "2024-06-01T10:00:00.000Z" and first["endTime"] == "2024-06-01T10:00:02.000Z"
    assert items[0]["level"] == "WARNING" and first["environment"] == "default"
    assert first["experimentDatasetId"] and first["experimentItemVersion"].endswith("Z")
    assert "input" not in first and "metadata" not in first

    full = ok(
        get(
            fromStartTime=FROM,
            experimentItemId="item-0",
            fields="io,metadata,itemMetadata,experimentMetadata",
        )
    )["data"]
    assert len(full) == 1
    row = full[0]
    assert row["input"] == {"q": 0} and row["output"] == "out0" and row["expectedOutput"] == "a0"
    assert row["metadata"] == {"k": "v"} and row["experimentItemMetadata"] == {"n": 0}
    assert row["experimentMetadata"] == {"model": "run-a"} and row["experimentDescription"] == "run-a desc"
    assert "experimentDatasetId" not in row, "fields replaces the default groups"

    seen, cursor = [], None
    for _ in range(5):
        params = {"fromStartTime": FROM, "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = ok(get(**params))
        seen += [i["id"] for i in page["data"]]
        cursor = page["meta"].get("cursor")
        if not cursor:
            break
    assert len(seen) == 3 == len(set(seen))
    assert get(fromStartTime=FROM, fields="scores").status_code == 400
    assert get(toStartTime=FROM).status_code == 400
    assert (
        c.get(
            "/api/public/experiment-items", params={"fromStartTime": FROM}, auth=("pk-lf-x", "sk-lf-y")
        ).status_code
        == 401
    )
