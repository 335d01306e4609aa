"""Out-of-range and wrongly typed input to the list, filter and media routes: a 400 in Langfuse's shape, never 500."""

from __future__ import annotations

import json

import pytest

from lightfuse.api.common import MAX_PAGE

# every paginated list route, with the query it needs besides page/limit
LIST_ROUTES = [
    "/api/public/traces",
    "/api/public/observations",
    "/api/public/sessions",
    "/api/public/metrics/daily",
    "/api/public/scores",
    "/api/public/v2/scores",
    "/api/public/score-configs",
    "/api/public/models",
    "/api/public/v2/prompts",
    "/api/public/datasets",
    "/api/public/v2/datasets",
    "/api/public/datasets/some-dataset/runs",
    "/api/public/dataset-items",
    "/api/public/dataset-run-items?datasetId=d&runName=r",
    "/api/public/comments",
    "/api/public/annotation-queues",
    "/api/public/annotation-queues/q-1/items",
]

# the routes that take the structured JSON `filter` parameter
FILTER_ROUTES = [
    "/api/public/traces",
    "/api/public/observations",
    "/api/public/v2/observations",
    "/api/public/scores",
    "/api/public/v2/scores",
    "/api/public/v2/prompts",
]


def _with(route: str, **params: str) -> tuple[str, dict]:
    path, _, query = route.partition("?")
    base = dict(p.split("=", 1) for p in query.split("&")) if query else {}
    return path, base | params


def _is_langfuse_400(response) -> bool:
    body = response.json()
    return response.status_code == 400 and body.get("error") == "InvalidRequestError" and body.get("message")


def test_page_beyond_the_bound_is_a_400_and_the_last_page_is_empty(api):
    api.client.post("/api/public/annotation-queues", json={"name": "q", "scoreConfigIds": []}, auth=api.auth)
    for route in LIST_ROUTES:
        path, params = _with(route, page="1000000000000000000")
        r = api.client.get(path, params=params, auth=api.auth)
        assert _is_langfuse_400(r), (route, r.status_code, r.text)
        assert "page" in r.json()["message"]
        path, params = _with(route, page=str(MAX_PAGE + 1))
        assert api.client.get(path, params=params, auth=api.auth).status_code == 400, route
        # a 4300-digit page would make int() itself refuse (CPython's limit): still a 400
        path, params = _with(route, page="9" * 5000)
        assert api.client.get(path, params=params, auth=api.auth).status_code == 400, route
        # the largest page allowed reaches the database: an in-range OFFSET, an empty page (or a 404 for
        # the routes under a dataset or queue that does not exist)
        path, params = _with(route, page=str(MAX_PAGE), limit="100")
        r = api.client.get(path, params=params, auth=api.auth)
        assert r.status_code in (200, 404), (route, r.status_code, r.text)
        if r.status_code == 200:
            assert r.json()["data"] == [], route


BAD_ITEMS = [
    {"type": ["string"], "column": "name", "operator": "=", "value": "a"},
    {"type": {"a": 1}, "column": "name", "operator": "=", "value": "a"},
    {"type": 7, "column": "name", "operator": "=", "value": "a"},
    {"type": "string", "column": ["name"], "operator": "=", "value": "a"},
    {"type": "string", "column": "name", "operator": ["="], "value": "a"},
    {"type": "string", "column": "name", "operator": {"=": 1}, "value": "a"},
    {"type": "stringObject", "column": "metadata", "key": ["k"], "operator": "=", "value": "a"},
]


def test_filter_items_with_wrongly_typed_fields_are_a_400(api):
    for route in FILTER_ROUTES:
        for item in BAD_ITEMS:
            r = api.client.get(route, params={"filter": json.dumps([item])}, auth=api.auth)
            assert _is_langfuse_400(r), (route, item, r.status_code, r.text)


def test_nul_in_a_score_metadata_filter_key_is_a_400(api):
    batch = [
        {
            "id": "ev-t",
            "type": "trace-create",
            "timestamp": "2026-01-01T00:00:00Z",
            "body": {"id": "t-1", "name": "t"},
        },
        {
            "id": "ev-s",
            "type": "score-create",
            "timestamp": "2026-01-01T00:00:00Z",
            "body": {"id": "s-1", "traceId": "t-1", "name": "q", "value": 1, "metadata": {"k": "v"}},
        },
    ]
    assert api.ingest(batch).status_code == 207
    for key, value in (("a\x00b", "v"), ("k", "v\x00")):
        item = {"type": "stringObject", "column": "metadata", "key": key, "operator": "=", "value": value}
        for route in (
            "/api/public/scores",
            "/api/public/v2/scores",
            "/api/public/traces",
            "/api/public/observations",
        ):
            r = api.client.get(route, params={"filter": json.dumps([item])}, auth=api.auth)
            assert _is_langfuse_400(r), (route, key, r.status_code, r.text)
            assert "NUL" in r.json()["message"]
    ok = {"type": "stringObject", "column": "metadata", "key": "k", "operator": "=", "value": "v"}
    r = api.client.get("/api/public/v2/scores", params={"filter": json.dumps([ok])}, auth=api.auth)
    assert r.status_code == 200 and [s["id"] for s in r.json()["data"]] == ["s-1"]


