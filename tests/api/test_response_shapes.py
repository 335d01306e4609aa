"""Every served GET route answers with every key Langfuse sends (issue #15, item 3).

After a representative data set is ingested (traces, every observation type, scores of every data type,
sessions, text and chat prompts, datasets with items and runs, models, score configs, comments, annotation
queues, media), each GET path of the Langfuse OpenAPI spec that Lightfuse serves is called, and its answer is
walked along the spec's response schema ($ref, allOf and the dataType-discriminated oneOf resolved): every
property that is required or nullable must be present as a key - a nullable one as ``null`` at least, since
Langfuse sends it and clients index into it - in every object, recursively.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from starlette.routing import Match

from tests.conftest import ROOT

# next to the repository (ROOT.parent/shared, as in CI); a git worktree one level deeper finds it further up
SPEC_PATH = next(
    (
        p / "shared" / "langfuse" / "openapi.yml"
        for p in ROOT.parents
        if (p / "shared" / "langfuse" / "openapi.yml").exists()
    ),
    ROOT.parent / "shared" / "langfuse" / "openapi.yml",
)
T0 = "2024-05-01T10:00:00.000Z"
OBSERVATION_TYPES = (
    "span",
    "generation",
    "event",
    "agent",
    "tool",
    "chain",
    "retriever",
    "evaluator",
    "embedding",
    "guardrail",
)
# paths the spec documents but this test cannot meaningfully call with a project key
NOT_PROJECT_ROUTES = (
    "/api/public/organizations/",
    "/api/public/scim/",
    "/api/public/projects/{projectId}/",
    "/api/public/integrations/",
)


@cache
def spec() -> dict:
    if not SPEC_PATH.exists():
        pytest.fail(f"the Langfuse OpenAPI spec is missing at {SPEC_PATH}")
    return yaml.safe_load(Path(SPEC_PATH).read_text())


def _ref(schema: dict) -> dict:
    seen = 0
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        extra = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**spec()["components"]["schemas"][name], **extra}
        seen += 1
        assert seen < 50, "reference loop"
    return schema


def _flatten(schema: dict) -> dict:
    """An object schema with its allOf parts merged: properties and required of them all."""
    schema = _ref(schema)
    if "allOf" not in schema:
        return schema
    props = dict(schema.get("properties") or {})
    required = set(schema.get("required") or [])
    for part in schema["allOf"]:
        flat = _flatten(part)
        for name, prop in (flat.get("properties") or {}).items():
            props.setdefault(name, prop)
        required |= set(flat.get("required") or [])
    return {
        **{k: v for k, v in schema.items() if k != "allOf"},
        "properties": props,
        "required": sorted(required),
    }


def _variant(schema: dict, value: Any) -> dict:
    """The oneOf member a value belongs to: by an enum-valued discriminator property, else the closest fit."""
    members = [_flatten(m) for m in schema["oneOf"]]
    if isinstance(value, dict):
        for member in members:
            tags = {
                k: p["enum"]
                for k, p in (member.get("properties") or {}).items()
                if isinstance(p, dict) and len(p.get("enum") or []) == 1
            }
            if tags and all(value.get(k) == enum[0] for k, enum in tags.items()):
                return member
    return min(members, key=lambda m: len(list(missing_keys(value, m, ""))))


# a property the spec itself says may be left out ("Omitted if no retention is configured", "Absent when there
# are no more results", "If not present, there are no more results", "Included only when `fields=scores` is
# requested")
_DOCUMENTED_ABSENCE = re.compile(
    r"\b(omitted|absent) (if|when)\b|\bif not present\b|\bincluded (only )?when\b", re.IGNORECASE
)


def _is_nullable(prop: dict) -> bool:
    if _DOCUMENTED_ABSENCE.search(prop.get("description") or ""):
        return False
    return bool(prop.get("nullable")) or bool(_ref(prop).get("nullable"))


def missing_keys(value: Any, schema: dict, where: str):
    """Yield 'where.key' for every required-or-nullable property missing from value, recursively."""
    schema = _flatten(schema)
    if "oneOf" in schema:
        yield from missing_keys(value, _variant(schema, value), where)
        return
    if isinstance(value, list) and "items" in schema:
        for n, item in enumerate(value[:20]):
            yield from missing_keys(item, schema["items"], f"{where}[{n}]")
        return
    if not isinstance(value, dict):
        return
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    for name, prop in props.items():
        if name.startswith("_"):  # _deprecation notices are optional extras
            continue
        if name not in value:
            if name in required or _is_nullable(prop):
                yield f"{where}.{name}"
            continue
        yield from missing_keys(value[name], prop, f"{where}.{name}")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and not props:
        for key, item in list(value.items())[:20]:
            yield from missing_keys(item, extra, f"{where}.{key}")


# --- the data set -------------------------------------------------------------------------------------------


def _ok(resp, *codes: int) -> Any:
    assert resp.status_code in (codes or (200,)), (resp.request.url, resp.status_code, resp.text[:500])
    return resp.json() if resp.content else None


def _event(kind: str, body: dict) -> dict:
    return {"id": str(uuid.uuid4()), "type": kind, "timestamp": T0, "body": body}


def seed(api) -> dict[str, str]:
    """Ingest one of everything; the ids to fill the spec's path parameters with."""
    post = api.client.post
    ids = {"traceId": f"t-{uuid.uuid4().hex[:8]}", "sessionId": "sess-shapes"}
    # prompts first, so the generation's prompt link resolves
    text = _ok(
        post(
            "/api/public/v2/prompts",
            json={
                "name": "shape-text",
                "type": "text",
                "prompt": "Hi {{x}}",
                "labels": ["production"],
                "config": {"t": 1},
            },
            auth=api.auth,
        ),
        200,
        201,
    )
    _ok(
        post(
            "/api/public/v2/prompts",
            json={
                "name": "shape-chat",
                "type": "chat",
                "prompt": [{"role": "system", "content": "Be {{tone}}"}],
            },
            auth=api.auth,
        ),
        200,
        201,
    )
    ids["promptName"] = text["name"]
    config = _ok(
        post(
            "/api/public/score-configs",
            json={
                "name": "quality",
                "dataType": "CATEGORICAL",
                "categories": [{"label": "good", "value": 1}, {"label": "bad", "value": 0}],
            },
            auth=api.auth,
        )
    )
    ids["configId"] = config["id"]

    tid = ids["traceId"]
    batch = [
        _event(
            "trace-create",
            {
                "id": tid,
                "name": "shapes",
                "sessionId": ids["sessionId"],
                "userId": "u1",
                "tags": ["a"],
                "metadata": {"k": "v"},
                "input": {"q": 1},
                "output": "ok",
            },
        )
    ]
    for n, kind in enumerate(OBSERVATION_TYPES):
        body: dict[str, Any] = {
            "id": f"{tid}-{kind}",
            "traceId": tid,
            "name": kind,
            "startTime": T0,
            "metadata": {"n": str(n)},
            "input": "in",
            "output": {"o": n},
        }
        if kind != "event":
            body["endTime"] = "2024-05-01T10:00:01.000Z"
        if kind == "generation":
            body.update(
                model="gpt-4o",
                usageDetails={"input": 10, "output": 5},
                promptName="shape-text",
                promptVersion=1,
                modelParameters={"temperature": 0.1},
                completionStartTime="2024-05-01T10:00:00.500Z",
            )
        batch.append(_event(f"{kind}-create", body))
    ids["observationId"] = f"{tid}-generation"
    scores = {"NUMERIC": 0.5, "CATEGORICAL": "good", "BOOLEAN": 1, "TEXT": "some text", "CORRECTION": "fixed"}
    for data_type, value in scores.items():
        body = {
            "id": f"{tid}-score-{data_type.lower()}",
            "traceId": tid,
            "name": data_type.lower(),
            "value": value,
            "dataType": data_type,
            "comment": "c",
        }
        if data_type == "CORRECTION":
            body["observationId"] = ids["observationId"]
        if data_type == "CATEGORICAL":
            body["configId"] = config["id"]
        batch.append(_event("score-create", body))
    batch.append(
        _event(
            "score-create",
            {
                "id": f"{tid}-score-session",
                "sessionId": ids["sessionId"],
                "name": "session-score",
                "value": 1,
            },
        )
    )
    resp = _ok(api.ingest(batch), 207)
    assert not resp["errors"], resp["errors"]
    ids["scoreId"] = f"{tid}-score-numeric"

    _ok(
        post(
            "/api/public/v2/datasets",
            json={"name": "shape-ds", "description": "d", "metadata": {"m": 1}},
            auth=api.auth,
        )
    )
    ids["datasetName"] = "shape-ds"
    item = _ok(
        post(
            "/api/public/dataset-items",
            json={
                "datasetName": "shape-ds",
                "input": {"x": 1},
                "expectedOutput": 2,
                "metadata": {"k": 1},
                "sourceTraceId": tid,
            },
            auth=api.auth,
        )
    )
    ids["id"] = item["id"]  # dataset item (the models' {id} is filled separately)
    run_item = _ok(
        post(
            "/api/public/dataset-run-items",
            json={
                "runName": "shape-run",
                "datasetItemId": item["id"],
                "traceId": tid,
                "observationId": ids["observationId"],
                "metadata": {"r": 1},
            },
            auth=api.auth,
        )
    )
    ids["runName"] = "shape-run"
    ids["datasetId"] = (
        run_item["datasetRunId"]
        and _ok(api.client.get("/api/public/v2/datasets/shape-ds", auth=api.auth))["id"]
    )
    model = _ok(
        post(
            "/api/public/models",
            json={
                "modelName": "shape-model",
                "matchPattern": "(?i)^(shape-model)$",
                "unit": "TOKENS",
                "inputPrice": 0.001,
                "outputPrice": 0.002,
            },
            auth=api.auth,
        )
    )
    ids["modelId"] = model["id"]
    comment = _ok(
        post(
            "/api/public/comments",
            json={"projectId": api.project_id, "objectType": "TRACE", "objectId": tid, "content": "note"},
            auth=api.auth,
        )
    )
    ids["commentId"] = comment["id"]
    queue = _ok(
        post(
            "/api/public/annotation-queues",
            json={"name": "review", "scoreConfigIds": [config["id"]]},
            auth=api.auth,
        )
    )
    ids["queueId"] = queue["id"]
    queue_item = _ok(
        post(
            f"/api/public/annotation-queues/{queue['id']}/items",
            json={"objectId": tid, "objectType": "TRACE"},
            auth=api.auth,
        )
    )
    ids["itemId"] = queue_item["id"]
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    )
    media = _ok(
        post(
            "/api/public/media",
            json={
                "traceId": tid,
                "field": "input",
                "contentType": "image/png",
                "contentLength": len(png),
                "sha256Hash": base64.b64encode(hashlib.sha256(png).digest()).decode(),
            },
            auth=api.auth,
        ),
        200,
        201,
    )
    digest = base64.b64encode(hashlib.sha256(png).digest()).decode()
    parts = urlsplit(media["uploadUrl"])
    _ok(
        api.client.put(
            f"{parts.path}?{parts.query}",
            content=png,
            headers={"Content-Type": "image/png", "x-amz-checksum-sha256": digest},
        )
    )
    ids["mediaId"] = media["mediaId"]
    ids["projectId"] = api.project_id
    return ids


