"""SSO pieces without a provider: ID token checks (real RSA keys, real signatures), the SSRF allow-list, the
provider variables and the group-to-role mapping syntax. The whole flow runs in tests/web/test_sso_browser.py."""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from lightfuse.services.accounts.sso_accounts import groups_of
from lightfuse.services.accounts.sso_config import (
    RoleRule,
    SsoConfigError,
    load_providers,
    parse_defaults,
    parse_role_mapping,
)
from lightfuse.services.accounts.sso_oidc import SsoFailure, verify_id_token
from lightfuse.services.common.outbound import OutboundPolicy, OutboundRefused

ISSUER = "https://idp.example.com/realms/test"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "k1"})
PUBLIC = KeySet([RSAKey.import_key(KEY.as_dict(private=False))])
RS = frozenset({"RS256"})


def token(key=KEY, alg="RS256", **claims) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "lightfuse", "sub": "u1", "iat": now, "exp": now + 300, "nonce": "n1"}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode({"alg": alg, "kid": "k1"}, body, key)


def verify(id_token: str, keys=PUBLIC, algs=RS, nonce: str | None = "n1") -> dict:
    return verify_id_token(id_token, keys, issuer=ISSUER, client_id="lightfuse", nonce=nonce, algs=algs)


def test_a_valid_id_token_gives_its_claims():
    assert verify(token(email="a@example.com"))["email"] == "a@example.com"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": int(time.time()) - 600}, "expired"),
        ({"aud": "someone-else"}, "aud"),
        ({"iss": "https://evil.example.com/realms/test"}, "iss"),
        ({"nonce": "other"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"exp": None}, "exp"),
    ],
)
def test_id_token_claims_are_checked(claims, reason):
    with pytest.raises(SsoFailure) as caught:
        verify(token(**claims))
    assert caught.value.status == 400 and reason in caught.value.reason


def test_a_token_signed_by_another_key_is_refused():
    with pytest.raises(SsoFailure) as caught:
        verify(token(key=OTHER_KEY))
    assert caught.value.reason.startswith("signature")


def test_symmetric_and_unsigned_tokens_are_refused_when_rs256_is_expected():
    # the public key's bytes as an HMAC secret: the classic algorithm confusion
    forged = token(key=OctKey.import_key(b"x" * 32), alg="HS256")
    with pytest.raises(SsoFailure):
        verify(forged)
    header, body, _sig = token().split(".")
    with pytest.raises(SsoFailure):
        verify(f"{header}.{body}.")
    with pytest.raises(SsoFailure):
        verify("not-a-jwt")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/realms/x",
        "http://10.1.2.3/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/",
        "http://100.64.0.1/",
        "file:///etc/passwd",
    ],
)
def test_non_public_addresses_are_refused(url):
    with pytest.raises(OutboundRefused):
        OutboundPolicy().check_url(url)


def test_the_allow_list_admits_hosts_addresses_and_segments():
    OutboundPolicy().check_url("https://8.8.8.8/")
    OutboundPolicy(ips="127.0.0.1").check_url("http://127.0.0.1:8080/realms/x")
    OutboundPolicy(segments="10.0.0.0/8").check_url("http://10.1.2.3/")
    OutboundPolicy(hosts="keycloak.internal").check_url("http://keycloak.internal/realms/x")
    with pytest.raises(OutboundRefused):
        OutboundPolicy(ips="127.0.0.1").check_url("http://127.0.0.2/")
    with pytest.raises(ValueError):
        OutboundPolicy(segments="not-a-cidr")


