"""Issue #15, items 1-4, as the released Langfuse SDKs hit them, against a real Lightfuse server.

* metadata: OTLP metadata attributes (and batch metadata strings) are read back by the Langfuse rule
  (api-semantics 2.4): each top-level string value that is JSON text is returned parsed;
* prompt links: a generation created with ``prompt=`` comes back with ``promptId``, name and version;
* the SDK's numeric score inside the trace detail has ``"stringValue": null`` (item 3; the whole spec walk is
  tests/api/test_response_shapes.py);
* dataset items whose input / expected output are bare JSON scalars: ``get_dataset`` works (it got a 500).
"""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.conftest import ROOT, client_python, make_server
from tests.web.helpers import csrf_from

pytestmark = pytest.mark.slow
UI_EMAIL, UI_PASSWORD = "issue15@example.com", "issue15-password"


@pytest.fixture
def ui_server(tmp_path, backend):
    """A real server whose init user can sign in to the web UI (its JSON twins are checked too)."""
    srv = make_server(
        tmp_path, backend, LANGFUSE_INIT_USER_EMAIL=UI_EMAIL, LANGFUSE_INIT_USER_PASSWORD=UI_PASSWORD
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _ui_trace(server, trace_id: str) -> dict:
    with httpx.Client(base_url=server.url) as ui:
        token = csrf_from(ui.get("/auth/sign-in").text)
        signed_in = ui.post(
            "/auth/sign-in", data={"csrf_token": token, "email": UI_EMAIL, "password": UI_PASSWORD}
        )
        assert signed_in.status_code in (200, 303), signed_in.text[:500]
        resp = ui.get(
            f"/project/{server.project_id}/traces/{trace_id}", headers={"Accept": "application/json"}
        )
        assert resp.status_code == 200, resp.text[:500]
        return resp.json()


def run_script(server, sdk: str, script: str) -> dict:
    env = {
        "LANGFUSE_HOST": server.url,
        "LANGFUSE_BASE_URL": server.url,
        "LANGFUSE_PUBLIC_KEY": server.public_key,
        "LANGFUSE_SECRET_KEY": server.secret_key,
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [client_python(sdk), str(ROOT / "tests" / "clients" / "scripts" / script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def _get(server, path: str, **params) -> dict:
    resp = httpx.get(f"{server.url}{path}", params=params, auth=server.auth)
    assert resp.status_code == 200, f"{path}: {resp.status_code} {resp.text}"
    return resp.json()


# what the SDK user passed: {"count": "0", "items": ["yo"] (2.x: '["yo"]'), "nested": {...}, "text": "hello", 7}
READ_BACK = {"count": 0, "items": ["yo"], "nested": {"a": {"b": 1}, "s": "1"}, "text": "hello", "num": 7}


def _prompt_id(server, name: str, version: int) -> str:
    return _get(server, f"/api/public/v2/prompts/{name}", version=version)["id"]


def _check_metadata_everywhere(server, ids: dict, expected: dict) -> None:
    trace_id = ids["trace_id"]
    trace = _get(server, f"/api/public/traces/{trace_id}")
    root = next(o for o in trace["observations"] if o["id"] == ids["root"])
    assert root["metadata"] == {**root["metadata"], **expected}, root["metadata"]
    assert _get(server, f"/api/public/observations/{ids['root']}")["metadata"] == root["metadata"]
    listed = _get(server, "/api/public/observations", traceId=trace_id)["data"]
    assert next(o for o in listed if o["id"] == ids["root"])["metadata"] == root["metadata"]
    v2 = _get(server, "/api/public/v2/observations", traceId=trace_id, fields="core,basic,metadata")["data"]
    v2_root = next(o for o in v2 if o["id"] == ids["root"])["metadata"]
    assert {k: v2_root[k] for k in expected} == expected, v2_root
    # the web UI's JSON twin of the trace page
    ui = _ui_trace(server, trace_id)
    assert next(o for o in ui["observations"] if o["id"] == ids["root"])["metadata"] == root["metadata"]
    assert ui["metadata"] == trace["metadata"]


@pytest.mark.parametrize("sdk", ["langfuse4", "langfuse5"])
def test_otlp_sdks_metadata_prompt_links_and_scalar_dataset_items(ui_server, sdk):
    server = ui_server
    ids = run_script(server, sdk, "issue15_current.py")
    assert ids["major"] == int(sdk[-1])

    # 1. metadata: 4.x sends "0" as the string attribute "0", a list as '["yo"]' -> read as 0 and ["yo"];
    # 5.x JSON-encodes every value and its strings stay strings ("0" is "0"), as Langfuse decodes them
    expected = dict(READ_BACK)
    if ids["major"] >= 5:
        expected["count"] = "0"
    _check_metadata_everywhere(server, ids, expected)
    trace = _get(server, f"/api/public/traces/{ids['trace_id']}")
    assert trace["metadata"]["tenant"] == "acme"
    assert trace["metadata"]["build"] == ("123" if ids["major"] >= 5 else 123)
    # scores go through the batch API with metadata as given: "0" reads back as 0 on every SDK
    scores = _get(server, "/api/public/v2/scores", name="quality")["data"]
    assert [s["metadata"] for s in scores] == [READ_BACK], scores
    detail_scores = [s for s in trace["scores"] if s["name"] == "quality"]
    assert [s["metadata"] for s in detail_scores] == [READ_BACK]
    # 3. the SDK's numeric score inside the trace detail carries "stringValue": null, as Langfuse sends it
    assert [("stringValue" in s, s.get("stringValue")) for s in detail_scores] == [(True, None)]

    # 2. prompt links, in the trace detail, observations v1 (one and list) and v2
    for gen_key, kind in (("text_gen", "text"), ("chat_gen", "chat")):
        name, version = ids["prompts"][kind]
        prompt_id = _prompt_id(server, name, version)
        want = {"promptId": prompt_id, "promptName": name, "promptVersion": version}
        gen = next(o for o in trace["observations"] if o["id"] == ids[gen_key])
        assert {k: gen[k] for k in want} == want, gen
        one = _get(server, f"/api/public/observations/{ids[gen_key]}")
        assert {k: one[k] for k in want} == want
        v2 = _get(server, "/api/public/v2/observations", traceId=ids["trace_id"], fields="core,prompt")[
            "data"
        ]
        v2_gen = next(o for o in v2 if o["id"] == ids[gen_key])
        assert {k: v2_gen[k] for k in want} == want, v2_gen
        ui_gen = next(
            o for o in _ui_trace(server, ids["trace_id"])["observations"] if o["id"] == ids[gen_key]
        )
        assert {k: ui_gen[k] for k in want} == want

    # 4. get_dataset over scalar inputs / expected outputs (the SDK itself raised on the 500 before)
    assert ids["dataset_items"] == ids["expected_items"]
    if ids["major"] >= 5:
        assert ids["dataset_items_versioned"] == ids["expected_items"]


def test_batch_sdk_metadata_prompt_link_and_scalar_dataset_items(ui_server):
    server = ui_server
    ids = run_script(server, "langfuse2", "issue15_langfuse2.py")
    trace = _get(server, f"/api/public/traces/{ids['trace_id']}")
    assert trace["metadata"] == READ_BACK
    _check_metadata_everywhere(server, ids, READ_BACK)

    name, version = ids["prompt"]
    want = {"promptId": _prompt_id(server, name, version), "promptName": name, "promptVersion": version}
    gen = next(o for o in trace["observations"] if o["id"] == ids["text_gen"])
    assert {k: gen[k] for k in want} == want, gen
    v2 = _get(server, "/api/public/v2/observations", traceId=ids["trace_id"], fields="core,prompt")["data"]
    assert {k: next(o for o in v2 if o["id"] == ids["text_gen"])[k] for k in want} == want

    assert ids["dataset_items"] == ids["expected_items"]
