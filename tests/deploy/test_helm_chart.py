"""The Helm chart at deploy/helm/lightfuse and the topologies in deploy/helm/examples.

Every case is rendered by Helm's Go SDK (helm-python-sdk) after its values pass values.schema.json; built-in
kinds are validated against the Kubernetes OpenAPI schemas of the oldest and newest supported Kubernetes
(kubernetes-validate, strict: unknown fields fail). kubernetes-validate has no CRD schemas, so the CRD kinds
(ServiceMonitor, HTTPRoute) are checked structurally here instead. checkov scans the rendered manifests from
its own venv (tests/clients/checkov.txt: its dependencies clash with the app's).
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import helm_python as helm
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
from pydantic import AliasChoices

from lightfuse.config import InitSettings, MediaStorageSettings, Settings
from lightfuse.services.accounts import sso_config
from tests.conftest import client_python
from tests.deploy.chart import (
    CHART,
    CRD_KINDS,
    EXAMPLES,
    NAMESPACE,
    container,
    env,
    env_list,
    example_values,
    kinds,
    literal,
    only,
    render,
    render_text,
    secret_ref,
)

KUBE_VERSIONS = [
    "1.27.0",
    "1.37.0",
]  # Chart.yaml's kubeVersion floor, and the newest kubernetes-validate knows
CASES = {"default": {}, **{name: example_values(name) for name in EXAMPLES}}
HEALTH, READY = "/api/public/health", "/api/public/ready"
SECRET_NAMES = re.compile(
    r"^(SALT|ENCRYPTION_KEY|NEXTAUTH_SECRET|DATABASE_PASSWORD|REDIS_AUTH|CLICKHOUSE_PASSWORD"
    r"|SMTP_CONNECTION_URL|LIGHTFUSE_METRICS_TOKEN)$"
    r"|_(CLIENT_SECRET|SECRET_ACCESS_KEY|PROJECT_SECRET_KEY|USER_PASSWORD)$"
)


def test_the_four_topologies_are_there():
    assert set(EXAMPLES) == {
        "keycloak-cnpg-s3",
        "neon-redis-litellm",
        "cnpg-dragonfly-rustfs-keycloak-tempo",
        "embedded-small",
    }


def test_helm_lint_finds_nothing_above_info():
    for values in CASES.values():
        report = helm.lint(CHART, values, strict=True)
        assert report["errors"] == []
        assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_manifest_is_valid_kubernetes(case):
    docs = render(CASES[case])
    assert {"Deployment", "Service", "ServiceAccount", "NetworkPolicy"} <= kinds(docs)
    for doc in docs:
        assert doc["metadata"]["namespace"] == NAMESPACE
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            continue  # checked structurally in the tests below
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_validate_catches_a_misspelt_field():
    # the control for the test above: strict validation rejects what the API server would prune or refuse
    deployment = only(render({}), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {"runAsNonRoot": True}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSIONS[-1], strict=True)


# --- the pod: security, probes, volumes (every case) --------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
def test_pod_is_locked_down(case):
    docs = render(CASES[case])
    pod = only(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's user
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container(docs)["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsNonRoot"] is True
    # a read-only root filesystem needs writable /tmp and /data
    mounts = {m["mountPath"]: m["name"] for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert mounts["/data"] == "data"
    assert container(docs)["resources"]["limits"]["memory"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_probes_hit_the_health_routes(case):
    main = container(render(CASES[case]))
    port_name = main["ports"][0]["name"]
    assert main["startupProbe"]["httpGet"] == {"path": HEALTH, "port": port_name}
    assert main["livenessProbe"]["httpGet"] == {"path": HEALTH, "port": port_name}
    assert main["readinessProbe"]["httpGet"] == {"path": READY, "port": port_name}


@pytest.mark.parametrize("case", sorted(CASES))
def test_server_answers_on_every_address_with_langfuse_names(case):
    docs = render(CASES[case])
    assert literal(docs, "HOSTNAME") == "0.0.0.0"  # the pod IP and `kubectl port-forward` (localhost)
    assert literal(docs, "PORT") == str(container(docs)["ports"][0]["containerPort"])
    assert literal(docs, "LIGHTFUSE_DATA_DIR") == "/data"
    # a secret is never a literal in the pod spec
    for entry in env_list(docs):
        if SECRET_NAMES.search(entry["name"]):
            assert "valueFrom" in entry, entry


def _names_lightfuse_reads() -> set[str]:
    names: set[str] = set()
    for model in (Settings, InitSettings, MediaStorageSettings):
        prefix = model.model_config.get("env_prefix", "")
        for field_name, field in model.model_fields.items():
            if isinstance(field.validation_alias, AliasChoices):
                names.update(choice for choice in field.validation_alias.choices if isinstance(choice, str))
            elif prefix:
                names.add(prefix + field_name.upper())
    return names


# Passed under Langfuse's names for features Lightfuse does not have yet; values.yaml says so for each.
NOT_READ_YET = re.compile(r"^(REDIS_\w+|CLICKHOUSE_\w+|LANGFUSE_S3_BATCH_EXPORT_\w+)$")

# AUTH_<PROVIDER>_<SUFFIX>: the providers sso_config knows, and the suffixes its source reads (f"{p}SUFFIX")
SSO_PROVIDERS = {kind.env for kind in sso_config._KINDS}
SSO_SUFFIXES = set(re.findall(r'f"\{p\}([A-Z_]+)"', Path(sso_config.__file__).read_text()))


def _read_by_sso_config(name: str) -> bool:
    return any(
        name.startswith(f"AUTH_{provider}_") and name.removeprefix(f"AUTH_{provider}_") in SSO_SUFFIXES
        for provider in SSO_PROVIDERS
    )


def test_sso_names_come_from_sso_config():
    assert {"KEYCLOAK", "GITHUB_ENTERPRISE", "AZURE_AD"} <= SSO_PROVIDERS
    assert {"CLIENT_ID", "CLIENT_SECRET", "ISSUER", "ALLOW_ACCOUNT_LINKING", "SCOPE", "NAME"} <= SSO_SUFFIXES
    assert _read_by_sso_config("AUTH_KEYCLOAK_CLIENT_ID")
    assert not _read_by_sso_config("AUTH_KEYCLAOK_CLIENT_ID")  # a typo'd provider
    assert not _read_by_sso_config("AUTH_KEYCLOAK_SCOPES")  # a typo'd suffix
    # the schema offers exactly the providers Lightfuse reads
    schema = json.loads((CHART / "values.schema.json").read_text())
    provider = schema["properties"]["auth"]["properties"]["sso"]["items"]["properties"]["provider"]
    assert set(provider["enum"]) == SSO_PROVIDERS


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_variable_is_read_by_lightfuse_or_documented_as_not_yet(case):
    read = _names_lightfuse_reads()
    assert {"DATABASE_URL", "SALT", "LANGFUSE_S3_MEDIA_UPLOAD_BUCKET", "LANGFUSE_INIT_ORG_ID"} <= read
    for name in env(render(CASES[case])):
        if name == "DATABASE_PASSWORD":  # only the $(DATABASE_PASSWORD) inside DATABASE_URL
            continue
        if name.startswith("AUTH_") and name not in read:
            assert _read_by_sso_config(name), f"{name}: not a variable of a provider sso_config knows"
            continue
        assert name in read or NOT_READ_YET.match(name), f"{name}: neither read by Lightfuse nor documented"


def test_a_misspelt_sso_option_fails_the_variable_check():
    # the control for the test above: the schema cannot catch an options key, the variable check does
    values = {
        "auth": {"sso": [{"provider": "OKTA", "clientId": "x", "existingSecret": "s", "issuer": "https://o"}]}
    }
    values["auth"]["sso"][0]["options"] = {"SCOPES": "openid"}
    names = [n for n in env(render(values)) if n.startswith("AUTH_OKTA_")]
    assert "AUTH_OKTA_SCOPES" in names
    assert [n for n in names if not _read_by_sso_config(n)] == ["AUTH_OKTA_SCOPES"]


# --- the embedded default ------------------------------------------------------------------------------------


def test_default_is_embedded_one_replica_recreate_with_a_claim():
    docs = render({})
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    claim = only(docs, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    data = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}["data"]
    assert data["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert container(docs)["resources"]["limits"]["memory"] == "256Mi"
    assert "DATABASE_URL" not in env(docs)
    # optional parts whose CRDs may be absent are off
    assert not {"ServiceMonitor", "HTTPRoute", "Ingress"} & kinds(docs)


def test_default_generates_the_three_secrets_once_and_keeps_them():
    docs = render({})
    secret = only(docs, "Secret")
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    values = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert re.fullmatch(r"[0-9a-f]{64}", values["encryption-key"])  # what ENCRYPTION_KEY requires
    assert len(values["salt"]) == 64 and len(values["nextauth-secret"]) == 64
    for name, key in (
        ("SALT", "salt"),
        ("ENCRYPTION_KEY", "encryption-key"),
        ("NEXTAUTH_SECRET", "nextauth-secret"),
    ):
        assert secret_ref(docs, name) == {"name": secret["metadata"]["name"], "key": key}
    # Offline there is no cluster for `lookup`, so two renders differ; on a cluster an upgrade reads the
    # existing Secret back (templates/secret.yaml). That branch is not exercised here.


def test_existing_secret_replaces_the_generated_one():
    docs = render({"secrets": {"existingSecret": "mine", "saltKey": "s"}})
    assert "Secret" not in kinds(docs)
    assert secret_ref(docs, "SALT") == {"name": "mine", "key": "s"}
    assert secret_ref(docs, "ENCRYPTION_KEY") == {"name": "mine", "key": "encryption-key"}


# --- the examples -------------------------------------------------------------------------------------------


def _secret_names(docs) -> set[str]:
    return {e["valueFrom"]["secretKeyRef"]["name"] for e in env_list(docs) if "valueFrom" in e}


def test_keycloak_cnpg_s3():
    docs = render(example_values("keycloak-cnpg-s3"))
    names = list(env(docs))
    # Kubernetes expands $(DATABASE_PASSWORD) only from variables listed before it
    assert names.index("DATABASE_PASSWORD") < names.index("DATABASE_URL")
    assert secret_ref(docs, "DATABASE_PASSWORD") == {"name": "lightfuse-db-app", "key": "password"}
    assert (
        literal(docs, "DATABASE_URL")
        == "postgresql://lightfuse:$(DATABASE_PASSWORD)@lightfuse-db-rw:5432/lightfuse"
    )
    assert secret_ref(docs, "AUTH_KEYCLOAK_CLIENT_SECRET") == {
        "name": "lightfuse-keycloak",
        "key": "client-secret",
    }
    assert literal(docs, "AUTH_KEYCLOAK_CLIENT_ID") == "lightfuse"
    assert literal(docs, "AUTH_KEYCLOAK_ISSUER") == "https://keycloak.example.com/realms/main"
    assert literal(docs, "AUTH_DISABLE_USERNAME_PASSWORD") == "true"
    assert literal(docs, "AUTH_DISABLE_SIGNUP") == "true"
    assert literal(docs, "AUTH_DOMAINS_WITH_SSO_ENFORCEMENT") == "example.com"
    assert literal(docs, "LANGFUSE_DEFAULT_ORG_ID") == "acme"
    assert literal(docs, "LANGFUSE_DEFAULT_ORG_ROLE") == "VIEWER"
    assert (
        literal(docs, "LIGHTFUSE_SSO_ROLE_MAPPING")
        == "lf-admins=org:acme:ADMIN,lf-dev=project:llm-apps:MEMBER"
    )
    # Keycloak at a public address: no discovery allow-list
    assert not any(name.startswith("LANGFUSE_SSO_DISCOVERY_") for name in env(docs))
    assert literal(docs, "LANGFUSE_S3_MEDIA_UPLOAD_BUCKET") == "lightfuse-media"
    assert secret_ref(docs, "LANGFUSE_S3_MEDIA_UPLOAD_SECRET_ACCESS_KEY")["name"] == "lightfuse-s3"
    assert literal(docs, "LANGFUSE_S3_BATCH_EXPORT_ENABLED") == "true"
    assert literal(docs, "LANGFUSE_S3_BATCH_EXPORT_BUCKET") == "lightfuse-exports"
    assert secret_ref(docs, "LANGFUSE_INIT_USER_PASSWORD") == {
        "name": "lightfuse-init",
        "key": "user-password",
        "optional": True,
    }
    assert _secret_names(docs) == {
        "lightfuse-secrets",
        "lightfuse-db-app",
        "lightfuse-keycloak",
        "lightfuse-s3",
        "lightfuse-init",
    }
    # two replicas, media in S3: nothing on a volume, so rolling updates
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "PersistentVolumeClaim" not in kinds(docs) and "Secret" not in kinds(docs)
    ingress = only(docs, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "lightfuse.example.com"
    assert literal(docs, "NEXTAUTH_URL") == "https://lightfuse.example.com"


def test_neon_redis_litellm():
    docs = render(example_values("neon-redis-litellm"))
    url = literal(docs, "DATABASE_URL")
    assert url.startswith("postgresql://lightfuse_owner:$(DATABASE_PASSWORD)@ep-")
    assert url.endswith(":5432/lightfuse?sslmode=require")
    assert secret_ref(docs, "DATABASE_PASSWORD") == {"name": "neon-lightfuse", "key": "password"}
    assert literal(docs, "REDIS_HOST") == "redis-master.shared-redis.svc.cluster.local"
    assert literal(docs, "REDIS_KEY_PREFIX") == "lightfuse:"
    assert secret_ref(docs, "REDIS_AUTH") == {"name": "redis-shared", "key": "password"}
    assert literal(docs, "LANGFUSE_INIT_PROJECT_PUBLIC_KEY") == "pk-lf-litellm"
    assert secret_ref(docs, "LANGFUSE_INIT_PROJECT_SECRET_KEY")["name"] == "lightfuse-init"
    # LiteLLM's LANGFUSE_HOST in the example is http://lightfuse:3000
    service = only(docs, "Service")
    assert service["metadata"]["name"] == "lightfuse"
    assert service["spec"]["ports"][0]["port"] == 3000
    policy = only(docs, "NetworkPolicy")
    peers = policy["spec"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "litellm"}}} in peers
    # one replica with local media on a claim: Recreate
    assert only(docs, "Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert only(docs, "PersistentVolumeClaim")["spec"]["resources"]["requests"]["storage"] == "2Gi"


def test_cnpg_dragonfly_rustfs_keycloak_tempo():
    docs = render(example_values("cnpg-dragonfly-rustfs-keycloak-tempo"))
    assert secret_ref(docs, "DATABASE_URL") == {"name": "lightfuse-db-app", "key": "uri"}
    assert "DATABASE_PASSWORD" not in env(docs)
    assert literal(docs, "LANGFUSE_S3_MEDIA_UPLOAD_FORCE_PATH_STYLE") == "true"
    assert literal(docs, "LANGFUSE_S3_MEDIA_UPLOAD_ENDPOINT") == "https://rustfs.example.com"
    assert secret_ref(docs, "LANGFUSE_S3_MEDIA_UPLOAD_ACCESS_KEY_ID")["name"] == "rustfs-lightfuse"
    assert secret_ref(docs, "REDIS_AUTH")["name"] == "dragonfly-auth"
    assert secret_ref(docs, "AUTH_KEYCLOAK_CLIENT_SECRET")["name"] == "lightfuse-keycloak"
    assert literal(docs, "OTEL_EXPORTER_OTLP_ENDPOINT").endswith(":4318")
    assert float(literal(docs, "OTEL_TRACE_SAMPLING_RATIO")) == pytest.approx(0.1)
    assert literal(docs, "LANGFUSE_LOG_FORMAT") == "json"
    # Keycloak in the cluster: its host resolves to a private address there, so it is allow-listed
    assert literal(docs, "LANGFUSE_SSO_DISCOVERY_WHITELISTED_HOST") == "sso.example.com"
    assert literal(docs, "AUTH_KEYCLOAK_ISSUER").startswith("https://sso.example.com/")
    assert literal(docs, "LIGHTFUSE_SSO_ROLE_CLAIM") == "realm_access.roles"
    assert (
        literal(docs, "LIGHTFUSE_SSO_ROLE_MAPPING")
        == "lightfuse-admin=org:platform:ADMIN,lightfuse-user=MEMBER"
    )
    assert literal(docs, "LANGFUSE_DEFAULT_ORG_ID") == "platform"
    assert literal(docs, "EMAIL_FROM_ADDRESS") == "lightfuse@example.com"
    assert secret_ref(docs, "SMTP_CONNECTION_URL") == {"name": "lightfuse-smtp", "key": "smtp-connection-url"}
    assert literal(docs, "NEXTAUTH_URL") == "https://lightfuse.example.com"  # from the HTTPRoute host
    service = only(docs, "Service")
    selector = service["spec"]["selector"]

    # ServiceMonitor (CRD: checked structurally): selects this Service, scrapes its named port
    monitor = only(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    # metrics on a port of their own, behind the token the pod reads from the same Secret key
    service_ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert endpoint["port"] == "metrics" and service_ports["metrics"]["port"] == 9464
    assert literal(docs, "LIGHTFUSE_METRICS_PORT") == "9464"
    assert endpoint["bearerTokenSecret"] == {"name": "lightfuse-metrics", "key": "token"}
    assert secret_ref(docs, "LIGHTFUSE_METRICS_TOKEN") == endpoint["bearerTokenSecret"]
    assert re.fullmatch(r"\d+[smh]", endpoint["interval"]) and endpoint["path"].startswith("/")

    # HTTPRoute (CRD: checked structurally): attached to the Gateway, routing to the Service's port
    route = only(docs, "HTTPRoute")
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateway", "sectionName": "https"}]
    assert route["spec"]["hostnames"] == ["lightfuse.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["backendRefs"] == [
        {"name": service["metadata"]["name"], "port": service["spec"]["ports"][0]["port"]}
    ]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]

    # the pods the Service selects are the Deployment's
    labels = only(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_embedded_small():
    docs = render(example_values("embedded-small"))
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert only(docs, "PersistentVolumeClaim")["spec"]["storageClassName"] == "local-path"
    assert container(docs)["resources"]["limits"]["memory"] == "256Mi"
    assert literal(docs, "LIGHTFUSE_OTLP_DECODE_PROCESSES") == "0"
    assert "DATABASE_URL" not in env(docs)
    assert _secret_names(docs) == {"lightfuse-secrets"}  # the chart-generated one
    assert only(docs, "Secret")["metadata"]["name"] == "lightfuse-secrets"


def test_otlp_grpc_is_off_by_default_and_4317_when_enabled():
    default = render({})
    assert "LIGHTFUSE_OTLP_GRPC_PORT" not in env(default)
    assert [p["name"] for p in container(default)["ports"]] == ["http"]
    assert [p["name"] for p in only(default, "Service")["spec"]["ports"]] == ["http"]

    docs = render({"otlpGrpc": {"enabled": True}})
    assert literal(docs, "LIGHTFUSE_OTLP_GRPC_PORT") == "4317"
    ports = {p["name"]: p for p in container(docs)["ports"]}
    assert ports["otlp-grpc"] == {"name": "otlp-grpc", "containerPort": 4317, "protocol": "TCP"}
    service_ports = {p["name"]: p for p in only(docs, "Service")["spec"]["ports"]}
    assert (
        service_ports["otlp-grpc"]["port"] == 4317 and service_ports["otlp-grpc"]["targetPort"] == "otlp-grpc"
    )
    assert service_ports["otlp-grpc"]["appProtocol"] == "kubernetes.io/h2c"  # cleartext HTTP/2
    (rule,) = only(docs, "NetworkPolicy")["spec"]["ingress"]
    assert {"port": "otlp-grpc", "protocol": "TCP"} in rule["ports"]
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) not in CRD_KINDS:
            for version in KUBE_VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)
    other = render({"otlpGrpc": {"enabled": True, "port": 14317}})
    assert literal(other, "LIGHTFUSE_OTLP_GRPC_PORT") == "14317"


def test_metrics_port_and_token():
    default = render({"serviceMonitor": {"enabled": True}})
    assert not {"LIGHTFUSE_METRICS_PORT", "LIGHTFUSE_METRICS_TOKEN"} & set(env(default))
    (endpoint,) = only(default, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["port"] == "http" and "bearerTokenSecret" not in endpoint

    docs = render(
        {
            "metrics": {"port": 9464, "existingSecret": "prom", "tokenKey": "t"},
            "serviceMonitor": {"enabled": True},
        }
    )
    assert literal(docs, "LIGHTFUSE_METRICS_PORT") == "9464"
    assert secret_ref(docs, "LIGHTFUSE_METRICS_TOKEN") == {"name": "prom", "key": "t"}
    ports = {p["name"]: p for p in container(docs)["ports"]}
    assert ports["metrics"] == {"name": "metrics", "containerPort": 9464, "protocol": "TCP"}
    service_ports = {p["name"]: p for p in only(docs, "Service")["spec"]["ports"]}
    assert service_ports["metrics"] == {
        "name": "metrics",
        "port": 9464,
        "targetPort": "metrics",
        "protocol": "TCP",
    }
    (rule,) = only(docs, "NetworkPolicy")["spec"]["ingress"]
    assert {"port": "metrics", "protocol": "TCP"} in rule["ports"]
    (endpoint,) = only(docs, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    assert endpoint["bearerTokenSecret"] == {"name": "prom", "key": "t"}
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) not in CRD_KINDS:
            for version in KUBE_VERSIONS:
                kubernetes_validate.validate(doc, version, strict=True)
    with pytest.raises(helm.HelmError, match="metrics.port"):
        render({"metrics": {"port": 3000}})


def test_sso_email_and_webhook_values_become_their_variables():
    docs = render(
        {
            "auth": {
                "disableUsernamePassword": True,
                "domainsWithSsoEnforcement": ["corp.example", "corp2.example"],
                "ssoTimeoutMs": 5000,
                "ssoDiscoveryAllowlist": {
                    "hosts": ["keycloak.keycloak.svc.cluster.local"],
                    "ips": ["10.0.0.7"],
                    "ipSegments": ["10.96.0.0/12", "fd00::/8"],
                },
                "newUserDefaults": {
                    "orgIds": ["a", "b"],
                    "orgRole": "MEMBER",
                    "projectIds": ["p"],
                    "projectRole": "VIEWER",
                },
                "roleClaim": "groups",
                "roleMapping": ["/lf-admins=org:a:ADMIN", "dev=project:p:MEMBER"],
            },
            "email": {"fromAddress": "lf@corp.example", "existingSecret": "smtp"},
            "webhooks": {"allowlist": {"hosts": ["hooks.internal"], "ipSegments": ["10.0.0.0/8"]}},
        }
    )
    expected = {
        "AUTH_DISABLE_USERNAME_PASSWORD": "true",
        "AUTH_DOMAINS_WITH_SSO_ENFORCEMENT": "corp.example,corp2.example",
        "AUTH_SSO_TIMEOUT": "5000",
        "LANGFUSE_SSO_DISCOVERY_WHITELISTED_HOST": "keycloak.keycloak.svc.cluster.local",
        "LANGFUSE_SSO_DISCOVERY_WHITELISTED_IPS": "10.0.0.7",
        "LANGFUSE_SSO_DISCOVERY_WHITELISTED_IP_SEGMENTS": "10.96.0.0/12,fd00::/8",
        "LANGFUSE_DEFAULT_ORG_ID": "a,b",
        "LANGFUSE_DEFAULT_ORG_ROLE": "MEMBER",
        "LANGFUSE_DEFAULT_PROJECT_ID": "p",
        "LANGFUSE_DEFAULT_PROJECT_ROLE": "VIEWER",
        "LIGHTFUSE_SSO_ROLE_CLAIM": "groups",
        "LIGHTFUSE_SSO_ROLE_MAPPING": "/lf-admins=org:a:ADMIN,dev=project:p:MEMBER",
        "EMAIL_FROM_ADDRESS": "lf@corp.example",
        "LANGFUSE_WEBHOOK_WHITELISTED_HOST": "hooks.internal",
        "LANGFUSE_WEBHOOK_WHITELISTED_IP_SEGMENTS": "10.0.0.0/8",
    }
    assert {name: literal(docs, name) for name in expected} == expected
    assert secret_ref(docs, "SMTP_CONNECTION_URL") == {"name": "smtp", "key": "smtp-connection-url"}
    assert "LANGFUSE_WEBHOOK_WHITELISTED_IPS" not in env(docs)  # an empty list sets nothing
    # every one of them is a name Lightfuse reads
    assert set(expected) | {"SMTP_CONNECTION_URL"} <= _names_lightfuse_reads()
    # and the default sets none of them
    assert not (set(expected) | {"SMTP_CONNECTION_URL"}) & set(env(render({})))


def test_envfrom_and_extra_env_pass_through():
    docs = render(
        {
            "envFrom": [{"secretRef": {"name": "more"}}],
            "extraEnv": [{"name": "LIGHTFUSE_SQLITE_SYNCHRONOUS", "value": "full"}],
        }
    )
    assert container(docs)["envFrom"] == [{"secretRef": {"name": "more"}}]
    assert literal(docs, "LIGHTFUSE_SQLITE_SYNCHRONOUS") == "full"


# --- values that must not install ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, complaint",
    [
        ({"persistance": {"enabled": True}}, "persistance"),  # typo at the top level
        ({"database": {"external": {"enabled": True, "existingSecret": "s", "hots": "db"}}}, "hots"),
        ({"logging": {"format": "yaml"}}, "/logging/format"),
        ({"replicaCount": 2}, "/replicaCount"),  # embedded SQLite is one replica
        ({"database": {"external": {"enabled": True, "host": "db"}}}, "existingSecret"),
        ({"worker": {"enabled": True}}, "/worker/enabled"),  # no worker process yet
        ({"auth": {"sso": [{"provider": "KEYCLAOK", "clientId": "x", "existingSecret": "s"}]}}, "provider"),
        ({"tracing": {"samplingRatio": 10}}, "samplingRatio"),
        ({"otlpGrpc": {"enabled": True, "port": 0}}, "/otlpGrpc/port"),
        ({"metrics": {"port": 70000}}, "/metrics/port"),
        ({"auth": {"roleMapping": ["admins:ADMIN"]}}, "/auth/roleMapping/0"),
        ({"auth": {"newUserDefaults": {"projectRole": "NONE"}}}, "projectRole"),
        ({"auth": {"ssoDiscoveryAllowlist": {"ipSegments": ["10.0.0.0"]}}}, "ipSegments"),
        ({"webhooks": {"allowlist": {"host": ["x"]}}}, "host"),
        ({"email": {"smtpUrl": "smtp://x"}}, "smtpUrl"),
        ({"resources": {"limit": {"memory": "1Gi"}}}, "limit"),
    ],
)
def test_schema_rejects(values, complaint):
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmValuesError) as raised:
            chart.validate_schema(values)
    assert complaint in str(raised.value)


def test_external_postgres_needs_the_secrets():
    external = {"enabled": True, "host": "db", "existingSecret": "s"}
    with pytest.raises(helm.HelmError, match="SALT and NEXTAUTH_SECRET"):
        render({"database": {"external": external}, "secrets": {"generate": False}})
    # embedded mode generates its own into the data directory
    docs = render({"secrets": {"generate": False}})
    assert not {"SALT", "ENCRYPTION_KEY", "NEXTAUTH_SECRET"} & set(env(docs))


def test_several_replicas_need_s3_media():
    values = {
        "replicaCount": 3,
        "database": {"external": {"enabled": True, "host": "db", "existingSecret": "s"}},
    }
    with pytest.raises(helm.HelmError, match="s3.media.bucket"):
        render(values)
    docs = render({**values, "s3": {"media": {"bucket": "media"}}})
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    # persistence is on by default, but a ReadWriteOnce claim cannot serve three pods: each gets an emptyDir
    assert "PersistentVolumeClaim" not in kinds(docs)
    data = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}["data"]
    assert data == {"name": "data", "emptyDir": {}}
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"


# --- checkov ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_checkov_finds_no_failed_check(tmp_path):
    for case, values in CASES.items():
        (tmp_path / f"{case}.yaml").write_text(render_text(values))
    # a case with every optional part on, so Ingress/HTTPRoute/ServiceMonitor templates are scanned too
    everything = {
        **example_values("cnpg-dragonfly-rustfs-keycloak-tempo"),
        "ingress": example_values("keycloak-cnpg-s3")["ingress"],
        "image": {"digest": "sha256:" + "0" * 64, "pullPolicy": "Always"},
    }
    (tmp_path / "everything.yaml").write_text(render_text(everything))
    # the control: a weakened container must be caught, or the scan proves nothing
    weakened = {"securityContext": {"readOnlyRootFilesystem": False, "allowPrivilegeEscalation": True}}
    (tmp_path / "control-weakened.yaml").write_text(render_text(weakened))

    checkov = Path(client_python("checkov")).with_name("checkov")
    proc = subprocess.run(
        [
            checkov,
            "-d",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--skip-download",
            "--compact",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(proc.stdout)
    summary, results = report["summary"], report["results"]
    assert summary["parsing_errors"] == 0 and summary["resource_count"] > 20, summary
    failed = {(c["file_path"].lstrip("/"), c["check_id"]) for c in results["failed_checks"]}
    assert {f for f in failed if f[0] != "control-weakened.yaml"} == set()
    assert {("control-weakened.yaml", "CKV_K8S_22"), ("control-weakened.yaml", "CKV_K8S_20")} <= failed
    assert summary["passed"] > 100
    # each skip is one of the chart's checkov.io/skipN annotations, with its reason
    skipped = {(c["check_id"], c["check_result"]["suppress_comment"]) for c in results["skipped_checks"]}
    assert {check for check, _ in skipped} == {"CKV_K8S_35", "CKV_K8S_43", "CKV_K8S_15"}
    assert all(len(reason) > 40 for _, reason in skipped)
    # the digest-pinned, pull-Always case needs only the secrets-as-env skip
    everything_skips = {
        c["check_id"] for c in results["skipped_checks"] if c["file_path"].endswith("everything.yaml")
    }
    assert everything_skips == {"CKV_K8S_35"}
    print(
        f"checkov: passed {summary['passed']}, failed {summary['failed']} (all in the control), "
        f"skipped {summary['skipped']}, resources {summary['resource_count']}"
    )
