"""The instance admin API (/api/admin/organizations, ADMIN_API_KEY), on SQLite and Postgres."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

PREFIX = "/api/admin/organizations"
ADMIN_KEY = "admin-key-of-this-instance-0123456789"


def ok(resp, status: int = 200):
    assert resp.status_code == status, resp.text
    return resp.json()


@pytest.fixture
def admin(api):
    api.services.settings.admin_api_key = SecretStr(ADMIN_KEY)
    return {"Authorization": f"Bearer {ADMIN_KEY}"}


def test_organisations_and_their_keys(api, admin):
    c = api.client
    created = ok(c.post(PREFIX, json={"name": "Acme", "metadata": {"tier": "gold"}}, headers=admin))
    assert created["name"] == "Acme" and created["metadata"] == {"tier": "gold"} and created["projects"] == []
    org_id = created["id"]
    listed = ok(c.get(PREFIX, headers=admin))["organizations"]
    assert {o["id"] for o in listed} >= {org_id, "org-1"}
    seeded = next(o for o in listed if o["id"] == "org-1")
    assert [p["id"] for p in seeded["projects"]] == ["project-1"]
    renamed = ok(c.put(f"{PREFIX}/{org_id}", json={"name": "Acme 2"}, headers=admin))
    assert renamed["name"] == "Acme 2" and renamed["metadata"] == {"tier": "gold"}
    assert ok(c.get(f"{PREFIX}/{org_id}", headers=admin))["name"] == "Acme 2"

    key = ok(c.post(f"{PREFIX}/{org_id}/apiKeys", json={"note": "ops"}, headers=admin))
    assert key["secretKey"].startswith("sk-lf-") and key["note"] == "ops"
    org_auth = (key["publicKey"], key["secretKey"])
    assert c.get("/api/public/organizations/projects", auth=org_auth).json() == {"projects": []}
    keys = ok(c.get(f"{PREFIX}/{org_id}/apiKeys", headers=admin))["apiKeys"]
    assert [k["id"] for k in keys] == [key["id"]] and "secretKey" not in keys[0]
    assert ok(c.delete(f"{PREFIX}/{org_id}/apiKeys/{key['id']}", headers=admin)) == {"success": True}
    assert c.get("/api/public/organizations/projects", auth=org_auth).status_code == 401
    assert c.delete(f"{PREFIX}/{org_id}/apiKeys/{key['id']}", headers=admin).status_code == 404

    # an organisation with projects stays; an empty one goes
    assert c.delete(f"{PREFIX}/org-1", headers=admin).status_code == 400
    assert ok(c.delete(f"{PREFIX}/{org_id}", headers=admin)) == {"success": True}
    assert c.get(f"{PREFIX}/{org_id}", headers=admin).status_code == 404

    for body in ({}, {"name": ""}, {"name": 5}, {"name": "x", "metadata": [1]}, ["x"]):
        r = c.post(PREFIX, json=body, headers=admin)
        assert r.status_code == 400 and r.json()["error"] == "InvalidRequestError", (body, r.text)
    assert c.put(f"{PREFIX}/missing", json={"name": "x"}, headers=admin).status_code == 404
    assert c.post(f"{PREFIX}/missing/apiKeys", json={}, headers=admin).status_code == 404


def test_admin_key_is_required_and_off_when_unset(api, admin):
    c = api.client
    org_key = api.services.keys.create_org_key("org-1")
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {ADMIN_KEY}"},
    ):
        r = c.get(PREFIX, headers=headers)
        assert r.status_code == 401 and "message" in r.json(), headers
    assert c.get(PREFIX, auth=api.auth).status_code == 401, "a project key is not the admin key"
    assert c.get(PREFIX, auth=(org_key.public_key, org_key.secret_key)).status_code == 401
    api.services.settings.admin_api_key = None
    assert c.get(PREFIX, headers=admin).status_code == 401, "unset ADMIN_API_KEY turns the API off"
