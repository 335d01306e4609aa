"""Deleted projects are purged: every row of every project table and the media bytes go, other projects stay.

Runs on SQLite and Postgres (the ``api`` fixture). The data goes in through the public API (the real ingestion
pipeline, media uploads, prompts, datasets, ...), the deletion through the web accounts service.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import time
import uuid
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from lightfuse.services.accounts.web_accounts import AccountError, WebAccounts
from lightfuse.services.automations.automations import AutomationService
from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.outbound import OutboundPolicy
from lightfuse.services.llm.connections import LlmConnections
from lightfuse.store.sql import accounts as account_store
from lightfuse.store.sql import project_purge
from lightfuse.store.sql import prompt_pages as prompt_page_store
from lightfuse.store.sql import user_admin as admin_store
from lightfuse.store.sql.tables import metadata, projects


def iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def ok(resp):
    assert resp.status_code in (200, 201, 207), resp.text
    return resp.json()


def upload_media(api, auth, data: bytes, **link) -> None:
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    body = {"contentType": "image/png", "contentLength": len(data), "sha256Hash": sha, **link}
    created = ok(api.client.post("/api/public/media", json=body, auth=auth))
    url = urlsplit(created["uploadUrl"])
    put = api.client.put(
        f"{url.path}?{url.query}",
        content=data,
        headers={"Content-Type": "image/png", "x-amz-checksum-sha256": sha},
    )
    assert put.status_code == 200, put.text
    ok(
        api.client.patch(
            f"/api/public/media/{created['mediaId']}",
            auth=auth,
            json={"uploadedAt": iso(), "uploadHttpStatus": 200, "uploadTimeMs": 1},
        )
    )


def populate(api, auth, project_id: str, org_id: str, tag: str) -> None:
    """One or more rows in every project table."""
    c = api.client

    def post(path: str, body: dict):
        return ok(c.post(path, json=body, auth=auth))

    def event(kind: str, body: dict) -> dict:
        return {"id": str(uuid.uuid4()), "type": kind, "timestamp": iso(), "body": body}

    batch = [
        event("trace-create", {"id": "t1", "name": "checkout", "sessionId": "s1", "input": {"q": tag}}),
        event(
            "generation-create",
            {
                "id": "g1",
                "traceId": "t1",
                "name": "llm",
                "startTime": iso(),
                "model": "gpt-4o",
                "usage": {"input": 3, "output": 4},
            },
        ),
        event("score-create", {"id": "sc1", "traceId": "t1", "name": "quality", "value": 1}),
    ] + [event("span-create", {"id": f"span-{i}", "traceId": "t1", "startTime": iso()}) for i in range(12)]
    result = post("/api/public/ingestion", {"batch": batch})
    assert not result["errors"], result
    upload_media(api, auth, f"trace bytes {tag}".encode(), traceId="t1", observationId="g1", field="input")

    # a webhook automation (issue #18): the prompt writes below queue its deliveries, the sender logs an attempt
    key = api.services.settings.encryption_key or "ab" * 32  # Postgres runs have none configured
    hooks = AutomationService(api.services.engine, key, OutboundPolicy("hooks.example"))
    hooks.create(project_id, {"name": "hook", "url": "https://hooks.example/x"})
    # an LLM connection (issue #18), stored with its key encrypted
    LlmConnections(api.services.engine, key, OutboundPolicy("llm.example")).upsert(
        project_id,
        {
            "provider": "gateway",
            "adapter": "openai",
            "secretKey": "sk-test",
            "baseURL": "https://llm.example/v1",
        },
    )
    post("/api/public/v2/prompts", {"name": "base", "type": "text", "prompt": "Hi", "labels": ["production"]})
    api.services.webhooks.run_due()
    post(
        "/api/public/v2/prompts",
        {"name": "greet", "type": "text", "prompt": "@@@langfusePrompt:name=base|label=production@@@ there"},
    )
    post("/api/public/v2/datasets", {"name": "evals"})
    post("/api/public/dataset-items", {"datasetName": "evals", "id": f"item-{tag}", "input": {"x": 1}})
    post(
        "/api/public/dataset-run-items", {"runName": "run-1", "datasetItemId": f"item-{tag}", "traceId": "t1"}
    )
    upload_media(
        api,
        auth,
        f"dataset bytes {tag}".encode(),
        datasetId=_dataset_id(api, auth),
        datasetItemId=f"item-{tag}",
        field="input",
    )
    config = post("/api/public/score-configs", {"name": "quality", "dataType": "NUMERIC"})
    queue = post("/api/public/annotation-queues", {"name": "review", "scoreConfigIds": [config["id"]]})
    post(f"/api/public/annotation-queues/{queue['id']}/items", {"objectId": "t1", "objectType": "TRACE"})
    post(
        "/api/public/models",
        {
            "modelName": f"my-model-{tag}",
            "matchPattern": f"(?i)^(my-model-{tag})$",
            "unit": "TOKENS",
            "inputPrice": 0.001,
        },
    )

    # issue #15: feedback and a blob-storage export configuration (organisation key), purged with the project
    post("/api/public/feedback", {"targetType": "docs", "target": "/docs", "feedback": "ok"})
    org_key = api.services.keys.create_org_key(org_id)
    blob = {
        "projectId": project_id,
        "type": "S3",
        "bucketName": "b",
        "region": "r",
        "exportFrequency": "daily",
        "enabled": True,
        "forcePathStyle": False,
        "fileType": "CSV",
        "exportMode": "FULL_HISTORY",
    }
    ok(
        c.put(
            "/api/public/integrations/blob-storage", json=blob, auth=(org_key.public_key, org_key.secret_key)
        )
    )

    user_id = api.services.accounts.create_user(f"{tag}-{uuid.uuid4().hex[:6]}@example.com", None)
    with api.services.engine.begin() as conn:
        account_store.upsert_org_membership(
            conn, id=str(uuid.uuid4()), org_id=org_id, user_id=user_id, role="MEMBER", now=now_ms()
        )
        account_store.upsert_project_membership(
            conn, project_id=project_id, user_id=user_id, role="ADMIN", now=now_ms()
        )
        # an invitation with a role in the project (issue #16): purged with it
        admin_store.create_invitation(
            conn,
            id=str(uuid.uuid4()),
            org_id=org_id,
            email=f"invited-{tag}@example.com",
            org_role="VIEWER",
            project_id=project_id,
            project_role="MEMBER",
            token_hash=uuid.uuid4().hex * 2,
            invited_by_user_id=None,
            created_at=now_ms(),
            expires_at=now_ms() + 60_000,
        )
        # a protected prompt label (issue #18, set on the prompt settings page): purged with the project
        prompt_page_store.add_protected_label(conn, project_id, "production", now_ms())
    post(f"/api/public/annotation-queues/{queue['id']}/assignments", {"userId": user_id})
    post(
        "/api/public/comments",
        {
            "projectId": project_id,
            "objectType": "TRACE",
            "objectId": "t1",
            "content": "hm",
            "authorUserId": user_id,
        },
    )


def _dataset_id(api, auth) -> str:
    return ok(api.client.get("/api/public/v2/datasets/evals", auth=auth))["id"]


def counts(engine, project_id: str) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.project_id == project_id)
            ).scalar_one()
            for t in project_purge.project_tables()
        }


def blob_files(api, project_id: str) -> list[str]:
    root = api.services.settings.data_dir / "media" / project_id
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def project_exists(engine, project_id: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.select(projects.c.id).where(projects.c.id == project_id)).first() is not None


@pytest.fixture
def doomed(api):
    """A second project (own organisation, owned by a user) with data everywhere; the survivor is project-1."""
    web = WebAccounts(api.services.engine, api.services.keys)
    owner = web.sign_up(f"owner-{uuid.uuid4().hex[:6]}@example.com", "password-123")
    org_id = web.create_org(owner, "Doomed Org")
    project_id = web.create_project(web.org_access(owner, org_id), "Doomed")
    key = api.services.keys.create_key(project_id)
    populate(api, (key.public_key, key.secret_key), project_id, org_id, "doomed")
    populate(api, api.auth, api.project_id, "org-1", "survivor")
    return web, owner, org_id, project_id


def test_every_table_is_global_or_project_scoped():
    # a new table must either carry project_id (and so be purged) or be declared global on purpose
    unscoped = {t.name for t in metadata.sorted_tables if "project_id" not in t.c}
    assert unscoped == set(project_purge.GLOBAL_TABLES)


def test_purge_removes_every_row_and_blob_of_the_deleted_project_only(api, doomed):
    web, owner, org_id, project_id = doomed
    engine, purger = api.services.engine, api.services.purger
    before = counts(engine, project_id)
    assert all(before.values()), f"populate() must fill every project table: {before}"
    survivor = counts(engine, api.project_id)
    survivor_blobs = blob_files(api, api.project_id)
    assert len(blob_files(api, project_id)) == 2 and len(survivor_blobs) == 2

    web.delete_project(web.project_access(owner, project_id))
    assert purger.pending() == [project_id]
    with pytest.raises(AccountError, match="still being removed"):
        web.delete_org(web.org_access(owner, org_id))

    assert purger.purge_due() == [project_id]
    assert not any(counts(engine, project_id).values())
    assert not project_exists(engine, project_id)
    assert blob_files(api, project_id) == []
    assert counts(engine, api.project_id) == survivor
    assert blob_files(api, api.project_id) == survivor_blobs
    assert purger.purge_due() == [] and purger.pending() == []  # idempotent
    web.delete_org(web.org_access(owner, org_id))  # nothing left behind now

    # the survivor still reads fine
    trace = ok(api.client.get("/api/public/traces/t1", auth=api.auth))
    assert len(trace["observations"]) == 13 and len(trace["scores"]) == 1


def test_purge_is_resumable_and_keeps_media_records_until_their_blobs_are_gone(api, doomed):
    web, owner, _, project_id = doomed
    engine, purger = api.services.engine, api.services.purger
    web.delete_project(web.project_access(owner, project_id))
    full = counts(engine, project_id)

    # interrupted after one small chunk
    asked = []
    done = project_purge.purge_project(
        engine,
        project_id,
        delete_blobs=lambda keys: None,
        chunk_rows=5,
        should_stop=lambda: asked.append(1) or len(asked) > 1,
    )
    assert not done and project_exists(engine, project_id)
    partial = counts(engine, project_id)
    assert 0 < sum(full.values()) - sum(partial.values()) <= 5  # one chunk of at most 5 rows

    # a failing blob store: the media records stay (they name the bytes), the project is retried
    def broken(keys):
        raise OSError("blob store down")

    with pytest.raises(OSError):
        project_purge.purge_project(engine, project_id, delete_blobs=broken, chunk_rows=5)
    left = counts(engine, project_id)
    assert left["media"] == full["media"] and project_exists(engine, project_id)
    assert len(blob_files(api, project_id)) == 2

    assert purger.purge_due() == [project_id]
    assert not any(counts(engine, project_id).values()) and blob_files(api, project_id) == []
    assert not project_exists(engine, project_id)


def test_rows_arriving_during_the_purge_keep_the_project_for_the_next_run(api, doomed):
    web, owner, _, project_id = doomed
    engine = api.services.engine
    web.delete_project(web.project_access(owner, project_id))

    order = [t.name for t in project_purge.project_tables()]
    assert order.index("score_configs") < order.index("media")

    def late_row(keys):  # called mid-purge, after the score configs were emptied
        with engine.begin() as conn:
            conn.execute(
                metadata.tables["score_configs"]
                .insert()
                .values(
                    id=str(uuid.uuid4()),
                    project_id=project_id,
                    name="late",
                    data_type="NUMERIC",
                    is_archived=False,
                    created_at=0,
                    updated_at=0,
                )
            )

    assert not project_purge.purge_project(engine, project_id, delete_blobs=late_row)
    assert project_exists(engine, project_id) and counts(engine, project_id)["score_configs"] == 1
    assert api.services.purger.purge_due() == [project_id]
    assert not any(counts(engine, project_id).values())


def test_grace_period(api, doomed):
    from lightfuse.app import build_blob_store
    from lightfuse.services.accounts.project_purge import ProjectPurger

    web, owner, _, project_id = doomed
    web.delete_project(web.project_access(owner, project_id))
    patient = ProjectPurger(api.services.engine, build_blob_store(api.services.settings), grace_seconds=3600)
    assert patient.pending() == [] and patient.purge_due() == []
    assert project_exists(api.services.engine, project_id)


def test_the_served_app_purges_in_the_background(backend):
    from lightfuse.app import build_services, create_app
    from lightfuse.config import load_settings

    services = build_services(load_settings(**backend, project_purge_interval_seconds=0.2))
    web = WebAccounts(services.engine, services.keys)
    owner = web.sign_up("bg@example.com", "password-123")
    project_id = web.create_project(web.org_access(owner, web.create_org(owner, "Org")), "Gone soon")
    with TestClient(create_app(services)) as client:
        key = services.keys.create_key(project_id)
        batch = [{"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": iso(), "body": {"id": "t1"}}]
        assert ok(
            client.post("/api/public/ingestion", json={"batch": batch}, auth=(key.public_key, key.secret_key))
        )["successes"]
        web.delete_project(web.project_access(owner, project_id))
        deadline = time.monotonic() + 20
        while project_exists(services.engine, project_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not project_exists(services.engine, project_id)
        assert not any(counts(services.engine, project_id).values())
    services.engine.dispose()
