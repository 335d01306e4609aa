"""Authentication and project isolation of the public API."""

from __future__ import annotations

import base64

INVALID = "Invalid credentials. Confirm that you've configured the correct host."


def trace_event(trace_id: str, name: str = "t") -> dict:
    return {
        "id": f"ev-{trace_id}",
        "type": "trace-create",
        "timestamp": "2026-01-01T00:00:00.000Z",
        "body": {"id": trace_id, "name": name},
    }


def test_wrong_secret_wrong_public_key_and_no_header(api):
    good_pk, good_sk = api.auth
    r = api.client.get("/api/public/projects", auth=(good_pk, good_sk + "x"))
    assert (r.status_code, r.json()) == (401, {"message": INVALID})
    # a correct secret with somebody else's public key must not pass (Langfuse would accept it)
    r = api.client.get("/api/public/projects", auth=("pk-lf-not-mine", good_sk))
    assert (r.status_code, r.json()) == (401, {"message": INVALID})
    r = api.client.get("/api/public/projects")
    assert (r.status_code, r.json()) == (401, {"message": "No authorization header"})
    r = api.client.get("/api/public/projects", headers={"Authorization": "Token abc"})
    assert (r.status_code, r.json()) == (401, {"message": "Invalid authorization header"})
    r = api.client.get("/api/public/projects", headers={"Authorization": "Basic !!!notbase64"})
    assert r.status_code == 401
    only_pk = base64.b64encode(f"{good_pk}:".encode()).decode()
    r = api.client.get("/api/public/projects", headers={"Authorization": f"Basic {only_pk}"})
    assert r.status_code == 401
    r = api.client.get("/api/public/projects", auth=api.auth)
    assert r.status_code == 200 and r.json()["data"][0]["id"] == api.project_id


def test_ingestion_auth_failure_uses_typed_error_shape(api):
    r = api.client.post("/api/public/ingestion", json={"batch": []}, auth=("pk-lf-x", "sk-lf-y"))
    assert r.status_code == 401
    assert r.json() == {"error": "UnauthorizedError", "message": INVALID}


def test_bearer_public_key_may_only_write_scores(api):
    bearer = {"Authorization": f"Bearer {api.public_key}"}
    r = api.client.get("/api/public/traces", headers=bearer)
    assert r.status_code == 403
    assert r.json() == {"message": "Access denied - insufficient permissions for this endpoint"}
    batch = [
        trace_event("t-bearer"),
        {
            "id": "sc-1",
            "type": "score-create",
            "timestamp": "2026-01-01T00:00:00Z",
            "body": {"id": "score-1", "traceId": "t-any", "name": "quality", "value": 1},
        },
    ]
    r = api.client.post("/api/public/ingestion", json={"batch": batch}, headers=bearer)
    assert r.status_code == 207
    body = r.json()
    assert [s["id"] for s in body["successes"]] == ["sc-1"]
    assert [(e["id"], e["status"]) for e in body["errors"]] == [("ev-t-bearer", 401)]
    r = api.client.get("/api/public/traces/t-bearer", auth=api.auth)
    assert r.status_code == 404  # the refused trace was not stored


def test_a_key_cannot_read_another_projects_trace(api):
    r = api.ingest([trace_event("secret-trace")])
    assert r.status_code == 207 and r.json()["errors"] == []
    assert api.client.get("/api/public/traces/secret-trace", auth=api.auth).status_code == 200
    _, other_auth = api.new_project_key()
    r = api.client.get("/api/public/traces/secret-trace", auth=other_auth)
    assert r.status_code == 404
    assert r.json()["error"] == "LangfuseNotFoundError"
    listed = api.client.get("/api/public/traces", auth=other_auth).json()
    assert listed["data"] == [] and listed["meta"]["totalItems"] == 0
