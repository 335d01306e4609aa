"""Every operation of Langfuse's public API spec is served, or named in README.md's "Not served" table with why.

The operations come from openapi.yml (and openapi-organizations.yml next to it, the instance admin API); the
routes come from the app itself. An operation in neither fails the test, and so does a README row that the app
does serve (a stale row), or a row without a reason. Operations named there answer Langfuse's 404 shape.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from tests.api.test_route_auth import app_routes
from tests.conftest import ROOT

METHODS = ("get", "post", "put", "patch", "delete")
SPEC_FILES = ("openapi.yml", "openapi-organizations.yml")


def spec_dir() -> Path | None:
    env = os.environ.get("LIGHTFUSE_LANGFUSE_SPEC")
    if env:
        path = Path(env)
        return path if path.is_dir() else path.parent
    candidates = [ROOT.parent / "shared" / "langfuse"]
    candidates += [parent / "shared" / "langfuse" for parent in ROOT.parents]
    for candidate in candidates:
        if (candidate / "openapi.yml").is_file():
            return candidate
    return None


def spec_operations() -> list[tuple[str, str]]:
    folder = spec_dir()
    if folder is None:
        pytest.skip("Langfuse's openapi.yml not found (set LIGHTFUSE_LANGFUSE_SPEC to its path)")
    ops = set()
    for name in SPEC_FILES:
        if not (folder / name).is_file():
            continue
        spec = yaml.safe_load((folder / name).read_text())
        for path, item in (spec.get("paths") or {}).items():
            for method in METHODS:
                if method in item:
                    ops.add((method.upper(), path))
    assert ops, f"no operations found in {folder}"
    return sorted(ops)


def route_pattern(path: str) -> re.Pattern:
    """A route template as a regex: ``{x:path}`` spans slashes, ``{x}`` one segment."""
    out, pos = "", 0
    for m in re.finditer(r"\{([^}:]+)(:path)?\}", path):
        out += re.escape(path[pos : m.start()]) + (".+" if m.group(2) else "[^/]+")
        pos = m.end()
    return re.compile(out + re.escape(path[pos:]) + "$")


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x-1", path)


def not_served_table() -> dict[tuple[str, str], str]:
    """README.md's "## Not served" section: ``| METHOD | path | reason |`` rows."""
    text = (ROOT / "README.md").read_text()
    section = re.search(r"^## Not served\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert section, 'README.md has no "## Not served" section'
    rows = {}
    for line in section.group(1).splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].upper() in {m.upper() for m in METHODS}:
            rows[(cells[0].upper(), cells[1])] = cells[2]
    return rows


def served(routes: list[tuple[str, str]], method: str, path: str) -> bool:
    target = concrete(path)
    return any(m == method and route_pattern(p).match(target) for m, p in routes)


def test_every_spec_operation_is_served_or_listed_with_a_reason(api):
    ops = spec_operations()
    routes = app_routes(api)
    table = not_served_table()
    served_ops = [op for op in ops if served(routes, *op)]
    missing = [op for op in ops if op not in served_ops and op not in table]
    print(f"\n{len(served_ops)} of {len(ops)} spec operations served, {len(table)} listed as not served")
    assert not missing, f"neither served nor in README's 'Not served' table: {missing}"
    stale = [op for op in table if served(routes, *op)]
    assert not stale, f"served, but README lists them as not served (remove the rows): {stale}"
    unknown = [op for op in table if op not in ops]
    assert not unknown, f"README's 'Not served' rows that are not spec operations: {unknown}"
    assert all(len(reason) >= 10 for reason in table.values()), "every row needs its reason"


def test_operations_not_served_answer_langfuses_404(api):
    routes = app_routes(api)
    for method, path in not_served_table():
        target = concrete(path)
        if any(route_pattern(p).match(target) for _m, p in routes):
            continue  # the path is served for other methods: 405, checked by the route walk
        r = api.client.request(method, target, auth=api.auth, json={})
        assert r.status_code == 404, (method, path, r.status_code)
        body = r.json()
        assert set(body) == {"message", "error"} and body["error"] == "LangfuseNotFoundError", body
