"""Imports go one way: api -> services -> store; ingest and worker never import api; store imports no layer above."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "lightfuse"

# layer -> layers it must never import
FORBIDDEN = {
    "store": {"api", "services", "ingest", "worker", "web", "app", "cli"},
    "services": {"api", "web", "app", "cli", "worker"},
    "ingest": {"api", "web", "app", "cli", "worker"},
    "worker": {"api", "web", "app", "cli"},
    "api": {"store", "app", "cli", "worker"},
    "web": {"store", "app", "cli", "worker"},
    "queue": {"api", "services", "web", "app", "cli", "worker"},
}


def imported_layers(path: Path) -> set[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "lightfuse" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


def test_import_direction():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        layer = path.relative_to(PACKAGE).parts[0]
        layer = layer[:-3] if layer.endswith(".py") else layer
        for imported, line in imported_layers(path):
            if imported in FORBIDDEN.get(layer, set()):
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({layer} imports {imported})")
    assert violations == []


def test_the_check_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from lightfuse.api.common import JSONResponse\nimport lightfuse.store.sql\n")
    assert {name for name, _ in imported_layers(bad)} == {"api", "store"}


def test_only_the_s3_store_imports_boto3():
    # services ask the store for presigned URLs; the AWS SDK stays behind store/blobs/s3.py
    importers = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            )
            if any(n.split(".")[0] in ("boto3", "botocore", "s3transfer") for n in names):
                importers.append(str(path.relative_to(PACKAGE)))
    assert sorted(set(importers)) == ["store/blobs/s3.py"]
