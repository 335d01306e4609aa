"""Comments and annotation queues over HTTP, in-process on SQLite and Postgres."""

from __future__ import annotations

import uuid

import pytest

from lightfuse.services.common.clock import now_ms
from lightfuse.store.sql import accounts as account_store


def ok(resp, status: int = 200):
    assert resp.status_code == status, resp.text
    return resp.json()


@pytest.fixture
def trace_id(api) -> str:
    tid = f"trace-{uuid.uuid4().hex[:8]}"
    resp = api.ingest(
        [
            {
                "id": str(uuid.uuid4()),
                "type": "trace-create",
                "timestamp": "2024-01-01T00:00:00Z",
                "body": {"id": tid, "sessionId": "sess-1"},
            }
        ]
    )
    assert resp.status_code == 207 and not resp.json()["errors"], resp.text
    return tid


def member(api, org_id: str = "org-1") -> str:
    user_id = api.services.accounts.create_user(f"{uuid.uuid4().hex[:8]}@example.com", None)
    with api.services.engine.begin() as conn:
        account_store.upsert_org_membership(
            conn, id=str(uuid.uuid4()), org_id=org_id, user_id=user_id, role="MEMBER", now=now_ms()
        )
    return user_id


def comment(api, **body):
    payload = {"projectId": "ignored", "objectType": "TRACE", "content": "looks wrong", **body}
    return api.client.post("/api/public/comments", json=payload, auth=api.auth)


def test_comments(api, trace_id):
    author = member(api)
    created = ok(comment(api, objectId=trace_id, authorUserId=author))
    got = ok(api.client.get(f"/api/public/comments/{created['id']}", auth=api.auth))
    assert got["projectId"] == api.project_id and got["objectId"] == trace_id
    assert got["objectType"] == "TRACE" and got["authorUserId"] == author and got["content"] == "looks wrong"
    ok(comment(api, objectType="SESSION", objectId="sess-1", content="session note"))

    missing = comment(api, objectId="no-such-trace")
    assert missing.status_code == 404 and missing.json()["error"] == "LangfuseNotFoundError"
    assert comment(api, objectType="OBSERVATION", objectId=trace_id).status_code == 404
    assert comment(api, objectType="PROMPT", objectId="p").status_code == 404
    prompt = ok(
        api.client.post(
            "/api/public/v2/prompts", json={"name": "greet", "type": "text", "prompt": "Hi"}, auth=api.auth
        ),
        201,
    )
    ok(comment(api, objectType="PROMPT", objectId=prompt["id"], content="prompt note"))
    assert comment(api, objectType="DATASET", objectId=trace_id).status_code == 400
    assert comment(api, objectId=trace_id, content="").status_code == 400
    assert comment(api, objectId=trace_id, content="x" * 5001).status_code == 400
    assert comment(api, objectId=trace_id, content="x" * 5000).status_code == 200
    outsider = api.services.accounts.create_user(f"{uuid.uuid4().hex[:8]}@example.com", None)
    assert comment(api, objectId=trace_id, authorUserId=outsider).status_code == 400

    def listed(**params):
        return ok(api.client.get("/api/public/comments", params=params, auth=api.auth))

    assert listed()["meta"]["totalItems"] == 4
    assert {c["content"] for c in listed(objectType="SESSION")["data"]} == {"session note"}
    assert len(listed(objectType="TRACE", objectId=trace_id)["data"]) == 2
    assert [c["id"] for c in listed(authorUserId=author)["data"]] == [created["id"]]
    assert (
        api.client.get("/api/public/comments", params={"objectId": trace_id}, auth=api.auth).status_code
        == 400
    )
    missing = api.client.get("/api/public/comments/nope", auth=api.auth)
    assert (
        missing.status_code == 404
        and missing.json()["message"] == "Comment not found within authorized project"
    )
    _other, other_auth = api.new_project_key()
    assert api.client.get(f"/api/public/comments/{created['id']}", auth=other_auth).status_code == 404


