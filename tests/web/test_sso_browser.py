"""Single sign-on through a real OpenID Provider (oidc-provider on node, issuer shaped like Keycloak's), driven
in Chromium against a real server process.

The app is opened as http://localhost:<port> and the provider runs at http://127.0.0.1:<port>/realms/test: two
different sites, so the redirects between them are cross-site, as with an identity provider on its own host.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests.conftest import Server, make_server
from tests.oidc_provider import Client, OidcProvider
from tests.web.conftest import ARTIFACTS, INIT_EMAIL, INIT_PASSWORD, Ui
from tests.web.helpers import csrf_from

pytestmark = pytest.mark.slow

CLIENT_ID, CLIENT_SECRET = "lightfuse", "idp-client-secret-4f9a1c"


class Sso:
    """One identity provider and one Lightfuse server configured for it, plus helpers to sign in."""

    def __init__(self, tmp_path, backend: dict, **env: str) -> None:
        self.server: Server = make_server(tmp_path, backend, **env)
        port = self.server.url.rsplit(":", 1)[1]
        self.app = f"http://localhost:{port}"
        clients = [
            Client(CLIENT_ID, CLIENT_SECRET, f"{self.app}/api/auth/callback/keycloak"),
            Client(
                "lightfuse-post",
                "post-secret-77d1",
                f"{self.app}/api/auth/callback/custom",
                "client_secret_post",
            ),
            Client("lightfuse-public", None, f"{self.app}/api/auth/callback/okta", "none"),
        ]
        self.idp = OidcProvider(clients, tmp_path / "idp.log")
        self.server.env.update(
            NEXTAUTH_URL=self.app,
            AUTH_KEYCLOAK_ID=CLIENT_ID,
            AUTH_KEYCLOAK_SECRET=CLIENT_SECRET,
            AUTH_KEYCLOAK_ISSUER=self.idp.issuer,
        )
        # "{project}" and "{issuer}" in a value: the test project's id, the provider's issuer
        self.server.env.update(
            {
                k: v.replace("{project}", self.server.project_id).replace("{issuer}", self.idp.issuer)
                for k, v in env.items()
            }
        )

    def start(self) -> None:
        self.idp.start()
        self.server.start()

    def restart_server(self, **env: str) -> None:
        self.server.stop()
        self.server.env.update(env)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.idp.stop()

    def users(self) -> list[str]:
        return sorted(self.query("SELECT email FROM users"))

    def query(self, sql: str) -> list:
        url = self.server.env.get("DATABASE_URL")
        if url:
            url = url.replace("postgresql://", "postgresql+psycopg://")
        else:
            url = f"sqlite:///{self.server.data_dir / 'lightfuse.db'}"
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                return [row[0] for row in conn.exec_driver_sql(sql)]
        finally:
            engine.dispose()


@pytest.fixture
def sso_factory(tmp_path, backend) -> Iterator:
    made: list[Sso] = []

    def make(**env: str) -> Sso:
        env.setdefault("LANGFUSE_SSO_DISCOVERY_WHITELISTED_IPS", "127.0.0.1")
        sso = Sso(tmp_path, backend, **env)
        sso.start()
        made.append(sso)
        return sso

    try:
        yield make
    finally:
        for sso in made:
            sso.stop()


@pytest.fixture
def browser_ui(chromium, request) -> Iterator:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    uis: list[Ui] = []

    def make(base_url: str) -> Ui:
        ui = Ui(chromium, base_url, ARTIFACTS / name)
        uis.append(ui)
        return ui

    try:
        yield make
    finally:
        for ui in uis:
            ui.close()
    errors = [e for ui in uis for e in ui.errors.errors]
    assert errors == [], "JavaScript errors:\n" + "\n".join(errors)


def idp_login(page, login: str) -> None:
    """On the provider's login page: sign in as one of its users."""
    expect(page).to_have_url(re.compile(r"http://127\.0\.0\.1:\d+/realms/test/interaction/"))
    page.click(f"button[data-login={login}]")


def sso_sign_in(page, login: str, provider: str = "keycloak") -> None:
    # no session at the provider either, so that it asks who signs in
    page.context.clear_cookies()
    page.goto("/auth/sign-in")
    page.click(f"[data-testid=sso-{provider}]")
    idp_login(page, login)


