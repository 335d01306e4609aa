"""Web UI contracts in-process (no browser): sessions, CSRF, sign-up switch, RBAC, 404 for outsiders, JSON twins.

Every test runs on SQLite and Postgres (the ``backend`` fixture).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from lightfuse.app import build_services, create_app
from lightfuse.config import InitSettings, load_settings
from lightfuse.services.auth import rbac
from lightfuse.web.session import COOKIE_NAME, SessionCodec, WebSession
from tests.web.helpers import bulk_traces, checkout_trace, csrf_from

OWNER_EMAIL, OWNER_PASSWORD = "owner@example.com", "owner-password-1"
PROJECT = "proj-web"


@dataclass
class App:
    services: object
    asgi: object
    pk: str
    sk: str

    def client(self) -> TestClient:
        # each client is one browser: its own cookie jar
        return TestClient(self.asgi, raise_server_exceptions=False)


class Browser:
    def __init__(self, client: TestClient) -> None:
        self.c = client

    def get(self, path: str, **kw):
        return self.c.get(path, **kw)

    def csrf(self, path: str = "/auth/sign-in") -> str:
        return csrf_from(self.c.get(path).text)

    def post(self, path: str, data: dict | None = None, page: str = "/", **kw):
        token = self.csrf(page)
        return self.c.post(path, data={"csrf_token": token, **(data or {})}, follow_redirects=False, **kw)

    def sign_up(self, email: str, password: str = "password-123") -> None:
        r = self.post("/auth/sign-up", {"email": email, "password": password}, page="/auth/sign-up")
        assert r.status_code == 303, r.text

    def sign_in(self, email: str, password: str):
        return self.post("/auth/sign-in", {"email": email, "password": password}, page="/auth/sign-in")


@pytest.fixture
def app(backend, request) -> Iterator[App]:
    extra = getattr(request, "param", {})
    pk, sk = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
    init = InitSettings(
        org_id="org-web",
        org_name="Web Org",
        project_id=PROJECT,
        project_name="Web Project",
        project_public_key=pk,
        project_secret_key=sk,
        user_email=OWNER_EMAIL,
        user_password=OWNER_PASSWORD,
    )
    settings = load_settings(**backend, init=init, **extra)
    services = build_services(settings)
    asgi = create_app(services)
    with TestClient(asgi) as boot:  # runs the lifespan: the ingestion writer is up
        now = dt.datetime.now(dt.UTC)
        r = boot.post(
            "/api/public/ingestion",
            json={"batch": checkout_trace("t-main", now) + bulk_traces(3, now)},
            auth=(pk, sk),
        )
        assert r.status_code == 207 and r.json()["errors"] == []
        yield App(services, asgi, pk, sk)
    services.engine.dispose()


def browser(app: App) -> Browser:
    return Browser(app.client())


def owner(app: App) -> Browser:
    b = browser(app)
    assert b.sign_in(OWNER_EMAIL, OWNER_PASSWORD).status_code == 303
    return b


def test_init_user_signs_in_and_sees_the_provisioned_project(app):
    b = owner(app)
    home = b.get("/")
    assert "Web Org" in home.text and "Web Project" in home.text
    assert b.get(f"/project/{PROJECT}/traces").status_code == 200


def test_wrong_password_and_anonymous_access(app):
    b = browser(app)
    assert b.sign_in(OWNER_EMAIL, "nope-nope-nope").status_code == 401
    r = b.get(f"/project/{PROJECT}/traces", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/auth/sign-in?next=")
    r = b.get(f"/project/{PROJECT}/traces", headers={"accept": "application/json"})
    assert r.status_code == 401


def test_session_cookie_flags_and_tampering(app):
    b = owner(app)
    cookie = b.c.cookies.get(COOKIE_NAME)
    assert cookie
    raw = b.sign_in(OWNER_EMAIL, OWNER_PASSWORD).headers["set-cookie"].lower()
    assert "httponly" in raw and "samesite=lax" in raw and "max-age=" in raw
    # flip one character of the signature: the session is not accepted
    body, sig = cookie.split(".")
    forged = body + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    other = browser(app)
    other.c.cookies.set(COOKIE_NAME, forged)
    r = other.get(f"/project/{PROJECT}", follow_redirects=False)
    assert r.status_code == 303


def test_session_expiry():
    codec = SessionCodec("secret", max_age_minutes=10)
    s = WebSession.anonymous()
    s.sign_in("u1", "stamp")
    token = codec.dumps(s)
    assert codec.loads(token, now=s.issued_at + 9 * 60).user_id == "u1"
    assert codec.loads(token, now=s.issued_at + 11 * 60) is None
    assert SessionCodec("other-secret", 10).loads(token, now=s.issued_at) is None


def test_csrf_is_checked_on_every_post(app):
    b = owner(app)
    target = f"/project/{PROJECT}/settings/api-keys"
    assert b.c.post(target, data={"note": "x"}).status_code == 403
    assert b.c.post(target, data={"note": "x", "csrf_token": "forged"}).status_code == 403
    # a token of another session does not work either
    foreign = browser(app).csrf()
    assert b.c.post(target, data={"note": "x", "csrf_token": foreign}).status_code == 403
    # the header form (htmx) is accepted
    token = b.csrf("/")
    assert b.c.post(target, data={"note": "x"}, headers={"x-csrf-token": token}).status_code == 200
    # sign-in itself needs the token (login CSRF)
    assert (
        browser(app)
        .c.post("/auth/sign-in", data={"email": OWNER_EMAIL, "password": OWNER_PASSWORD})
        .status_code
        == 403
    )
    # sign-out is a POST with a token, so a link elsewhere cannot sign anyone out
    assert b.c.get("/auth/sign-out").status_code in (404, 405)


@pytest.mark.parametrize("app", [{"auth_disable_signup": True}], indirect=True)
def test_signup_can_be_disabled(app):
    b = browser(app)
    assert "Sign-up is disabled" in b.get("/auth/sign-up").text
    r = b.post("/auth/sign-up", {"email": "new@example.com", "password": "password-123"})
    assert r.status_code == 403
    assert b.sign_in(OWNER_EMAIL, OWNER_PASSWORD).status_code == 303


def test_signup_validation_and_duplicates(app):
    b = browser(app)
    assert b.post("/auth/sign-up", {"email": "x@example.com", "password": "short"}).status_code == 400
    assert b.post("/auth/sign-up", {"email": OWNER_EMAIL, "password": "password-123"}).status_code == 400
    b.sign_up("Fresh@Example.com")
    assert "not a member of any organisation" in b.get("/").text


def _add_member(owner_browser: Browser, email: str, role: str):
    return owner_browser.post(
        "/organization/org-web/members", {"email": email, "role": role}, page="/organization/org-web/settings"
    )


def test_viewer_can_read_but_not_manage(app):
    o = owner(app)
    v = browser(app)
    v.sign_up("viewer@example.com")
    assert _add_member(o, "viewer@example.com", "VIEWER").status_code == 303
    assert v.get(f"/project/{PROJECT}/traces").status_code == 200
    assert v.get(f"/project/{PROJECT}/traces/t-main").status_code == 200
    settings = v.get(f"/project/{PROJECT}/settings")
    assert 'data-testid="create-key"' not in settings.text
    assert (
        v.get(f"/project/{PROJECT}/settings", headers={"accept": "application/json"}).json()["apiKeys"]
        is None
    )
    page = f"/project/{PROJECT}/settings"
    assert v.post(f"/project/{PROJECT}/settings/api-keys", {"note": "x"}, page=page).status_code == 403
    assert v.post(f"/project/{PROJECT}/traces/t-main/delete", page=page).status_code == 403
    assert v.post(f"/project/{PROJECT}/settings/rename", {"name": "hacked"}, page=page).status_code == 403
    assert (
        v.post(
            "/organization/org-web/members", {"email": OWNER_EMAIL, "role": "VIEWER"}, page=page
        ).status_code
        == 403
    )
    assert o.get(f"/project/{PROJECT}/traces/t-main").status_code == 200  # nothing was deleted


def test_admin_limits_and_last_owner(app):
    o = owner(app)
    a = browser(app)
    a.sign_up("admin@example.com")
    assert _add_member(o, "admin@example.com", "ADMIN").status_code == 303
    # an ADMIN may add members but not create OWNERs
    x = browser(app)
    x.sign_up("x@example.com")
    assert _add_member(a, "x@example.com", "OWNER").status_code == 403
    assert _add_member(a, "x@example.com", "MEMBER").status_code == 303
    members = o.get("/organization/org-web/settings", headers={"accept": "application/json"}).json()[
        "members"
    ]
    owner_id = next(m["userId"] for m in members if m["email"] == OWNER_EMAIL)
    # the last owner can neither be demoted nor leave
    r = o.post(
        f"/organization/org-web/members/{owner_id}/role",
        {"role": "ADMIN"},
        page="/organization/org-web/settings",
    )
    assert r.status_code == 303
    roles = {
        m["email"]: m["role"]
        for m in o.get("/organization/org-web/settings", headers={"accept": "application/json"}).json()[
            "members"
        ]
    }
    assert roles[OWNER_EMAIL] == "OWNER" and roles["x@example.com"] == "MEMBER"
    o.post(f"/organization/org-web/members/{owner_id}/remove", page="/organization/org-web/settings")
    assert o.get(f"/project/{PROJECT}").status_code == 200
    # an ADMIN cannot remove the OWNER
    assert a.post(f"/organization/org-web/members/{owner_id}/remove", page="/").status_code == 403


def test_outsider_gets_404_everywhere(app):
    out = browser(app)
    out.sign_up("outsider@example.com")
    r = out.post("/organizations", {"name": "Elsewhere"})
    assert r.status_code == 303
    for path in (
        "",
        "/traces",
        "/traces/t-main",
        "/sessions",
        "/sessions/sess-1",
        "/users",
        "/users/alice",
        "/settings",
    ):
        assert out.get(f"/project/{PROJECT}{path}").status_code == 404, path
        assert out.get(f"/project/{PROJECT}{path}", headers={"accept": "application/json"}).status_code == 404
    assert out.get("/trace/t-main").status_code == 404
    assert out.get("/organization/org-web").status_code == 404
    assert out.post(f"/project/{PROJECT}/settings/api-keys", {"note": "x"}).status_code == 404


def test_json_twins_agree_with_the_public_api(app):
    b = owner(app)
    json_headers = {"accept": "application/json"}
    table = b.get(f"/project/{PROJECT}/traces", headers=json_headers).json()
    assert table["meta"]["totalItems"] == 4
    api = b.c.get("/api/public/traces", auth=(app.pk, app.sk)).json()
    by_id = {t["id"]: t for t in api["data"]}
    for row in table["data"]:
        assert row["latency"] == pytest.approx(by_id[row["id"]]["latency"])
        assert row["totalCost"] == pytest.approx(by_id[row["id"]]["totalCost"])
    main = next(t for t in table["data"] if t["id"] == "t-main")
    assert main["level"] == "ERROR" and main["totalTokens"] == 200
    assert [s["name"] for s in main["scores"]] == ["helpfulness"]

    detail = b.get(f"/project/{PROJECT}/traces/t-main", headers=json_headers).json()
    assert [n["depth"] for n in detail["tree"]] == [1, 2, 2, 2]
    assert detail["tree"][0]["name"] == "handle-request"
    assert detail["usageDetails"]["input"] == 120

    filtered = b.get(
        f"/project/{PROJECT}/traces?level=ERROR&meta=region%3Deu&tags=prod&q=CHECKOUT", headers=json_headers
    ).json()
    assert [t["id"] for t in filtered["data"]] == ["t-main"]
    paged = b.get(
        f"/project/{PROJECT}/traces?tags=bulk&limit=2&page=2&order=name.asc", headers=json_headers
    ).json()
    assert paged["meta"]["totalPages"] == 2 and [t["name"] for t in paged["data"]] == ["bulk-job-02"]

    dash = b.get(f"/project/{PROJECT}?range=24h", headers=json_headers).json()
    assert dash["totals"]["traces"] == 4
    assert {m["model"] for m in dash["byModel"]} == {"gpt-4o", "gpt-4o-mini"}
    assert dash["traceLatency"]["p50"] is not None
    sessions = b.get(f"/project/{PROJECT}/sessions", headers=json_headers).json()
    assert sessions["data"][0]["id"] == "sess-1" and sessions["data"][0]["userIds"] == ["alice"]
    users = b.get(f"/project/{PROJECT}/users", headers=json_headers).json()
    assert {u["userId"] for u in users["data"]} == {"alice", "bob"}
    assert (
        b.get("/trace/t-main", follow_redirects=False).headers["location"]
        == f"/project/{PROJECT}/traces/t-main"
    )


def test_project_lifecycle_and_keys(app):
    b = browser(app)
    b.sign_up("maker@example.com")
    org = b.post("/organizations", {"name": "Maker Org"}).headers["location"]
    project = b.post(f"{org}/projects", {"name": "Maker Project"}, page=org).headers["location"]
    project_id = project.split("/")[2]
    created = b.post(
        f"/project/{project_id}/settings/api-keys",
        {"note": "ci"},
        page=project,
        headers={"accept": "application/json"},
    )
    assert created.status_code == 201
    key = created.json()
    listed = b.get(project, headers={"accept": "application/json"}).json()["apiKeys"]
    assert [k["publicKey"] for k in listed] == [key["publicKey"]]
    assert "secretKey" not in listed[0]
    ok = b.c.get("/api/public/traces", auth=(key["publicKey"], key["secretKey"]))
    assert ok.status_code == 200
    lastused = b.get(project, headers={"accept": "application/json"}).json()["apiKeys"][0]["lastUsedAt"]
    assert lastused is not None
    b.post(f"/project/{project_id}/settings/rename", {"name": "Renamed"}, page=project)
    assert b.get(project, headers={"accept": "application/json"}).json()["name"] == "Renamed"
    b.post(f"/project/{project_id}/settings/delete", {"confirm": "Renamed"}, page=project)
    assert b.get(project).status_code == 404
    assert b.c.get("/api/public/traces", auth=(key["publicKey"], key["secretKey"])).status_code == 401
    # the organisation waits for the purge of its deleted project (else the project's data would be stranded)
    b.post(f"{org}/delete", page=f"{org}/settings")
    assert b.get(org).status_code == 200
    app.services.purger.purge_due()  # (or the background purge did it already)
    assert app.services.purger.pending() == []
    # the now empty organisation can be deleted
    b.post(f"{org}/delete", page=f"{org}/settings")
    assert b.get(org).status_code == 404


def test_scope_matrix_facts():
    assert rbac.has_project_scope("VIEWER", "project:read")
    assert not rbac.has_project_scope("VIEWER", "apiKeys:CUD")
    assert not rbac.has_project_scope("VIEWER", "traces:delete")
    assert rbac.has_project_scope("MEMBER", "apiKeys:read") and not rbac.has_project_scope(
        "MEMBER", "apiKeys:CUD"
    )
    assert rbac.has_project_scope("ADMIN", "traces:delete") and not rbac.has_project_scope(
        "ADMIN", "project:delete"
    )
    assert rbac.has_org_scope("OWNER", "organization:delete") and not rbac.has_org_scope(
        "ADMIN", "organization:delete"
    )
    assert not rbac.has_org_scope("VIEWER", "organizationMembers:read")
    assert rbac.effective_project_role("VIEWER", "ADMIN") == "ADMIN"
    assert rbac.effective_project_role("NONE", None) is None
    assert rbac.effective_project_role(None, None, instance_admin=True) == "OWNER"
    with pytest.raises(KeyError):
        rbac.has_project_scope("OWNER", "no:such-scope")


def test_every_post_form_carries_the_session_token(app):
    b = owner(app)
    token = b.csrf("/")
    pages = [
        "/",
        "/organization/org-web",
        "/organization/org-web/settings",
        f"/project/{PROJECT}/settings",
        f"/project/{PROJECT}/traces/t-main",
        f"/project/{PROJECT}/traces",
    ]
    for path in pages:
        html = b.get(path).text
        forms = re.findall(r"<form[^>]*method=\"post\"[^>]*>(.*?)</form>", html, flags=re.S)
        assert forms, path
        for form in forms:
            assert f'name="csrf_token" value="{token}"' in form, (path, form[:200])
