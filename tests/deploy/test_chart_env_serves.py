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