def test_keycloak_variables_including_the_deployment_guide_aliases():
    env = {
        "AUTH_KEYCLOAK_ID": "lf",
        "AUTH_KEYCLOAK_SECRET": "s",
        "AUTH_KEYCLOAK_ISSUER": "https://kc/realms/r/",
        "AUTH_KEYCLOAK_NAME": "Company",
        "AUTH_KEYCLOAK_ALLOW_ACCOUNT_LINKING": "true",
    }
    kc = load_providers(env)["keycloak"]
    assert (kc.client_id, kc.client_secret, kc.issuer, kc.name) == (
        "lf",
        "s",
        "https://kc/realms/r",
        "Company",
    )
    assert kc.allow_linking and kc.pkce and kc.nonce and kc.auth_method == "client_secret_basic"
    assert "client_secret=" not in repr(kc)  # never in a logged repr
    assert load_providers({}) == {}
    github = load_providers({"AUTH_GITHUB_CLIENT_ID": "g", "AUTH_GITHUB_CLIENT_SECRET": "s"})["github"]
    assert not github.is_oidc and github.profile_url == "https://api.github.com/user"
    azure = load_providers(
        {"AUTH_AZURE_AD_CLIENT_ID": "a", "AUTH_AZURE_AD_CLIENT_SECRET": "s", "AUTH_AZURE_AD_TENANT_ID": "t1"}
    )["azure-ad"]
    assert azure.issuer == "https://login.microsoftonline.com/t1/v2.0"
    public = load_providers(
        {
            "AUTH_OKTA_CLIENT_ID": "o",
            "AUTH_OKTA_ISSUER": "https://o.example.com",
            "AUTH_OKTA_CLIENT_AUTH_METHOD": "none",
            "AUTH_OKTA_CHECKS": "state",
        }
    )["okta"]
    assert public.client_secret is None and not public.pkce and not public.nonce


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"AUTH_KEYCLOAK_CLIENT_ID": "lf", "AUTH_KEYCLOAK_ISSUER": "https://kc"}, "CLIENT_SECRET"),
        ({"AUTH_KEYCLOAK_CLIENT_ID": "lf", "AUTH_KEYCLOAK_CLIENT_SECRET": "s"}, "ISSUER"),
        (
            {
                "AUTH_CUSTOM_CLIENT_ID": "c",
                "AUTH_CUSTOM_CLIENT_SECRET": "s",
                "AUTH_CUSTOM_ISSUER": "https://c",
                "AUTH_CUSTOM_CLIENT_AUTH_METHOD": "private_key_jwt",
            },
            "CLIENT_AUTH_METHOD",
        ),
        (
            {"AUTH_CUSTOM_CLIENT_ID": "c", "AUTH_CUSTOM_CLIENT_SECRET": "s", "AUTH_CUSTOM_ISSUER": "ftp://c"},
            "http",
        ),
        (
            {
                "AUTH_CUSTOM_CLIENT_ID": "c",
                "AUTH_CUSTOM_CLIENT_SECRET": "s",
                "AUTH_CUSTOM_ISSUER": "https://c",
                "AUTH_CUSTOM_CHECKS": "pkce,magic",
            },
            "CHECKS",
        ),
    ],
)
def test_half_configured_providers_are_start_up_errors(env, message):
    with pytest.raises(SsoConfigError, match=message):
        load_providers(env)


def test_role_mapping_syntax():
    rules = parse_role_mapping(
        "lf-admins=org:my-org:admin, /lf-dev=project:p1:MEMBER,a:b=c=VIEWER", ["o1", "o2"]
    )
    assert rules == [
        RoleRule("lf-admins", "org", "my-org", "ADMIN"),
        RoleRule("lf-dev", "project", "p1", "MEMBER"),
        RoleRule("a:b=c", "org", "o1", "VIEWER"),
        RoleRule("a:b=c", "org", "o2", "VIEWER"),
    ]
    assert parse_role_mapping(None, []) == []
    for bad in ("lf-admins", "=ADMIN", "g=team:x:ADMIN", "g=org:x:KING", "g=project:x:NONE"):
        with pytest.raises(SsoConfigError):
            parse_role_mapping(bad, ["o1"])
    with pytest.raises(SsoConfigError, match="LANGFUSE_DEFAULT_ORG_ID"):
        parse_role_mapping("g=ADMIN", [])


def test_defaults_and_groups_claim_shapes():
    defaults = parse_defaults("o1, o2", "member", "p1", None)
    assert (
        defaults.orgs == ("o1", "o2") and defaults.org_role == "MEMBER" and defaults.project_role == "VIEWER"
    )
    with pytest.raises(SsoConfigError):
        parse_defaults("o1", "KING", None, None)
    assert groups_of({"groups": ["/lf-admins", "lf-dev", 3]}, "groups") == {"lf-admins", "lf-dev"}
    assert groups_of({"realm_access": {"roles": ["lf-admins"]}}, "realm_access.roles") == {"lf-admins"}
    assert groups_of({"groups": "solo"}, "groups") == {"solo"}
    assert groups_of({}, "groups") == set()
