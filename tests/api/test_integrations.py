"""Blob-storage integrations (organisation key) and feedback (project key), on SQLite and Postgres."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import text

PREFIX = "/api/public/integrations/blob-storage"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def ok(resp, status: int = 200):
    assert resp.status_code == status, resp.text
    return resp.json()


@pytest.fixture
def org(api):
    key = api.services.keys.create_org_key("org-1")
    return (key.public_key, key.secret_key)


def config(**overrides) -> dict:
    body = {
        "projectId": "project-1",
        "type": "S3_COMPATIBLE",
        "bucketName": "exports",
        "endpoint": "https://s3.example.com",
        "region": "eu-west-1",
        "accessKeyId": "AKIAEXAMPLE",
        "secretAccessKey": SECRET,
        "prefix": "lf/",
        "exportFrequency": "hourly",
        "enabled": True,
        "forcePathStyle": True,
        "fileType": "JSONL",
        "exportMode": "FROM_TODAY",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def test_blob_storage_crud_keeps_the_secret_encrypted(api, org):
    c = api.client
    settings = api.services.settings
    if not settings.encryption_key:  # Postgres mode without ENCRYPTION_KEY: a secret cannot be stored
        refused = c.put(PREFIX, json=config(), auth=org)
        assert refused.status_code == 400 and "ENCRYPTION_KEY" in refused.json()["message"]
        api.client.app.state.blob_integrations = None
        settings.encryption_key = secrets.token_hex(32)
    created = ok(c.put(PREFIX, json=config(), auth=org))
    assert created["projectId"] == "project-1" and created["bucketName"] == "exports"
    assert created["compressed"] is True and created["exportSource"] == "LEGACY_TRACES_OBSERVATIONS"
    assert created["exportFieldGroups"] is None and created["lastSyncAt"] is None
    assert "secretAccessKey" not in created and SECRET not in str(created)
    with api.services.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT secret_access_key_encrypted FROM blob_storage_integrations")
        ).scalar()
    assert stored and SECRET not in stored and stored.startswith("v1:")
    from lightfuse.services.common import secrets_box

    assert secrets_box.decrypt(api.services.settings.encryption_key, stored) == SECRET

    # update: same id, secret omitted keeps the stored one, export source kept unless given
    again = ok(
        c.put(
            PREFIX,
            json=config(
                secretAccessKey=...,
                enabled=False,
                exportSource="OBSERVATIONS_V2",
                exportFieldGroups=["core", "io"],
            ),
            auth=org,
        )
    )
    assert again["id"] == created["id"] and again["enabled"] is False
    assert again["exportSource"] == "OBSERVATIONS_V2" and again["exportFieldGroups"] == ["core", "io"]
    third = ok(c.put(PREFIX, json=config(secretAccessKey=...), auth=org))
    assert third["exportSource"] == "OBSERVATIONS_V2" and third["exportFieldGroups"] == ["core", "io"]
    with api.services.engine.connect() as conn:
        assert (
            conn.execute(text("SELECT secret_access_key_encrypted FROM blob_storage_integrations")).scalar()
            == stored
        )

    listed = ok(c.get(PREFIX, auth=org))["data"]
    assert [i["id"] for i in listed] == [created["id"]]
    status = ok(c.get(f"{PREFIX}/{created['id']}", auth=org))
    assert status["syncStatus"] == "idle" and status["enabled"] is True and status["nextSyncAt"] is None
    ok(c.put(PREFIX, json=config(secretAccessKey=..., enabled=False), auth=org))
    assert ok(c.get(f"{PREFIX}/{created['id']}", auth=org))["syncStatus"] == "disabled"

    assert ok(c.delete(f"{PREFIX}/{created['id']}", auth=org))["message"]
    assert c.get(f"{PREFIX}/{created['id']}", auth=org).status_code == 404
    assert c.delete(f"{PREFIX}/{created['id']}", auth=org).status_code == 404
    assert ok(c.get(PREFIX, auth=org)) == {"data": []}


@pytest.mark.parametrize(
    "overrides",
    [
        {"projectId": ...},
        {"type": "GCS"},
        {"bucketName": ""},
        {"endpoint": ...},
        {"endpoint": "ftp://x"},
        {"region": ...},
        {"prefix": "no-slash"},
        {"exportFrequency": "monthly"},
        {"enabled": "yes"},
        {"forcePathStyle": ...},
        {"fileType": "XML"},
        {"exportMode": "FROM_CUSTOM_DATE"},
        {"exportMode": "FROM_CUSTOM_DATE", "exportStartDate": "2999-01-01T00:00:00Z"},
        {"exportMode": "FROM_CUSTOM_DATE", "exportStartDate": "2024-01-01T00:00:00"},
        {"compressed": "no"},
        {"exportSource": "EVERYTHING"},
        {"exportFieldGroups": ["core"]},
        {"exportSource": "OBSERVATIONS_V2", "exportFieldGroups": ["io"]},
        {"exportSource": "OBSERVATIONS_V2", "exportFieldGroups": ["core", "nope"]},
        {"type": "AZURE_BLOB_STORAGE", "bucketName": "Bad_Name"},
        {"type": "AZURE_BLOB_STORAGE", "bucketName": "good-name", "secretAccessKey": ...},
    ],
)
def test_blob_storage_validation(api, org, overrides):
    api.services.settings.encryption_key = api.services.settings.encryption_key or secrets.token_hex(32)
    r = api.client.put(PREFIX, json=config(**overrides), auth=org)
    assert r.status_code == 400 and r.json()["error"] == "InvalidRequestError", (overrides, r.text)


def test_blob_storage_scope_and_key_kinds(api, org):
    c = api.client
    api.services.settings.encryption_key = api.services.settings.encryption_key or secrets.token_hex(32)
    other_project, other_auth = api.new_project_key()
    assert c.put(PREFIX, json=config(projectId=other_project), auth=org).status_code == 404
    assert c.put(PREFIX, json=config(projectId="missing"), auth=org).status_code == 404
    ok(c.put(PREFIX, json=config(type="S3", endpoint=...), auth=org))
    for method, path in (("GET", PREFIX), ("PUT", PREFIX), ("GET", PREFIX + "/x"), ("DELETE", PREFIX + "/x")):
        assert c.request(method, path, json=config(), auth=api.auth).status_code == 403, (method, path)
        assert c.request(method, path, json=config(), auth=(org[0], "sk-lf-wrong")).status_code == 401
    # another organisation's key sees none of it
    other_org = api.services.accounts.create_organization("Elsewhere")
    stranger = api.services.keys.create_org_key(other_org)
    assert ok(c.get(PREFIX, auth=(stranger.public_key, stranger.secret_key))) == {"data": []}


def test_feedback(api, org):
    c = api.client
    body = {"targetType": "public-api", "target": "/api/public/traces", "feedback": "Paging works well."}
    created = ok(c.post("/api/public/feedback", json=body, auth=api.auth), 201)
    assert created["id"]
    full = {**body, "goal": "export traces", "referenceUrl": "https://example.com/x"}
    ok(c.post("/api/public/feedback", json=full, auth=api.auth), 201)
    with api.services.engine.connect() as conn:
        rows = conn.execute(text("SELECT project_id, target, goal FROM feedback ORDER BY created_at")).all()
    assert [tuple(r) for r in rows][-1] == ("project-1", "/api/public/traces", "export traces") and len(
        rows
    ) == 2
    for bad in (
        {**body, "targetType": "email"},
        {**body, "target": ""},
        {**body, "target": "x" * 201},
        {**body, "feedback": "x" * 3001},
        {**body, "goal": ""},
        {**body, "referenceUrl": "javascript:alert(1)"},
        {"targetType": "docs", "target": "/docs"},
        [body],
    ):
        r = c.post("/api/public/feedback", json=bad, auth=api.auth)
        assert r.status_code == 400 and r.json()["error"] == "InvalidRequestError", (bad, r.text)
    assert c.post("/api/public/feedback", json=body, auth=org).status_code == 403
    assert c.post("/api/public/feedback", json=body).status_code == 401
