"""OTLP/gRPC stays optional: grpcio is imported by api/otlp_grpc.py alone, and only when its port is set."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from lightfuse.config import ConfigError, Settings, load_settings

PACKAGE = Path(__file__).resolve().parents[2] / "lightfuse"


def test_only_the_grpc_receiver_imports_grpc():
    importers = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            else:
                continue
            if any(n.split(".")[0] == "grpc" or n.startswith("google.rpc") for n in names):
                importers.add(str(path.relative_to(PACKAGE)))
    assert importers == {"api/otlp_grpc.py"}


def test_an_app_without_the_port_never_loads_grpc(tmp_path):
    code = (
        "import sys\n"
        "from lightfuse.app import build_services, create_app\n"
        "from lightfuse.config import load_settings\n"
        f"create_app(build_services(load_settings(data_dir={str(tmp_path / 'data')!r})))\n"
        "assert not [m for m in sys.modules if m == 'grpc' or m.startswith('grpc.')], 'grpc was imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_port_setting(monkeypatch):
    assert Settings().otlp_grpc_port is None
    monkeypatch.setenv("LIGHTFUSE_OTLP_GRPC_PORT", "4317")
    assert Settings().otlp_grpc_port == 4317
    monkeypatch.setenv("LIGHTFUSE_OTLP_GRPC_PORT", "70000")
    with pytest.raises(ValueError):
        Settings()


def test_the_port_without_grpcio_is_a_configuration_error(tmp_path, monkeypatch):
    # None in sys.modules is Python's own "not importable" (import raises ImportError, find_spec answers None)
    monkeypatch.setitem(sys.modules, "grpc", None)
    with pytest.raises(ConfigError, match=r"lightfuse\[grpc\]"):
        load_settings(data_dir=tmp_path / "data", otlp_grpc_port=4317)
