"""The organisation-key public API: projects, project API keys, memberships, on SQLite and Postgres."""

from __future__ import annotations

import uuid

import pytest


def ok(resp, status: int = 200):
    assert resp.status_code == status, resp.text
    return resp.json()


@pytest.fixture
def org(api):
    key = api.services.keys.create_org_key("org-1", note="automation")
    return (key.public_key, key.secret_key)


def user(api, name: str = "Ann") -> str:
    return api.services.accounts.create_user(f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com", None, name)


def audit_actions(api) -> list[tuple[str, str | None]]:
    from sqlalchemy import text

    with api.services.engine.connect() as conn:
        rows = conn.execute(text("SELECT action, actor_api_key_id FROM audit_log ORDER BY created_at")).all()
    return [(r[0], r[1]) for r in rows]


def test_project_crud_with_an_org_key(api, org):
    c = api.client
    created = ok(
        c.post(
            "/api/public/projects", json={"name": "Search", "retention": 0, "metadata": {"a": 1}}, auth=org
        )
    )
    assert created["name"] == "Search" and created["organization"]["id"] == "org-1"
    assert created["metadata"] == {"a": 1} and "retentionDays" not in created
    pid = created["id"]
    listed = ok(c.get("/api/public/organizations/projects", auth=org))["projects"]
    assert {p["name"] for p in listed} >= {"Search"}
    assert all(p["createdAt"].endswith("Z") for p in listed)

    updated = ok(c.put(f"/api/public/projects/{pid}", json={"name": "Search 2", "retention": 30}, auth=org))
    assert updated["name"] == "Search 2" and updated["retentionDays"] == 30
    assert updated["metadata"] == {"a": 1}, "metadata absent from the update keeps its value"

    # validation
    for body in (
        {"retention": 0},
        {"name": "", "retention": 0},
        {"name": "x"},
        {"name": "x", "retention": 2},
        {"name": "x", "retention": "7"},
        {"name": "x", "retention": 0, "metadata": [1]},
        [1],
    ):
        r = c.post("/api/public/projects", json=body, auth=org)
        assert r.status_code == 400 and r.json()["error"] == "InvalidRequestError", (body, r.text)
    assert (
        c.post("/api/public/projects", json={"name": "Search 2", "retention": 0}, auth=org).status_code == 400
    )
    assert c.put("/api/public/projects/nope", json={"name": "y"}, auth=org).status_code == 404

    # a key of the project works until the project is deleted
    key = ok(c.post(f"/api/public/projects/{pid}/apiKeys", json={"note": "ci"}, auth=org))
    assert c.get("/api/public/projects", auth=(key["publicKey"], key["secretKey"])).status_code == 200
    deleted = c.delete(f"/api/public/projects/{pid}", auth=org)
    assert deleted.status_code == 202 and deleted.json()["success"] is True
    assert c.get("/api/public/projects", auth=(key["publicKey"], key["secretKey"])).status_code == 401
    assert c.delete(f"/api/public/projects/{pid}", auth=org).status_code == 404
    actions = audit_actions(api)
    assert ("project.create", org_key_id(api, org)) in actions and (
        "project.delete",
        org_key_id(api, org),
    ) in actions


def org_key_id(api, org) -> str:
    return api.services.keys.authenticate_org(_basic(*org)).api_key_id


def _basic(public: str, secret: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()


def test_project_api_keys(api, org):
    c = api.client
    keys = ok(c.get("/api/public/projects/project-1/apiKeys", auth=org))["apiKeys"]
    assert [k["publicKey"] for k in keys] == [api.public_key]
    assert "secretKey" not in keys[0] and keys[0]["displaySecretKey"].startswith("sk-lf-...")

    pk, sk = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
    created = ok(
        c.post("/api/public/projects/project-1/apiKeys", json={"publicKey": pk, "secretKey": sk}, auth=org)
    )
    assert created["publicKey"] == pk and created["secretKey"] == sk
    assert c.get("/api/public/projects", auth=(pk, sk)).status_code == 200
    for body in (
        {"publicKey": pk},
        {"publicKey": "abc", "secretKey": sk},
        {"publicKey": pk, "secretKey": "x"},
        {"note": 5},
        {"publicKey": pk, "secretKey": sk},
    ):
        r = c.post("/api/public/projects/project-1/apiKeys", json=body, auth=org)
        assert r.status_code == 400, (body, r.text)

    assert ok(c.delete(f"/api/public/projects/project-1/apiKeys/{created['id']}", auth=org)) == {
        "success": True
    }
    assert c.get("/api/public/projects", auth=(pk, sk)).status_code == 401
    assert c.delete(f"/api/public/projects/project-1/apiKeys/{created['id']}", auth=org).status_code == 404

    # another organisation's project is not found, and neither are its keys
    other, _auth = api.new_project_key()
    assert c.get(f"/api/public/projects/{other}/apiKeys", auth=org).status_code == 404
    org_keys = ok(c.get("/api/public/organizations/apiKeys", auth=org))["apiKeys"]
    assert [k["publicKey"] for k in org_keys] == [org[0]]
    assert ("apiKey.create", org_key_id(api, org)) in audit_actions(api)


def test_org_and_project_memberships(api, org):
    c = api.client
    ann, bob = user(api, "Ann"), user(api, "Bob")
    m = ok(c.put("/api/public/organizations/memberships", json={"userId": ann, "role": "OWNER"}, auth=org))
    assert m["userId"] == ann and m["role"] == "OWNER" and m["name"] == "Ann"
    ok(c.put("/api/public/organizations/memberships", json={"userId": bob, "role": "VIEWER"}, auth=org))
    roles = {
        x["userId"]: x["role"]
        for x in ok(c.get("/api/public/organizations/memberships", auth=org))["memberships"]
    }
    assert roles[ann] == "OWNER" and roles[bob] == "VIEWER"

    for body in (
        {"userId": ann},
        {"userId": ann, "role": "KING"},
        {"role": "ADMIN"},
        {"userId": 3, "role": "ADMIN"},
    ):
        r = c.put("/api/public/organizations/memberships", json=body, auth=org)
        assert r.status_code == 400, (body, r.text)
    assert (
        c.put(
            "/api/public/organizations/memberships", json={"userId": "ghost", "role": "ADMIN"}, auth=org
        ).status_code
        == 404
    )

    # project role overrides the org role in one project, only for members
    pm = ok(
        c.put("/api/public/projects/project-1/memberships", json={"userId": bob, "role": "ADMIN"}, auth=org)
    )
    assert pm["role"] == "ADMIN"
    in_project = {
        x["userId"]: x["role"]
        for x in ok(c.get("/api/public/projects/project-1/memberships", auth=org))["memberships"]
    }
    assert in_project[bob] == "ADMIN" and in_project[ann] == "OWNER"
    outsider = user(api, "Cy")
    assert (
        c.put(
            "/api/public/projects/project-1/memberships", json={"userId": outsider, "role": "ADMIN"}, auth=org
        ).status_code
        == 404
    )
    gone = ok(
        c.request("DELETE", "/api/public/projects/project-1/memberships", json={"userId": bob}, auth=org)
    )
    assert gone["userId"] == bob
    assert (
        c.request(
            "DELETE", "/api/public/projects/project-1/memberships", json={"userId": bob}, auth=org
        ).status_code
        == 404
    )

    # the last owner stays
    only_owner = c.request("DELETE", "/api/public/organizations/memberships", json={"userId": ann}, auth=org)
    assert only_owner.status_code == 400, only_owner.text
    assert (
        ok(c.request("DELETE", "/api/public/organizations/memberships", json={"userId": bob}, auth=org))[
            "userId"
        ]
        == bob
    )
    assert c.request("DELETE", "/api/public/organizations/memberships", json={}, auth=org).status_code == 400
    actions = [a for a, _k in audit_actions(api)]
    assert {
        "membership.create",
        "projectMembership.update",
        "projectMembership.delete",
        "membership.delete",
    } <= set(actions)


ORG_ROUTES = [
    ("GET", "/api/public/organizations/projects"),
    ("POST", "/api/public/projects"),
    ("PUT", "/api/public/projects/project-1"),
    ("DELETE", "/api/public/projects/project-1"),
    ("GET", "/api/public/organizations/apiKeys"),
    ("GET", "/api/public/projects/project-1/apiKeys"),
    ("POST", "/api/public/projects/project-1/apiKeys"),
    ("DELETE", "/api/public/projects/project-1/apiKeys/x"),
    ("GET", "/api/public/organizations/memberships"),
    ("PUT", "/api/public/organizations/memberships"),
    ("DELETE", "/api/public/organizations/memberships"),
    ("GET", "/api/public/projects/project-1/memberships"),
    ("PUT", "/api/public/projects/project-1/memberships"),
    ("DELETE", "/api/public/projects/project-1/memberships"),
]


def test_wrong_kind_of_key(api, org):
    c = api.client
    for method, path in ORG_ROUTES:
        r = c.request(method, path, json={"name": "n", "retention": 0}, auth=api.auth)
        assert r.status_code == 403, (method, path, r.text)
        r = c.request(method, path, json={}, auth=(org[0], org[1] + "x"))
        assert r.status_code == 401, (method, path, r.text)
    # and an organisation key on the project route
    assert c.get("/api/public/projects", auth=org).status_code == 403
    assert c.get("/api/public/projects/project-1/apiKeys", auth=org).status_code == 200, "nothing was changed"