def capture_callback(page, login: str) -> str:
    """Sign in at the provider but keep the browser from following the provider's redirect back: the callback
    URL it would have opened, unused. (Playwright does not route redirected requests, so the two last hops at
    the provider are fetched through the context - same cookies - and answered with a plain page.)"""
    held: dict[str, str] = {}

    def hop(route) -> None:
        response = route.fetch(max_redirects=0)
        held["location"] = response.headers["location"]
        headers = {k: v for k, v in response.headers.items() if k.lower() == "set-cookie"}
        route.fulfill(status=200, headers=headers, content_type="text/html", body="<p>held</p>")

    page.context.clear_cookies()
    page.goto("/auth/sign-in")
    page.click("[data-testid=sso-keycloak]")
    expect(page).to_have_url(re.compile(r"/realms/test/interaction/"))
    page.route("**/realms/test/interaction/*/login", hop)
    page.click(f"button[data-login={login}]")
    expect(page.locator("body")).to_have_text("held")
    page.unroute("**/realms/test/interaction/*/login")
    resume = held.pop("location")
    page.route("**/realms/test/auth/**", hop)
    page.goto(resume if resume.startswith("http") else page.url.split("/realms/")[0] + resume)
    expect(page.locator("body")).to_have_text("held")
    page.unroute("**/realms/test/auth/**")
    callback = held["location"]
    assert "/api/auth/callback/keycloak?" in callback, callback
    return callback


