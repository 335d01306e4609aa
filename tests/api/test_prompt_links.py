"""Prompt links of generations (issue #15, item 2): resolved from (project, name, version) when read.

A generation names its prompt by name and version (batch ``promptName`` / ``promptVersion``, OTLP
``langfuse.observation.prompt.name`` / ``.version``); the read APIs return the prompt's id with them. The link is
resolved at read time, so a prompt created after the generation that names it is linked from then on, and one
of another project never is.
"""

from __future__ import annotations

import uuid

T0 = "2024-05-01T10:00:00.000Z"


def _generation(api, name: str, version: int) -> tuple[str, str]:
    trace_id, obs_id = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    batch = [
        {"id": str(uuid.uuid4()), "type": "trace-create", "timestamp": T0, "body": {"id": trace_id}},
        {
            "id": str(uuid.uuid4()),
            "type": "generation-create",
            "timestamp": T0,
            "body": {
                "id": obs_id,
                "traceId": trace_id,
                "startTime": T0,
                "promptName": name,
                "promptVersion": version,
            },
        },
    ]
    resp = api.ingest(batch)
    assert resp.status_code == 207 and not resp.json()["errors"], resp.text
    return trace_id, obs_id


def _links(api, trace_id: str, obs_id: str, auth=None) -> list[dict]:
    auth = auth or api.auth
    keys = ("promptId", "promptName", "promptVersion")
    one = api.client.get(f"/api/public/observations/{obs_id}", auth=auth).json()
    listed = api.client.get("/api/public/observations", params={"traceId": trace_id}, auth=auth).json()[
        "data"
    ]
    detail = api.client.get(f"/api/public/traces/{trace_id}", auth=auth).json()["observations"]
    v2 = api.client.get(
        "/api/public/v2/observations", params={"traceId": trace_id, "fields": "core,prompt"}, auth=auth
    ).json()["data"]
    return [{k: o[k] for k in keys} for o in (one, *listed, *detail, *v2)]


def test_a_prompt_created_after_its_generation_is_linked_from_then_on(api):
    trace_id, obs_id = _generation(api, "late-prompt", 2)
    assert (
        _links(api, trace_id, obs_id)
        == [{"promptId": None, "promptName": "late-prompt", "promptVersion": 2}] * 4
    )

    for text in ("v1", "v2"):
        resp = api.client.post(
            "/api/public/v2/prompts",
            json={"name": "late-prompt", "type": "text", "prompt": text},
            auth=api.auth,
        )
        assert resp.status_code in (200, 201), resp.text
        created = resp.json()
    assert created["version"] == 2
    assert (
        _links(api, trace_id, obs_id)
        == [{"promptId": created["id"], "promptName": "late-prompt", "promptVersion": 2}] * 4
    )


def test_a_prompt_of_another_project_is_never_linked(api):
    _project, other_auth = api.new_project_key()
    resp = api.client.post(
        "/api/public/v2/prompts", json={"name": "theirs", "type": "text", "prompt": "x"}, auth=other_auth
    )
    assert resp.status_code in (200, 201), resp.text
    trace_id, obs_id = _generation(api, "theirs", 1)
    assert all(link["promptId"] is None for link in _links(api, trace_id, obs_id))