# query parameters a route needs to answer at all
QUERY = {
    "/api/public/dataset-run-items": lambda ids: {"datasetId": ids["datasetId"], "runName": ids["runName"]},
    "/api/public/dataset-items": lambda ids: {"datasetName": ids["datasetName"]},
    "/api/public/comments": lambda ids: {"objectType": "TRACE", "objectId": ids["traceId"]},
    "/api/public/metrics": lambda ids: {
        "query": '{"view":"traces","metrics":[{"measure":"count","aggregation":'
        '"count"}],"dimensions":[{"field":"name"}],"filters":[],'
        '"fromTimestamp":"2024-01-01T00:00:00Z",'
        '"toTimestamp":"2030-01-01T00:00:00Z"}'
    },
    "/api/public/v2/metrics": lambda ids: {
        "query": '{"view":"observations","metrics":[{"measure":"count",'
        '"aggregation":"count"}],"dimensions":[{"field":"name"}],'
        '"filters":[],"fromTimestamp":"2024-01-01T00:00:00Z",'
        '"toTimestamp":"2030-01-01T00:00:00Z"}'
    },
    "/api/public/v2/observations": lambda ids: {
        "fields": "core,basic,time,io,metadata,model,usage,prompt,metrics,trace_context"
    },
    "/api/public/v3/scores": lambda ids: {"fields": "details,subject,annotation"},
    "/api/public/experiments": lambda ids: {
        "fromStartTime": "2000-01-01T00:00:00Z",
        "fields": "core,metadata",
    },
    "/api/public/experiment-items": lambda ids: {
        "fromStartTime": "2000-01-01T00:00:00Z",
        "fields": "core,dataset,io,metadata,itemMetadata,experimentMetadata",
    },
}


