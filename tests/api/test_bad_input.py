"""Bad input gets a 4xx or a per-event error, never a 500, and never costs the valid events of the batch."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightfuse.api.ingestion import INGESTION_BODY_LIMIT

GOOD = {
    "id": "good-ev",
    "type": "trace-create",
    "timestamp": "2026-01-01T00:00:00Z",
    "body": {"id": "good-trace", "name": "ok"},
}


def test_malformed_json_and_wrong_shapes(api):
    for body in (b"{not json", b"[]", b'{"batch": {}}', b'"x"', b"null", b"{}"):
        r = api.client.post(
            "/api/public/ingestion", content=body, auth=api.auth, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, body
        assert r.json()["message"] == "Invalid request data"


def test_one_bad_event_fails_alone(api):
    batch = [
        GOOD,
        {"id": "naive", "type": "span-create", "timestamp": "2026-01-01T00:00:00", "body": {"id": "s1"}},
        {"id": "no-body-id", "type": "span-create", "timestamp": "2026-01-01T00:00:00Z", "body": {}},
        {"id": "bad-type", "type": "nonsense", "timestamp": "2026-01-01T00:00:00Z", "body": {}},
        {
            "id": "bad-level",
            "type": "span-create",
            "timestamp": "2026-01-01T00:00:00Z",
            "body": {"id": "s2", "level": "LOUD"},
        },
        {
            "id": "score-two-targets",
            "type": "score-create",
            "timestamp": "2026-01-01T00:00:00Z",
            "body": {"name": "x", "value": 1, "traceId": "t", "sessionId": "s"},
        },
        "not an object",
        {
            "id": "naive-body",
            "type": "span-create",
            "timestamp": "2026-01-01T00:00:00Z",
            "body": {"id": "s3", "startTime": "2026-01-01T00:00:00"},
        },
    ]
    r = api.ingest(batch)
    assert r.status_code == 207
    body = r.json()
    assert [s["id"] for s in body["successes"]] == ["good-ev"]
    assert len(body["errors"]) == len(batch) - 1
    assert all(e["status"] == 400 and e["message"] == "Invalid request data" for e in body["errors"])
    assert api.client.get("/api/public/traces/good-trace", auth=api.auth).status_code == 200


def test_oversize_body_is_413(api):
    big = {"batch": [{**GOOD, "body": {"id": "big", "input": "x" * (INGESTION_BODY_LIMIT + 10)}}]}
    r = api.client.post(
        "/api/public/ingestion",
        content=json.dumps(big),
        auth=api.auth,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"] == "PayloadTooLargeError"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
event_types = st.sampled_from(
    [
        "trace-create",
        "span-create",
        "span-update",
        "generation-create",
        "generation-update",
        "event-create",
        "score-create",
        "sdk-log",
        "observation-create",
        "agent-create",
        "tool-create",
        "x",
    ]
)
timestamps = st.sampled_from(
    ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "yesterday", "2026-13-01T00:00:00Z"]
)
body_keys = st.sampled_from(
    [
        "id",
        "traceId",
        "name",
        "startTime",
        "endTime",
        "input",
        "output",
        "metadata",
        "level",
        "usage",
        "usageDetails",
        "costDetails",
        "model",
        "modelParameters",
        "value",
        "dataType",
        "tags",
        "public",
        "environment",
        "sessionId",
        "promptName",
        "promptVersion",
        "parentObservationId",
        "configId",
    ]
)
bodies = st.dictionaries(body_keys, json_values, max_size=8)
events = (
    st.fixed_dictionaries(
        {"id": st.text(min_size=1, max_size=12), "type": event_types, "timestamp": timestamps, "body": bodies}
    )
    | json_values
)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(events, max_size=6))
def test_generated_batches_never_500(api, batch):
    r = api.ingest(batch + [GOOD])
    assert r.status_code == 207, r.text
    body = r.json()
    assert "good-ev" in {s["id"] for s in body["successes"]}
    for err in body["errors"]:
        assert err["status"] in (400, 401), err
