"""Who an SSO identity becomes, on a real store (SQLite and Postgres): found again by subject after an email
change, roles from groups set and removed at every sign-in, defaults for new users, one user for two racing
first sign-ins."""

from __future__ import annotations

import threading

import pytest

from lightfuse.app import build_services
from lightfuse.config import InitSettings, load_settings
from lightfuse.services.accounts.sso_accounts import SsoAccounts
from lightfuse.services.accounts.sso_config import load_providers, parse_defaults, parse_role_mapping
from lightfuse.services.accounts.sso_oidc import Identity, SsoFailure
from lightfuse.services.accounts.web_accounts import WebAccounts

PROVIDER = load_providers(
    {"AUTH_KEYCLOAK_ID": "lf", "AUTH_KEYCLOAK_SECRET": "s", "AUTH_KEYCLOAK_ISSUER": "https://kc/realms/r"}
)["keycloak"]


def identity(sub: str, email: str | None, groups: list[str] | None = None, verified: bool = True) -> Identity:
    claims = {"sub": sub, "groups": groups or []}
    return Identity("keycloak", sub, email, verified, None, claims)


@pytest.fixture
def store(backend):
    init = InitSettings(org_id="org-a", org_name="A", project_id="p1", project_name="P1")
    services = build_services(load_settings(**backend, init=init))
    services.accounts.create_project("org-a", "P2", project_id="p2")
    try:
        yield services
    finally:
        services.engine.dispose()


def roles(services, user) -> dict[str, str]:
    web = WebAccounts(services.engine, services.keys)
    return {p["id"]: p["role"] for org in web.list_orgs(user) for p in org["projects"]}


def test_groups_set_and_remove_roles_and_the_subject_outlives_an_email_change(store):
    rules = parse_role_mapping("admins=org:org-a:ADMIN,devs=project:p2:MEMBER", [])
    accounts = SsoAccounts(store.engine, parse_defaults(None, None, None, None), rules, "groups")
    user = accounts.sign_in(identity("s1", "ann@example.com", ["admins"]), PROVIDER)
    assert roles(store, user) == {"p1": "ADMIN", "p2": "ADMIN"}
    # moved from admins to devs at the provider, and a new email there: same user, new roles
    again = accounts.sign_in(identity("s1", "ann.new@example.com", ["devs"]), PROVIDER)
    assert again.id == user.id
    assert roles(store, user) == {"p2": "MEMBER"}
    accounts.sign_in(identity("s1", "ann.new@example.com", []), PROVIDER)
    assert roles(store, user) == {}


def test_new_users_get_the_defaults_and_refusals_create_nothing(store):
    defaults = parse_defaults("org-a", "VIEWER", "p2", "ADMIN")
    accounts = SsoAccounts(store.engine, defaults, [], "groups")
    user = accounts.sign_in(identity("s2", "bo@example.com"), PROVIDER)
    assert roles(store, user) == {"p1": "VIEWER", "p2": "ADMIN"}
    with pytest.raises(SsoFailure) as caught:
        accounts.sign_in(identity("s3", None), PROVIDER)
    assert caught.value.reason == "no_email"
    # the same email from another subject: not linked (linking is off for this provider)
    with pytest.raises(SsoFailure) as caught:
        accounts.sign_in(identity("s4", "bo@example.com"), PROVIDER)
    assert caught.value.reason == "linking_disabled"


def test_two_first_sign_ins_at_once_make_one_user(store):
    accounts = SsoAccounts(store.engine, parse_defaults(None, None, None, None), [], "groups")
    barrier = threading.Barrier(2)
    results: list = []

    def sign_in() -> None:
        barrier.wait(timeout=10)
        try:
            results.append(accounts.sign_in(identity("s5", "cy@example.com"), PROVIDER).id)
        except Exception as exc:  # noqa: BLE001 - shown by the assertion below
            results.append(repr(exc))

    threads = [threading.Thread(target=sign_in) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 2 and results[0] == results[1], results