def _served(app, path: str) -> bool:
    scope = {
        "type": "http",
        "path": path,
        "method": "GET",
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    return any(route.matches(scope)[0] == Match.FULL for route in app.routes)


def test_every_served_get_route_sends_every_spec_key(api):
    ids = seed(api)
    problems: dict[str, list[str]] = {}
    called = []
    for path, ops in spec()["paths"].items():
        get = ops.get("get")
        if get is None or path.startswith(NOT_PROJECT_ROUTES):
            continue
        schema = get["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            continue
        fill = {**ids, "id": ids["modelId"] if path.startswith("/api/public/models") else ids["id"]}
        url = re.sub(r"\{(\w+)\}", lambda m, fill=fill: fill.get(m.group(1), "unknown"), path)
        if "unknown" in url or not _served(api.client.app, url):
            continue
        query = QUERY.get(path, lambda _ids: {})(ids)
        resp = api.client.get(url, params=query, auth=api.auth)
        assert resp.status_code == 200, (url, resp.status_code, resp.text[:500])
        body = resp.json()
        called.append(path)
        missing = sorted(set(missing_keys(body, schema, "")))
        if missing:
            problems[path] = missing
    # the routes the data set is meant to exercise were all called
    for must in (
        "/api/public/traces/{traceId}",
        "/api/public/observations",
        "/api/public/v2/observations",
        "/api/public/v2/scores",
        "/api/public/sessions/{sessionId}",
        "/api/public/v2/prompts/{promptName}",
        "/api/public/dataset-items/{id}",
        "/api/public/datasets/{datasetName}/runs/{runName}",
        "/api/public/models/{id}",
        "/api/public/comments/{commentId}",
        "/api/public/annotation-queues/{queueId}/items/{itemId}",
        "/api/public/media/{mediaId}",
        "/api/public/experiments",
        "/api/public/experiment-items",
    ):
        assert must in called, (must, called)
    assert not problems, "\n".join(f"{p}: {m}" for p, m in problems.items())


def test_trace_detail_scores_carry_string_value(api):
    """Langfuse sends ``"stringValue": null`` on a numeric score inside the trace detail (not a spec key)."""
    ids = seed(api)
    trace = _ok(api.client.get(f"/api/public/traces/{ids['traceId']}", auth=api.auth))
    by_type = {s["dataType"]: s for s in trace["scores"]}
    assert by_type["NUMERIC"]["stringValue"] is None
    assert by_type["CATEGORICAL"]["stringValue"] == "good"


def test_organisation_get_routes_send_every_spec_key(api):
    """The organisation-key GET routes (projects, keys, memberships, blob storage) against the spec."""
    key = api.services.keys.create_org_key("org-1")
    org = (key.public_key, key.secret_key)
    user = api.services.accounts.create_user("shape@example.com", None, "Shape")
    c = api.client
    assert c.put(
        "/api/public/organizations/memberships", json={"userId": user, "role": "ADMIN"}, auth=org
    ).is_success
    blob = {
        "projectId": api.project_id,
        "type": "S3",
        "bucketName": "b",
        "region": "r",
        "exportFrequency": "daily",
        "enabled": True,
        "forcePathStyle": False,
        "fileType": "CSV",
        "exportMode": "FULL_HISTORY",
    }
    integration = c.put("/api/public/integrations/blob-storage", json=blob, auth=org).json()
    fill = {"projectId": api.project_id, "id": integration["id"]}
    problems, called = {}, []
    for path, ops in spec()["paths"].items():
        get = ops.get("get")
        if get is None or not path.startswith(NOT_PROJECT_ROUTES) or path.startswith("/api/public/scim/"):
            continue
        schema = get["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema")
        url = re.sub(r"\{(\w+)\}", lambda m: fill[m.group(1)], path)
        resp = c.get(url, auth=org)
        assert resp.status_code == 200, (url, resp.status_code, resp.text[:500])
        called.append(path)
        missing = sorted(set(missing_keys(resp.json(), schema, "")))
        if missing:
            problems[path] = missing
    assert len(called) >= 7, called
    assert not problems, "\n".join(f"{p}: {m}" for p, m in problems.items())