def with_params(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    params.update(changes)
    return urlunsplit(parts._replace(query=urlencode(params)))


def projects_json(page) -> dict[str, str]:
    """{project name: role} of the signed-in user, from the home page's JSON twin."""
    data = page.request.get("/", headers={"Accept": "application/json"}).json()
    return {p["name"]: p["role"] for org in data["organizations"] for p in org["projects"]}


def test_keycloak_only_instance_provisions_users_with_group_roles(sso_factory, browser_ui):
    """Done when of #16: only Keycloak variables, password login off; a new user signs in through the
    provider and sees the projects their groups grant. Secrets never reach the server log (debug level)."""
    sso = sso_factory(
        AUTH_DISABLE_USERNAME_PASSWORD="true",
        AUTH_DISABLE_SIGNUP="true",
        LIGHTFUSE_SSO_ROLE_CLAIM="groups",
        LIGHTFUSE_SSO_ROLE_MAPPING="lf-admins=org:org-test:ADMIN,lf-dev=project:{project}:VIEWER",
        LANGFUSE_LOG_LEVEL="debug",
    )
    project_id = sso.server.project_id
    ui = browser_ui(sso.app)
    page = ui.new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/auth/sign-in"))
    expect(page.locator("[data-testid=sso-keycloak]")).to_have_text("Sign in with Keycloak")
    expect(page.locator("[data-testid=password-form]")).to_have_count(0)
    expect(page.locator("input[type=password]")).to_have_count(0)
    ui.shot(page, "01-sign-in-sso-only")

    # the password form is refused on the server too, even for the existing password user
    with httpx.Client(base_url=sso.server.url) as client:
        csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/auth/sign-in").text).group(1)
        refused = client.post(
            "/auth/sign-in",
            data={"csrf_token": csrf, "email": "someone@example.com", "password": "password-123"},
        )
        assert refused.status_code == 403 and "disabled" in refused.text

    # alice (group /lf-admins): created at first sign-in, ADMIN of the organisation
    callback_urls: list[str] = []
    page.on("request", lambda r: callback_urls.append(r.url) if "/api/auth/callback/" in r.url else None)
    sso_sign_in(page, "alice")
    expect(page).to_have_url(f"{sso.app}/")
    expect(page.locator("[data-testid=org-card]")).to_contain_text("Test Project")
    ui.shot(page, "02-alice-signed-in")
    assert "alice@example.com" in sso.users()
    assert projects_json(page) == {"Test Project": "ADMIN"}
    assert sso.query("SELECT provider || ':' || subject FROM sso_accounts") == ["keycloak:sub-alice"]

    # her account page names the linked identity and offers no password change (nor accepts one)
    page.goto("/account")
    expect(page.locator("[data-testid=sso-links]")).to_contain_text("keycloak (alice@example.com)")
    expect(page.locator("[data-testid=change-password]")).to_have_count(0)
    csrf = json.loads(page.locator("body").get_attribute("hx-headers"))["X-CSRF-Token"]
    changed = page.request.post(
        "/account/password",
        headers={"X-CSRF-Token": csrf},
        form={"current_password": "x", "new_password": "password-123"},
    )
    assert changed.status == 403

    # signing in again (the provider remembers alice, so it answers at once) rotates the session: the old
    # cookie stops working, the new one works
    old_cookie = {c["name"]: c["value"] for c in page.context.cookies()}["lightfuse_session"]
    page.goto("/api/auth/signin/keycloak")
    expect(page).to_have_url(f"{sso.app}/")
    new_cookie = {c["name"]: c["value"] for c in page.context.cookies()}["lightfuse_session"]
    assert new_cookie != old_cookie
    for value, status in ((old_cookie, 303), (new_cookie, 200)):
        got = httpx.get(f"{sso.server.url}/", cookies={"lightfuse_session": value}, follow_redirects=False)
        assert got.status_code == status

    # replaying the callback (same state, same code) is refused and creates nothing
    users_before = sso.users()
    ui.expect_statuses(400, 403, 429)
    page.goto(callback_urls[-1])
    expect(page.locator("[data-testid=sso-error]")).to_contain_text("already used")
    assert sso.users() == users_before

    # sign-out revokes the session server-side: the old cookie no longer opens anything
    cookie = {c["name"]: c["value"] for c in page.context.cookies()}["lightfuse_session"]
    page.goto("/")
    page.click("[data-testid=sign-out]")
    expect(page).to_have_url(re.compile(r"/auth/sign-in"))
    stale = httpx.get(f"{sso.server.url}/", cookies={"lightfuse_session": cookie}, follow_redirects=False)
    assert stale.status_code == 303 and "/auth/sign-in" in stale.headers["location"]

    # bob (lf-dev): VIEWER of the one project, through an org membership with role NONE
    page2 = ui.new_page()
    sso_sign_in(page2, "bob")
    expect(page2.locator("[data-testid=org-card]")).to_contain_text("Test Project")
    assert projects_json(page2) == {"Test Project": "VIEWER"}

    # carol (no groups): an account, but no access to anything
    page3 = ui.new_page()
    sso_sign_in(page3, "carol")
    expect(page3).to_have_url(f"{sso.app}/")
    assert projects_json(page3) == {}
    assert sso.users() == ["alice@example.com", "bob@example.com", "carol@example.com"]

    # the mapping is applied at every sign-in: with alice's group now mapped to VIEWER, her next sign-in lowers
    # her role (and the old ADMIN grant is gone)
    sso.restart_server(
        LIGHTFUSE_SSO_ROLE_MAPPING=f"lf-admins=org:org-test:VIEWER,lf-dev=project:{project_id}:VIEWER"
    )
    page4 = ui.new_page()
    sso_sign_in(page4, "alice")
    expect(page4).to_have_url(f"{sso.app}/")
    assert projects_json(page4) == {"Test Project": "VIEWER"}

    log = sso.server.log_path.read_text()
    # oidc-provider keeps email and groups out of the ID token when it issues an access token: they came from
    # the userinfo endpoint
    assert "claims from the userinfo endpoint" in log
    code = parse_qs(urlsplit(callback_urls[-1]).query)["code"][0]
    assert CLIENT_SECRET not in log and code not in log


def test_linking_verified_email_only_and_sso_enforcement(sso_factory, browser_ui):
    sso = sso_factory(
        LANGFUSE_INIT_USER_EMAIL=INIT_EMAIL,
        LANGFUSE_INIT_USER_PASSWORD=INIT_PASSWORD,
        AUTH_DOMAINS_WITH_SSO_ENFORCEMENT="corp.example",
        LANGFUSE_DEFAULT_ORG_ID="org-test",
        LANGFUSE_DEFAULT_ORG_ROLE="MEMBER",
    )
    ui = browser_ui(sso.app)
    ui.expect_statuses(403)
    page = ui.new_page()

    # linking off (the default): the provider's verified email of an existing account is not enough
    sso_sign_in(page, "admin")
    expect(page.locator("[data-testid=sso-error]")).to_contain_text("not linked")
    ui.shot(page, "01-linking-off")
    assert sso.users() == [INIT_EMAIL]
    assert sso.query("SELECT count(*) FROM sso_accounts") == [0]

    # linking on: an unverified email is still refused ...
    sso.restart_server(AUTH_KEYCLOAK_ALLOW_ACCOUNT_LINKING="true")
    page = ui.new_page()
    sso_sign_in(page, "squatter")
    expect(page.locator("[data-testid=sso-error]")).to_contain_text("not verified")
    assert sso.query("SELECT count(*) FROM sso_accounts") == [0]
    # ... a verified one links to the existing account (its OWNER role in the org included)
    sso_sign_in(page, "admin")
    expect(page).to_have_url(f"{sso.app}/")
    assert projects_json(page) == {"Test Project": "OWNER"}
    assert sso.users() == [INIT_EMAIL]
    assert sso.query("SELECT subject FROM sso_accounts") == ["sub-admin"]

    # SSO enforced for corp.example: no password sign-up or sign-in for that domain; SSO works, and a new user
    # gets the default organisation role
    with httpx.Client(base_url=sso.server.url) as client:
        csrf = csrf_from(client.get("/auth/sign-up").text)
        signup = client.post(
            "/auth/sign-up",
            data={"csrf_token": csrf, "email": "dana@corp.example", "password": "password-123"},
        )
        assert signup.status_code == 403 and "single sign-on" in signup.text
        signin = client.post(
            "/auth/sign-in",
            data={"csrf_token": csrf, "email": "dana@corp.example", "password": "password-123"},
        )
        assert signin.status_code == 403 and "single sign-on" in signin.text
    page2 = ui.new_page()
    page2.goto("/auth/sign-in")
    expect(page2.locator("[data-testid=password-form]")).to_be_visible()  # passwords still on for others
    sso_sign_in(page2, "dana")
    expect(page2).to_have_url(f"{sso.app}/")
    assert projects_json(page2) == {"Test Project": "MEMBER"}


def test_tampered_state_replayed_code_and_provider_refusal(sso_factory, browser_ui):
    sso = sso_factory(LIGHTFUSE_AUTH_MAX_FAILURES_PER_ADDRESS="50")
    ui = browser_ui(sso.app)
    ui.expect_statuses(400, 403)
    page = ui.new_page()

    # a tampered state is refused; the untouched callback still works afterwards (nothing was consumed)
    callback = capture_callback(page, "alice")
    page.goto(with_params(callback, state="forged-" + parse_qs(urlsplit(callback).query)["state"][0][:20]))
    expect(page.locator("[data-testid=sso-error]")).to_contain_text("unknown, expired or already used")
    ui.shot(page, "01-tampered-state")
    assert sso.query("SELECT count(*) FROM users") == [0]
    # the callback opened in another browser (no binding cookie) is refused as well, and burns the state
    other = ui.new_page()
    other.goto(callback)
    expect(other.locator("[data-testid=sso-error]")).to_contain_text("another browser")
    assert sso.query("SELECT count(*) FROM users") == [0]

    # a code used once is refused by the provider when sent again with a fresh, valid state
    first = capture_callback(page, "alice")
    page.goto(first)
    expect(page).to_have_url(f"{sso.app}/")
    old_code = parse_qs(urlsplit(first).query)["code"][0]
    page.context.clear_cookies()
    fresh = capture_callback(page, "alice")
    page.goto(with_params(fresh, code=old_code))
    expect(page.locator("[data-testid=sso-error]")).to_contain_text("did not accept")
    ui.shot(page, "02-replayed-code")
    assert sso.users() == ["alice@example.com"]

    # an answer naming another issuer (RFC 9207 iss parameter; a mix-up attack) is refused
    mixed = capture_callback(page, "bob")
    assert "iss=" in mixed  # oidc-provider sends it
    page.goto(with_params(mixed, iss="https://evil.example.com/realms/test"))
    expect(page.locator("[data-testid=sso-error]")).to_contain_text("another identity provider")
    assert sso.users() == ["alice@example.com"]

    # a NUL in next= (Postgres refuses it in text) is dropped, not a 500
    odd = httpx.get(
        f"{sso.server.url}/api/auth/signin/keycloak", params={"next": "/\x00x"}, follow_redirects=False
    )
    assert odd.status_code == 303 and odd.headers["location"].startswith(sso.idp.issuer)

    # the user cancels at the provider: a clear page, nothing created
    page.context.clear_cookies()
    page.goto("/auth/sign-in")
    page.click("[data-testid=sso-keycloak]")
    page.click("#cancel")
    expect(page.locator("[data-testid=sso-error]")).to_contain_text("access_denied")
    assert sso.users() == ["alice@example.com"]


def test_custom_provider_client_secret_post_and_claim_names(sso_factory, browser_ui):
    sso = sso_factory(
        AUTH_CUSTOM_CLIENT_ID="lightfuse-post",
        AUTH_CUSTOM_CLIENT_SECRET="post-secret-77d1",
        AUTH_CUSTOM_CLIENT_AUTH_METHOD="client_secret_post",
        AUTH_CUSTOM_NAME="Company SSO",
        AUTH_CUSTOM_SCOPE="openid email profile groups",
        AUTH_CUSTOM_ISSUER="{issuer}",
        LANGFUSE_CUSTOM_SSO_NAME_CLAIM="email",
    )
    ui = browser_ui(sso.app)
    page = ui.new_page()
    page.goto("/auth/sign-in")
    expect(page.locator("[data-testid=sso-keycloak]")).to_be_visible()
    expect(page.locator("[data-testid=sso-custom]")).to_have_text("Sign in with Company SSO")
    sso_sign_in(page, "bob", provider="custom")
    expect(page).to_have_url(f"{sso.app}/")
    # LANGFUSE_CUSTOM_SSO_NAME_CLAIM=email: the display name was taken from the email claim
    assert sso.query("SELECT name FROM users") == ["bob@example.com"]
    assert sso.query("SELECT provider FROM sso_accounts") == ["custom"]


def test_public_client_without_secret(sso_factory, browser_ui):
    """CLIENT_AUTH_METHOD=none: no secret at the token endpoint, PKCE alone proves the code's owner."""
    sso = sso_factory(
        AUTH_OKTA_CLIENT_ID="lightfuse-public",
        AUTH_OKTA_CLIENT_AUTH_METHOD="none",
        AUTH_OKTA_ISSUER="{issuer}",
    )
    ui = browser_ui(sso.app)
    page = ui.new_page()
    sso_sign_in(page, "carol", provider="okta")
    expect(page).to_have_url(f"{sso.app}/")
    assert sso.query("SELECT provider || ':' || subject FROM sso_accounts") == ["okta:sub-carol"]


def test_discovery_refused_without_allow_list_and_failures_throttled(sso_factory, tmp_path):
    sso = sso_factory(
        LANGFUSE_SSO_DISCOVERY_WHITELISTED_IPS="",
        LIGHTFUSE_AUTH_MAX_FAILURES_PER_ADDRESS="3",
    )
    html = {"Accept": "text/html"}
    refused = httpx.get(f"{sso.server.url}/api/auth/signin/keycloak", headers=html)
    assert refused.status_code == 502
    assert "non-public address" in refused.text and "LANGFUSE_SSO_DISCOVERY_WHITELISTED" in refused.text
    assert sso.query("SELECT count(*) FROM sso_login_states") == [0]

    # the provider down (allowed address, nothing listening): a clear 502 page
    sso.restart_server(
        LANGFUSE_SSO_DISCOVERY_WHITELISTED_IPS="127.0.0.1",
        AUTH_KEYCLOAK_ISSUER="http://127.0.0.1:9/realms/test",
        AUTH_SSO_TIMEOUT="2000",
    )
    with httpx.Client(base_url=sso.server.url, headers=html) as client:
        down = client.get("/api/auth/signin/keycloak")
        assert down.status_code == 502 and "could not be reached" in down.text
        unknown = client.get("/api/auth/signin/nope")
        assert unknown.status_code == 404 and "not configured" in unknown.text
        # forged callbacks count against the address: the fourth is throttled
        statuses = [
            client.get("/api/auth/callback/keycloak", params={"code": "x", "state": f"s{i}"}).status_code
            for i in range(4)
        ]
        assert statuses == [400, 400, 400, 429]
        assert "Retry-After" in client.get("/api/auth/signin/keycloak").headers
    assert sso.users() == []
