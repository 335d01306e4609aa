"""Imports go one way: api -> services -> store; ingest and worker never import api; store imports no layer above.

Inside ``services/`` each domain package may use only the domains of ``DOMAINS`` (its README says the same, in a
``May use:`` line that is checked against the table), and the trace store's SQL (``store/sql/tracing``) is used
only by the domains that write and read traces.
"""

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


# services domain -> the other domains it may import. Acyclic: common uses no domain, and every arrow points
# at a domain that does not point back. A new arrow is a design decision: change it here and in both READMEs.
DOMAINS: dict[str, set[str]] = {
    "common": set(),
    "auth": {"common"},
    "accounts": {"common", "auth"},
    "pricing": {"common"},
    "operations": set(),
    "ingestion": {"common", "pricing", "operations"},
    "tracing": {"common", "pricing"},
    "prompts": {"common"},
    "media": {"common"},
    "datasets": {"common", "ingestion", "media"},
    "annotations": {"common"},
    "llm": {"common", "ingestion"},
    "automations": {"common"},
    "integrations": {"common", "auth", "accounts"},
}

# store packages owned by some domains: package -> the services domains that may import it
STORE_OWNERS: dict[str, set[str]] = {
    "lightfuse.store.sql.tracing": {"ingestion", "tracing"},
}

SERVICES = PACKAGE / "services"


def imported_modules(path: Path) -> set[tuple[str, int]]:
    """Absolute names of the modules a file imports (``from pkg import mod`` yields ``pkg.mod`` too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    inside = path.is_relative_to(PACKAGE)
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]) if inside else ""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {(a.name, node.lineno) for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([module] if module else []))
            found.add((module, node.lineno))
            found |= {(f"{module}.{a.name}", node.lineno) for a in node.names}
    return found


def domain_violations(path: Path, domain: str) -> list[str]:
    allowed = DOMAINS[domain] | {domain}
    violations = []
    for name, line in imported_modules(path):
        parts = name.split(".")
        if parts[:2] == ["lightfuse", "services"] and len(parts) > 2:
            other = parts[2]
            if other in DOMAINS and other not in allowed:
                violations.append(f"{path.name}:{line} ({domain} imports services.{other})")
        for store_package, owners in STORE_OWNERS.items():
            if (name == store_package or name.startswith(store_package + ".")) and domain not in owners:
                violations.append(f"{path.name}:{line} ({domain} imports {store_package})")
    return sorted(set(violations))


def test_services_are_domain_packages():
    # a module directly under services/ belongs to no domain: put it in one (or in common/)
    flat = sorted(p.name for p in SERVICES.glob("*.py") if p.name != "__init__.py")
    assert flat == []
    packages = sorted(p.name for p in SERVICES.iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(DOMAINS)


def test_domains_use_only_their_allowed_domains():
    violations = []
    for domain in DOMAINS:
        for path in sorted((SERVICES / domain).rglob("*.py")):
            violations += [f"services/{domain}/{v}" for v in domain_violations(path, domain)]
    assert violations == []


def test_domain_table_is_acyclic():
    done: set[str] = set()

    def visit(domain: str, stack: tuple[str, ...]) -> None:
        assert domain not in stack, f"cycle: {' -> '.join((*stack, domain))}"
        if domain not in done:
            for used in DOMAINS[domain]:
                visit(used, (*stack, domain))
            done.add(domain)

    for domain in DOMAINS:
        visit(domain, ())


def test_readmes_state_the_same_rules():
    # each domain README has one line "May use: `a`, `b`" (or "May use: no other domain")
    for domain, allowed in DOMAINS.items():
        readme = SERVICES / domain / "README.md"
        lines = [line for line in readme.read_text().splitlines() if line.startswith("May use:")]
        assert len(lines) == 1, f"{readme}: one 'May use:' line expected"
        stated = {word.strip("`,.") for word in lines[0].split(":", 1)[1].split() if word.startswith("`")}
        assert stated == allowed, f"{readme} says {sorted(stated)}, the table says {sorted(allowed)}"


def test_the_domain_check_sees_violations(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from lightfuse.services.ingestion.pipeline import IngestionPipeline\n"
        "from lightfuse.services import accounts\n"
        "import lightfuse.services.common.clock\n"
        "from lightfuse.store.sql.tracing import writes\n"
    )
    found = domain_violations(bad, "pricing")
    assert sorted(found) == [
        "bad.py:1 (pricing imports services.ingestion)",
        "bad.py:2 (pricing imports services.accounts)",
        "bad.py:4 (pricing imports lightfuse.store.sql.tracing)",
    ]
    assert sorted(domain_violations(bad, "datasets")) == [
        "bad.py:2 (datasets imports services.accounts)",
        "bad.py:4 (datasets imports lightfuse.store.sql.tracing)",
    ]
