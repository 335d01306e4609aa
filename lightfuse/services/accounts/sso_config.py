"""Which SSO providers are configured, read from Langfuse's variables, and the group-to-role mapping.

Every provider has Langfuse's id (the last part of ``/api/auth/callback/<id>``, so an identity provider set up
for Langfuse needs no change) and reads ``AUTH_<P>_CLIENT_ID``, ``_CLIENT_SECRET``, ``_ALLOW_ACCOUNT_LINKING``,
``_CLIENT_AUTH_METHOD``, ``_CHECKS``, ``_SCOPE``, ``_NAME``, ``_ID_TOKEN_SIGNED_RESPONSE_ALG`` and, where it has
one, ``_ISSUER``. Keycloak also accepts ``AUTH_KEYCLOAK_ID``/``_SECRET`` (what deployment guides write). A
provider is configured when its client id (and issuer, where one is needed) is set; a half-configured one is
a start-up error, not a missing button.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lightfuse.services.auth import rbac

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
_CHECKS = ("nonce", "none", "pkce", "state")
_ID_TOKEN_ALGS = frozenset(
    f"{family}{bits}" for family in ("RS", "ES", "PS", "HS") for bits in ("256", "384", "512")
) | {"EdDSA"}
OIDC_SCOPE = "openid email profile"


class SsoConfigError(ValueError):
    """An SSO variable is present but unusable; the process must not start."""


@dataclass(frozen=True)
class ProviderConfig:
    id: str  # Langfuse's provider id, in the callback URL
    name: str  # the button label
    client_id: str
    client_secret: str | None = field(repr=False)
    auth_method: str
    scope: str
    allow_linking: bool
    # OIDC: discovery from the issuer. OAuth2 (GitHub): fixed endpoints and a profile endpoint.
    issuer: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    profile_url: str | None = None
    emails_url: str | None = None
    pkce: bool = True
    nonce: bool = True
    # AUTH_<P>_ID_TOKEN (default true): false for a provider that returns no ID token (claims from userinfo);
    # an ID token that does come is verified all the same
    id_token: bool = True
    id_token_algs: frozenset[str] | None = None
    # claim names (LANGFUSE_CUSTOM_SSO_*_CLAIM for the generic provider)
    sub_claim: str = "sub"
    email_claim: str = "email"
    name_claim: str = "name"
    # Google's hosted domains (AUTH_GOOGLE_ALLOWED_DOMAINS); empty = any
    allowed_domains: frozenset[str] = frozenset()

    @property
    def is_oidc(self) -> bool:
        return self.issuer is not None


@dataclass(frozen=True)
class _Kind:
    env: str  # AUTH_<env>_*
    id: str
    label: str
    issuer: str | None = None  # a fixed issuer; None with needs_issuer = from AUTH_<env>_ISSUER
    needs_issuer: bool = True


_KINDS = (
    _Kind("KEYCLOAK", "keycloak", "Keycloak"),
    _Kind("CUSTOM", "custom", "SSO"),
    _Kind("GOOGLE", "google", "Google", issuer="https://accounts.google.com"),
    _Kind("GITHUB", "github", "GitHub", needs_issuer=False),
    _Kind("GITHUB_ENTERPRISE", "github-enterprise", "GitHub Enterprise", needs_issuer=False),
    _Kind("GITLAB", "gitlab", "GitLab"),
    _Kind("AZURE_AD", "azure-ad", "Azure AD"),
    _Kind("OKTA", "okta", "Okta"),
    _Kind("AUTH0", "auth0", "Auth0"),
    _Kind("AUTHENTIK", "authentik", "Authentik"),
    _Kind("COGNITO", "cognito", "Cognito"),
    _Kind("ONELOGIN", "onelogin", "OneLogin"),
    _Kind("JUMPCLOUD", "jumpcloud", "JumpCloud"),
)


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _issuer(kind: _Kind, env: Mapping[str, str], p: str) -> str | None:
    if kind.issuer:
        return kind.issuer
    if kind.env == "GITLAB":
        return env.get(f"{p}ISSUER") or env.get(f"{p}URL") or "https://gitlab.com"
    if kind.env == "AZURE_AD":
        tenant = env.get(f"{p}TENANT_ID")
        return f"https://login.microsoftonline.com/{tenant}/v2.0" if tenant else None
    if not kind.needs_issuer:
        return None
    return env.get(f"{p}ISSUER")


def _provider(kind: _Kind, env: Mapping[str, str]) -> ProviderConfig | None:
    p = f"AUTH_{kind.env}_"
    client_id = env.get(f"{p}CLIENT_ID") or env.get(f"{p}ID")
    if not client_id:
        return None
    secret = env.get(f"{p}CLIENT_SECRET") or env.get(f"{p}SECRET")
    method = (env.get(f"{p}CLIENT_AUTH_METHOD") or "client_secret_basic").strip()
    if method not in AUTH_METHODS:
        raise SsoConfigError(
            f"{p}CLIENT_AUTH_METHOD must be one of {', '.join(AUTH_METHODS)}, not {method!r}"
        )
    if method != "none" and not secret:
        raise SsoConfigError(f"{p}CLIENT_SECRET is required (or set {p}CLIENT_AUTH_METHOD=none)")
    checks = {c.lower() for c in csv(env.get(f"{p}CHECKS"))} or {"pkce", "state", "nonce"}
    if unknown := checks - set(_CHECKS):
        raise SsoConfigError(f"{p}CHECKS may hold {', '.join(_CHECKS)}, not {', '.join(sorted(unknown))}")
    algs = None
    if alg := env.get(f"{p}ID_TOKEN_SIGNED_RESPONSE_ALG"):
        if alg not in _ID_TOKEN_ALGS:
            raise SsoConfigError(f"{p}ID_TOKEN_SIGNED_RESPONSE_ALG {alg!r} is not a supported signature")
        algs = frozenset({alg})
    issuer = _issuer(kind, env, p)
    # OAuth2 (GitHub) providers have fixed endpoints and no issuer; the others are OIDC, found from the issuer
    authorize_url = token_url = profile_url = emails_url = None
    sub_claim, email_claim, name_claim = "sub", "email", "name"
    domains: frozenset[str] = frozenset()
    if kind.env in ("GITHUB", "GITHUB_ENTERPRISE"):
        base = "https://github.com"
        api = "https://api.github.com"
        if kind.env == "GITHUB_ENTERPRISE":
            base = (env.get(f"{p}BASE_URL") or "").rstrip("/")
            if not base:
                raise SsoConfigError(f"{p}BASE_URL is required")
            api = f"{base}/api/v3"
        scope = env.get(f"{p}SCOPE") or "read:user user:email"
        authorize_url = f"{base}/login/oauth/authorize"
        token_url = f"{base}/login/oauth/access_token"
        profile_url = f"{api}/user"
        emails_url = f"{api}/user/emails"
        sub_claim = "id"
    else:
        if not issuer:
            raise SsoConfigError(f"{p}ISSUER is required when {p}CLIENT_ID is set")
        if not issuer.startswith(("https://", "http://")):
            raise SsoConfigError(f"{p}ISSUER must be an http(s) URL")
        issuer = issuer.rstrip("/")
        scope = env.get(f"{p}SCOPE") or OIDC_SCOPE
        if kind.env == "CUSTOM":
            sub_claim = env.get("LANGFUSE_CUSTOM_SSO_SUB_CLAIM") or "sub"
            email_claim = env.get("LANGFUSE_CUSTOM_SSO_EMAIL_CLAIM") or "email"
            name_claim = env.get("LANGFUSE_CUSTOM_SSO_NAME_CLAIM") or "name"
        if kind.env == "GOOGLE":
            domains = frozenset(d.lower() for d in csv(env.get(f"{p}ALLOWED_DOMAINS")))
    return ProviderConfig(
        id=kind.id,
        name=(env.get(f"{p}NAME") or kind.label).strip(),
        client_id=client_id,
        client_secret=secret,
        auth_method=method,
        scope=scope,
        allow_linking=_flag(env.get(f"{p}ALLOW_ACCOUNT_LINKING")),
        issuer=issuer,
        authorize_url=authorize_url,
        token_url=token_url,
        profile_url=profile_url,
        emails_url=emails_url,
        # state is always checked (it binds the answer to this browser); CHECKS may only drop pkce or nonce,
        # for identity providers that reject them
        pkce="pkce" in checks,
        nonce="nonce" in checks,
        id_token=(env.get(f"{p}ID_TOKEN") or "true").strip().lower() not in ("false", "0", "no", "off"),
        id_token_algs=algs,
        sub_claim=sub_claim,
        email_claim=email_claim,
        name_claim=name_claim,
        allowed_domains=domains,
    )


def load_providers(env: Mapping[str, str]) -> dict[str, ProviderConfig]:
    """The configured providers by id, in the order their buttons are shown."""
    providers = {}
    for kind in _KINDS:
        provider = _provider(kind, env)
        if provider is not None:
            providers[provider.id] = provider
    return providers


# --- group-to-role mapping ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoleRule:
    group: str
    kind: str  # "org" | "project"
    target: str  # the organisation's or project's id
    role: str


_ORG_ROLES = (*rbac.ROLES, "NONE")


def parse_role_mapping(text: str | None, default_org_ids: list[str]) -> list[RoleRule]:
    """``group=org:<org id>:<ROLE>``, ``group=project:<project id>:<ROLE>`` or ``group=<ROLE>`` (the role in
    every LANGFUSE_DEFAULT_ORG_ID organisation), comma separated. The group is everything before the last
    ``=``, so group names may hold ``:``; a leading ``/`` (Keycloak's full group path) is not part of it."""
    rules = []
    for item in csv(text):
        group, eq, target = item.rpartition("=")
        group = group.strip().lstrip("/")
        if not eq or not group:
            raise SsoConfigError(f"LIGHTFUSE_SSO_ROLE_MAPPING: {item!r} is not group=target")
        parts = [p.strip() for p in target.split(":")]
        if len(parts) == 1:
            if not default_org_ids:
                raise SsoConfigError(
                    f"LIGHTFUSE_SSO_ROLE_MAPPING: {item!r} names no organisation and LANGFUSE_DEFAULT_ORG_ID is unset"
                )
            targets = [("org", org_id, parts[0]) for org_id in default_org_ids]
        elif len(parts) == 3 and parts[0].lower() in ("org", "project") and parts[1]:
            targets = [(parts[0].lower(), parts[1], parts[2])]
        else:
            raise SsoConfigError(
                f"LIGHTFUSE_SSO_ROLE_MAPPING: {item!r} must be group=org:<id>:<ROLE>, group=project:<id>:<ROLE> "
                "or group=<ROLE>"
            )
        for kind, target_id, role in targets:
            role = role.upper()
            allowed = _ORG_ROLES if kind == "org" else rbac.ROLES
            if role not in allowed:
                raise SsoConfigError(
                    f"LIGHTFUSE_SSO_ROLE_MAPPING: {item!r}: the role must be one of {', '.join(allowed)}"
                )
            rules.append(RoleRule(group, kind, target_id, role))
    return rules


@dataclass(frozen=True)
class NewUserDefaults:
    """LANGFUSE_DEFAULT_ORG_ID/ROLE and LANGFUSE_DEFAULT_PROJECT_ID/ROLE: where every new user starts."""

    orgs: tuple[str, ...] = ()
    org_role: str = "VIEWER"
    projects: tuple[str, ...] = ()
    project_role: str = "VIEWER"


def parse_defaults(
    org_ids: str | None, org_role: str | None, project_ids: str | None, project_role: str | None
) -> NewUserDefaults:
    org_role = (org_role or "VIEWER").strip().upper()
    project_role = (project_role or "VIEWER").strip().upper()
    if org_role not in _ORG_ROLES:
        raise SsoConfigError(f"LANGFUSE_DEFAULT_ORG_ROLE must be one of {', '.join(_ORG_ROLES)}")
    if project_role not in rbac.ROLES:
        raise SsoConfigError(f"LANGFUSE_DEFAULT_PROJECT_ROLE must be one of {', '.join(rbac.ROLES)}")
    return NewUserDefaults(tuple(csv(org_ids)), org_role, tuple(csv(project_ids)), project_role)


def enforced_domains(text: str | None) -> frozenset[str]:
    return frozenset(d.lower().lstrip("@") for d in csv(text))