@pytest.mark.parametrize("content_type", [["image/png"], {"image/png": 1}, 7, None, True])
def test_media_content_type_of_the_wrong_json_type_is_a_400(api, content_type):
    body = {
        "traceId": "t-1",
        "field": "input",
        "contentType": content_type,
        "contentLength": 10,
        "sha256Hash": "a" * 43 + "=",
    }
    r = api.client.post("/api/public/media", json=body, auth=api.auth)
    assert _is_langfuse_400(r), (r.status_code, r.text)
    assert "contentType" in r.json()["message"]


def test_timestamps_before_year_1000_are_read_back_with_four_digit_years(api):
    body = {
        "modelName": "old-model",
        "matchPattern": "(?i)^old-model$",
        "unit": "TOKENS",
        "inputPrice": 1.0,
        "startDate": "0544-11-09T16:08:25Z",
    }
    r = api.client.post("/api/public/models", json=body, auth=api.auth)
    assert r.status_code == 200, r.text
    assert r.json()["startDate"] == "0544-11-09T16:08:25.000Z"
    assert api.client.get(f"/api/public/models/{r.json()['id']}", auth=api.auth).json()["startDate"] == (
        "0544-11-09T16:08:25.000Z"
    )
    event = {
        "id": "ev-old",
        "type": "trace-create",
        "timestamp": "0999-01-02T03:04:05.006Z",
        "body": {"id": "t-old", "timestamp": "0999-01-02T03:04:05.006Z"},
    }
    assert api.ingest([event]).status_code == 207
    assert api.client.get("/api/public/traces/t-old", auth=api.auth).json()["timestamp"] == (
        "0999-01-02T03:04:05.006Z"
    )


NUL_GETS = [
    "/api/public/traces/a%00b",
    "/api/public/traces?name=a%00b",
    "/api/public/observations?traceId=%00",
    "/api/public/sessions/%00",
    "/api/public/scores/%00",
    "/api/public/v2/prompts/%00",
    "/api/public/comments/%00",
    "/api/public/dataset-items/%00",
    "/api/public/media/%00",
    "/api/public/v2/datasets/%00",
    "/api/public/models/%00",
]
NUL_POSTS = [
    ("/api/public/annotation-queues", {"name": "q", "scoreConfigIds": ["a\x00"]}),
    ("/api/public/v2/datasets", {"name": "d", "metadata": {"a": "\x00"}}),
    (
        "/api/public/comments",
        {"projectId": "project-1", "objectType": "TRACE", "objectId": "t\x00", "content": "c"},
    ),
]


def test_nul_characters_anywhere_in_a_request_are_never_a_500(api, request):
    """SQLite stores and compares NUL; Postgres text and JSONB cannot: there it is a 400 in Langfuse's shape."""
    on_postgres = request.node.callspec.params["backend"] == "postgres"
    for url in NUL_GETS:
        r = api.client.get(url, auth=api.auth)
        assert r.status_code < 500, (url, r.status_code, r.text)
        if on_postgres:
            assert _is_langfuse_400(r) and "NUL" in r.json()["message"], (url, r.status_code, r.text)
    for url, body in NUL_POSTS:
        r = api.client.post(url, json=body, auth=api.auth)
        assert r.status_code < 500, (url, r.status_code, r.text)
        if on_postgres:
            assert _is_langfuse_400(r) and "NUL" in r.json()["message"], (url, r.status_code, r.text)


def test_nul_in_ingested_events_is_stripped_and_never_costs_the_batch(api):
    batch = [
        {
            "id": "e-good",
            "type": "trace-create",
            "timestamp": "2026-01-01T00:00:00Z",
            "body": {"id": "t-good", "name": "fine"},
        },
        {
            "id": "e-nul",
            "type": "trace-create",
            "timestamp": "2026-01-01T00:00:00Z",
            "body": {
                "id": "t-\x00nul",
                "name": "a\x00b",
                "input": "x\x00y",
                "tags": ["t\x00"],
                "metadata": {"k\x00": "v\x00"},
            },
        },
    ]
    r = api.ingest(batch)
    assert r.status_code == 207
    assert sorted(s["id"] for s in r.json()["successes"]) == ["e-good", "e-nul"], r.text
    assert api.client.get("/api/public/traces/t-good", auth=api.auth).status_code == 200
    trace = api.client.get("/api/public/traces/t-nul", auth=api.auth).json()
    assert (trace["name"], trace["input"], trace["tags"], trace["metadata"]) == (
        "ab",
        "xy",
        ["t"],
        {"k": "v"},
    )
    # the legacy single-object route too
    r = api.client.post("/api/public/traces", json={"id": "t-\x00one", "name": "o\x00ne"}, auth=api.auth)
    assert r.status_code == 200, r.text
    assert api.client.get("/api/public/traces/t-one", auth=api.auth).json()["name"] == "one"


@pytest.mark.parametrize("event_type", [{}, [], 7, None, True])
def test_an_event_type_of_the_wrong_json_type_fails_that_event_alone(api, event_type):
    # found by schemathesis after the ingestion metrics began counting events by type: {} was a 500
    good = {
        "id": "e-good",
        "type": "trace-create",
        "timestamp": "2026-01-01T00:00:00Z",
        "body": {"id": "t-ok"},
    }
    r = api.ingest([{"id": "e-bad", "type": event_type}, good])
    assert r.status_code == 207, (r.status_code, r.text)
    assert [s["id"] for s in r.json()["successes"]] == ["e-good"]
    assert [e["id"] for e in r.json()["errors"]] == ["e-bad"] and r.json()["errors"][0]["status"] == 400
