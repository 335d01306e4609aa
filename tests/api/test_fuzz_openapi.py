"""Schemathesis against a real server: the app's own OpenAPI document and Langfuse's, for the routes served.

Checks: no 5xx answer to any generated request (valid or not), and every 2xx answer matches the response schema
of the document. The run is bounded (examples per operation, a fixed seed, deterministic generation, no
stateful phase) so it takes a few minutes on 2 cores; the case count and wall time are printed for the record.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import ROOT

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.engine import events, from_schema  # noqa: E402
from schemathesis.engine.statistic import Statistic  # noqa: E402 - what `st run` counts and reports with

# ../shared sits next to the repository (the lead copies it there); LIGHTFUSE_LANGFUSE_SPEC points elsewhere
LANGFUSE_SPEC = Path(
    os.environ.get("LIGHTFUSE_LANGFUSE_SPEC") or ROOT.parent / "shared" / "langfuse" / "openapi.yml"
)

# examples per operation and phase; Postgres runs fewer (each request costs more there)
EXAMPLES = {"sqlite": 30, "postgres": 10}

# Langfuse's spec vs this app's deliberate behaviour: (method, path) -> why the operation is left out
LANGFUSE_EXCLUDED: dict[tuple[str, str], str] = {}

pytestmark = pytest.mark.slow


@schemathesis.check
def no_per_event_server_error(ctx, response, case):
    """A 207 of /ingestion lists failures per event: a 5xx there is a server fault as much as a 500 answer."""
    if response.status_code != 207:
        return None
    errors = [e for e in (response.json() or {}).get("errors", []) if isinstance(e, dict)]
    failed = [e for e in errors if isinstance(e.get("status"), int) and e["status"] >= 500]
    if failed:
        raise AssertionError(f"{len(failed)} events failed with a server error: {failed[:3]}")
    return True


def seed(server) -> None:
    """A little of everything, so list and get answers carry real rows for the schema checks."""
    c = httpx.Client(base_url=server.url, auth=server.auth, timeout=30)
    batch = [
        {
            "id": "e1",
            "type": "trace-create",
            "timestamp": "2026-01-01T00:00:00Z",
            "body": {
                "id": "t-1",
                "name": "trace",
                "userId": "u-1",
                "sessionId": "s-1",
                "tags": ["a"],
                "input": {"q": 1},
                "metadata": {"k": "v"},
            },
        },
        {
            "id": "e2",
            "type": "generation-create",
            "timestamp": "2026-01-01T00:00:01Z",
            "body": {
                "id": "o-1",
                "traceId": "t-1",
                "name": "gen",
                "model": "gpt-4o",
                "startTime": "2026-01-01T00:00:01Z",
                "endTime": "2026-01-01T00:00:02Z",
                "usageDetails": {"input": 10, "output": 5},
            },
        },
        {
            "id": "e3",
            "type": "score-create",
            "timestamp": "2026-01-01T00:00:03Z",
            "body": {"id": "sc-1", "traceId": "t-1", "name": "quality", "value": 0.5},
        },
    ]
    assert c.post("/api/public/ingestion", json={"batch": batch}).status_code == 207
    assert c.post(
        "/api/public/v2/prompts",
        json={"name": "p", "prompt": "hi {{x}}", "type": "text", "labels": ["production"]},
    ).status_code in (200, 201)
    assert c.post("/api/public/v2/datasets", json={"name": "d"}).status_code == 200
    assert (
        c.post("/api/public/dataset-items", json={"datasetName": "d", "input": {"x": 1}}).status_code == 200
    )
    assert c.post("/api/public/score-configs", json={"name": "q", "dataType": "NUMERIC"}).status_code == 200
    assert (
        c.post(
            "/api/public/comments",
            json={"projectId": server.project_id, "objectType": "TRACE", "objectId": "t-1", "content": "c"},
        ).status_code
        == 200
    )
    assert (
        c.post("/api/public/annotation-queues", json={"name": "q", "scoreConfigIds": []}).status_code == 200
    )
    # the ingestion writer commits in the background: wait until the trace is readable
    deadline = time.monotonic() + 10
    while c.get("/api/public/traces/t-1").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    c.close()


def served_langfuse_spec(tmp_path: Path) -> Path:
    """Langfuse's document cut to the operations this app routes (matched against the app's own routes)."""
    from starlette.routing import Match

    from lightfuse.app import build_services, create_app
    from lightfuse.config import load_settings

    services = build_services(load_settings(data_dir=Path(tempfile.mkdtemp(dir=tmp_path))))
    app = create_app(services)

    def leaves(routes):
        for route in routes:
            nested = getattr(route, "original_router", None)
            if nested is not None:
                yield from leaves(nested.routes)
            elif getattr(route, "methods", None):
                yield route

    routes = list(leaves(app.routes))
    spec = yaml.safe_load(LANGFUSE_SPEC.read_text())
    kept: dict = {}
    for path, item in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x-1", path)
        ops = {}
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                ops[method] = op  # path-level parameters
                continue
            if (method.upper(), path) in LANGFUSE_EXCLUDED:
                continue
            scope = {"type": "http", "path": concrete, "method": method.upper(), "root_path": ""}
            if any(r.matches(scope)[0] == Match.FULL for r in routes):
                ops[method] = op
        if any(m in ops for m in ("get", "post", "put", "patch", "delete")):
            kept[path] = ops
    services.engine.dispose()
    spec["paths"] = kept
    out = tmp_path / "langfuse-served.yml"
    out.write_text(yaml.safe_dump(spec))
    return out


def fuzz(schema) -> tuple[Statistic, list[str]]:
    statistic, errors = Statistic(), []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            statistic.on_scenario_finished(event.recorder)
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {event.value!r}"[:500])
        elif isinstance(event, events.FatalError):
            raise event.exception
    return statistic, errors


def failures_text(statistic: Statistic) -> list[str]:
    out = []
    for label, groups in statistic.failures.items():
        for group in groups.values():
            for failure in group.failures:
                out.append(
                    f"{label}: {failure.title}: {(failure.message or '')[:600]}\n  {group.code_sample}"
                )
    return out


def config(server, backend: str):
    return schemathesis.Config.from_dict(
        {
            "seed": 20261202,
            "base-url": server.url,
            "headers": server.basic_header,
            "cache": {"enabled": False},
            "generation": {"max-examples": EXAMPLES[backend], "deterministic": True, "mode": "all"},
            # one request at a time, no request chains: a bounded, reproducible run
            "workers": 1,
            "phases": {"stateful": {"enabled": False}},
            "checks": {
                "enabled": False,
                "not_a_server_error": {"enabled": True},
                "response_schema_conformance": {"enabled": True},
                "no_per_event_server_error": {"enabled": True},
            },
        }
    )


def run_and_check(server, request, name: str, load) -> None:
    backend = request.node.callspec.params["backend"]
    seed(server)
    started = time.monotonic()
    statistic, errors = fuzz(load(config(server, backend)))
    print(
        f"\nschemathesis {name} [{backend}]: {statistic.total_cases} cases, "
        f"{len(statistic.tested_operations)} operations, {time.monotonic() - started:.0f} s"
    )
    problems = failures_text(statistic) + errors
    assert not problems, "\n\n".join(problems)
    assert statistic.total_cases > 0
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]


def test_own_openapi_document(server, request):
    run_and_check(
        server,
        request,
        "/api/openapi.json",
        lambda cfg: schemathesis.openapi.from_url(server.url + "/api/openapi.json", config=cfg),
    )


def test_langfuse_openapi_for_the_routes_served(server, request, tmp_path):
    if not LANGFUSE_SPEC.exists():
        pytest.skip(f"Langfuse's spec is not at {LANGFUSE_SPEC} (the lead copies ../shared next to the repo)")
    spec = served_langfuse_spec(tmp_path)
    run_and_check(
        server, request, "Langfuse openapi.yml", lambda cfg: schemathesis.openapi.from_path(spec, config=cfg)
    )
