"""The environment the chart gives the container starts a real Lightfuse that answers the chart's probes.

No cluster here, so the kubelet's part is done by `pod_environment`: literals, secretKeyRefs resolved from
Secrets given as dicts (a missing optional key leaves the variable unset), and $(VAR) expanded from variables
listed earlier. Only the data directory moves (the pod's /data volume becomes a temporary folder); the port
is the chart's own, set through service.port. The server is the real process on SQLite or the local Postgres.
"""

from __future__ import annotations

import base64
import os
import re

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import Server, free_port
from tests.deploy.chart import container, env_list, only, render

pytestmark = pytest.mark.slow


def pod_environment(docs: list[dict], secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    resolved: dict[str, str] = {}
    for entry in env_list(docs):
        name = entry["name"]
        if "value" in entry:
            resolved[name] = re.sub(
                r"\$\((\w+)\)", lambda m: resolved.get(m.group(1), m.group(0)), entry["value"]
            )
            continue
        ref = entry["valueFrom"]["secretKeyRef"]
        data = secrets[ref["name"]]  # a Secret that does not exist keeps the pod from starting
        if ref["key"] in data:
            resolved[name] = data[ref["key"]]
        else:
            assert ref.get("optional"), f"{name}: Secret {ref['name']} has no key {ref['key']}"
    return resolved


def start(tmp_path, docs, secrets) -> Server:
    env = pod_environment(docs, secrets)
    assert env.pop("LIGHTFUSE_DATA_DIR") == "/data"
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {"PATH": os.environ["PATH"], "LIGHTFUSE_DATA_DIR": str(data_dir), **env}
    server = Server(
        url=f"http://127.0.0.1:{env['PORT']}",
        public_key="",
        secret_key="",
        project_id="",
        env=env,
        data_dir=data_dir,
        log_path=tmp_path / "server.log",
    )
    server.start()
    return server


def assert_probes_pass(server: Server, docs: list[dict]) -> None:
    main = container(docs)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        path = main[probe]["httpGet"]["path"]
        response = httpx.get(server.url + path, timeout=main[probe]["timeoutSeconds"])
        assert response.status_code == 200, (probe, path, response.text)


def test_embedded_default_with_the_generated_secret(tmp_path):
    port = free_port()
    docs = render({"service": {"port": port}})
    secret = only(docs, "Secret")
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    server = start(tmp_path, docs, {secret["metadata"]["name"]: data})
    try:
        assert_probes_pass(server, docs)
        assert server.env["HOSTNAME"] == "0.0.0.0"
        assert f"listening on http://0.0.0.0:{port}" in server.log_path.read_text()
        # the chart's secrets were taken (a generated ENCRYPTION_KEY that Lightfuse refused would stop it):
        # Lightfuse writes its own only when none is given
        assert (server.data_dir / "lightfuse.db").exists()
        assert not {"salt", "encryption_key", "nextauth_secret"} & {p.name for p in server.data_dir.iterdir()}
    finally:
        server.stop()


@pytest.mark.parametrize("url_from", ["parts", "secret-uri"])
def test_external_postgres_with_init_keys(tmp_path, pg_database_url, url_from):
    pg = sa.engine.make_url(pg_database_url)
    port = free_port()
    external = {"enabled": True, "existingSecret": "pg-app"}
    if url_from == "parts":
        external |= {
            "host": pg.host,
            "port": pg.port,
            "database": pg.database,
            "user": pg.username,
            "args": "sslmode=disable&connect_timeout=5",
        }
    else:
        external |= {"urlKey": "uri"}
    values = {
        "service": {"port": port},
        "database": {"external": external},
        "secrets": {"existingSecret": "lightfuse-secrets"},
        "init": {
            "orgId": "org-k8s",
            "projectId": "proj-k8s",
            "projectPublicKey": "pk-lf-chart",
            "existingSecret": "lightfuse-init",
        },
    }
    docs = render(values)
    secrets = {
        # trust authentication on the local Postgres: the password travels but is not checked
        "pg-app": {
            "password": "unused",
            "uri": f"postgresql://{pg.username}@{pg.host}:{pg.port}/{pg.database}",
        },
        "lightfuse-secrets": {"salt": "s" * 32, "encryption-key": "ab" * 32, "nextauth-secret": "n" * 32},
        "lightfuse-init": {"project-secret-key": "sk-lf-chart"},  # no user-password key: left unset
    }
    server = start(tmp_path, docs, secrets)
    try:
        assert_probes_pass(server, docs)
        if url_from == "parts":
            assert server.env["DATABASE_URL"].endswith(f"/{pg.database}?sslmode=disable&connect_timeout=5")
        assert "LANGFUSE_INIT_USER_PASSWORD" not in server.env
        # LANGFUSE_INIT_* from the chart provisioned a project whose keys work
        response = httpx.get(
            server.url + "/api/public/projects", auth=("pk-lf-chart", "sk-lf-chart"), timeout=10
        )
        assert response.status_code == 200, response.text
        assert [p["id"] for p in response.json()["data"]] == ["proj-k8s"]
        # and it lives in Postgres, not in a SQLite file
        assert not (server.data_dir / "lightfuse.db").exists()
        engine = sa.create_engine(pg_database_url)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM projects WHERE id = 'proj-k8s'").scalar() == 1
        engine.dispose()
    finally:
        server.stop()


def test_sso_email_webhook_and_metrics_values_are_accepted_and_served(tmp_path):
    # every new value at once: Lightfuse validates them at start (role mapping, defaults, allow-lists, SMTP
    # URL, provider config), so a value the chart renders wrongly stops the server here
    port, metrics_port = free_port(), free_port()
    values = {
        "service": {"port": port},
        "secrets": {"existingSecret": "lightfuse-secrets"},
        "init": {"orgId": "acme", "projectId": "shop"},
        "auth": {
            "disableUsernamePassword": True,
            "domainsWithSsoEnforcement": ["corp.example"],
            "ssoTimeoutMs": 3000,
            "ssoDiscoveryAllowlist": {
                "hosts": ["keycloak.keycloak.svc.cluster.local"],
                "ipSegments": ["10.96.0.0/12"],
            },
            "newUserDefaults": {"orgIds": ["acme"], "orgRole": "MEMBER", "projectIds": ["shop"]},
            "roleClaim": "realm_access.roles",
            "roleMapping": ["/lf-admins=org:acme:ADMIN", "dev=project:shop:MEMBER", "all=VIEWER"],
            "sso": [
                {
                    "provider": "KEYCLOAK",
                    "clientId": "lightfuse",
                    "issuer": "http://keycloak.keycloak.svc.cluster.local:8080/realms/main",
                    "existingSecret": "kc",
                    "options": {"NAME": "Company SSO", "SCOPE": "openid email profile"},
                }
            ],
        },
        "email": {"fromAddress": "lf@corp.example", "existingSecret": "smtp"},
        "webhooks": {"allowlist": {"hosts": ["hooks.internal"], "ips": ["10.0.0.9"]}},
        "metrics": {"port": metrics_port, "existingSecret": "prom"},
    }
    docs = render(values)
    secrets = {
        "lightfuse-secrets": {"salt": "s" * 32, "encryption-key": "ab" * 32, "nextauth-secret": "n" * 32},
        "kc": {"client-secret": "kc-secret"},
        "smtp": {"smtp-connection-url": "smtp://user:pw@127.0.0.1:2525"},
        "prom": {"token": "scrape-token"},
    }
    server = start(tmp_path, docs, secrets)
    try:
        assert_probes_pass(server, docs)
        sign_in = httpx.get(server.url + "/auth/sign-in", timeout=10)
        assert sign_in.status_code == 200 and "Company SSO" in sign_in.text
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        assert httpx.get(metrics_url, timeout=10).status_code == 401
        scraped = httpx.get(metrics_url, headers={"Authorization": "Bearer scrape-token"}, timeout=10)
        assert scraped.status_code == 200 and "# TYPE" in scraped.text
        assert httpx.get(server.url + "/metrics", timeout=10).status_code == 404  # only on its own port
    finally:
        server.stop()
