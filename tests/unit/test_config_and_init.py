"""Settings from Langfuse's variable names, generated secrets, and idempotent LANGFUSE_INIT_* provisioning."""

from __future__ import annotations

import base64
import subprocess
import sys

import pytest
import sqlalchemy as sa

from lightfuse.app import build_services
from lightfuse.config import ConfigError, InitSettings, load_settings
from lightfuse.store.sql.tables import api_keys, organization_memberships, projects, users


def test_reads_langfuse_names(monkeypatch, tmp_path):
    monkeypatch.setenv("PORT", "4100")
    monkeypatch.setenv("LANGFUSE_LOG_FORMAT", "JSON")
    monkeypatch.setenv("LIGHTFUSE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("LANGFUSE_INIT_ORG_ID", "o")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h:5432/db")
    monkeypatch.setenv("SALT", "s")
    monkeypatch.setenv("NEXTAUTH_SECRET", "n")
    s = load_settings()
    assert s.port == 4100 and s.log_format == "json" and s.init.org_id == "o"
    assert s.sqlalchemy_url == "postgresql+psycopg://u@h:5432/db"


def test_embedded_secrets_are_generated_once(tmp_path):
    first = load_settings(data_dir=tmp_path)
    second = load_settings(data_dir=tmp_path)
    assert first.salt and len(first.encryption_key) == 64
    assert (first.salt, first.encryption_key) == (second.salt, second.encryption_key)
    assert (tmp_path / "salt").stat().st_mode & 0o077 == 0


def test_malformed_encryption_key_stops_the_start(tmp_path):
    with pytest.raises(ConfigError, match="64 hexadecimal"):
        load_settings(data_dir=tmp_path, encryption_key="not-hex")
    env = {"LIGHTFUSE_DATA_DIR": str(tmp_path), "ENCRYPTION_KEY": "abc", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "lightfuse.cli", "migrate"], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "ENCRYPTION_KEY must be 64 hexadecimal" in out.stderr


def _counts(engine):
    with engine.connect() as c:
        return {t.name: c.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                for t in (projects, api_keys, users, organization_memberships)}


def test_init_is_idempotent_and_moves_keys(backend):
    init = InitSettings(org_id="org", org_name="Org", project_id="p1", project_name="P1",
                        project_public_key="pk-lf-init", project_secret_key="sk-lf-init",
                        user_email="Admin@Example.com", user_password="pw-123456", user_name="Admin")
    services = build_services(load_settings(**backend, init=init))
    first = _counts(services.engine)
    assert first == {"projects": 1, "api_keys": 1, "users": 1, "organization_memberships": 1}
    services.accounts.provision(init)
    services.accounts.provision(init)
    assert _counts(services.engine) == first
    auth = services.keys.authenticate("Basic " + base64.b64encode(b"pk-lf-init:sk-lf-init").decode())
    assert auth.project_id == "p1"
    # the same key pair provisioned for another project moves there
    moved = init.model_copy(update={"project_id": "p2"})
    services.accounts.provision(moved)
    services.keys.forget("pk-lf-init")
    auth = services.keys.authenticate("Basic " + base64.b64encode(b"pk-lf-init:sk-lf-init").decode())
    assert auth.project_id == "p2"
    with services.engine.connect() as c:
        stored = c.execute(sa.select(api_keys.c.secret_hash)).scalars().all()
    assert stored and all("sk-lf-init" not in h for h in stored)
    services.engine.dispose()