def test_annotation_queues(api):
    config = ok(
        api.client.post(
            "/api/public/score-configs", json={"name": "quality", "dataType": "NUMERIC"}, auth=api.auth
        )
    )

    def create(**body):
        return api.client.post("/api/public/annotation-queues", json=body, auth=api.auth)

    queue = ok(create(name="review", description="daily", scoreConfigIds=[config["id"]]))
    assert queue["scoreConfigIds"] == [config["id"]] and queue["description"] == "daily"
    dup = create(name="review", scoreConfigIds=[])
    assert dup.status_code == 400 and dup.json()["message"] == "A queue with this name already exists."
    assert create(name="bad", scoreConfigIds=["missing"]).status_code == 400
    assert create(name="no-configs").status_code == 400
    second = ok(create(name="second", scoreConfigIds=[]))
    listed = ok(api.client.get("/api/public/annotation-queues", auth=api.auth))
    assert [q["id"] for q in listed["data"]] == [second["id"], queue["id"]]
    assert (
        ok(api.client.get(f"/api/public/annotation-queues/{queue['id']}", auth=api.auth))["name"] == "review"
    )
    missing = api.client.get("/api/public/annotation-queues/nope", auth=api.auth)
    assert missing.status_code == 404 and missing.json()["message"] == "Annotation queue not found"

    base = f"/api/public/annotation-queues/{queue['id']}"
    item = ok(api.client.post(f"{base}/items", json={"objectId": "t1", "objectType": "TRACE"}, auth=api.auth))
    assert item["status"] == "PENDING" and item["completedAt"] is None and item["queueId"] == queue["id"]
    done = ok(
        api.client.post(
            f"{base}/items",
            json={"objectId": "o1", "objectType": "OBSERVATION", "status": "COMPLETED"},
            auth=api.auth,
        )
    )
    assert done["completedAt"] is not None
    assert (
        api.client.post(
            f"{base}/items", json={"objectId": "x", "objectType": "PROMPT"}, auth=api.auth
        ).status_code
        == 400
    )
    assert (
        api.client.post(
            "/api/public/annotation-queues/nope/items",
            json={"objectId": "x", "objectType": "TRACE"},
            auth=api.auth,
        ).status_code
        == 404
    )

    pending = ok(api.client.get(f"{base}/items", params={"status": "PENDING"}, auth=api.auth))
    assert [i["id"] for i in pending["data"]] == [item["id"]]
    assert ok(api.client.get(f"{base}/items", auth=api.auth))["meta"]["totalItems"] == 2
    assert api.client.get(f"{base}/items", params={"status": "DONE"}, auth=api.auth).status_code == 400

    completed = ok(
        api.client.patch(f"{base}/items/{item['id']}", json={"status": "COMPLETED"}, auth=api.auth)
    )
    assert completed["status"] == "COMPLETED" and completed["completedAt"] is not None
    assert ok(api.client.get(f"{base}/items/{item['id']}", auth=api.auth))["status"] == "COMPLETED"
    reopened = ok(api.client.patch(f"{base}/items/{item['id']}", json={"status": "PENDING"}, auth=api.auth))
    assert reopened["completedAt"] is None
    deleted = ok(api.client.delete(f"{base}/items/{item['id']}", auth=api.auth))
    assert deleted["success"] is True and deleted["message"]
    assert api.client.get(f"{base}/items/{item['id']}", auth=api.auth).status_code == 404
    assert api.client.delete(f"{base}/items/{item['id']}", auth=api.auth).status_code == 404

    user = member(api)
    assigned = ok(api.client.post(f"{base}/assignments", json={"userId": user}, auth=api.auth))
    assert assigned == {"userId": user, "queueId": queue["id"], "projectId": api.project_id}
    ok(api.client.post(f"{base}/assignments", json={"userId": user}, auth=api.auth))  # idempotent
    assert ok(api.client.request("DELETE", f"{base}/assignments", json={"userId": user}, auth=api.auth)) == {
        "success": True
    }
    stranger = api.services.accounts.create_user(f"{uuid.uuid4().hex[:8]}@example.com", None)
    assert api.client.post(f"{base}/assignments", json={"userId": stranger}, auth=api.auth).status_code == 400
