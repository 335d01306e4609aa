"""Issue #16 item 4: invitations, password reset by email, project roles, the audit log, organisation keys.

In-process app (real SQLite file or real Postgres, real argon2) and a real SMTP server (aiosmtpd); the tests
follow the links in the emails it receives. Every test runs on both backends.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from lightfuse.app import build_services, create_app
from lightfuse.config import InitSettings, load_settings
from tests.smtp_sink import Sink, smtp_sink
from tests.web.test_web_inprocess import OWNER_EMAIL, OWNER_PASSWORD, PROJECT, App, Browser

ORG = "org-web"
NEW_EMAIL, NEW_PASSWORD = "newcomer@example.com", "newcomer-password-1"


@pytest.fixture
def smtp() -> Iterator[Sink]:
    with smtp_sink() as sink:
        yield sink


def _app(backend, **extra) -> Iterator[App]:
    pk, sk = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
    init = InitSettings(
        org_id=ORG,
        org_name="Web Org",
        project_id=PROJECT,
        project_name="Web Project",
        project_public_key=pk,
        project_secret_key=sk,
        user_email=OWNER_EMAIL,
        user_password=OWNER_PASSWORD,
    )
    settings = load_settings(**backend, init=init, auth_disable_signup=True, **extra)
    services = build_services(settings)
    asgi = create_app(services)
    with TestClient(asgi):
        yield App(services, asgi, pk, sk)
    services.engine.dispose()


@pytest.fixture
def app(backend, smtp) -> Iterator[App]:
    yield from _app(
        backend,
        smtp_connection_url=smtp.url,
        email_from_address="lightfuse@example.com",
        nextauth_url="http://lightfuse.test",
    )


def browser(app: App) -> Browser:
    return Browser(app.client())


def signed_in(app: App, email: str = OWNER_EMAIL, password: str = OWNER_PASSWORD) -> Browser:
    b = browser(app)
    assert b.sign_in(email, password).status_code == 303
    return b


def invite(b: Browser, email: str, role: str = "MEMBER", project_id: str = "", project_role: str = ""):
    return b.post(
        f"/organization/{ORG}/invitations",
        {"email": email, "role": role, "project_id": project_id, "project_role": project_role},
        page=f"/organization/{ORG}/settings",
    )


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return parts.path + "?" + parts.query


def token_of(link: str) -> str:
    return urlsplit(link).query.split("token=", 1)[1]


def member(app: App, email: str, role: str) -> Browser:
    """A user with an org role, made through an accepted invitation."""
    owner = signed_in(app)
    r = invite(owner, email, role)
    assert r.status_code == 201, r.text
    link = app_link(r.text)
    b = browser(app)
    r = b.post(
        "/invitation/sign-up", {"token": token_of(link), "password": "member-password-1"}, page=path_of(link)
    )
    assert r.status_code == 303, r.text
    return b


def app_link(html: str) -> str:
    start = html.index('data-testid="invitation-link">') + len('data-testid="invitation-link">')
    return html[start : html.index("<", start)].replace("&amp;", "&")


def audit_actions(app: App) -> list[str]:
    with app.services.engine.connect() as conn:
        return [
            r[0] for r in conn.execute(sa.text("SELECT action FROM audit_log ORDER BY created_at, action"))
        ]


# --- invitations --------------------------------------------------------------------------------------------


def test_emailed_invitation_creates_the_account_with_signup_disabled(app, smtp):
    owner = signed_in(app)
    r = invite(owner, NEW_EMAIL, "VIEWER", PROJECT, "MEMBER")
    assert r.status_code == 201 and 'data-testid="invitation-emailed"' in r.text
    link = smtp.link(NEW_EMAIL)
    mail = smtp.wait_for(NEW_EMAIL)
    assert mail["from"] == "lightfuse@example.com" and "Web Org" in mail["subject"]
    # absolute, from NEXTAUTH_URL; the token is stored hashed only
    assert link.startswith("http://lightfuse.test/invitation/accept?token=")
    with app.services.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash FROM membership_invitations")).scalar_one()
    assert token_of(link) not in stored and len(stored) == 64

    pending = owner.get(f"/organization/{ORG}/settings", headers={"accept": "application/json"}).json()
    assert [i["email"] for i in pending["pendingInvitations"]] == [NEW_EMAIL]

    new = browser(app)
    # sign-up itself stays closed
    assert (
        new.post(
            "/auth/sign-up", {"email": "x@example.com", "password": "password-123"}, page="/auth/sign-in"
        ).status_code
        == 403
    )
    page = new.get(path_of(link))
    assert page.status_code == 200 and 'data-testid="invited-sign-up"' in page.text
    r = new.post(
        "/invitation/sign-up",
        {"token": token_of(link), "password": NEW_PASSWORD, "name": "New"},
        page=path_of(link),
    )
    assert r.status_code == 303 and r.headers["location"] == f"/project/{PROJECT}"
    # project role MEMBER overrides the org role VIEWER in that project
    project = new.get(f"/project/{PROJECT}/settings", headers={"accept": "application/json"})
    assert project.status_code == 200 and project.json()["role"] == "MEMBER"

    # single use: the link is dead for everyone now
    again = browser(app)
    assert again.get(path_of(link)).status_code == 410
    r = again.post(
        "/invitation/sign-up",
        {"token": token_of(link), "password": "another-password-1"},
        page="/auth/sign-in",
    )
    assert r.status_code == 410
    assert signed_in(app, NEW_EMAIL, NEW_PASSWORD)
    pending = owner.get(f"/organization/{ORG}/settings", headers={"accept": "application/json"}).json()
    assert pending["pendingInvitations"] == []
    actions = audit_actions(app)
    for action in ("invitation.create", "invitation.accept", "membership.create"):
        assert action in actions


def test_existing_user_accepts_while_signed_in(app, smtp):
    other = signed_in(app)
    # an account made by an earlier invitation into nothing else
    member(app, "existing@example.com", "VIEWER")
    owner = signed_in(app)
    # remove and invite again: the signed-in path
    members = owner.get(f"/organization/{ORG}/settings", headers={"accept": "application/json"}).json()[
        "members"
    ]
    uid = next(m["userId"] for m in members if m["email"] == "existing@example.com")
    assert (
        owner.post(
            f"/organization/{ORG}/members/{uid}/remove", page=f"/organization/{ORG}/settings"
        ).status_code
        == 303
    )
    assert invite(owner, "existing@example.com", "MEMBER").status_code == 201
    link = smtp.link("existing@example.com", 2)
    b = signed_in(app, "existing@example.com", "member-password-1")
    assert 'data-testid="accept-invitation"' in b.get(path_of(link)).text
    # someone else signed in cannot use it
    r = other.post("/invitation/accept", {"token": token_of(link)})
    assert r.status_code == 403
    r = b.post("/invitation/accept", {"token": token_of(link)})
    assert r.status_code == 303 and r.headers["location"] == f"/organization/{ORG}"
    assert b.get(f"/organization/{ORG}", headers={"accept": "application/json"}).json()["role"] == "MEMBER"


def test_expired_and_revoked_invitations_are_refused(app, smtp):
    owner = signed_in(app)
    assert invite(owner, "late@example.com").status_code == 201
    assert invite(owner, "revoked@example.com").status_code == 201
    late, revoked = smtp.link("late@example.com"), smtp.link("revoked@example.com")
    with app.services.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE membership_invitations SET expires_at = 1 WHERE email = 'late@example.com'")
        )
    b = browser(app)
    assert b.get(path_of(late)).status_code == 410
    assert (
        b.post(
            "/invitation/sign-up", {"token": token_of(late), "password": "password-123"}, page="/auth/sign-in"
        ).status_code
        == 410
    )
    pending = owner.get(f"/organization/{ORG}/settings", headers={"accept": "application/json"}).json()
    invitation_id = next(
        i["id"] for i in pending["pendingInvitations"] if i["email"] == "revoked@example.com"
    )
    r = owner.post(
        f"/organization/{ORG}/invitations/{invitation_id}/revoke", page=f"/organization/{ORG}/settings"
    )
    assert r.status_code == 303
    assert b.get(path_of(revoked)).status_code == 410
    assert "invitation.delete" in audit_actions(app)
    # no account was created by either attempt
    with app.services.engine.connect() as conn:
        assert (
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM users WHERE email IN ('late@example.com', 'revoked@example.com')"
                )
            ).scalar_one()
            == 0
        )


def test_who_may_invite_and_read_the_audit_log(app):
    admin = member(app, "admin@example.com", "ADMIN")
    plain = member(app, "member@example.com", "MEMBER")
    viewer = member(app, "viewer@example.com", "VIEWER")
    settings = f"/organization/{ORG}/settings"
    assert invite(plain, "x1@example.com").status_code == 403
    assert invite(viewer, "x2@example.com").status_code == 403
    assert invite(admin, "x3@example.com", "OWNER").status_code == 403
    assert invite(admin, "x4@example.com", "ADMIN").status_code == 201
    assert invite(admin, "x5@example.com", "MEMBER", PROJECT, "OWNER").status_code == 403
    # audit log: OWNER and ADMIN only
    assert signed_in(app).get(f"/organization/{ORG}/audit-log").status_code == 200
    r = admin.get(f"/organization/{ORG}/audit-log", headers={"accept": "application/json"})
    assert r.status_code == 200 and r.json()["meta"]["totalItems"] >= 4
    assert viewer.get(f"/organization/{ORG}/audit-log").status_code == 403
    assert plain.get(f"/organization/{ORG}/audit-log").status_code == 403
    outsider_org = app.services.accounts.create_organization("Elsewhere")
    assert admin.get(f"/organization/{outsider_org}/audit-log").status_code == 404
    assert "admin@example.com" in admin.get(settings).text


def test_audit_log_pages(app):
    owner = signed_in(app)
    for i in range(55):
        assert invite(owner, f"bulk{i}@example.com").status_code == 201
    first = owner.get(f"/organization/{ORG}/audit-log", headers={"accept": "application/json"}).json()
    second = owner.get(f"/organization/{ORG}/audit-log?page=2", headers={"accept": "application/json"}).json()
    assert first["meta"]["totalItems"] == 55 and first["meta"]["totalPages"] == 2
    assert len(first["data"]) == 50 and len(second["data"]) == 5
    assert not {e["id"] for e in first["data"]} & {e["id"] for e in second["data"]}
    assert owner.get(f"/organization/{ORG}/audit-log?page=0").status_code == 400


def test_without_smtp_the_link_is_shown_and_a_failed_send_is_reported(backend, tmp_path):
    from tests.conftest import free_port

    dead_port = free_port()  # nothing listens there: the send fails fast
    for extra, marker in (
        ({}, "Email is not configured"),
        (
            {"smtp_connection_url": f"smtp://127.0.0.1:{dead_port}", "email_from_address": "a@example.com"},
            "could not be sent",
        ),
    ):
        gen = _app(
            {**backend, "data_dir": tmp_path / f"d{dead_port}{len(extra)}"}
            if "database_url" not in backend
            else backend,
            **extra,
        )
        app = next(gen)
        try:
            owner = signed_in(app)
            email = f"copy{len(extra)}@example.com"
            r = invite(owner, email)
            assert r.status_code == 201 and marker in r.text
            link = app_link(r.text)
            # the link still works (from the request's base URL here)
            assert link.startswith("http://testserver/invitation/accept?token=")
            assert browser(app).get(path_of(link)).status_code == 200
        finally:
            gen.close()


# --- project roles and members --------------------------------------------------------------------------------


def test_project_roles_are_editable_on_the_members_page(app):
    m = member(app, "pr@example.com", "MEMBER")
    owner = signed_in(app)
    settings = f"/organization/{ORG}/settings"
    members = owner.get(settings, headers={"accept": "application/json"}).json()["members"]
    uid = next(x["userId"] for x in members if x["email"] == "pr@example.com")
    assert (
        m.get(f"/project/{PROJECT}/settings", headers={"accept": "application/json"}).json()["role"]
        == "MEMBER"
    )
    r = owner.post(
        f"/organization/{ORG}/members/{uid}/project-role",
        {"project_id": PROJECT, "project_role": "VIEWER"},
        page=settings,
    )
    assert r.status_code == 303
    assert (
        m.get(f"/project/{PROJECT}/settings", headers={"accept": "application/json"}).json()["role"]
        == "VIEWER"
    )
    members = owner.get(settings, headers={"accept": "application/json"}).json()["members"]
    assert next(x for x in members if x["userId"] == uid)["projectRoles"] == {PROJECT: "VIEWER"}
    # back to the organisation role
    owner.post(
        f"/organization/{ORG}/members/{uid}/project-role",
        {"project_id": PROJECT, "project_role": ""},
        page=settings,
    )
    assert (
        m.get(f"/project/{PROJECT}/settings", headers={"accept": "application/json"}).json()["role"]
        == "MEMBER"
    )
    # a MEMBER cannot set project roles; an ADMIN cannot hand out OWNER in a project
    assert (
        m.post(
            f"/organization/{ORG}/members/{uid}/project-role",
            {"project_id": PROJECT, "project_role": "ADMIN"},
        ).status_code
        == 403
    )
    admin = member(app, "pradmin@example.com", "ADMIN")
    assert (
        admin.post(
            f"/organization/{ORG}/members/{uid}/project-role",
            {"project_id": PROJECT, "project_role": "OWNER"},
        ).status_code
        == 403
    )
    # the last owner can be neither demoted nor removed
    owner_id = next(x["userId"] for x in members if x["email"] == OWNER_EMAIL)
    r = admin.post(f"/organization/{ORG}/members/{owner_id}/remove", page=settings)
    assert r.status_code == 403
    r = owner.post(f"/organization/{ORG}/members/{owner_id}/role", {"role": "ADMIN"}, page=settings)
    assert r.status_code == 303
    assert (
        next(
            x
            for x in owner.get(settings, headers={"accept": "application/json"}).json()["members"]
            if x["userId"] == owner_id
        )["role"]
        == "OWNER"
    )
    actions = audit_actions(app)
    assert "projectMembership.update" in actions and "projectMembership.delete" in actions
    # a removed member keeps no project role: the project is gone for them at once (a project role alone
    # would otherwise still open it)
    owner.post(
        f"/organization/{ORG}/members/{uid}/project-role",
        {"project_id": PROJECT, "project_role": "ADMIN"},
        page=settings,
    )
    assert owner.post(f"/organization/{ORG}/members/{uid}/remove", page=settings).status_code == 303
    assert m.get(f"/project/{PROJECT}/settings", headers={"accept": "application/json"}).status_code == 404


# --- password reset -----------------------------------------------------------------------------------------


def test_password_reset_by_email(app, smtp):
    b = browser(app)
    r = b.post("/auth/reset-password", {"email": OWNER_EMAIL}, page="/auth/reset-password")
    assert r.status_code == 200 and 'data-testid="reset-requested"' in r.text
    link = smtp.link(OWNER_EMAIL)
    assert link.startswith("http://lightfuse.test/auth/reset-password/confirm?token=")
    with app.services.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash FROM password_reset_tokens")).scalar_one()
    assert token_of(link) not in stored
    session = signed_in(app)  # a session from before the reset
    assert b.get(path_of(link)).status_code == 200
    too_short = b.post(
        "/auth/reset-password/confirm", {"token": token_of(link), "password": "short"}, page="/auth/sign-in"
    )
    assert too_short.status_code == 400
    r = b.post(
        "/auth/reset-password/confirm",
        {"token": token_of(link), "password": "brand-new-password"},
        page="/auth/sign-in",
    )
    assert r.status_code == 303
    assert browser(app).sign_in(OWNER_EMAIL, OWNER_PASSWORD).status_code == 401
    assert browser(app).sign_in(OWNER_EMAIL, "brand-new-password").status_code == 303
    # the old session ended; the link works once
    assert session.get("/", follow_redirects=False).status_code == 303
    assert b.get(path_of(link)).status_code == 410
    assert (
        b.post(
            "/auth/reset-password/confirm",
            {"token": token_of(link), "password": "third-password-1"},
            page="/auth/sign-in",
        ).status_code
        == 410
    )
    assert "user.passwordReset" in audit_actions(app)
    # an unknown address gets the same answer and no email
    r = b.post("/auth/reset-password", {"email": "nobody@example.com"}, page="/auth/reset-password")
    assert r.status_code == 200 and 'data-testid="reset-requested"' in r.text
    assert not [m for m in smtp.messages if "nobody@example.com" in m["to"]]


@pytest.mark.parametrize(
    "setting",
    [{"auth_disable_username_password": True}, {"auth_domains_with_sso_enforcement": "example.com"}],
)
def test_no_password_reset_where_passwords_are_not_used(backend, smtp, setting):
    # an SSO-only account has no password to reset: a reset link would add one behind the provider's back
    for app in _app(
        backend, smtp_connection_url=smtp.url, email_from_address="lightfuse@example.com", **setting
    ):
        r = browser(app).post("/auth/reset-password", {"email": OWNER_EMAIL}, page="/auth/reset-password")
        assert r.status_code == 403 and "single sign-on" in r.text
        assert not [m for m in smtp.messages if OWNER_EMAIL in m["to"]]
        with app.services.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM password_reset_tokens")).scalar_one() == 0


def test_reset_link_expires(app, smtp):
    b = browser(app)
    b.post("/auth/reset-password", {"email": OWNER_EMAIL}, page="/auth/reset-password")
    link = smtp.link(OWNER_EMAIL)
    with app.services.engine.begin() as conn:
        conn.execute(sa.text("UPDATE password_reset_tokens SET expires_at = 1"))
    assert b.get(path_of(link)).status_code == 410
    assert (
        b.post(
            "/auth/reset-password/confirm",
            {"token": token_of(link), "password": "brand-new-password"},
            page="/auth/sign-in",
        ).status_code
        == 410
    )
    assert browser(app).sign_in(OWNER_EMAIL, OWNER_PASSWORD).status_code == 303


def test_reset_requests_are_throttled_per_account_and_address(app, smtp):
    limit = app.services.settings.auth_max_failures_per_account
    b = browser(app)
    for _ in range(limit):
        assert (
            b.post("/auth/reset-password", {"email": OWNER_EMAIL}, page="/auth/reset-password").status_code
            == 200
        )
    r = b.post("/auth/reset-password", {"email": OWNER_EMAIL}, page="/auth/reset-password")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    smtp.wait_for(OWNER_EMAIL, limit)
    assert len([m for m in smtp.messages if OWNER_EMAIL in m["to"]]) == limit
    # reset requests do not lock the account's sign-in
    assert browser(app).sign_in(OWNER_EMAIL, OWNER_PASSWORD).status_code == 303
    # per address: other accounts from the same client are cut off once the address limit is reached
    address_limit = app.services.settings.auth_max_failures_per_address
    codes = [
        b.post(
            "/auth/reset-password", {"email": f"probe{i}@example.com"}, page="/auth/reset-password"
        ).status_code
        for i in range(address_limit)
    ]
    assert codes[-1] == 429 and 200 in codes


# --- SCIM with organisation keys ------------------------------------------------------------------------------


def _basic(pk: str, sk: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{pk}:{sk}".encode()).decode()}


def test_scim_users_crud_with_an_organisation_key(app):
    owner = signed_in(app)
    r = owner.post(
        f"/organization/{ORG}/api-keys",
        {"note": "okta"},
        page=f"/organization/{ORG}/settings",
        headers={"accept": "application/json"},
    )
    assert r.status_code == 201, r.text
    key = r.json()
    auth = _basic(key["publicKey"], key["secretKey"])
    c = app.client()
    base = "/api/public/scim"
    for path in ("/ServiceProviderConfig", "/ResourceTypes", "/Schemas"):
        r = c.get(base + path, headers=auth)
        assert r.status_code == 200, (path, r.text)
    assert c.get(base + "/ServiceProviderConfig", headers=auth).json()["filter"]["supported"] is True
    assert c.get(base + "/ResourceTypes", headers=auth).json()["Resources"][0]["endpoint"] == "/Users"

    r = c.post(
        base + "/Users",
        headers=auth,
        json={"userName": "Scim.User@Example.com", "name": {"formatted": "Scim User"}, "password": "ignored"},
    )
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["userName"] == "scim.user@example.com" and user["name"]["formatted"] == "Scim User"
    assert user["emails"][0]["value"] == "scim.user@example.com" and user["meta"]["resourceType"] == "User"
    assert (
        c.post(
            base + "/Users", headers=auth, json={"userName": "scim.user@example.com", "name": {}}
        ).status_code
        == 409
    )
    assert c.post(base + "/Users", headers=auth, json={"name": {}}).status_code == 400

    listed = c.get(
        base + "/Users", headers=auth, params={"filter": 'userName eq "scim.user@example.com"'}
    ).json()
    assert listed["totalResults"] == 1 and listed["Resources"][0]["id"] == user["id"]
    everyone = c.get(base + "/Users", headers=auth, params={"startIndex": 1, "count": 1}).json()
    assert everyone["totalResults"] == 2 and everyone["itemsPerPage"] == 1 and everyone["startIndex"] == 1
    second = c.get(base + "/Users", headers=auth, params={"startIndex": 2, "count": 1}).json()
    assert second["Resources"][0]["id"] != everyone["Resources"][0]["id"]
    assert c.get(base + "/Users", headers=auth, params={"filter": 'emails co "x"'}).status_code == 400
    assert c.get(base + f"/Users/{user['id']}", headers=auth).json()["userName"] == "scim.user@example.com"
    # bad input: clear 4xx, never a 500
    for params in ({"startIndex": str(10**30)}, {"count": "-5"}):
        r = c.get(base + "/Users", headers=auth, params=params)
        assert r.status_code == 200, (params, r.text)
    assert c.get(base + "/Users", headers=auth, params={"count": "many"}).status_code == 400
    for body in (
        b"{not json",
        b"[]",
        b'{"userName": 5, "name": {}}',
        b'{"userName": "a@b.c", "name": 3}',
        b'{"userName": "not-an-email", "name": {}}',
    ):
        r = c.post(base + "/Users", headers={**auth, "content-type": "application/scim+json"}, content=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["message"]
    # the NONE role of a provisioned member shows as such on the members page
    row = owner.get(f"/organization/{ORG}/settings").text.split('data-member="scim.user@example.com"')[1]
    assert "<option selected disabled>NONE</option>" in row.split("</tr>")[0]

    # the provisioned user has no password and no project access until given a role
    with app.services.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT password_hash FROM users WHERE email = 'scim.user@example.com'")
        ).one()
    assert row[0] is None

    assert c.delete(base + f"/Users/{user['id']}", headers=auth).status_code == 204
    assert c.get(base + f"/Users/{user['id']}", headers=auth).status_code == 404
    assert c.delete(base + f"/Users/{user['id']}", headers=auth).status_code == 404
    actions = audit_actions(app)
    assert "orgApiKey.create" in actions and actions.count("membership.create") >= 1
    assert "membership.delete" in actions

    # refused: a project key (403), a wrong secret or no auth (401); the org key opens no project data
    r = c.get(base + "/Users", headers=_basic(app.pk, app.sk))
    assert r.status_code == 403 and "Organization-scoped" in r.json()["message"]
    assert c.get(base + "/Users", headers=_basic(key["publicKey"], "sk-lf-wrong")).status_code == 401
    assert c.get(base + "/Users").status_code == 401
    # an organisation key opens no project route (403 with Langfuse's hint), and no ingestion
    r = c.get("/api/public/traces", headers=auth)
    assert r.status_code == 403 and "organization key" in r.json()["message"]
    assert c.get("/api/public/projects", headers=auth).status_code == 403
    r = c.post(
        "/api/public/ingestion",
        headers=auth,
        json={
            "batch": [
                {
                    "id": "e1",
                    "type": "trace-create",
                    "timestamp": "2026-01-01T00:00:00Z",
                    "body": {"id": "t-org"},
                }
            ]
        },
    )
    assert r.status_code in (401, 403)
    assert (
        c.get("/api/public/traces", headers={"Authorization": f"Bearer {key['publicKey']}"}).status_code
        == 401
    )
    # a deleted key stops working
    assert (
        owner.post(
            f"/organization/{ORG}/api-keys/{key['id']}/delete", page=f"/organization/{ORG}/settings"
        ).status_code
        == 303
    )
    assert c.get(base + "/Users", headers=auth).status_code == 401


def test_members_and_viewers_cannot_manage_org_keys(app):
    plain = member(app, "keys-member@example.com", "MEMBER")
    r = plain.post(f"/organization/{ORG}/api-keys", {"note": "x"}, page="/")
    assert r.status_code == 403


# --- single use under concurrency ------------------------------------------------------------------------------


def test_one_token_one_use_under_concurrent_attempts(app):
    """8 threads accept the same invitation, 8 threads use the same reset link: exactly one of each wins."""
    import asyncio
    import threading

    from lightfuse.services.accounts.invitations import InvalidInvitation
    from lightfuse.services.accounts.password_reset import InvalidResetToken

    web = app.asgi.state.web
    owner_user, _ = web.accounts.password_hash_for_sign_in(OWNER_EMAIL)
    invitee = web.accounts.sign_up("racer@example.com", "racer-password-1")
    _invitation, token = web.invitations.create(
        web.accounts.org_access(owner_user, ORG), "racer@example.com", "MEMBER"
    )
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def accept():
        start.wait(timeout=30)
        try:
            web.invitations.accept(token, invitee)
            result = "ok"
        except InvalidInvitation:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=accept) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["ok"] + ["refused"] * 7
    assert audit_actions(app).count("invitation.accept") == 1

    found = asyncio.run(web.resets.request(OWNER_EMAIL, "10.9.9.9"))
    assert found is not None
    reset_token = found[1]
    results: list[str] = []
    passwords = [f"racing-password-{i}" for i in range(8)]
    start = threading.Barrier(8)

    def reset(password: str):
        start.wait(timeout=30)
        try:
            asyncio.run(web.resets.reset(reset_token, password))
            result = password
        except InvalidResetToken:
            result = "refused"
        with lock:
            results.append(result)

    threads = [threading.Thread(target=reset, args=(p,)) for p in passwords]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    winners = [r for r in results if r != "refused"]
    assert len(results) == 8 and len(winners) == 1, results
    assert browser(app).sign_in(OWNER_EMAIL, winners[0]).status_code == 303
