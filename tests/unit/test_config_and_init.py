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
    out = subprocess.run(
        [sys.executable, "-m", "lightfuse.cli", "migrate"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 2 and "ENCRYPTION_KEY must be 64 hexadecimal" in out.stderr


def _counts(engine):
    with engine.connect() as c:
        return {
            t.name: c.execute(sa.select(sa.func.count()).select_from(t)).scalar()
            for t in (projects, api_keys, users, organization_memberships)
        }


def test_init_is_idempotent_and_moves_keys(backend):
    init = InitSettings(
        org_id="org",
        org_name="Org",
        project_id="p1",
        project_name="P1",
        project_public_key="pk-lf-init",
        project_secret_key="sk-lf-init",
        user_email="Admin@Example.com",
        user_password="pw-123456",
        user_name="Admin",
    )
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


def test_media_storage_reads_langfuse_s3_names(monkeypatch, tmp_path):
    from lightfuse.app import build_blob_store
    from lightfuse.store.blobs import LocalDirectoryBlobStore

    # unset (or empty, as deployment templates write it): the local directory
    monkeypatch.setenv("LANGFUSE_S3_MEDIA_UPLOAD_BUCKET", "")
    settings = load_settings(data_dir=tmp_path)
    assert settings.media.bucket is None
    assert (
        settings.media.max_content_length == 1_000_000_000
        and settings.media.download_url_expiry_seconds == 3600
    )
    assert isinstance(build_blob_store(settings), LocalDirectoryBlobStore)

    for name, value in {
        "BUCKET": "media",
        "PREFIX": "media/",
        "REGION": "eu-west-1",
        "ENDPOINT": "http://127.0.0.1:9000",
        "ACCESS_KEY_ID": "AKIDEXAMPLE",
        "SECRET_ACCESS_KEY": "very-secret",
        "FORCE_PATH_STYLE": "true",
    }.items():
        monkeypatch.setenv(f"LANGFUSE_S3_MEDIA_UPLOAD_{name}", value)
    monkeypatch.setenv("LANGFUSE_S3_MEDIA_MAX_CONTENT_LENGTH", "5000")
    monkeypatch.setenv("LANGFUSE_S3_MEDIA_DOWNLOAD_URL_EXPIRY_SECONDS", "60")
    media = load_settings(data_dir=tmp_path).media
    assert (media.bucket, media.prefix, media.region, media.endpoint, media.access_key_id) == (
        "media",
        "media/",
        "eu-west-1",
        "http://127.0.0.1:9000",
        "AKIDEXAMPLE",
    )
    assert media.force_path_style is True and media.max_content_length == 5000
    assert media.download_url_expiry_seconds == 60
    assert media.secret_access_key.get_secret_value() == "very-secret"
    assert "very-secret" not in repr(load_settings(data_dir=tmp_path))

    store = build_blob_store(load_settings(data_dir=tmp_path))  # no network until it is used
    assert type(store).__name__ == "S3BlobStore" and (store.bucket, store.prefix) == ("media", "media/")
    assert "very-secret" not in repr(store)

    # SigV4 presigned URLs cannot live longer than 7 days
    monkeypatch.setenv("LANGFUSE_S3_MEDIA_DOWNLOAD_URL_EXPIRY_SECONDS", str(8 * 86400))
    with pytest.raises(ValueError, match="604800"):
        load_settings(data_dir=tmp_path)


def test_embedded_mode_does_not_load_boto3(tmp_path):
    # botocore costs tens of MB; only deployments with a media bucket pay for it
    code = (
        "import sys; from lightfuse.app import build_services; from lightfuse.config import load_settings; "
        f"build_services(load_settings(data_dir={str(tmp_path)!r})); print('botocore' in sys.modules)"
    )
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"
