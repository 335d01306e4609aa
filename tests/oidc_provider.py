"""A real OpenID Provider for the tests: ``tests/oidc/server.mjs`` (npm package oidc-provider) on the machine's node.

The issuer is shaped like Keycloak's, ``http://127.0.0.1:<port>/realms/test``. Its node packages are installed
by ``make oidc`` (``make test`` depends on it); when they are missing, the first test that needs them runs
``npm ci`` itself. The users it knows are fixed in server.mjs (alice, bob, carol, admin, squatter, dana).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port

OIDC_DIR = ROOT / "tests" / "oidc"
_STAMP = OIDC_DIR / "node_modules" / ".installed"


def ensure_installed() -> None:
    if _STAMP.exists():
        return
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("node and npm are needed for the SSO tests (apt-get install -y nodejs npm)")
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, check=True, timeout=600)
    _STAMP.touch()


@dataclass
class Client:
    client_id: str
    client_secret: str | None
    redirect_uri: str
    auth_method: str = "client_secret_basic"

    def metadata(self) -> dict:
        data = {
            "client_id": self.client_id,
            "redirect_uris": [self.redirect_uri],
            "token_endpoint_auth_method": self.auth_method,
        }
        if self.client_secret:
            data["client_secret"] = self.client_secret
        return data


class OidcProvider:
    def __init__(self, clients: list[Client], log_path: Path, host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.host = host
        self.issuer = f"http://{host}:{self.port}/realms/test"
        self.clients = clients
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        ensure_installed()
        env = {
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "PORT": str(self.port),
            "HOST": self.host,
            "OIDC_CLIENTS": json.dumps([c.metadata() for c in self.clients]),
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it
        self.process = subprocess.Popen(
            ["node", str(OIDC_DIR / "server.mjs")],
            env=env,
            cwd=OIDC_DIR,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        discovery = f"{self.issuer}/.well-known/openid-configuration"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"oidc-provider exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(discovery, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"oidc-provider did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
