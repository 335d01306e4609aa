"""Shared fixtures: backends (SQLite file, Postgres database), a real server process, client venvs."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("LIGHTFUSE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", "postgres"]


def _create_pg_database() -> tuple[str, str]:
    name = f"lf_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return name, PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def _drop_pg_database(name: str) -> None:
    engine = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    engine.dispose()


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """A fresh, empty Postgres database for one test (postgresql+psycopg:// URL)."""
    name, url = _create_pg_database()
    try:
        yield url
    finally:
        _drop_pg_database(name)


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Iterator[dict]:
    """Settings overrides for one store backend: embedded SQLite in tmp_path, or a fresh Postgres database."""
    if request.param == "sqlite":
        yield {"data_dir": tmp_path / "data"}
        return
    name, url = _create_pg_database()
    try:
        yield {
            "data_dir": tmp_path / "data",
            "database_url": url.replace("postgresql+psycopg://", "postgresql://"),
            "salt": "test-salt",
            "nextauth_secret": "test-secret",
        }
    finally:
        _drop_pg_database(name)


# --- a real server process ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    public_key: str
    secret_key: str
    project_id: str
    env: dict
    data_dir: Path
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def auth(self) -> tuple[str, str]:
        return (self.public_key, self.secret_key)

    @property
    def basic_header(self) -> dict:
        token = base64.b64encode(f"{self.public_key}:{self.secret_key}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lightfuse.cli", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir.parent,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/api/public/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int | None = None) -> None:
        if self.process is None:
            return
        if sig is None:
            self.process.terminate()
        else:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def make_server(tmp_path: Path, backend: dict, **env_extra: str) -> Server:
    port = free_port()
    data_dir = tmp_path / "server-data"
    public_key, secret_key = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
    project_id = f"proj-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "DATABASE_URL", "SALT"))}
    env.update(
        PORT=str(port),
        HOSTNAME="127.0.0.1",
        LIGHTFUSE_DATA_DIR=str(data_dir),
        LANGFUSE_INIT_ORG_ID="org-test",
        LANGFUSE_INIT_ORG_NAME="Test Org",
        LANGFUSE_INIT_PROJECT_ID=project_id,
        LANGFUSE_INIT_PROJECT_NAME="Test Project",
        LANGFUSE_INIT_PROJECT_PUBLIC_KEY=public_key,
        LANGFUSE_INIT_PROJECT_SECRET_KEY=secret_key,
        LANGFUSE_LOG_LEVEL="warning",
        # no load balancer to wait for: a stopped test server shuts down at once (tests/e2e/test_shutdown.py
        # sets its own delay)
        LIGHTFUSE_SHUTDOWN_DELAY_SECONDS="0",
    )
    if backend.get("database_url"):
        env.update(
            DATABASE_URL=backend["database_url"],
            SALT=backend["salt"],
            NEXTAUTH_SECRET=backend["nextauth_secret"],
        )
    env.update(env_extra)
    return Server(
        url=f"http://127.0.0.1:{port}",
        public_key=public_key,
        secret_key=secret_key,
        project_id=project_id,
        env=env,
        data_dir=data_dir,
        log_path=tmp_path / "server.log",
    )


@pytest.fixture
def server(tmp_path, backend) -> Iterator[Server]:
    srv = make_server(tmp_path, backend)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


# --- client SDK venvs ---------------------------------------------------------------------------------------


def client_python(name: str) -> str:
    """The interpreter of the venv that holds client SDK ``name`` (tests/clients/<name>.txt); built if missing."""
    venv = ROOT / ".venv-clients" / name
    stamp = venv / ".installed"
    if not stamp.exists():
        subprocess.run(["make", "-C", str(ROOT), f".venv-clients/{name}/.installed"], check=True)
    return str(venv / "bin" / "python")


# --- the app in-process -------------------------------------------------------------------------------------


@dataclass
class ApiHarness:
    client: object  # fastapi.testclient.TestClient
    services: object
    project_id: str
    public_key: str
    secret_key: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.public_key, self.secret_key)

    def ingest(self, batch: list[dict], auth: tuple[str, str] | None = None):
        return self.client.post("/api/public/ingestion", json={"batch": batch}, auth=auth or self.auth)

    def new_project_key(self, name: str = "Other") -> tuple[str, tuple[str, str]]:
        """A second project in a second organisation, with its own key pair."""
        org = self.services.accounts.create_organization(f"{name} Org")
        project = self.services.accounts.create_project(org, name)
        key = self.services.keys.create_key(project)
        return project, (key.public_key, key.secret_key)


@pytest.fixture
def api(backend) -> Iterator[ApiHarness]:
    from fastapi.testclient import TestClient

    from lightfuse.app import build_services, create_app
    from lightfuse.config import InitSettings, load_settings

    public_key, secret_key = f"pk-lf-{uuid.uuid4()}", f"sk-lf-{uuid.uuid4()}"
    init = InitSettings(
        org_id="org-1", project_id="project-1", project_public_key=public_key, project_secret_key=secret_key
    )
    settings = load_settings(**backend, init=init)
    services = build_services(settings)
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        yield ApiHarness(client, services, "project-1", public_key, secret_key)
    services.engine.dispose()


# --- a real S3 (SeaweedFS) ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    """One SeaweedFS S3 gateway for the whole session, started on first use (tests/seaweedfs.py)."""
    from tests.seaweedfs import seaweed_s3

    with seaweed_s3(tmp_path_factory.mktemp("seaweedfs")) as s3:
        yield s3


@pytest.fixture
def s3_bucket(seaweedfs):
    """The session's SeaweedFS bucket under a prefix of this test's own, so it starts empty."""
    return seaweedfs.new_prefix()
