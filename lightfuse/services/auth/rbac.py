"""Role-based access: the organisation and project scope matrix (api-semantics 10) and role resolution.

Pure functions, no I/O: the web layer asks ``has_project_scope(role, scope)`` before every page and action, and
the account service resolves which role applies. API keys are outside RBAC (a project key may use the whole
public API of its project), so nothing under ``api/`` calls this.
"""

from __future__ import annotations

ROLES = ("OWNER", "ADMIN", "MEMBER", "VIEWER")
ROLE_RANK = {"OWNER": 4, "ADMIN": 3, "MEMBER": 2, "VIEWER": 1, "NONE": 0}

_OWNER = frozenset({"OWNER"})
_ADMIN_UP = frozenset({"OWNER", "ADMIN"})
_MEMBER_UP = frozenset({"OWNER", "ADMIN", "MEMBER"})
_ALL = frozenset({"OWNER", "ADMIN", "MEMBER", "VIEWER"})


def _grant(roles: frozenset[str], *scopes: str) -> dict[str, frozenset[str]]:
    return dict.fromkeys(scopes, roles)


ORG_SCOPES: dict[str, frozenset[str]] = {
    **_grant(
        _ADMIN_UP,
        "projects:create",
        "projects:transfer_org",
        "organization:update",
        "organizationMembers:CUD",
        "auditLogs:read",
    ),
    **_grant(_OWNER, "organization:CRUD_apiKeys", "organization:delete", "langfuseCloudBilling:CRUD"),
    **_grant(_MEMBER_UP, "organizationMembers:read"),
}

PROJECT_SCOPES: dict[str, frozenset[str]] = {
    **_grant(_ALL, "project:read"),
    **_grant(_ADMIN_UP, "project:update"),
    **_grant(_OWNER, "project:delete"),
    **_grant(_MEMBER_UP, "projectMembers:read", "apiKeys:read", "scoreConfigs:CUD"),
    **_grant(
        _ADMIN_UP,
        "projectMembers:CUD",
        "apiKeys:CUD",
        "integrations:CRUD",
        "traces:delete",
        "models:CUD",
        "promptProtectedLabels:CUD",
        "llmApiKeys:create",
        "llmApiKeys:update",
        "llmApiKeys:delete",
        "annotationQueueAssignments:CUD",
        "auditLogs:read",
        "automations:CUD",
    ),
    **_grant(
        _MEMBER_UP,
        "objects:publish",
        "objects:bookmark",
        "objects:tag",
        "scores:CUD",
        "datasets:CUD",
        "prompts:CUD",
        "evalTemplate:CUD",
        "evalJob:CUD",
        "evalDefaultModel:CUD",
        "llmSchemas:CUD",
        "llmTools:CUD",
        "playground:execute",
        "batchExports:create",
        "batchExports:read",
        "comments:CUD",
        "annotationQueues:CUD",
        "annotationQueueAssignments:read",
        "promptExperiments:CUD",
        "dashboards:CUD",
        "TableViewPresets:CUD",
        "alerts:CUD",
    ),
    **_grant(
        _ALL,
        "prompts:read",
        "datasets:read",
        "scoreConfigs:read",
        "evalTemplate:read",
        "evalJob:read",
        "evalJobExecution:read",
        "evalDefaultModel:read",
        "llmApiKeys:read",
        "llmSchemas:read",
        "llmTools:read",
        "comments:read",
        "annotationQueues:read",
        "promptExperiments:read",
        "dashboards:read",
        "TableViewPresets:read",
        "automations:read",
        "alerts:read",
    ),
}


def _check(table: dict[str, frozenset[str]], role: str | None, scope: str) -> bool:
    # An unknown scope is a programming error; failing loudly beats silently denying (or granting) it.
    if scope not in table:
        raise KeyError(f"unknown scope {scope!r}")
    return role is not None and role in table[scope]


def has_org_scope(role: str | None, scope: str) -> bool:
    return _check(ORG_SCOPES, role, scope)


def has_project_scope(role: str | None, scope: str) -> bool:
    return _check(PROJECT_SCOPES, role, scope)


def project_scopes(role: str | None) -> frozenset[str]:
    return frozenset(s for s, roles in PROJECT_SCOPES.items() if role in roles)


def org_scopes(role: str | None) -> frozenset[str]:
    return frozenset(s for s, roles in ORG_SCOPES.items() if role in roles)


def effective_project_role(
    org_role: str | None, project_role: str | None, *, instance_admin: bool = False
) -> str | None:
    """The role that applies in a project: a project membership overrides the org role; admins are owners.

    ``None`` means no access at all (not a member, or org role NONE without a project membership).
    """
    if instance_admin:
        return "OWNER"
    role = project_role or org_role
    return role if role in ROLE_RANK and role != "NONE" else None


def can_assign(actor_role: str | None, target_current: str | None, new_role: str | None) -> bool:
    """Whether someone may set (or remove, ``new_role=None``) a member's role.

    Nobody hands out or takes away more than they hold: the actor's rank must reach both the member's current
    role and the role given, so an ADMIN cannot create OWNERs or demote one.
    """
    actor = ROLE_RANK.get(actor_role or "NONE", 0)
    if actor < ROLE_RANK["ADMIN"]:
        return False
    return (
        ROLE_RANK.get(target_current or "NONE", 0) <= actor and ROLE_RANK.get(new_role or "NONE", 0) <= actor
    )
